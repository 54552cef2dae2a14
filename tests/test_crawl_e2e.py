"""`trials crawl` end to end against the local test mirror: crawl -> raw store -> warehouse."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipeline.cli import main
from pipeline.devtools.mirror import Mirror, MirrorServer, corpus_pages

pytestmark = pytest.mark.skipif(
    not Path(os.environ.get("CTGOV_CORPUS", "/work/shared/corpus/ctgov")).exists()
    and not (Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ctgov").exists(),
    reason="needs the CT.gov corpus beside the repo",
)

N_PAGES = 24


def rows(warehouse: Path, sql: str) -> list[tuple]:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def stable_state(warehouse: Path) -> dict[str, list[tuple]]:
    """Warehouse content that must not depend on when or in how many runs pages were fetched."""
    return {
        "pages": rows(warehouse, "SELECT url, source, content_sha256, trial_id, parse_status, parse_error "
                                 "FROM pages ORDER BY ALL"),
        # first/last seen, last changed and removed_at are fetch times: they depend on when
        # (and in how many runs) pages were fetched, so they are left out like best_page_id
        "trials": rows(warehouse, "SELECT * EXCLUDE (best_page_id, first_seen_at, last_seen_at, "
                                  "last_changed_at, removed_at) FROM trials ORDER BY trial_id"),
        "criteria": rows(warehouse, "SELECT * FROM criteria ORDER BY ALL"),
        "locations": rows(warehouse, "SELECT * FROM locations ORDER BY ALL"),
        "contacts": rows(warehouse, "SELECT * FROM contacts ORDER BY ALL"),
        "identifiers": rows(warehouse, "SELECT * FROM identifiers ORDER BY ALL"),
    }


@pytest.fixture(scope="module")
def cc_pages():
    return corpus_pages("clinconnect", N_PAGES)


def crawl_cli(base_url: str, warehouse: Path, raw: Path, *extra: str) -> int:
    return main(["crawl", "clinconnect", "--base-url", base_url, "--warehouse", str(warehouse),
                 "--raw-dir", str(raw), "--rate", "500", "--quiet", *extra])


def test_crawl_loads_every_page_then_a_recrawl_changes_nothing(tmp_path, cc_pages, capsys):
    warehouse, raw = tmp_path / "w.duckdb", tmp_path / "raw"
    with MirrorServer(Mirror("clinconnect", cc_pages)) as server:
        assert crawl_cli(server.base_url, warehouse, raw) == 0
        out = capsys.readouterr().out
        assert f"fetched {N_PAGES}" in out
        first = stable_state(warehouse)
        assert len(first["pages"]) == N_PAGES
        assert {p[1] for p in first["pages"]} == {"clinconnect"}
        assert {p[4] for p in first["pages"]} <= {"ok", "partial"}
        assert len(first["trials"]) == N_PAGES  # one NCT per page
        assert rows(warehouse, "SELECT count(*) FROM fetches WHERE kind='page' AND outcome='fetched'") == [(N_PAGES,)]
        assert len(list(raw.rglob("*.html.gz"))) == N_PAGES

        server.clear_requests()
        assert crawl_cli(server.base_url, warehouse, raw, "--urls", _url_list(tmp_path, server, cc_pages)) == 0
        page_requests = [r for r in server.requests if r.path.startswith("/trials/")]
        assert len(page_requests) == N_PAGES
        assert all("if-none-match" in r.headers or "if-modified-since" in r.headers for r in page_requests)
        assert {r.status for r in page_requests} == {304}
        assert stable_state(warehouse) == first
        assert len(list(raw.rglob("*.html.gz"))) == N_PAGES


def _url_list(tmp_path: Path, server: MirrorServer, pages) -> str:
    path = tmp_path / "urls.txt"
    path.write_text("".join(f"{server.base_url}{p}\n" for p in sorted(pages)))
    return str(path)


def test_killed_crawl_resumes_to_the_same_warehouse(tmp_path, cc_pages):
    with MirrorServer(Mirror("clinconnect", cc_pages)) as server:
        clean_wh, clean_raw = tmp_path / "clean.duckdb", tmp_path / "clean_raw"
        assert crawl_cli(server.base_url, clean_wh, clean_raw) == 0

        warehouse, raw = tmp_path / "killed.duckdb", tmp_path / "killed_raw"
        cmd = [sys.executable, "-m", "pipeline.cli", "crawl", "clinconnect", "--base-url", server.base_url,
               "--warehouse", str(warehouse), "--raw-dir", str(raw), "--rate", "8", "--quiet"]
        server.clear_requests()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sum(r.path.startswith("/trials/") for r in server.requests) >= N_PAGES // 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_before_kill = sum(r.path.startswith("/trials/") for r in server.requests)
        assert 0 < done_before_kill < N_PAGES

        server.clear_requests()
        assert crawl_cli(server.base_url, warehouse, raw) == 0
        refetched = sum(r.path.startswith("/trials/") for r in server.requests)
        # Only what was still missing, plus at most one unflushed fetch-log batch (0.5 s at
        # 8 requests/s) and the requests in flight when the kill landed.
        assert refetched <= N_PAGES - done_before_kill + 6

        assert stable_state(warehouse) == stable_state(clean_wh)
        assert not [p for p in raw.rglob("*") if p.is_file() and not p.name.endswith(".html.gz")]
        assert rows(warehouse, "SELECT count(*), count(DISTINCT page_id) FROM pages") == [(N_PAGES, N_PAGES)]


def test_mirror_pages_asset_crawls_one_partition(tmp_path, cc_pages):
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from pipeline.defs.crawl import mirror_pages

    warehouse = tmp_path / "w.duckdb"
    with MirrorServer(Mirror("clinconnect", cc_pages)) as server:
        result = dg.materialize(
            [mirror_pages],
            partition_key="clinconnect",
            resources={"warehouse": DuckDBResource(database=str(warehouse))},
            run_config={"ops": {"mirror_pages": {"config": {
                "base_url": server.base_url, "rate": 500.0, "raw_dir": str(tmp_path / "raw")}}}},
        )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("mirror_pages")
    meta = materialization.metadata
    assert meta["fetched"].value == N_PAGES and meta["failed"].value == 0
    assert meta["trials_loaded"].value == N_PAGES
    assert rows(warehouse, "SELECT count(*) FROM trials") == [(N_PAGES,)]
    assert rows(warehouse, "SELECT DISTINCT source FROM pages") == [("clinconnect",)]
