"""The run log (runs, run_pages, run_changes), `trials status`, and the progress bars."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import pipeline.db.load
from pipeline import run, runlog
from pipeline.cli import main
from pipeline.db.checks import runs_recorded
from pipeline.db.load import PAUSE_ENV, PAUSE_SECONDS_ENV
from pipeline.progress import Bars
from pipeline.reparse import reparse

RUN_COLUMNS = (
    "command, trigger, outcome, error, pages_discovered, pages_fetched, pages_unchanged, "
    "pages_parsed, pages_partial, pages_rejected, trials_added, trials_changed, trials_removed"
)


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def runs(path: Path) -> list[tuple]:
    return query(path, f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at, run_id")


def test_ingest_records_a_run_with_the_right_counts(sample_dir, sample_page_count, warehouse_path, clean_env):
    summary = run.ingest([sample_dir], warehouse_path)
    statuses = dict(query(warehouse_path, "SELECT parse_status, count(*) FROM pages GROUP BY 1"))
    trials = query(warehouse_path, "SELECT count(*) FROM trials")[0][0]
    assert trials == summary.trials_loaded > 0
    assert runs(warehouse_path) == [(
        "ingest", "cli", "succeeded", None, sample_page_count, None, 0, sample_page_count,
        statuses.get("partial", 0), statuses.get("rejected", 0), trials, 0, 0,
    )]
    (started, finished, *stages), = query(
        warehouse_path, "SELECT started_at, finished_at, crawl_s, parse_s, link_s, load_s FROM runs")
    assert started <= finished
    assert stages[0] is None and all(s is not None and s >= 0 for s in stages[1:])
    # every partial/rejected page of the run is logged with its reason, as the pages table says
    assert query(warehouse_path, "SELECT page_id, parse_status, parse_error FROM run_pages ORDER BY 1") == \
        query(warehouse_path, "SELECT page_id, parse_status, parse_error FROM pages "
                              "WHERE parse_status <> 'ok' ORDER BY 1")
    assert query(warehouse_path, "SELECT change, count(*), bool_and(len(fields) = 0) FROM run_changes "
                                 "GROUP BY 1") == [("added", trials, True)]
    # the same pages again: a second run that parses nothing and changes nothing
    run.ingest([sample_dir], warehouse_path)
    assert runs(warehouse_path)[1] == (
        "ingest", "cli", "succeeded", None, sample_page_count, None, sample_page_count, 0, 0, 0, 0, 0, 0)
    assert runs_recorded(duckdb.connect(str(warehouse_path), read_only=True)).passed


def test_changed_trials_are_counted_with_the_fields_that_changed(
    tmp_path, warehouse_path, fake_parser, write_page, clean_env
):
    first, second = tmp_path / "first", tmp_path / "second"
    write_page(first, "a", mtime=1_735_689_600, nct="NCT00000001", title="Alpha", status="RECRUITING")
    write_page(first, "b", mtime=1_735_689_600, nct="NCT00000002", title="Beta", status="RECRUITING",
               conditions="AML")
    run.ingest([first], warehouse_path)
    # b changes status and conditions; a is fetched again unchanged; c is new
    write_page(second, "b", mtime=1_735_776_000, nct="NCT00000002", title="Beta", status="COMPLETED",
               conditions="AML, ALL")
    write_page(second, "a", mtime=1_735_776_000, nct="NCT00000001", title="Alpha", status="RECRUITING")
    write_page(second, "c", mtime=1_735_776_000, nct="NCT00000003", title="Gamma")
    run.ingest([second], warehouse_path)
    last = runs(warehouse_path)[-1]
    assert last[10:] == (1, 1, 0)  # added, changed, removed
    (run_id,), = query(warehouse_path, "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")
    assert query(warehouse_path, "SELECT nct_id, change, fields FROM run_changes WHERE run_id = ? "
                                 "ORDER BY nct_id", [run_id]) == [
        ("NCT00000002", "changed", ["overall_status", "conditions"]),
        ("NCT00000003", "added", []),
    ]


def test_a_failed_load_is_recorded_as_failed_and_nothing_else_lands(
    seeds_dir, warehouse_path, monkeypatch, capsys, clean_env, snapshot, tmp_path
):
    run.ingest([seeds_dir], warehouse_path)
    empty = tmp_path / "bad" / "empty.html"  # rejected by the failed run
    empty.parent.mkdir()
    empty.write_bytes(b"")
    before = snapshot(warehouse_path)

    def disk_full() -> None:  # inside the load transaction, after every write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline.db.load, "_pause_for_tests", disk_full)
    with pytest.raises(OSError, match="No space left on device"):  # the error itself goes on up
        run.ingest([seeds_dir.parent, empty.parent], warehouse_path)
    assert snapshot(warehouse_path) == before  # the load rolled back
    failed = runs(warehouse_path)[-1]
    assert failed[:3] == ("ingest", "cli", "failed")
    assert failed[3] == "OSError: [Errno 28] No space left on device"
    assert failed[7] > 0 and failed[10:] == (None, None, None)  # parsed, but no trial landed
    # the rejected/partial pages the failed run saw are still listed
    (run_id,), = query(warehouse_path, "SELECT run_id FROM runs WHERE outcome = 'failed'")
    assert query(warehouse_path, "SELECT count(*) FROM run_pages WHERE run_id = ?", [run_id])[0][0] > 0
    assert main(["status", "--warehouse", str(warehouse_path)]) == 0
    out = capsys.readouterr().out
    assert f"  {run_id[:8]} ingest: OSError: [Errno 28] No space left on device" in out


def test_a_killed_run_stays_visible_and_the_next_run_marks_it_abandoned(
    tmp_path, seeds_dir, warehouse_path, capsys, clean_env
):
    run.ingest([seeds_dir], warehouse_path)
    marker = tmp_path / "in-load"
    env = {k: v for k, v in os.environ.items() if k not in ("TRIALS_WAREHOUSE", "DAGSTER_HOME")}
    env.update({PAUSE_ENV: str(marker), PAUSE_SECONDS_ENV: "60"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "ingest", str(seeds_dir.parent), "--quiet",
         "--warehouse", str(warehouse_path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "ingest never reached its load"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # the killed run's 'running' row was committed before the load began
    assert [r[:3] for r in runs(warehouse_path)] == [("ingest", "cli", "succeeded"), ("ingest", "cli", "running")]
    assert main(["status", "--warehouse", str(warehouse_path)]) == 0  # read-only: changes nothing
    assert "running" in capsys.readouterr().out
    run.ingest([seeds_dir], warehouse_path)
    outcomes = [r[2:4] for r in runs(warehouse_path)]
    assert outcomes[1] == ("failed", "abandoned: the process ended before the run finished (killed or crashed)")
    assert outcomes[2] == ("succeeded", None)


def test_reparse_is_recorded(seeds_dir, warehouse_path, monkeypatch, clean_env):
    run.ingest([seeds_dir], warehouse_path)
    monkeypatch.setattr(pipeline.parse, "PARSER_VERSION", "test-next")
    result = reparse(warehouse_path, "raw")
    last = runs(warehouse_path)[-1]
    assert last[:4] == ("reparse", "cli", "succeeded", None)
    assert last[4] == result.stale == 5 and last[7] == result.reparsed == 5


def test_status_shows_the_last_runs_and_why_pages_were_rejected(
    tmp_path, sample_dir, warehouse_path, write_page, capsys, clean_env
):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.html").write_bytes(b"")
    run.ingest([sample_dir], warehouse_path)
    run.ingest([bad], warehouse_path)
    os.chmod(warehouse_path, 0o444)  # status opens the warehouse read-only
    try:
        assert main(["status", "--warehouse", str(warehouse_path), "--limit", "5"]) == 0
    finally:
        os.chmod(warehouse_path, 0o644)
    out = capsys.readouterr().out.splitlines()
    ids = [r[0][:8] for r in query(warehouse_path, "SELECT run_id FROM runs ORDER BY started_at DESC")]
    assert out[1] == "Last 2 of 2 runs, newest first:"
    header, newest, older = out[2], out[3], out[4]
    assert header.split() == ["run", "command", "started", "(UTC)", "outcome", "took", "s", "found",
                              "fetched", "unchanged", "parsed", "partial", "rejected", "+trials",
                              "~trials", "-trials", "crawl", "s", "parse", "s", "link", "s", "load", "s"]
    assert newest.split()[:2] == [ids[0], "ingest"] and older.split()[:2] == [ids[1], "ingest"]
    assert newest.split()[4:14] == ["succeeded", newest.split()[5], "1", "-", "0", "1", "0", "1", "0", "0"]
    # aligned: every row's "rejected" column ends where the header's does
    end = header.index("rejected") + len("rejected")
    assert newest[end - 1] != " " and older[end - 1] != " " and newest[end] == " "
    assert out[5] == "Rejected or partial pages in these runs (why):"
    (url, reason), = query(warehouse_path, "SELECT url, parse_error FROM pages WHERE parse_status = 'rejected'")
    assert url == (bad / "empty.html").as_uri() and "empty" in reason
    assert [line for line in out if f" {ids[0]} rejected " in line] == [f"  {ids[0]} rejected {url}: {reason}"]
    partial = query(warehouse_path, "SELECT url, parse_error FROM pages WHERE parse_status = 'partial' ORDER BY url")
    assert [line for line in out if f" {ids[1]} partial " in line] == [
        f"  {ids[1]} partial  {url}: {error}" for url, error in partial]


def test_status_limit_and_user_errors(tmp_path, warehouse_path, seeds_dir, capsys, clean_env):
    assert main(["status", "--warehouse", str(tmp_path / "missing.duckdb")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("trials: error: warehouse not found")
    assert main(["status", "--limit", "0"]) == 2
    capsys.readouterr()
    for _ in range(3):
        run.ingest([seeds_dir], warehouse_path)
    assert main(["status", "--limit", "2", "--warehouse", str(warehouse_path)]) == 0
    assert "Last 2 of 3 runs, newest first:" in capsys.readouterr().out


def test_progress_bars_draw_each_stage_only_when_asked(sample_dir, warehouse_path, capsys, clean_env):
    stream = io.StringIO()
    with Bars(stream, enabled=True) as bars:
        run.ingest([sample_dir], warehouse_path, bars=bars)
    drawn = stream.getvalue()
    assert "parse" in drawn and "load" in drawn and "17/17" in drawn
    # under pytest stdout/stderr are not terminals: the CLI draws nothing, --quiet or not
    assert not Bars.for_terminal().enabled and not Bars.for_terminal(quiet=True).enabled
    assert main(["ingest", str(sample_dir), "--warehouse", str(warehouse_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "\x1b" not in captured.out


def test_stale_running_rows_from_this_process_are_abandoned(fresh_db):
    first = runlog.start_run(fresh_db, "ingest")
    runlog._ACTIVE.discard(first)  # as if the run's code died without finishing it
    second = runlog.start_run(fresh_db, "ingest")
    rows = dict(fresh_db.execute("SELECT run_id, outcome FROM runs").fetchall())
    assert rows == {first: "failed", second: "running"}
    runlog.finish_run(fresh_db, second)
    assert fresh_db.execute("SELECT outcome, error FROM runs WHERE run_id = ?", [second]).fetchall() == [
        ("succeeded", None)]


def test_crawl_records_discovered_fetched_unchanged_and_changes(tmp_path, capsys, clean_env):
    from pipeline.devtools.mirror import Mirror, MirrorServer, generate_pages

    pages = generate_pages("clinconnect", 3)
    paths = sorted(pages)
    mirror = Mirror("clinconnect", pages)
    warehouse, raw, urls = tmp_path / "w.duckdb", tmp_path / "raw", tmp_path / "urls.txt"

    def crawl(base_url: str) -> None:  # a URL list: no sitemap lastmod to skip the changed page by
        assert main(["crawl", "clinconnect", "--base-url", base_url, "--raw-dir", str(raw), "--rate", "500",
                     "--quiet", "--urls", str(urls), "--warehouse", str(warehouse)]) == 0

    with MirrorServer(mirror) as server:
        urls.write_text("".join(f"{server.base_url}{p}\n" for p in paths))
        crawl(server.base_url)
        mirror.set_page(paths[1], pages[paths[1]].body.replace(b"Recruiting", b"Completed"))
        crawl(server.base_url)
    capsys.readouterr()
    first, second = runs(warehouse)
    assert first[:4] == ("crawl", "cli", "succeeded", None)
    assert first[4:7] == (3, 3, 0) and first[7] == 3 and first[10:] == (3, 0, 0)
    assert second[4:7] == (3, 1, 2) and second[7] == 1 and second[10:] == (0, 1, 0)
    assert query(warehouse, "SELECT crawl_s > 0, parse_s >= 0, load_s > 0 FROM runs") == [(True, True, True)] * 2
    assert query(warehouse, "SELECT change, fields FROM run_changes c JOIN runs r USING (run_id) "
                            "ORDER BY r.started_at DESC LIMIT 1") == [("changed", ["overall_status"])]


def test_crawl_progress_events_drive_the_crawl_bar():
    from pipeline.scrape.progress import ProgressEvent

    stream = io.StringIO()
    with Bars(stream, enabled=True) as bars:
        on_event = bars.crawl_callback()
        assert on_event is not None
        for kind, done in (("discovered", 0), ("planned", 0), ("fetched", 1), ("unchanged", 2),
                           ("failed", 3), ("done", 3)):
            on_event(ProgressEvent(kind, "veeva", None, discovered=3, planned=3, completed=done,
                                   fetched=1, unchanged=1, failed=int(done == 3), elapsed_s=1.0,
                                   rate=1.0, eta_s=None))
    drawn = stream.getvalue()
    assert "crawl" in drawn and "3/3" in drawn and "new 1 unchanged 1 failed 1" in drawn
    assert Bars.off().crawl_callback() is None  # the crawler then builds no events at all
