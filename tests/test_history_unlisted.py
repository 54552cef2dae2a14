"""A trial whose page is no longer listed in its source's sitemaps is flagged
removed_from_source -- after complete discoveries only -- and cleared when it is listed
again.  Real crawls of the local test mirror (sitemap discovery, no --urls)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.cli import main
from pipeline.db.checks import run_checks
from pipeline.devtools.mirror import Mirror, MirrorServer, generate_pages


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def crawl(base_url: str, warehouse: Path, raw: Path, *extra: str) -> None:
    assert main(["crawl", "clinconnect", "--base-url", base_url, "--warehouse", str(warehouse),
                 "--raw-dir", str(raw), "--rate", "500", "--quiet", *extra]) == 0


def presence(warehouse: Path) -> dict[str, tuple]:
    return {url: tuple(rest) for url, *rest in query(
        warehouse, "SELECT p.url, t.removed_from_source, t.removed_at, t.last_seen_at, t.trial_id "
                   "FROM trials t JOIN pages p USING (trial_id)")}


def test_a_url_dropped_from_the_sitemap_flags_its_trial_removed(tmp_path, capsys, clean_env):
    pages = generate_pages("clinconnect", 3)
    paths = sorted(pages)
    mirror = Mirror("clinconnect", pages)
    warehouse, raw = tmp_path / "w.duckdb", tmp_path / "raw"
    with MirrorServer(mirror) as server:
        crawl(server.base_url, warehouse, raw)
        first = presence(warehouse)
        assert len(first) == 3 and all(removed is False for removed, *_ in first.values())
        trials_before = query(warehouse, "SELECT trial_id, nct_id, brief_title FROM trials ORDER BY 1")
        dropped = f"{server.base_url}{paths[0]}"

        # the page is still served, but the sitemaps stop listing it
        mirror.pages[paths[0]].in_sitemap = False
        # partial discoveries prove nothing: a --limit crawl, a --urls crawl ...
        crawl(server.base_url, warehouse, raw, "--limit", "1")
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{server.base_url}{paths[1]}\n")
        crawl(server.base_url, warehouse, raw, "--urls", str(urls))
        # ... or a sitemap that could not be read
        mirror.extra_index_urls.append(f"{server.base_url}/sitemaps/trials-99.xml")  # 404
        crawl(server.base_url, warehouse, raw)
        assert {u: removed for u, (removed, *_) in presence(warehouse).items()} == dict.fromkeys(first, False)
        assert query(warehouse, "SELECT count(*) FROM fetches WHERE error = 'absent from the sitemap'") == [(0,)]

        # a complete discovery that no longer lists it: kept, flagged, last_seen_at unchanged
        mirror.extra_index_urls.clear()
        crawl(server.base_url, warehouse, raw)
        assert "no longer listed 1" in capsys.readouterr().out
        ((marked_at, attempts, outcome),) = query(
            warehouse, "SELECT requested_at, attempts, outcome FROM fetches WHERE error = 'absent from the sitemap'")
        assert (attempts, outcome) == (0, "gone")
        now = presence(warehouse)
        removed, removed_at, last_seen, _ = now[dropped]
        assert (removed, removed_at) == (True, marked_at)
        assert last_seen < marked_at  # the last real sighting, from an earlier crawl
        assert all(now[u][0] is False for u in now if u != dropped)
        assert query(warehouse, "SELECT trial_id, nct_id, brief_title FROM trials ORDER BY 1") == trials_before
        assert query(warehouse, "SELECT count(*) FROM recruiting_trials r JOIN pages p USING (trial_id) "
                                "WHERE p.url = ?", [dropped]) == [(0,)]
        assert all(o.passed for o in _checks(warehouse))

        # another complete crawl changes nothing (no second row for the same absence)
        crawl(server.base_url, warehouse, raw)
        assert query(warehouse, "SELECT count(*) FROM fetches WHERE error = 'absent from the sitemap'") == [(1,)]
        assert presence(warehouse)[dropped][:2] == (True, marked_at)

        # listed again: fetched again and no longer removed
        mirror.pages[paths[0]].in_sitemap = True
        crawl(server.base_url, warehouse, raw)
        removed, removed_at, last_seen, _ = presence(warehouse)[dropped]
        assert (removed, removed_at) == (False, None) and last_seen > marked_at
    capsys.readouterr()


def _checks(warehouse: Path):
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return run_checks(conn)
    finally:
        conn.close()


def test_a_crawl_of_another_base_url_does_not_unlist_the_first(tmp_path, capsys, clean_env):
    """The same source crawled at two base URLs (say the site and a test mirror): each complete
    discovery speaks only for its own hosts."""
    pages = generate_pages("clinconnect", 3)
    warehouse, raw = tmp_path / "w.duckdb", tmp_path / "raw"
    with MirrorServer(Mirror("clinconnect", pages)) as first:
        crawl(first.base_url, warehouse, raw)
        one = dict(list(pages.items())[:1])
        with MirrorServer(Mirror("clinconnect", one)) as second:
            crawl(second.base_url, warehouse, raw)
    assert query(warehouse, "SELECT count(*) FROM fetches WHERE error = 'absent from the sitemap'") == [(0,)]
    assert query(warehouse, "SELECT count(*) FROM trials WHERE removed_from_source") == [(0,)]
    capsys.readouterr()
