"""The whole hostile corpus served by real mirrors on 127.0.0.1, mixed with good pages, in one
crawl-and-load run per site: nothing crashes, good pages load, every bad page ends rejected
or partial with a reason naming its problem -- refused at fetch time (size caps, not a trial
page) or quarantined by the parser -- and SQL-looking or markup text is stored verbatim.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from pipeline.db.connection import open_warehouse
from pipeline.devtools.mirror import Mirror, MirrorPage, MirrorServer, generate_pages
from pipeline.run import crawl_into
from pipeline.scrape import CrawlConfig
from tests.hostile.corpus import CASES, build

FAST = CrawlConfig(rate=1000, concurrency=2, max_retries=0, backoff_base_s=0.01, backoff_max_s=0.05)
LASTMOD = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
N_GOOD = 3

# Why a case stops at the fetch instead of reaching the parser: the crawler only accepts a
# 200 body that looks like a trial page of the site, within the size caps.
FETCH_REASONS = ("not a trial page", "response too large")


def _path(site: str, name: str, content: bytes, index: int) -> str:
    if site == "clinconnect":  # ClinConnect URLs are /trials/<NCT id>; build() gave each case one
        return f"/trials/NCT0{index + 1:03d}4321"
    return f"/study/{name}"


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-crawl")
    build(root / "cases")
    served: dict[str, dict[str, MirrorPage]] = {"veeva": {}, "clinconnect": {}}
    where: dict[str, tuple[str, str]] = {}
    for index, case in enumerate(CASES):
        content = (root / "cases" / case.name).read_bytes()
        text = content.decode("utf-16") if content.startswith(b"\xff\xfe") else content.decode("latin-1")
        site = "clinconnect" if "ClinConnect" in text else "veeva"
        path = _path(site, case.name, content, index)
        served[site][path] = MirrorPage(content, LASTMOD)
        where[case.name] = (site, path)
    good = {site: generate_pages(site, N_GOOD, start=100) for site in served}
    conn = open_warehouse(root / "w.duckdb")
    runs = {}
    bases = {}
    try:
        for site in ("veeva", "clinconnect"):
            with MirrorServer(Mirror(site, {**good[site], **served[site]}, per_sitemap=25)) as srv:
                runs[site] = crawl_into(conn, site, root / "raw", config=FAST, base_url=srv.base_url)
                bases[site] = srv.base_url
        fetch_errors = dict(conn.execute(
            "SELECT url, error FROM fetches WHERE kind = 'page' AND outcome = 'failed'").fetchall())
        pages = {url: (status, error) for url, status, error in conn.execute(
            "SELECT url, parse_status, parse_error FROM pages").fetchall()}
    finally:
        conn.close()
    outcome = {}
    for name, (site, path) in where.items():
        url = bases[site] + path
        outcome[name] = ("fetch", fetch_errors[url]) if url in fetch_errors else ("page", *pages[url])
    yield root / "w.duckdb", runs, outcome, good, bases


def test_the_run_finishes_and_good_pages_load(crawled):
    warehouse, runs, _, good, bases = crawled
    for site, run in runs.items():
        assert run.crawl.status == "finished"
        assert run.summary.pages_by_status["rejected"] >= 0
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        for site, pages in good.items():
            urls = [bases[site] + p for p in pages]
            rows = conn.execute("SELECT parse_status FROM pages WHERE url IN (SELECT unnest(?))", [urls]).fetchall()
            assert sorted(rows) == [("ok",)] * N_GOOD, site
    finally:
        conn.close()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_case_ends_with_its_outcome_and_reason(crawled, case):
    _, _, outcome, _, _ = crawled
    got = outcome[case.name]
    if got[0] == "fetch":
        # Refused by the crawler: only ever a page that is not a trial page at all.
        assert case.status == "rejected", got
        assert any(reason in got[1] for reason in FETCH_REASONS), got
    else:
        _, status, error = got
        assert status == case.status, (case.name, status, error)
        if case.reason:
            assert case.reason in (error or ""), (case.name, error)
        else:
            assert error is None, (case.name, error)


def test_the_size_caps_stop_the_big_ones_at_fetch_time(crawled):
    _, _, outcome, _, _ = crawled
    kind, error = outcome["huge-50mb.html"]
    assert kind == "fetch" and "response too large: more than 5000000 bytes decoded" in error
    kind, error = outcome["bomb.html.gz"]  # gzip inside gzip: decoded once, then not a page
    assert kind == "fetch" and "not a trial page" in error


def test_sql_and_markup_are_stored_verbatim(crawled):
    warehouse = crawled[0]
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        titles = {t for (t,) in conn.execute("SELECT brief_title FROM trials").fetchall()}
        assert "Robert'); DROP TABLE trials;-- \" OR 1=1" in titles
        assert "Study of <b>bold</b> & <script>alert(1)</script> claims" in titles
        assert "Laughs &lol9; stay text" in titles
        assert conn.execute("SELECT count(*) FROM conditions WHERE name = 'Leukemia''); DROP TABLE trials; --'"
                            ).fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM trials").fetchone()[0] > 2 * N_GOOD  # the table is still there
    finally:
        conn.close()
