"""The `trials` command end to end: in-process `main([...])` and one real subprocess."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.cli import main


def one_line_error(err: str) -> str:
    """The whole of stderr, asserted to be one `trials: error: ...` line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("trials: error: "), err
    assert "Traceback" not in err
    return lines[0]


def count(path: Path, table: str) -> int:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    finally:
        conn.close()


@pytest.fixture
def loaded(seeds_dir, warehouse_path, capsys, clean_env) -> Path:
    assert main(["ingest", str(seeds_dir), "--warehouse", str(warehouse_path)]) == 0
    capsys.readouterr()
    return warehouse_path


# --- ingest ------------------------------------------------------------------------------

def test_ingest_prints_the_summary_and_loads_rows(seeds_dir, warehouse_path, capsys, clean_env):
    assert main(["ingest", str(seeds_dir), "--warehouse", str(warehouse_path)]) == 0
    out = capsys.readouterr().out
    assert "Pages read: 5 (new 5, re-parsed 0, already known 0)" in out
    assert "Trials loaded:" in out and "Pages quarantined:" in out
    assert count(warehouse_path, "pages") == 5


def test_second_ingest_changes_nothing(loaded, seeds_dir, snapshot, capsys):
    before = snapshot(loaded)
    assert main(["ingest", str(seeds_dir), "--warehouse", str(loaded)]) == 0
    assert "already known 5" in capsys.readouterr().out
    assert snapshot(loaded) == before


def test_warehouse_defaults_to_warehouse_dir_under_cwd(seeds_dir, tmp_path, monkeypatch, clean_env):
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", str(seeds_dir)]) == 0
    assert count(tmp_path / "warehouse" / "trials.duckdb", "pages") == 5


