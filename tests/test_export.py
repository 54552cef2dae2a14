"""`trials export`: every table and view as Parquet (types kept) or CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.db.sample import build_sample_warehouse
from pipeline.export import ExportError, export_warehouse

VIEWS = {"trial_overview", "recent_changes", "recruiting_trials"}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    sample = Path(__file__).resolve().parents[1] / "raw" / "sample"
    return build_sample_warehouse(root / "sample.duckdb", sample, root).warehouse


def relations(warehouse: Path) -> dict[str, int]:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        names = [n for (n,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        return {n: conn.execute(f"SELECT count(*) FROM {n}").fetchall()[0][0] for n in names}
    finally:
        conn.close()


def test_parquet_export_writes_every_table_and_view_with_types(warehouse, tmp_path, capsys, clean_env):
    out = tmp_path / "it's a \"dir\"; DROP TABLE trials"  # quotes in the path are just a path
    assert main(["export", str(out), "--format", "parquet", "--warehouse", str(warehouse)]) == 0
    printed = capsys.readouterr().out
    expected = relations(warehouse)
    assert VIEWS | {"trials", "pages", "trial_history", "fetches", "schema_version"} <= set(expected)
    assert {p.name for p in out.iterdir()} == {f"{n}.parquet" for n in expected}  # no temp files left
    for name, rows in expected.items():
        assert pq.read_metadata(out / f"{name}.parquet").num_rows == rows, name
        assert f"  {name} " in printed
    trials = pq.read_table(out / "trials.parquet")
    assert trials.schema.field("phases").type == pa.list_(pa.string())
    assert trials.schema.field("start_date").type == pa.date32()
    assert trials.schema.field("first_seen_at").type == pa.timestamp("us")
    assert trials.schema.field("enrollment").type == pa.int32()
    overview = pq.read_table(out / "trial_overview.parquet")
    assert overview.schema.field("countries").type == pa.list_(pa.string())
    # the values survive the round trip
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        original = conn.execute("SELECT * FROM trials ORDER BY trial_id").fetchall()
        copied = conn.execute("SELECT * FROM read_parquet(?) ORDER BY trial_id",
                              [str(out / "trials.parquet")]).fetchall()
        assert copied == original
        history = conn.execute("SELECT * FROM read_parquet(?) ORDER BY field",
                               [str(out / "trial_history.parquet")]).fetchall()
        assert history == conn.execute("SELECT * FROM trial_history ORDER BY field").fetchall()
    finally:
        conn.close()
    # trials is still there: the path was never SQL
    assert relations(warehouse)["trials"] == expected["trials"]


def test_csv_export(warehouse, tmp_path):
    result = export_warehouse(warehouse, tmp_path / "csv", "csv")
    expected = relations(warehouse)
    assert {f.name: f.rows for f in result.files} == expected
    assert VIEWS <= {f.name for f in result.files if f.kind == "view"}
    with open(tmp_path / "csv" / "trials.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == expected["trials"]
    nct = next(r for r in rows if r["nct_id"] == "NCT03424005")
    assert nct["phases"] == "[PHASE1, PHASE2]" and nct["start_date"] == "2018-03-30"


def test_export_overwrites_its_own_files_and_keeps_others(warehouse, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "trials.parquet").write_text("stale")
    export_warehouse(warehouse, out, "parquet")
    assert (out / "notes.txt").read_text() == "mine"
    assert pq.read_metadata(out / "trials.parquet").num_rows == relations(warehouse)["trials"]


def test_export_errors_are_one_line(warehouse, tmp_path, locked_warehouse, capsys, clean_env):
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(ExportError, match="not a directory"):
        export_warehouse(warehouse, target, "csv")
    assert main(["export", str(target), "--warehouse", str(warehouse)]) == 1
    assert capsys.readouterr().err.strip() == f"trials: error: not a directory: {target}"
    assert main(["export", str(tmp_path / "x"), "--warehouse", str(locked_warehouse)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("trials: error: warehouse ") and "is locked by another process" in err
    assert main(["export", str(tmp_path / "x"), "--format", "xlsx"]) == 2
