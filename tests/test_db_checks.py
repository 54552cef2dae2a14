"""Warehouse data-quality checks: pass on good data, fail on deliberately broken tables."""

import pytest

from pipeline.db import checks
from pipeline.db.load import load_batch
from pipeline.link import LinkPage, link_pages
from pipeline.models import Arm, TrialRecord


@pytest.fixture
def good_db(fresh_db, parsed_page):
    pages = [
        parsed_page("a", TrialRecord(nct_id="NCT00000001", overall_status="RECRUITING",
                                     phases=("PHASE1",), conditions=("AML",),
                                     arms=(Arm("A", "EXPERIMENTAL"),))),
        parsed_page("b", TrialRecord(brief_title="No NCT", lead_sponsor="Acme")),
        parsed_page("c", None, status="rejected", error="junk"),
    ]
    trials = link_pages([LinkPage(p.page_id, p.source, p.fetched_at, p.record)
                         for p in pages if p.record])
    load_batch(fresh_db, new_pages=pages, trials=trials,
               page_trial_ids={pid: t.trial_id for t in trials for pid in t.page_ids})
    return fresh_db


def unconstrained(conn, table):
    """Swap `table` for a copy without keys or CHECKs, so bad rows can be inserted."""
    conn.execute(f"CREATE TABLE {table}_copy AS SELECT * FROM {table}")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_copy RENAME TO {table}")


def test_all_checks_pass_on_good_data(good_db):
    outcomes = checks.run_checks(good_db)
    assert [(o.name, o.passed, o.failures) for o in outcomes] == [
        ("unique_trial_ids", True, 0), ("unique_nct_ids", True, 0),
        ("no_orphan_rows", True, 0), ("valid_enumerations", True, 0),
    ]


def test_all_checks_pass_on_an_empty_warehouse(fresh_db):
    assert all(o.passed for o in checks.run_checks(fresh_db))


def test_duplicate_trial_id_fails(good_db):
    unconstrained(good_db, "trials")
    good_db.execute("INSERT INTO trials SELECT * FROM trials LIMIT 1")
    outcome = checks.unique_trial_ids(good_db)
    assert not outcome.passed and outcome.failures == 1
    assert "x2" in outcome.examples[0]


def test_null_trial_id_fails(good_db):
    unconstrained(good_db, "trials")
    good_db.execute("INSERT INTO trials (trial_id, nct_id) VALUES (NULL, 'NCT00000099')")
    assert checks.unique_trial_ids(good_db).examples == ("<NULL> x1",)


def test_nct_id_on_two_trials_fails(good_db):
    good_db.execute("INSERT INTO trials (trial_id, nct_id) VALUES ('Tother', 'NCT00000001')")
    outcome = checks.unique_nct_ids(good_db)
    assert not outcome.passed
    assert outcome.examples == ("NCT00000001 x2",)


def test_orphan_child_rows_fail(good_db):
    good_db.execute("INSERT INTO conditions VALUES ('Tmissing', 1, 'Ghost')")
    good_db.execute("INSERT INTO page_records VALUES ('no-such-page', '{}')")
    good_db.execute("UPDATE pages SET trial_id = 'Tgone' WHERE parse_status = 'rejected'")
    outcome = checks.no_orphan_rows(good_db)
    assert not outcome.passed
    assert set(outcome.examples) == {
        "conditions: Tmissing", "pages: Tgone", "page_records: no-such-page"}


def test_invalid_enumerations_fail(good_db):
    unconstrained(good_db, "arms")
    unconstrained(good_db, "trials")
    good_db.execute("UPDATE arms SET arm_type = 'Experimental group'")
    good_db.execute("UPDATE trials SET phases = ['PHASE1', 'Phase 2'] WHERE nct_id IS NOT NULL")
    outcome = checks.valid_enumerations(good_db)
    assert not outcome.passed
    assert set(outcome.examples) == {
        "arms.arm_type='Experimental group'", "trials.phases='Phase 2'"}
    assert "valid_enumerations: 2 failing" in outcome.summary
