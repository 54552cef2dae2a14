"""Schema upgrades in place: a warehouse written with the first schema (0001 only) opens with
the current code, is migrated, keeps its data and gains history as if built today."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline import run
from pipeline.cli import main
from pipeline.db.connection import WarehouseError, open_warehouse
from pipeline.db.migrate import Migration, MigrationError, available_migrations, migrate
from pipeline.db.sample import build_sample_warehouse
from pipeline.db.schema import ALL_TABLES, DEDUP_TABLES, PROFILE_TABLES


def columns(conn: duckdb.DuckDBPyConnection, table: str, catalog: str) -> list[str]:
    return [c for (c,) in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
        "AND table_name = ? ORDER BY ordinal_position", [catalog, table]).fetchall()]


@pytest.fixture
def first_schema_warehouse(tmp_path) -> tuple[Path, Path]:
    """(a warehouse with only 0001_core.sql holding the sample's data, the same data built
    with the current code).  The data is copied column by column into the old tables."""
    current = build_sample_warehouse(tmp_path / "current.duckdb", Path(__file__).resolve().parents[1]
                                     / "raw" / "sample", tmp_path).warehouse
    old = tmp_path / "old.duckdb"
    conn = duckdb.connect(str(old))
    try:
        migrate(conn, available_migrations()[:1])
        conn.execute("ATTACH ? AS cur (READ_ONLY)", [str(current)])
        old_tables = [t for (t,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'old' "
            "AND table_name <> 'schema_version' ORDER BY 1").fetchall()]
        assert set(old_tables) == set(ALL_TABLES) - {"trial_history", *DEDUP_TABLES, *PROFILE_TABLES}
        for table in old_tables:  # names from the catalog of our own schema
            cols = ", ".join(columns(conn, table, "old"))
            conn.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM cur.{table}")
        conn.execute("DETACH cur")
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    finally:
        conn.close()
    return old, current


def test_first_schema_warehouse_is_upgraded_in_place(first_schema_warehouse, snapshot):
    old, current = first_schema_warehouse
    conn = open_warehouse(old)
    try:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
        assert versions == [m.version for m in available_migrations()]
        assert conn.execute("SELECT count(*) FROM trial_history").fetchall() == [(2,)]
    finally:
        conn.close()
    # every table, history and the new trial columns included, equals a warehouse built today;
    # the dedup tables are filled by the next run (see 0006_dedup.sql)
    upgraded, today = snapshot(old), snapshot(current)
    for table in DEDUP_TABLES:
        assert upgraded.pop(table) == []
        today.pop(table)
    assert upgraded == today


def test_upgraded_warehouse_keeps_loading_incrementally(first_schema_warehouse, tmp_path, snapshot):
    old, current = first_schema_warehouse
    open_warehouse(old).close()
    again = run.ingest([tmp_path / "sample"], old)  # the pages build_sample_warehouse loaded
    assert again.pages_new == 0
    # that run linked the stored pages into the dedup tables, keeping every trial id
    assert snapshot(old) == snapshot(current)
    before = snapshot(old)
    assert run.ingest([tmp_path / "sample"], old).trials_loaded == 0
    assert snapshot(old) == before


def test_read_only_open_of_an_old_warehouse_says_what_to_run(first_schema_warehouse, capsys, clean_env):
    old, current = first_schema_warehouse
    missing = ", ".join(m.name for m in available_migrations()[1:])
    assert missing.startswith("0002_fetches.sql, 0003_history.sql, 0004_backfill_history.py")
    with pytest.raises(WarehouseError) as err:
        open_warehouse(old, read_only=True)
    assert str(err.value) == (f"warehouse {old} has an older schema (missing {missing}); run "
                              "`trials migrate` (or any loading command) to upgrade it in place")
    assert main(["sql", "SELECT count(*) FROM trials", "--warehouse", str(old)]) == 1
    assert "older schema" in capsys.readouterr().err
    assert main(["migrate", "--warehouse", str(old)]) == 0
    latest = available_migrations()[-1].version
    assert capsys.readouterr().out.strip() == f"Warehouse {old} is at schema version {latest}"
    assert main(["sql", "SELECT count(*) AS n FROM trial_overview", "--warehouse", str(old),
                 "--format", "csv"]) == 0
    trials = duckdb.connect(str(current), read_only=True)
    try:
        ((n,),) = trials.execute("SELECT count(*) FROM trials").fetchall()
    finally:
        trials.close()
    assert capsys.readouterr().out.split() == ["n", str(n)]


def test_a_failing_python_migration_rolls_back(fresh_db):
    bad = Migration(9003, "9003_bad.py", "def upgrade(conn):\n"
                                         "    conn.execute('CREATE TABLE half (x INTEGER)')\n"
                                         "    raise RuntimeError('boom')\n")
    with pytest.raises(MigrationError, match="migration 9003_bad.py failed: boom"):
        migrate(fresh_db, available_migrations() + (bad,))
    assert fresh_db.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = 'half'").fetchall() == [(0,)]
    empty = Migration(9004, "9004_empty.py", "x = 1\n")
    with pytest.raises(MigrationError, match="defines no upgrade"):
        migrate(fresh_db, available_migrations() + (empty,))


def test_python_migrations_are_found_with_the_sql_ones(tmp_path):
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);")
    (tmp_path / "0002_b.py").write_text("def upgrade(conn):\n    conn.execute('INSERT INTO a VALUES (7)')\n")
    found = available_migrations(tmp_path)
    assert [(m.name, m.is_python) for m in found] == [("0001_a.sql", False), ("0002_b.py", True)]
    conn = duckdb.connect(":memory:")
    assert migrate(conn, found) == found
    assert conn.execute("SELECT x FROM a").fetchall() == [(7,)]
