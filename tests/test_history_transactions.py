"""Loads are all-or-nothing: a killed run, a concurrent writer or reader, and a batch that
would break integrity all leave the warehouse exactly as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

import pipeline.db.load
from pipeline import run
from pipeline.cli import main
from pipeline.db.load import PAUSE_ENV, PAUSE_SECONDS_ENV
from pipeline.link import trial_id_for


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("trials: error: ") and "Traceback" not in err, err
    return lines[0]


def start_paused_ingest(paths: list[Path], warehouse: Path, marker: Path, seconds: float) -> subprocess.Popen:
    """`trials ingest` in a subprocess that stops inside its load transaction (after every
    write, before the commit) for `seconds`; `marker` appears once it is there."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRIALS_WAREHOUSE", "DAGSTER_HOME")}
    env.update({PAUSE_ENV: str(marker), PAUSE_SECONDS_ENV: str(seconds)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "ingest", *map(str, paths), "--warehouse", str(warehouse)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"ingest ended before its load: {proc.stderr.read() if proc.stderr else ''}")
        assert time.monotonic() < deadline, "ingest never reached its load"
        time.sleep(0.05)
    return proc


def test_a_run_killed_mid_load_leaves_the_previous_state(
    tmp_path, seeds_dir, sample_dir, sample_page_count, warehouse_path, snapshot
):
    run.ingest([seeds_dir], warehouse_path)
    before = snapshot(warehouse_path)

    proc = start_paused_ingest([sample_dir], warehouse_path, tmp_path / "in-load", 120)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    assert snapshot(warehouse_path) == before
    # and the next run loads everything the killed one would have
    again = run.ingest([sample_dir], warehouse_path)
    assert (again.pages_new, again.pages_skipped_known) == (sample_page_count - 5, 5)


def test_a_second_writer_fails_clearly_and_a_reader_can_wait(
    tmp_path, seeds_dir, sample_dir, sample_page_count, warehouse_path, capsys, clean_env
):
    run.ingest([seeds_dir], warehouse_path)
    proc = start_paused_ingest([sample_dir], warehouse_path, tmp_path / "in-load", 2)
    try:
        # another load: refused at once, nothing half-done
        assert main(["ingest", str(seeds_dir), "--warehouse", str(warehouse_path)]) == 1
        line = one_line_error(capsys.readouterr().err)
        assert f"is locked by another process (process {proc.pid}); close it and retry" in line
        # a reader: DuckDB allows none during a write, and it says so
        assert main(["sql", "SELECT 1", "--warehouse", str(warehouse_path)]) == 1
        line = one_line_error(capsys.readouterr().err)
        assert "DuckDB allows no readers while a run writes it" in line and "--wait" in line
        # a reader that waits sees the committed result of the run
        started = time.monotonic()
        assert main(["sql", "SELECT count(*) AS pages FROM pages", "--warehouse",
                     str(warehouse_path), "--format", "csv", "--wait", "60"]) == 0
        assert capsys.readouterr().out.split() == ["pages", str(sample_page_count)]
        assert time.monotonic() - started < 60
    finally:
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""


def test_wait_gives_up_with_a_clear_message(locked_warehouse, capsys, clean_env):
    started = time.monotonic()
    assert main(["sql", "SELECT 1", "--warehouse", str(locked_warehouse), "--wait", "0.5"]) == 1
    assert time.monotonic() - started >= 0.5
    assert "after waiting 0.5s" in one_line_error(capsys.readouterr().err)


def test_a_batch_that_would_break_integrity_is_refused(
    tmp_path, warehouse_path, fake_parser, write_page, snapshot, monkeypatch, capsys, clean_env
):
    write_page(tmp_path / "a", "one", nct="NCT00000020", title="One", conditions="A, B")
    run.ingest([tmp_path / "a"], warehouse_path)
    before = snapshot(warehouse_path)
    real_golden_rows = pipeline.db.load.golden_rows

    def duplicated_conditions(trials):
        frames = real_golden_rows(trials)
        return {**frames, "conditions": pa.concat_tables([frames["conditions"]] * 2)}

    monkeypatch.setattr(pipeline.db.load, "golden_rows", duplicated_conditions)
    write_page(tmp_path / "b", "two", nct="NCT00000021", title="Two", conditions="X")
    assert main(["ingest", str(tmp_path / "b"), "--warehouse", str(warehouse_path)]) == 1
    tid = trial_id_for("nct:NCT00000021")
    assert one_line_error(capsys.readouterr().err) == (
        f"trials: error: load refused, nothing written: unique_keys: 1 failing (conditions: {tid}/1 x2)")
    assert snapshot(warehouse_path) == before


@pytest.mark.parametrize("argv", [["ingest", "x"], ["run"], ["crawl", "veeva"], ["reparse"], ["sql", "SELECT 1"],
                                  ["export", "out"], ["migrate"]])
def test_wait_must_be_a_number_of_seconds(argv, capsys):
    assert main([*argv, "--wait", "soon"]) == 2
    assert "not a number of seconds: 'soon'" in capsys.readouterr().err
