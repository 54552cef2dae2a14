"""End-to-end crawls against the local mirror (real HTTP on 127.0.0.1).

Politeness is asserted from the server's own request log: spacing of request
starts, robots.txt rules, and a second "foreign host" server that must see no
request at all.  Rates are high except in the rate-limit tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.devtools.mirror import (
    BASE_LASTMOD,
    INTERSTITIAL,
    Faults,
    Mirror,
    MirrorPage,
    MirrorServer,
    generate_pages,
)
from pipeline.rawstore import RawStore
from pipeline.scrape import CrawlConfig, RobotsUnreachable, TerminalProgress, crawl
from pipeline.scrape.state import MIGRATION_FILE

FAST = CrawlConfig(rate=200, concurrency=2, backoff_base_s=0.02, backoff_max_s=0.2, max_retries=3)
UA = FAST.user_agent


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def open_db(path: Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(str(path))
    conn.execute(MIGRATION_FILE.read_text())
    return conn


@pytest.fixture
def db(tmp_path):
    conn = open_db(tmp_path / "w.duckdb")
    yield conn
    conn.close()


def objects(root: Path, source: str = "veeva") -> set[str]:
    return set(RawStore(root).iter_shas(source))


def page_requests(srv: MirrorServer) -> list:
    return [q for q in srv.requests if q.path.startswith(("/study/", "/trials/"))]


def rows(conn, sql, params=()):
    return conn.execute(sql, list(params)).fetchall()


# --------------------------------------------------------------------------------------
def test_crawl_stores_every_allowed_page_and_survives_faults(tmp_path, db):
    with MirrorServer(Mirror("veeva", generate_pages("veeva", 2))) as foreign:
        pages = generate_pages("veeva", 16)
        p = list(pages)
        pages["/study/private-trial"] = MirrorPage(pages[p[0]].body.replace(b"X0", b"P0"), BASE_LASTMOD)
        faults = Faults(
            rate_limited={p[1]: 1}, retry_after="1", unavailable={p[2]: 2}, drop={p[3]: 1},
            truncate={p[4]: 1}, interstitial={p[5]: 1, "/study/challenge": 0}, slow={p[6]: 0.3},
            redirects={"/study/moved": p[7], "/study/away": foreign.base_url + p[0]},
            gone={"/study/removed"}, oversized={"/study/huge": 6_000_000},
        )
        mirror = Mirror(
            "veeva", pages, disallow=["/study/private-"], per_sitemap=5, faults=faults,
            extra_sitemap_urls=[foreign.base_url + "/study/foreign-trial", "/about", "/study/x?page=2"],
            extra_index_urls=[foreign.base_url + "/sitemaps/trials-0.xml.gz"],
        )
        with MirrorServer(mirror) as srv:
            result = crawl("veeva", raw_root=tmp_path / "raw", conn=db, config=FAST, base_url=srv.base_url)
            log = srv.requests
        assert foreign.requests == []  # never a foreign host: not its sitemap, page or redirect

    base = srv.base_url
    # every allowed trial page stored exactly once, plus the kept body of the permanent challenge
    assert objects(tmp_path / "raw") == {sha(pages[x].body) for x in p} | {sha(INTERSTITIAL)}
    assert result.status == "finished" and result.disallowed == 1
    assert (result.fetched, result.gone, result.failed) == (17, 1, 3)
    got = {r[0]: r[1:] for r in rows(db, "SELECT url, outcome, attempts, http_status, final_url, error, content_sha256 "
                                       "FROM fetches WHERE kind = 'page'")}
    assert len(got) == 16 + 5 == len(rows(db, "SELECT * FROM fetches WHERE kind = 'page'"))
    for x in p:
        assert got[base + x][:2] == ("fetched", got[base + x][1]) and got[base + x][5] == sha(pages[x].body)
    assert got[base + p[1]][1] == 2 and got[base + p[2]][1] == 3  # 429 once, 503 twice
    assert got[base + p[3]][1] == 2 and got[base + p[4]][1] == 2  # dropped, truncated
    assert got[base + p[5]][1] == 2  # transient interstitial retried
    assert got[base + "/study/moved"][0] == "fetched" and got[base + "/study/moved"][3] == base + p[7]
    assert got[base + "/study/removed"][:3] == ("gone", 1, 404)
    assert got[base + "/study/huge"][0] == "failed" and "too large" in got[base + "/study/huge"][4]
    assert got[base + "/study/away"][0] == "failed" and "host not allowed" in got[base + "/study/away"][4]
    challenge = got[base + "/study/challenge"]
    assert challenge[0] == "failed" and "not a trial page" in challenge[4] and challenge[5] == sha(INTERSTITIAL)

    paths = [q.path for q in log]
    assert paths[0] == "/robots.txt"
    assert not any(x.startswith("/study/private-") for x in paths)  # robots.txt obeyed
    assert "/about" not in paths and "/study/x" not in paths  # only study URLs are crawled
    assert all(q.headers.get("user-agent") == UA for q in log)
    # Retry-After: 1 -- nothing was started in the second after the 429 (beyond what was in flight)
    t429 = next(q.t for q in log if q.status == 429)
    assert not [q for q in log if t429 + 0.05 < q.t < t429 + 0.95]

    # the lead's hand-off: new page versions -> RawPage
    store = RawStore(tmp_path / "raw")
    raw = {r.url: r for r in result.raw_pages(store)}
    assert set(raw) == {base + x for x in p}  # /study/moved collapses into its target
    assert raw[base + p[0]].content == pages[p[0]].body and raw[base + p[0]].source_hint == "veeva"
    assert not [f for f in tmp_path.rglob("*.tmp")]


def _gaps(log) -> list[float]:
    times = sorted(q.t for q in log)
    return [b - a for a, b in zip(times, times[1:])]


def _spaced(gaps: list[float], interval: float) -> bool:
    """Every gap between request starts is at least half `interval`, except a gap shortened
    by a late server-side stamp.  A stamp taken late by the server's thread (tens of ms, once
    100+ ms, on a loaded 2-core machine) lengthens the gap before it by as much as it
    shortens the gap after it, so that pair still sums to two intervals; a real burst (two
    requests at once after a normal gap) does not."""
    for i, gap in enumerate(gaps):
        if gap >= interval * 0.5:
            continue
        if i == 0 or gaps[i - 1] + gap < 2 * interval * 0.95:
            return False
    return True


def test_spacing_check_tolerates_a_late_stamp_but_not_a_burst():
    assert _spaced([0.2, 0.2, 0.2], 0.2)
    assert _spaced([0.2, 0.399, 0.001, 0.2], 0.2)  # the third stamp came 0.199 s late
    assert not _spaced([0.2, 0.2, 0.0, 0.4], 0.2)  # two requests at once
    assert not _spaced([0.05, 0.2], 0.2)


def test_rate_limit_holds_from_the_servers_point_of_view(tmp_path, db):
    mirror = Mirror("clinconnect", generate_pages("clinconnect", 8), per_sitemap=4)
    config = dataclasses.replace(FAST, rate=5.0)  # 0.2 s between request starts
    with MirrorServer(mirror) as srv:
        t0 = time.monotonic()
        result = crawl("clinconnect", raw_root=tmp_path / "raw", conn=db, config=config, base_url=srv.base_url)
        took = time.monotonic() - t0
        log = srv.requests
    assert result.fetched == 8 and len(log) == 1 + 1 + 2 + 8
    gaps = _gaps(log)
    # Server-side stamps carry scheduling jitter (see _spaced); the crawler spaces starts
    # exactly, so the mean holds.
    assert _spaced(gaps, 0.2), gaps
    assert sum(gaps) / len(gaps) >= 0.2 * 0.98, gaps
    assert took >= (len(log) - 1) * 0.2 * 0.95


def test_robots_crawl_delay_is_obeyed(tmp_path, db):
    mirror = Mirror("veeva", generate_pages("veeva", 5), crawl_delay=0.25, per_sitemap=10)
    with MirrorServer(mirror) as srv:
        result = crawl("veeva", raw_root=tmp_path / "raw", conn=db, config=FAST, base_url=srv.base_url)
        log = srv.requests
    assert result.fetched == 5
    gaps = _gaps(log[1:])  # from the first request after robots.txt was read
    assert _spaced(gaps, 0.25), gaps  # jitter: see _spaced
    assert sum(gaps) / len(gaps) >= 0.25 * 0.98, gaps


def test_recrawl_is_conditional_and_adds_nothing(tmp_path, db):
    pages = generate_pages("veeva", 10)
    raw = tmp_path / "raw"
    with MirrorServer(Mirror("veeva", pages, per_sitemap=4)) as srv:
        first = crawl("veeva", raw_root=raw, conn=db, config=FAST, base_url=srv.base_url)
        before = objects(raw)
        assert first.fetched == 10 and len(before) == 10

        # 1. sitemap lastmod unchanged -> no page request at all
        srv.clear_requests()
        second = crawl("veeva", raw_root=raw, conn=db, config=FAST, base_url=srv.base_url)
        assert page_requests(srv) == [] and second.skipped_unchanged == 10 and second.pages == ()

        # 2. without lastmod help, every page is a conditional request answered 304
        srv.clear_requests()
        third = crawl("veeva", raw_root=raw, conn=db, config=dataclasses.replace(FAST, use_lastmod=False),
                      base_url=srv.base_url)
        reqs = page_requests(srv)
        assert len(reqs) == 10 and all(q.status == 304 and "if-none-match" in q.headers for q in reqs)
        assert (third.unchanged, third.fetched, third.pages) == (10, 0, ())
        assert objects(raw) == before

        # 3. one page changes (new lastmod) -> only it is fetched, one new object
        changed = next(iter(pages))
        new_body = pages[changed].body.replace(b"Enrolling", b"Completed")
        # lastmod must be later than our last fetch (whole seconds on the wire)
        later = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
        srv.mirror.set_page(changed, new_body, later)
        srv.clear_requests()
        fourth = crawl("veeva", raw_root=raw, conn=db, config=FAST, base_url=srv.base_url)
        assert [(q.path, q.status) for q in page_requests(srv)] == [(changed, 200)]
        assert [pv.content_sha256 for pv in fourth.pages] == [sha(new_body)]
        assert objects(raw) == before | {sha(new_body)}
    n = rows(db, "SELECT count(*), count(DISTINCT crawl_id) FROM fetches WHERE kind = 'page'")[0]
    assert n == (10 + 10 + 1, 3)


def test_failed_page_is_retried_on_the_next_run(tmp_path, db):
    pages = generate_pages("veeva", 4)
    bad = list(pages)[2]
    cfg = dataclasses.replace(FAST, max_retries=2)
    with MirrorServer(Mirror("veeva", pages, faults=Faults(unavailable={bad: 3}))) as srv:
        first = crawl("veeva", raw_root=tmp_path / "raw", conn=db, config=cfg, base_url=srv.base_url)
        assert first.failed == 1 and first.failures[0][0] == srv.base_url + bad
        assert "HTTP 503 (after 3 attempts)" in first.failures[0][1]
        srv.clear_requests()
        second = crawl("veeva", raw_root=tmp_path / "raw", conn=db, config=cfg, base_url=srv.base_url)
        assert [q.path for q in page_requests(srv)] == [bad]  # the others are unchanged per lastmod
    assert second.fetched == 1 and second.pages[0].url == srv.base_url + bad
    assert objects(tmp_path / "raw") == {sha(b.body) for b in pages.values()}


def test_url_list_limit_and_since(tmp_path):
    pages = generate_pages("clinconnect", 20)
    p = list(pages)
    with MirrorServer(Mirror("clinconnect", pages)) as srv:
        urls = tmp_path / "urls.txt"
        urls.write_text(
            f"# trials to refresh\n{srv.base_url}{p[3]}\n\n{srv.base_url}{p[4].lower()}\n"
            f"https://clinconnect.io{p[5]}\n{srv.base_url}/about\nnot a url\n"
        )
        conn = open_db(tmp_path / "a.duckdb")
        res = crawl("clinconnect", raw_root=tmp_path / "a", conn=conn, config=FAST, base_url=srv.base_url,
                    urls_file=urls)
        paths = [q.path for q in srv.requests]
        assert paths[0] == "/robots.txt" and sorted(paths[1:]) == sorted([p[3], p[4].lower()])
        assert res.fetched == 1 and res.gone == 1  # the lower-case NCT path is not a page on this server

        srv.clear_requests()
        conn = open_db(tmp_path / "b.duckdb")
        res = crawl("clinconnect", raw_root=tmp_path / "b", conn=conn, config=FAST, base_url=srv.base_url, limit=3)
        assert sorted(q.path for q in page_requests(srv)) == sorted(p[:3]) and res.discovered == 20

        srv.clear_requests()
        conn = open_db(tmp_path / "c.duckdb")
        since = BASE_LASTMOD + dt.timedelta(minutes=15)
        res = crawl("clinconnect", raw_root=tmp_path / "c", conn=conn, config=FAST, base_url=srv.base_url, since=since)
        assert sorted(q.path for q in page_requests(srv)) == sorted(p[15:]) and res.skipped_since == 15


def test_unreachable_robots_means_no_crawl(tmp_path, db):
    mirror = Mirror("veeva", generate_pages("veeva", 3), faults=Faults(unavailable={"/robots.txt": 99}))
    with MirrorServer(mirror) as srv:
        with pytest.raises(RobotsUnreachable, match="disallowed"):
            crawl("veeva", raw_root=tmp_path / "raw", conn=db, config=dataclasses.replace(FAST, max_retries=1),
                  base_url=srv.base_url)
        assert {q.path for q in srv.requests} == {"/robots.txt"}
    assert rows(db, "SELECT kind, outcome, http_status FROM fetches") == [("robots", "failed", 503)]
    assert rows(db, "SELECT status FROM crawls") == [("deferred",)]


def test_long_retry_after_defers_and_next_run_resumes(tmp_path, db):
    pages = generate_pages("veeva", 6)
    p = list(pages)
    faults = Faults(rate_limited={p[2]: 1}, retry_after="3600")
    cfg = dataclasses.replace(FAST, concurrency=1, max_retry_after_s=5)
    with MirrorServer(Mirror("veeva", pages, faults=faults)) as srv:
        first = crawl("veeva", raw_root=tmp_path / "raw", conn=db, config=cfg, base_url=srv.base_url)
        assert first.status == "deferred" and first.deferred == 4 and first.fetched == 2
        assert [q.path for q in page_requests(srv)] == p[:3]  # stopped asking after the 429
        second = crawl("veeva", raw_root=tmp_path / "raw", conn=db, config=cfg, base_url=srv.base_url)
    assert second.resumed and second.crawl_id == first.crawl_id and second.status == "finished"
    assert second.skipped_done == 2 and second.fetched == 4 and len(second.pages) == 6
    assert rows(db, "SELECT status, finished_at IS NOT NULL FROM crawls") == [("finished", True)]


def test_progress_events_and_quiet_printer(tmp_path, db):
    events = []
    with MirrorServer(Mirror("veeva", generate_pages("veeva", 4))) as srv:
        crawl("veeva", raw_root=tmp_path / "raw", conn=db, config=FAST, base_url=srv.base_url, progress=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "discovered" and "planned" in kinds and kinds.count("fetched") == 4 and kinds[-1] == "done"
    last = events[-1]
    assert (last.discovered, last.planned, last.completed, last.fetched) == (4, 4, 4, 4) and last.rate > 0
    assert next(e for e in events if e.kind == "fetched").eta_s is not None

    quiet = io.StringIO()
    TerminalProgress(quiet)(last)
    assert quiet.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    TerminalProgress(tty)(last)
    assert "veeva: 4/4 pages" in tty.getvalue()


def test_kill_9_mid_crawl_then_resume_equals_uninterrupted(tmp_path):
    pages = generate_pages("veeva", 40)
    mirror = Mirror("veeva", pages, per_sitemap=10, faults=Faults(delay_all=0.02))
    with MirrorServer(mirror) as srv:
        cmd = [sys.executable, "-m", "pipeline.scrape", "veeva", "--db", str(tmp_path / "k.duckdb"),
               "--raw-root", str(tmp_path / "k"), "--base-url", srv.base_url, "--rate", "100",
               "--batch-rows", "4"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while len(page_requests(srv)) < 18 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
        killed_after = len(page_requests(srv))
        assert 18 <= killed_after < 40

        conn = duckdb.connect(str(tmp_path / "k.duckdb"))
        committed = rows(conn, "SELECT count(*) FROM fetches WHERE kind = 'page'")[0][0]
        resumed = crawl("veeva", raw_root=tmp_path / "k", conn=conn, config=FAST, base_url=srv.base_url)

        ref_conn = open_db(tmp_path / "r.duckdb")
        reference = crawl("veeva", raw_root=tmp_path / "r", conn=ref_conn, config=FAST, base_url=srv.base_url)

    assert resumed.resumed and resumed.status == "finished"
    assert resumed.skipped_done == committed > 0  # work committed before the kill was not redone
    assert objects(tmp_path / "k") == objects(tmp_path / "r") == {sha(b.body) for b in pages.values()}
    ok = "SELECT url, content_sha256 FROM fetches WHERE kind = 'page' AND outcome IN ('fetched', 'unchanged')"
    assert sorted(rows(conn, ok)) == sorted(rows(ref_conn, ok))  # same pages, one success row each
    assert rows(conn, "SELECT count(*) FROM (SELECT url FROM fetches WHERE kind='page' AND outcome='fetched' "
                      "GROUP BY url HAVING count(*) > 1)") == [(0,)]
    assert {pv.url for pv in resumed.pages} == {pv.url for pv in reference.pages}  # hand-off incl. pre-kill pages
    assert not [f for f in (tmp_path / "k").rglob("*") if f.name.endswith(".tmp")]
    assert rows(conn, "SELECT count(*), count(*) FILTER (WHERE status = 'finished') FROM crawls") == [(1, 1)]


def test_crawl_into_an_fsspec_memory_root(db):
    pages = generate_pages("clinconnect", 3)
    root = "memory://crawl-test-raw"
    with MirrorServer(Mirror("clinconnect", pages)) as srv:
        result = crawl("clinconnect", raw_root=root, conn=db, config=FAST, base_url=srv.base_url)
    store = RawStore(root)
    assert set(store.iter_shas("clinconnect")) == {sha(p.body) for p in pages.values()}
    assert all(pv.raw_path.startswith(root + "/clinconnect/objects/") for pv in result.pages)
    assert sorted(r.content for r in result.raw_pages(store)) == sorted(p.body for p in pages.values())