def test_env_var_overrides_the_default(seeds_dir, tmp_path, monkeypatch, capsys, clean_env):
    target = tmp_path / "elsewhere.duckdb"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIALS_WAREHOUSE", str(target))
    assert main(["ingest", str(seeds_dir)]) == 0
    assert count(target, "pages") == 5
    assert not (tmp_path / "warehouse").exists()
    assert main(["sql", "SELECT count(*) AS n FROM pages", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["n", "5"]


def test_missing_path_is_one_line_error(tmp_path, warehouse_path, capsys, clean_env):
    assert main(["ingest", str(tmp_path / "nope"), "--warehouse", str(warehouse_path)]) == 1
    line = one_line_error(capsys.readouterr().err)
    assert line == f"trials: error: no such file or directory: {tmp_path / 'nope'}"


def test_locked_warehouse_is_one_line_error(seeds_dir, locked_warehouse, capsys, clean_env):
    assert main(["ingest", str(seeds_dir), "--warehouse", str(locked_warehouse)]) == 1
    assert "is locked by another process" in one_line_error(capsys.readouterr().err)
    assert main(["sql", "SELECT 1", "--warehouse", str(locked_warehouse)]) == 1
    assert "is locked by another process" in one_line_error(capsys.readouterr().err)
    assert main(["run", "--warehouse", str(locked_warehouse)]) == 1
    assert "is locked by another process" in one_line_error(capsys.readouterr().err)


# --- sql ---------------------------------------------------------------------------------

def test_sql_table_output_is_aligned(loaded, capsys):
    sql = ("SELECT page_id, parse_status, 42 AS answer, NULL AS nothing FROM pages "
           "ORDER BY page_id LIMIT 2")
    assert main(["sql", sql, "--warehouse", str(loaded)]) == 0
    header, rule, first, second, footer = capsys.readouterr().out.splitlines()
    assert header.split() == ["page_id", "parse_status", "answer", "nothing"]
    assert rule.split() == ["-" * 24, "-" * len("parse_status"), "------", "-------"]
    status_col = header.index("parse_status")
    for row in (first, second):
        assert row.index(row.split()[1]) == status_col  # columns start where headers do
        assert row.split()[2:] == ["42", "NULL"]
        # right-aligned (searched after the page_id, whose hex digits may contain "42")
        assert row.index("42", status_col) + 2 == header.index("answer") + len("answer")
    assert footer == "(2 rows)"


def test_sql_csv_and_json(loaded, capsys):
    sql = "SELECT trial_id, nct_id, phases FROM trials ORDER BY trial_id"
    assert main(["sql", sql, "--warehouse", str(loaded), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["trial_id", "nct_id", "phases"]
    assert main(["sql", sql, "--warehouse", str(loaded), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["trial_id"] for r in data] == [r[0] for r in rows[1:]]
    assert all(isinstance(r["phases"], list) for r in data)


def test_sql_is_read_only(loaded, capsys):
    assert main(["sql", "DELETE FROM pages", "--warehouse", str(loaded)]) == 1
    assert "read-only" in one_line_error(capsys.readouterr().err)
    assert count(loaded, "pages") == 5


def test_bad_sql_is_one_line_error(loaded, capsys):
    assert main(["sql", "SELEC * FROM trials", "--warehouse", str(loaded)]) == 1
    assert "syntax error" in one_line_error(capsys.readouterr().err)
    assert main(["sql", "SELECT * FROM no_such_table", "--warehouse", str(loaded)]) == 1
    assert "no_such_table" in one_line_error(capsys.readouterr().err)


def test_missing_warehouse_is_one_line_error(tmp_path, capsys, clean_env):
    missing = tmp_path / "none.duckdb"
    assert main(["sql", "SELECT 1", "--warehouse", str(missing)]) == 1
    assert one_line_error(capsys.readouterr().err) == (
        f"trials: error: warehouse not found: {missing} (run `trials ingest` first)")
    assert not missing.exists()


# --- run, help, usage --------------------------------------------------------------------

def test_run_materializes_the_default_sample(project_root, sample_page_count, warehouse_path,
                                             monkeypatch, capsys, clean_env):
    monkeypatch.chdir(project_root)
    assert main(["run", "--warehouse", str(warehouse_path)]) == 0
    out = capsys.readouterr().out
    assert f"Pages read: {sample_page_count} " in out
    assert "Rows per table" in out and "Pages quarantined:" in out
    assert "Checks: foreign_keys ok, history_matches_trials ok, pages_have_links ok, profiles_current ok, runs_recorded ok, " \
           "trials_have_pages ok, unique_keys ok, valid_enumerations ok" in out
    # the profile tables are part of the summary
    assert re.search(r"^  eligibility_constraints\s+[1-9]\d*\s+\+[1-9]", out, re.M)
    assert re.search(r"^  dose_levels\s+[1-9]\d*\s+\+[1-9]", out, re.M)
    assert count(warehouse_path, "pages") == sample_page_count


def test_run_without_the_sample_is_one_line_error(tmp_path, capsys, monkeypatch, clean_env):
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 1
    assert one_line_error(capsys.readouterr().err) == (
        "trials: error: run failed: no such file or directory: raw/sample")


@pytest.mark.parametrize("argv", [["--help"], ["ingest", "--help"], ["run", "--help"],
                                  ["sql", "--help"], ["crawl", "--help"], ["reparse", "--help"],
                                  ["export", "--help"], ["migrate", "--help"]])
def test_every_command_has_help(argv, capsys):
    assert main(argv) == 0
    assert "usage: trials" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert main(["sql"]) == 2
    assert main(["sql", "SELECT 1", "--format", "xml"]) == 2
    assert "usage: trials" in capsys.readouterr().err


# --- the installed console script --------------------------------------------------------

def test_console_script_subprocess(seeds_dir, warehouse_path, tmp_path):
    trials = Path(sys.executable).parent / "trials"
    if not trials.exists():
        pytest.skip("console script not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if k not in ("TRIALS_WAREHOUSE", "DAGSTER_HOME")}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(trials), *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)

    done = call("ingest", str(seeds_dir), "--warehouse", str(warehouse_path))
    assert done.returncode == 0, done.stderr
    assert "Pages read: 5" in done.stdout
    done = call("sql", "SELECT count(*) AS pages FROM pages", "--warehouse", str(warehouse_path),
                "--format", "json")
    assert done.returncode == 0 and json.loads(done.stdout) == [{"pages": 5}]
    done = call("sql", "SELECT * FROM nope", "--warehouse", str(warehouse_path))
    assert done.returncode == 1 and done.stdout == ""
    assert "nope" in one_line_error(done.stderr)
    done = call("ingest", "missing-folder")
    assert done.returncode == 1
    assert one_line_error(done.stderr) == "trials: error: no such file or directory: missing-folder"
