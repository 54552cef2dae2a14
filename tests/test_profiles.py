"""Eligibility constraints, flags, therapy profiles, dose levels and ages IN THE WAREHOUSE,
for the five real seed captures of the bundled sample, and how refresh_profiles keeps them
current (idempotent, self-healing, recomputing exactly what changed)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.db import profiles
from pipeline.db.profiles import PROFILE_TABLES, check_profiles, refresh_profiles, stale_trials
from pipeline.run import ingest

SEEDS = {
    "000": "000_929af7c7df7e5e30.txt",  # CAR-NK anti-CD123, AML/BPDCN (Veeva)
    "001": "001_62c8b8bbff79b9c1.txt",  # IL3 CAR-T (CD123), NCT04599543
    "002": "002_fe23090bebcda565.txt",  # CAR-NK CD19, NCT05563545
    "003": "003_74ea9d8d4976cfa8.txt",  # NK cells, CLL1 or CD33 (ClinConnect)
    "004": "004_7659166414062c3b.txt",  # CAR-NK CD7 (Veeva, truncated capture)
}


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("profiles") / "trials.duckdb"
    ingest([Path(__file__).resolve().parents[1] / "raw" / "sample"], path)
    return path


@pytest.fixture(scope="module")
def db(sample_warehouse):
    conn = duckdb.connect(str(sample_warehouse), read_only=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def seed_ids(db) -> dict[str, str]:
    ids = {}
    for seed, name in SEEDS.items():
        (trial_id,), = db.execute("SELECT trial_id FROM pages WHERE url LIKE ?", [f"%/{name}"]).fetchall()
        ids[seed] = trial_id
    assert len(set(ids.values())) == 5
    return ids


def constraints(db, trial_id: str, variable: str | None = None) -> set[tuple]:
    """(type, variable, lower, lower_incl, upper, upper_incl, unit, negated, condition, antigen, grouped)"""
    rows = db.execute(
        "SELECT criterion_type, variable, lower, lower_inclusive, upper, upper_inclusive, unit, negated, "
        "condition, antigen, alt_group IS NOT NULL FROM eligibility_constraints "
        "WHERE trial_id = ? AND (CAST(? AS VARCHAR) IS NULL OR variable = ?)",
        [trial_id, variable, variable],
    ).fetchall()
    return {tuple(round(v, 4) if isinstance(v, float) else v for v in r) for r in rows}


def inc(variable, lo, lo_inc, hi, hi_inc, unit, condition=None, antigen=None, grouped=False, negated=False):
    return ("inclusion", variable, lo, lo_inc, hi, hi_inc, unit, negated, condition, antigen, grouped)


def exc(variable, lo, lo_inc, hi, hi_inc, unit, condition=None, antigen=None):
    return ("exclusion", variable, lo, lo_inc, hi, hi_inc, unit, True, condition, antigen, False)


def flags(db, trial_id: str) -> set[tuple[str, int, str]]:
    return set(db.execute(
        "SELECT criterion_type, ordinal, flag FROM eligibility_flags WHERE trial_id = ?", [trial_id]
    ).fetchall())


def therapies(db, trial_id: str) -> list[tuple]:
    return db.execute(
        "SELECT therapy_ordinal, intervention_name, modality, targets, infusion_schedule, escalation_design "
        "FROM therapies WHERE trial_id = ? ORDER BY therapy_ordinal", [trial_id]
    ).fetchall()


def doses(db, trial_id: str) -> list[tuple]:
    return db.execute(
        "SELECT therapy_ordinal, level, value, unit, per_kg FROM dose_levels WHERE trial_id = ? "
        "ORDER BY therapy_ordinal, level", [trial_id]
    ).fetchall()


def ages(db, trial_id: str) -> tuple:
    (row,) = db.execute(
        "SELECT t.min_age_years, t.max_age_years, a.min_age_source, a.max_age_source, "
        "a.criteria_min_age_years, a.criteria_max_age_years "
        "FROM trials t JOIN trial_ages a USING (trial_id) WHERE trial_id = ?", [trial_id]
    ).fetchall()
    return row


# --- the seeds, as the warehouse holds them ----------------------------------------------

def test_seed_000_car_nk_cd123(db, seed_ids):
    t = seed_ids["000"]
    assert constraints(db, t) == {
        inc("age", 18.0, True, 75.0, True, "years"),
        inc("antigen_expression", None, None, None, None, "positive", "flow cytometry", "CD123"),
        inc("antigen_expression", None, None, None, None, "positive", None, "CD123"),
        inc("life_expectancy", 84.0, False, None, None, "days"),
        inc("ecog", 0.0, True, 2.0, True, None),
        inc("wbc", 1.0, False, None, None, "10^9/L"),
        inc("neutrophils", 0.5, False, None, None, "10^9/L"),
        inc("lymphocytes", 0.5, False, None, None, "10^9/L"),
        inc("platelets", 50.0, False, None, None, "10^9/L"),
        inc("lvef", 50.0, True, None, None, "%"),
        inc("creatinine", None, None, 2.0, True, "xULN"),
        inc("alt", None, None, 3.0, True, "xULN"),
        inc("ast", None, None, 3.0, True, "xULN"),
        inc("alt", None, None, 5.0, True, "xULN", "liver involvement"),
        inc("ast", None, None, 5.0, True, "xULN", "liver involvement"),
        inc("total_bilirubin", None, None, 2.0, True, "xULN"),
        inc("total_bilirubin", None, None, 3.0, True, "xULN", "Gilbert's syndrome"),
        inc("oxygen_saturation", 92.0, False, None, None, "%"),
        exc("washout_antitumor", None, None, 14.0, True, "days"),
        exc("washout_vaccine", None, None, 28.0, True, "days"),
    }
    assert {f for _, _, f in flags(db, t)} == {
        "active_cns_involvement", "uncontrolled_infection", "pregnancy_or_breastfeeding"}
    assert therapies(db, t) == [(1, "Anti-CD123 CAR NK cells", "CAR-NK", ["CD123"], ["D0", "D7"], [])]
    assert doses(db, t) == [(1, 1, 1e7, "cells/kg", True), (1, 2, 3e7, "cells/kg", True),
                            (1, 3, 5e7, "cells/kg", True)]
    assert ages(db, t) == (18.0, 75.0, "page", "page", 18.0, 75.0)


def test_seed_001_il3_car_t(db, seed_ids):
    t = seed_ids["001"]
    assert constraints(db, t) == {
        inc("antigen_expression", None, None, None, None, "positive", None, "CD123"),
        inc("bone_marrow_blasts", 5.0, False, None, None, "%", "morphology", grouped=True),
        inc("bone_marrow_blasts", 0.01, False, None, None, "%", "flow cytometry", grouped=True),
        inc("total_bilirubin", None, None, 2.98, True, "mg/dL"),
        inc("alt", None, None, 3.0, True, "xULN"),
        inc("ast", None, None, 3.0, True, "xULN"),
        inc("creatinine", None, None, 2.0, True, "mg/dL"),
        inc("lvef", 50.0, True, None, None, "%"),
        inc("oxygen_saturation", 92.0, True, None, None, "%"),
        inc("life_expectancy", 91.3125, True, None, None, "days"),
        inc("ecog", 0.0, True, 2.0, True, None),
        exc("washout_steroids", None, None, 14.0, True, "days"),
        exc("creatinine", 2.5, False, None, None, "mg/dL"),
        exc("alt", 3.0, False, None, None, "xULN"),
        exc("ast", 3.0, False, None, None, "xULN"),
        exc("total_bilirubin", 2.0, False, None, None, "mg/dL"),
    }
    assert {f for _, _, f in flags(db, t)} == {
        "uncontrolled_infection", "pregnancy_or_breastfeeding", "active_hepatitis_b", "active_hepatitis_c",
        "prior_car_t_or_gene_modified_cell_therapy", "hiv"}
    assert ("exclusion", 11, "hiv") in flags(db, t)
    # an IL-3 ligand CAR is aimed at CD123; the page states no doses
    assert therapies(db, t) == [(1, "IL3 CAR T-cells", "CAR-T", ["CD123"], [], [])]
    assert doses(db, t) == []
    assert ages(db, t) == (None, None, None, None, None, None)


def test_seed_002_car_nk_cd19(db, seed_ids):
    t = seed_ids["002"]
    got = constraints(db, t)
    assert inc("antigen_expression", None, None, None, None, "positive", None, "CD19") in got
    assert inc("life_expectancy", 84.0, True, None, None, "days") in got
    # ages per study phase are conditions, not the trial's limits; the page's own field wins
    assert constraints(db, t, "age") == {
        inc("age", 12.0, True, None, None, "years", "single-dose exploration phase"),
        inc("age", 3.0, True, None, None, "years", "dose exploration phase"),
    }
    assert {r[1] for r in got if r[0] == "exclusion"} == {
        "washout_transplant", "washout_steroids", "washout_cell_therapy", "washout_surgery", "washout_vaccine",
        "washout_antitumor"}
    assert therapies(db, t) == [(1, "CAR-NK-CD19 Cells", "CAR-NK", ["CD19"], ["D0"], [])]
    assert doses(db, t) == [(1, 1, 1e7, "cells/kg", True), (1, 2, 2e7, "cells/kg", True),
                            (1, 3, 3e7, "cells/kg", True)]
    assert ages(db, t) == (3.0, None, "page", None, None, None)


def test_seed_003_nk_clec12a_cd33(db, seed_ids):
    t = seed_ids["003"]
    got = constraints(db, t)
    assert {r for r in got if r[0] == "inclusion"} == {
        inc("age", 18.0, True, None, None, "years"),
        inc("antigen_expression", None, None, None, None, "positive", None, "CLEC12A", grouped=True),
        inc("antigen_expression", None, None, None, None, "positive", None, "CD33", grouped=True),
        inc("ecog", None, None, 1.0, True, None),
        inc("life_expectancy", 84.0, False, None, None, "days"),
        inc("creatinine", None, None, 2.0, True, "xULN", grouped=True),
        inc("creatinine_clearance", 50.0, True, None, None, "mL/min", grouped=True),
        inc("total_bilirubin", None, None, 2.0, True, "xULN"),
        inc("alt", None, None, 3.0, True, "xULN"),
        inc("ast", None, None, 3.0, True, "xULN"),
        inc("inr", None, None, 1.5, True, "xULN"),
        inc("aptt", None, None, 1.5, True, "xULN"),
    }
    assert exc("qtc", 480.0, False, None, None, "ms") in got
    assert exc("lvef", None, None, 50.0, False, "%") in got
    assert exc("washout_cell_therapy", None, None, 42.0, True, "days") in got
    # creatinine OR clearance: one alternative group of the same criterion
    (groups,) = db.execute(
        "SELECT count(DISTINCT (ordinal, alt_group)) FROM eligibility_constraints "
        "WHERE trial_id = ? AND variable IN ('creatinine', 'creatinine_clearance')", [t]).fetchall()
    assert groups == (1,)
    assert ("exclusion", 4, "prior_allogeneic_transplant") in flags(db, t)
    # no intervention listed: one profile built from the title and summary
    assert therapies(db, t) == [(1, None, "NK", ["CLEC12A", "CD33"], [], [])]
    # the page has no age field: the criteria's ">= 18 years old" fills it, and says so
    assert ages(db, t) == (18.0, None, "criteria", None, 18.0, None)


def test_seed_004_car_nk_cd7(db, seed_ids):
    t = seed_ids["004"]
    assert constraints(db, t) == {
        inc("age", 18.0, True, 70.0, True, "years"),
        inc("life_expectancy", 84.0, False, None, None, "days"),
        inc("ecog", 0.0, True, 2.0, True, None),
        inc("antigen_expression", 70.0, True, None, None, "%", "flow cytometry", "CD7", grouped=True),
        inc("antigen_expression", 50.0, True, None, None, "%", "immunohistochemistry", "CD7", grouped=True),
    }
    assert therapies(db, t) == [(1, None, "CAR-NK", ["CD7"], [], ["accelerated_titration", "3+3"])]
    assert doses(db, t) == [(1, 1, 1e7, "cells/kg", True), (1, 2, 2e7, "cells/kg", True),
                            (1, 3, 5e7, "cells/kg", True)]
    assert ages(db, t) == (18.0, 70.0, "criteria", "criteria", 18.0, 70.0)


def test_every_row_points_at_its_criterion_and_checks_pass(db):
    orphans = db.execute(
        "SELECT count(*) FROM eligibility_constraints c ANTI JOIN criteria USING (trial_id, criterion_type, ordinal)"
    ).fetchall()
    assert orphans == [(0,)]
    outcome = check_profiles(db)
    assert outcome.passed, outcome.examples
    # every trial has its state and its ages row, made by the current extractors
    (n_trials,), = db.execute("SELECT count(*) FROM trials").fetchall()
    for table in ("profile_state", "trial_ages"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchall() == [(n_trials,)]


def test_views_read_naturally(db, seed_ids):
    rows = db.execute(
        "SELECT rule FROM eligibility_rules WHERE trial_id = ? AND criterion_type = 'exclusion' ORDER BY ordinal, "
        "position", [seed_ids["001"]]).fetchall()
    assert ("not creatinine > 2.5 mg/dL",) in rows and ("not washout_steroids ≤ 14 days",) in rows
    car_nk_cd123 = db.execute(
        "SELECT trial_id, list(value ORDER BY level) FROM therapy_doses "
        "WHERE modality = 'CAR-NK' AND list_contains(targets, 'CD123') GROUP BY trial_id").fetchall()
    assert car_nk_cd123 == [(seed_ids["000"], [1e7, 3e7, 5e7])]


# --- keeping them current -------------------------------------------------------------------

def profile_snapshot(conn) -> dict[str, list]:
    snap = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in PROFILE_TABLES}
    snap["trial ages"] = sorted(conn.execute(
        "SELECT trial_id, min_age_years, max_age_years FROM trials").fetchall(), key=repr)
    return snap


@pytest.fixture
def own_warehouse(sample_warehouse, tmp_path) -> Path:
    """A private copy of the sample warehouse, for tests that change it."""
    path = tmp_path / "trials.duckdb"
    shutil.copy(sample_warehouse, path)
    return path


def test_second_ingest_and_refresh_change_no_row(own_warehouse):
    conn = duckdb.connect(str(own_warehouse))
    before = profile_snapshot(conn)
    conn.close()
    ingest([Path(__file__).resolve().parents[1] / "raw" / "sample"], own_warehouse)
    conn = duckdb.connect(str(own_warehouse))
    try:
        assert profile_snapshot(conn) == before
        result = refresh_profiles(conn)
        assert (result.trials_profiled, result.trials_dropped, result.ages_filled) == (0, 0, 0)
        assert set(result.rows_written.values()) == {0}
        assert profile_snapshot(conn) == before
        # forcing one trial recomputes it to the very same rows
        forced = refresh_profiles(conn, [before["profile_state"][0][0]])
        assert forced.trials_profiled == 1
        assert profile_snapshot(conn) == before
    finally:
        conn.close()


def test_changed_criteria_are_reprofiled_after_the_next_ingest(own_warehouse, seed_ids, tmp_path):
    # a newer capture of seed 000 whose ECOG limit is now 0-1
    src = Path(__file__).resolve().parents[1] / "raw" / "sample" / "seeds" / SEEDS["000"]
    text = src.read_text(encoding="utf-8")
    assert "ECOG score of 0-2" in text
    newer = tmp_path / "recapture" / "000_newer.txt"
    newer.parent.mkdir()
    newer.write_text(text.replace("ECOG score of 0-2", "ECOG score of 0-1"), encoding="utf-8")
    future = 4_000_000_000  # fetched later than every sample page: its fields win
    os.utime(newer, (future, future))
    ingest([newer], own_warehouse)
    conn = duckdb.connect(str(own_warehouse))
    try:
        (trial_id,), = conn.execute("SELECT trial_id FROM pages WHERE url LIKE '%/000_newer.txt'").fetchall()
        assert trial_id == seed_ids["000"]  # the new capture joined the same trial
        assert constraints(conn, trial_id, "ecog") == {inc("ecog", 0.0, True, 1.0, True, None)}
        assert conn.execute("SELECT count(*) FROM eligibility_constraints WHERE trial_id = ?",
                            [trial_id]).fetchall() == [(20,)]
        assert stale_trials(conn) == {}
    finally:
        conn.close()


def test_refresh_heals_what_a_reload_or_an_upgrade_leaves_behind(own_warehouse, seed_ids, monkeypatch):
    conn = duckdb.connect(str(own_warehouse))
    try:
        before = profile_snapshot(conn)
        t4, t0 = seed_ids["004"], seed_ids["000"]
        # a reload resets the criteria-filled ages (the page has no age field) ...
        conn.execute("UPDATE trials SET min_age_years = NULL, max_age_years = NULL WHERE trial_id = ?", [t4])
        # ... a crash left one trial's rows half done and its state gone ...
        conn.execute("DELETE FROM eligibility_constraints WHERE trial_id = ?", [t0])
        conn.execute("DELETE FROM profile_state WHERE trial_id = ?", [t0])
        # ... and a trial vanished when pages were relinked
        conn.execute("INSERT INTO therapies VALUES ('gone', 1, NULL, NULL, 'NK', [], [], [], [], [])")
        assert set(stale_trials(conn)) == {t0}
        result = refresh_profiles(conn)
        assert (result.trials_profiled, result.trials_dropped, result.ages_filled) == (1, 1, 2)
        assert profile_snapshot(conn) == before
        # a new extractor version makes every trial stale, and the refresh redoes them all
        monkeypatch.setattr(profiles, "EXTRACTOR_VERSION", "test-next")
        n = len(stale_trials(conn))
        assert n == len(before["profile_state"])
        assert refresh_profiles(conn).trials_profiled == n
        assert conn.execute("SELECT DISTINCT extractor_version FROM profile_state").fetchall() == [("test-next",)]
        assert stale_trials(conn) == {}
    finally:
        conn.close()


def test_profiles_of_removed_trials_are_deleted(own_warehouse, seed_ids):
    conn = duckdb.connect(str(own_warehouse))
    try:
        t = seed_ids["002"]
        for table in ("criteria", "interventions", "trials"):
            conn.execute(f"DELETE FROM {table} WHERE trial_id = ?", [t])
        result = refresh_profiles(conn)
        assert result.trials_dropped == 1 and result.trials_profiled == 0
        for table in PROFILE_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE trial_id = ?", [t]).fetchall() == [(0,)]
    finally:
        conn.close()
