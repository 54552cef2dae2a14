"""The profile tables as part of the warehouse contract: listed in ALL_TABLES (run summary,
snapshots), covered by the blocking checks (keys, references, vocabularies), written in the
load's transaction, and backfilled when a warehouse is upgraded (`trials migrate`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.cli import main
from pipeline.db import checks
from pipeline.db.connection import open_warehouse
from pipeline.db.schema import ALL_TABLES, KEY_COLUMNS, PROFILE_TABLES
from pipeline.run import ingest


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("profiles_wh") / "trials.duckdb"
    ingest([Path(__file__).resolve().parents[1] / "raw" / "sample"], path)
    return path


@pytest.fixture
def own(sample_warehouse, tmp_path) -> Path:
    path = tmp_path / "trials.duckdb"
    shutil.copy(sample_warehouse, path)
    return path


def test_profile_tables_are_warehouse_tables():
    assert set(PROFILE_TABLES) == {"eligibility_constraints", "eligibility_flags", "therapies", "dose_levels",
                                   "trial_ages", "profile_state"}
    assert set(PROFILE_TABLES) <= set(ALL_TABLES) and set(PROFILE_TABLES) <= set(KEY_COLUMNS)


def test_sample_passes_every_blocking_check_with_profiles_covered(sample_warehouse):
    conn = duckdb.connect(str(sample_warehouse), read_only=True)
    try:
        outcomes = {o.name: o for o in checks.run_checks(conn)}
        assert conn.execute("SELECT count(*) FROM eligibility_constraints").fetchall()[0][0] > 50
    finally:
        conn.close()
    assert all(o.passed for o in outcomes.values()), [o.summary for o in outcomes.values()]
    for name in ("unique_keys", "foreign_keys"):
        assert set(PROFILE_TABLES) <= set(outcomes[name].by_table), name
    assert {"eligibility_constraints", "eligibility_flags", "therapies", "trial_ages"} \
        <= set(outcomes["valid_enumerations"].by_table)


def test_blocking_checks_catch_broken_profile_rows(own):
    conn = duckdb.connect(str(own))
    try:
        (tid,), = conn.execute("SELECT trial_id FROM therapies ORDER BY 1 LIMIT 1").fetchall()
        # a constraint whose criterion does not exist, a repeated key, an unknown variable
        conn.execute("INSERT INTO eligibility_constraints (trial_id, criterion_type, ordinal, position, variable, "
                     "negated, text) VALUES (?, 'inclusion', 999, 1, 'shoe_size', false, 'x')", [tid])
        conn.execute("INSERT INTO eligibility_constraints (trial_id, criterion_type, ordinal, position, variable, "
                     "negated, text) VALUES (?, 'inclusion', 999, 1, 'ecog', false, 'x')", [tid])
        # a dose level of a therapy that does not exist, a flag outside the vocabulary
        conn.execute("INSERT INTO dose_levels VALUES (?, 99, 1, 1e6, 'cells', false, NULL)", [tid])
        conn.execute("INSERT INTO eligibility_flags SELECT trial_id, criterion_type, ordinal, 'left_handed' "
                     "FROM criteria WHERE trial_id = ? LIMIT 1", [tid])
        conn.execute("UPDATE therapies SET modality = 'magic' WHERE trial_id = ?", [tid])
        outcomes = {o.name: o for o in checks.run_checks(conn, checks.BLOCKING_CHECKS)}
    finally:
        conn.close()
    assert outcomes["unique_keys"].by_table["eligibility_constraints"] == 1
    assert outcomes["foreign_keys"].by_table["eligibility_constraints"] == 1
    assert f"eligibility_constraints -> criteria: {tid}/inclusion/999" in outcomes["foreign_keys"].examples
    assert outcomes["foreign_keys"].by_table["dose_levels"] == 1
    enum = outcomes["valid_enumerations"]
    assert enum.by_table["eligibility_constraints"] == 1  # 'shoe_size'
    assert enum.by_table["eligibility_flags"] == 1 and enum.by_table["therapies"] == 1
    assert "eligibility_constraints.variable='shoe_size'" in enum.examples
    assert not any(outcomes[n].passed for n in ("unique_keys", "foreign_keys", "valid_enumerations"))


def snapshot(path: Path) -> dict[str, list]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        snap = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in PROFILE_TABLES}
        snap["ages"] = conn.execute("SELECT trial_id, min_age_years, max_age_years FROM trials ORDER BY 1").fetchall()
        return snap
    finally:
        conn.close()


def test_migrate_backfills_the_profiles_of_an_upgraded_warehouse(own, capsys, clean_env):
    before = snapshot(own)
    conn = duckdb.connect(str(own))
    try:
        # as a warehouse loaded before the profile tables existed: empty tables, no criteria
        # ages in trials, and the backfill migration not yet applied
        for table in PROFILE_TABLES:
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE trials SET min_age_years = NULL WHERE min_age IS NULL")
        conn.execute("UPDATE trials SET max_age_years = NULL WHERE max_age IS NULL")
        conn.execute("DELETE FROM schema_version WHERE name = '0008_backfill_profiles.py'")
    finally:
        conn.close()
    assert snapshot(own) != before
    assert main(["migrate", "--warehouse", str(own)]) == 0
    assert snapshot(own) == before
    capsys.readouterr()
    # an extractor upgrade leaves profiles stale: `trials migrate` refreshes them too
    conn = duckdb.connect(str(own))
    try:
        conn.execute("UPDATE profile_state SET extractor_version = 'old'")
        (n,), = conn.execute("SELECT count(*) FROM trials").fetchall()
    finally:
        conn.close()
    assert main(["migrate", "--warehouse", str(own)]) == 0
    assert f"profiles refreshed for {n} trial(s)" in capsys.readouterr().out
    assert snapshot(own) == before


def test_a_load_refused_by_the_checks_writes_no_profile(own, tmp_path, monkeypatch, clean_env):
    """Profiles are written inside the load's transaction: when it rolls back, so do they."""
    import os

    from pipeline.db import load

    before = snapshot(own)
    src = Path(__file__).resolve().parents[1] / "raw" / "sample" / "seeds" / "000_929af7c7df7e5e30.txt"
    newer = tmp_path / "recapture" / "000_newer.txt"
    newer.parent.mkdir()
    newer.write_text(src.read_text(encoding="utf-8").replace("ECOG score of 0-2", "ECOG score of 0-1"),
                     encoding="utf-8")
    os.utime(newer, (4_000_000_000, 4_000_000_000))

    def refuse(conn, which=checks.BLOCKING_CHECKS):
        return (checks.CheckOutcome("unique_keys", False, 1, ("forced",)),)

    monkeypatch.setattr(load, "run_checks", refuse)
    with pytest.raises(load.LoadRefused, match="load refused"):
        ingest([newer], own)
    assert snapshot(own) == before
    monkeypatch.undo()
    ingest([newer], own)  # the same load, accepted: the trial's ECOG row changes with it
    conn = open_warehouse(own, read_only=True)
    try:
        rows = conn.execute("SELECT lower, upper FROM eligibility_constraints WHERE variable = 'ecog' AND "
                            "trial_id = (SELECT trial_id FROM pages WHERE url LIKE '%/000_newer.txt')").fetchall()
    finally:
        conn.close()
    assert rows == [(0.0, 1.0)]
