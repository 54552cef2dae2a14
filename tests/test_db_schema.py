"""Migrations, the warehouse schema and its constraints."""

import re

import duckdb
import pytest

from pipeline.db.connection import WarehouseError, open_warehouse
from pipeline.db.migrate import Migration, MigrationError, available_migrations, migrate
from pipeline.db.schema import ALL_TABLES, ARROW_SCHEMAS, ENUM_COLUMNS
from pipeline.vocab import CODES

# Column names the issue requires, exactly.
REQUIRED = {
    "pages": "page_id source url content_sha256 fetched_at trial_id parse_status parse_error",
    "trials": "trial_id nct_id brief_title official_title acronym lead_sponsor overall_status "
              "phases study_type enrollment enrollment_type sex min_age max_age min_age_years "
              "max_age_years healthy_volunteers brief_summary detailed_description "
              "primary_purpose allocation intervention_model masking start_date "
              "primary_completion_date completion_date first_submitted_date last_update_date",
    "identifiers": "trial_id id_type id_value",
    "conditions": "trial_id name",
    "keywords": "trial_id keyword",
    "interventions": "trial_id intervention_type name description",
    "arms": "trial_id label arm_type description",
    "criteria": "trial_id criterion_type ordinal parent_ordinal text",
    "contacts": "trial_id role name credentials affiliation phone email title",
    "locations": "trial_id facility city state country status",
    "page_records": "page_id record",
}


def columns(conn, table):
    return {
        name: dtype for name, dtype in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
            [table],
        ).fetchall()
    }


def test_migrations_are_numbered_files_in_order():
    found = available_migrations()
    assert found[0].version == 1 and found[0].name == "0001_core.sql"
    assert [m.version for m in found] == sorted({m.version for m in found})
    assert all(re.fullmatch(r"\d{4}_\w+\.(sql|py)", m.name) for m in found)


@pytest.mark.parametrize("table", sorted(REQUIRED))
def test_required_columns_exist(fresh_db, table):
    assert set(REQUIRED[table].split()) <= set(columns(fresh_db, table))


def test_column_types(fresh_db):
    trials = columns(fresh_db, "trials")
    assert trials["phases"] == "VARCHAR[]"
    assert trials["start_date"] == "DATE"
    assert trials["last_update_date"] == "DATE"
    assert columns(fresh_db, "page_records")["record"] == "JSON"


def test_arrow_schemas_match_the_tables(fresh_db):
    for table in ALL_TABLES:
        assert set(ARROW_SCHEMAS[table].names) == set(columns(fresh_db, table)), table


def test_schema_version_records_each_migration_once(fresh_db):
    rows = fresh_db.execute("SELECT version, name, applied_at FROM schema_version").fetchall()
    assert [(v, n) for v, n, _ in rows] == [(m.version, m.name) for m in available_migrations()]
    assert all(applied is not None for *_, applied in rows)
    assert migrate(fresh_db) == ()
    assert fresh_db.execute("SELECT count(*) FROM schema_version").fetchall() == [(len(rows),)]


def test_existing_warehouse_is_upgraded_in_place(fresh_db):
    fresh_db.execute("INSERT INTO conditions VALUES ('T1', 1, 'AML')")
    extra = Migration(9001, "9001_extra.sql", "CREATE TABLE extra (x INTEGER);"
                                              "ALTER TABLE conditions ADD COLUMN note VARCHAR;")
    applied = migrate(fresh_db, available_migrations() + (extra,))
    assert applied == (extra,)
    assert fresh_db.execute("SELECT trial_id, name, note FROM conditions").fetchall() == [
        ("T1", "AML", None)
    ]
    assert fresh_db.execute("SELECT max(version) FROM schema_version").fetchall() == [(9001,)]


def test_failing_migration_rolls_back_completely(fresh_db):
    bad = Migration(9002, "9002_bad.sql", "CREATE TABLE half_done (x INTEGER); SELECT nope FROM nowhere;")
    with pytest.raises(MigrationError, match="9002_bad.sql"):
        migrate(fresh_db, available_migrations() + (bad,))
    tables = {t for (t,) in fresh_db.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "half_done" not in tables
    assert fresh_db.execute("SELECT count(*) FROM schema_version WHERE version = 9002").fetchall() == [(0,)]


def test_other_files_are_ignored_and_duplicate_versions_refused(tmp_path):
    (tmp_path / "0002_b.sql").write_text("SELECT 2;")
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "README.md").write_text("not a migration")
    assert [m.name for m in available_migrations(tmp_path)] == ["0001_a.sql", "0002_b.sql"]
    (tmp_path / "0001_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="share version 1"):
        available_migrations(tmp_path)


@pytest.mark.parametrize("col", ENUM_COLUMNS, ids=lambda c: f"{c.table}.{c.column}")
def test_check_constraints_accept_exactly_the_vocab_codes(fresh_db, col):
    """The CHECK lists in 0001_core.sql and pipeline.vocab.CODES must agree."""
    fresh_db.execute(f"CREATE TEMP TABLE probe AS SELECT * FROM {col.table} LIMIT 0")
    required = {name for name, in fresh_db.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = ? AND is_nullable = 'NO'", [col.table]).fetchall()}
    filler = {"page_id": "'p'", "url": "'u'", "source": "'veeva'", "parse_status": "'ok'",
              "trial_id": "'T1'", "position": "1", "name": "'n'", "label": "'l'",
              "arm_position": "1", "arm_label": "'l'", "intervention": "'i'", "ordinal": "1",
              "text": "'t'", "criterion_type": "'inclusion'", "role": "'central_contact'"}
    for i, code in enumerate(sorted(CODES[col.kind])):
        values = {c: filler[c] for c in required if c != col.column}
        values[col.column] = "?"
        if col.table in ("pages", "trials"):
            key = "page_id" if col.table == "pages" else "trial_id"
            values[key] = f"'k{i}'"
        value = [code] if col.is_list else code
        names = ", ".join(values)
        fresh_db.execute(f"INSERT INTO {col.table} ({names}) VALUES ({', '.join(values.values())})",
                         [value])
        with pytest.raises(duckdb.ConstraintException):
            fresh_db.execute(
                f"INSERT INTO {col.table} ({names}) VALUES ({', '.join(values.values())})",
                [["NOT_A_CODE"] if col.is_list else "NOT_A_CODE"],
            )
        if col.table in ("pages", "trials"):
            break  # one accepted row is enough to prove the column; the key must change anyway


def test_open_warehouse_creates_folder_and_schema(tmp_path):
    path = tmp_path / "new" / "dir" / "w.duckdb"
    conn = open_warehouse(path)
    try:
        assert path.is_file()
        assert conn.execute("SELECT count(*) FROM trials").fetchall() == [(0,)]
    finally:
        conn.close()


def test_read_only_open_of_missing_warehouse_is_a_clear_error(tmp_path):
    with pytest.raises(WarehouseError, match="warehouse not found"):
        open_warehouse(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_locked_warehouse_is_a_clear_error(locked_warehouse):
    with pytest.raises(WarehouseError, match="locked by another process"):
        open_warehouse(locked_warehouse)


def test_non_duckdb_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("hello, not a database")
    with pytest.raises(WarehouseError, match="cannot open"):
        open_warehouse(path)
