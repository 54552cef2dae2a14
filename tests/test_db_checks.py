"""Warehouse data-quality checks: pass on good data, fail on deliberately broken tables."""

import pytest

from pipeline.db import checks
from pipeline.db.load import load_batch
from pipeline.db.schema import ALL_TABLES
from pipeline.link import LinkPage
from pipeline.relink import plan_relink
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
    plan = plan_relink(fresh_db, [LinkPage(p.page_id, p.source, p.fetched_at, p.record)
                                  for p in pages if p.record])
    load_batch(fresh_db, new_pages=pages, trials=plan.trials, page_trial_ids=plan.page_trial_ids,
               dedup=plan.dedup)
    return fresh_db


def unconstrained(conn, table):
    """Swap `table` for a copy without keys or CHECKs, so bad rows can be inserted."""
    conn.execute(f"CREATE TABLE {table}_copy AS SELECT * FROM {table}")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_copy RENAME TO {table}")


CHECK_NAMES = ["unique_keys", "foreign_keys", "valid_enumerations", "trials_have_pages",
               "history_matches_trials", "pages_have_links"]


def test_all_checks_pass_on_good_data(good_db):
    outcomes = checks.run_checks(good_db)
    assert [(o.name, o.passed, o.failures) for o in outcomes] == [(n, True, 0) for n in CHECK_NAMES]
    by_name = {o.name: o for o in outcomes}
    # the checks cover every warehouse table
    assert set(by_name["unique_keys"].by_table) == set(ALL_TABLES) - {"link_keys", "block_keys"}
    assert {"link_keys", "block_keys"} <= set(by_name["pages_have_links"].by_table)
    assert set(ALL_TABLES) - {"trials"} <= set(by_name["foreign_keys"].by_table)


def test_all_checks_pass_on_an_empty_warehouse(fresh_db):
    assert all(o.passed for o in checks.run_checks(fresh_db))


def test_duplicate_trial_id_fails(good_db):
    unconstrained(good_db, "trials")
    good_db.execute("INSERT INTO trials SELECT * FROM trials LIMIT 1")
    outcome = checks.unique_keys(good_db)
    assert not outcome.passed and outcome.by_table["trials"] >= 1
    assert any(e.startswith("trials: T") and e.endswith(" x2") for e in outcome.examples)


def test_null_trial_id_fails(good_db):
    unconstrained(good_db, "trials")
    good_db.execute("INSERT INTO trials (trial_id, nct_id) VALUES (NULL, 'NCT00000099')")
    assert checks.unique_keys(good_db).examples == ("trials: <NULL> x1",)


def test_nct_id_on_two_trials_fails(good_db):
    good_db.execute("INSERT INTO trials (trial_id, nct_id) VALUES ('Tother', 'NCT00000001')")
    outcome = checks.unique_keys(good_db)
    assert not outcome.passed
    assert outcome.examples == ("trials.nct_id: NCT00000001 x2",)


def test_duplicate_child_and_history_keys_fail(good_db):
    good_db.execute("INSERT INTO conditions SELECT * FROM conditions")
    good_db.execute("INSERT INTO trial_history VALUES ('Tx', 'overall_status', NULL, 'RECRUITING', "
                    "TIMESTAMP '2025-01-01', NULL)")
    good_db.execute("INSERT INTO trial_history SELECT * FROM trial_history")
    outcome = checks.unique_keys(good_db)
    assert outcome.by_table["conditions"] == 1 and outcome.by_table["trial_history"] == 1
    assert "trial_history: Tx/overall_status/2025-01-01 00:00:00 x2" in outcome.examples


def test_orphan_rows_fail(good_db):
    good_db.execute("INSERT INTO conditions VALUES ('Tmissing', 1, 'Ghost')")
    good_db.execute("INSERT INTO page_records VALUES ('no-such-page', '{}')")
    good_db.execute("UPDATE pages SET trial_id = 'Tgone' WHERE parse_status = 'rejected'")
    good_db.execute("INSERT INTO trial_history VALUES ('Tlost', 'phases', NULL, 'PHASE1', "
                    "TIMESTAMP '2025-01-01', 'no-page')")
    outcome = checks.foreign_keys(good_db)
    assert not outcome.passed
    assert set(outcome.examples) == {
        "conditions: Tmissing", "pages: Tgone", "trial_history: Tlost",
        "page_records: no-such-page", "trial_history.page_id: no-page"}


def test_dangling_arm_and_parent_criterion_fail(good_db):
    ((tid,),) = good_db.execute("SELECT trial_id FROM trials WHERE nct_id IS NOT NULL").fetchall()
    good_db.execute("INSERT INTO arm_interventions VALUES (?, 9, 'B', 1, 'Drug: X', 'DRUG', 'X')", [tid])
    good_db.execute("INSERT INTO criteria VALUES (?, 'inclusion', 2, 7, 'child of nothing')", [tid])
    good_db.execute("UPDATE trials SET best_page_id = 'nowhere' WHERE trial_id = ?", [tid])
    outcome = checks.foreign_keys(good_db)
    assert set(outcome.examples) == {
        f"arm_interventions.arm_position: {tid}/9", f"criteria.parent_ordinal: {tid}/inclusion/2",
        "trials.best_page_id: nowhere"}


def test_invalid_enumerations_fail(good_db):
    unconstrained(good_db, "arms")
    unconstrained(good_db, "trials")
    unconstrained(good_db, "trial_history")
    good_db.execute("UPDATE arms SET arm_type = 'Experimental group'")
    good_db.execute("UPDATE trials SET phases = ['PHASE1', 'Phase 2'] WHERE nct_id IS NOT NULL")
    good_db.execute("INSERT INTO trial_history (trial_id, field, observed_at) "
                    "SELECT trial_id, 'colour', TIMESTAMP '2025-01-01' FROM trials LIMIT 1")
    outcome = checks.valid_enumerations(good_db)
    assert not outcome.passed
    assert set(outcome.examples) == {
        "arms.arm_type='Experimental group'", "trials.phases='Phase 2'",
        "trial_history.field='colour'"}
    assert "valid_enumerations: 3 failing" in outcome.summary


def test_trial_without_pages_fails(good_db):
    ((nct_trial,),) = good_db.execute("SELECT trial_id FROM trials WHERE nct_id IS NOT NULL").fetchall()
    ((loose_page,),) = good_db.execute(
        "SELECT page_id FROM pages WHERE trial_id IS NOT NULL AND trial_id <> ?", [nct_trial]).fetchall()
    good_db.execute("INSERT INTO trials (trial_id, page_count) VALUES ('Tlonely', 0)")
    good_db.execute("UPDATE trials SET page_count = 5 WHERE trial_id = ?", [nct_trial])
    good_db.execute("DELETE FROM trials WHERE trial_id NOT IN ('Tlonely', ?)", [nct_trial])
    good_db.execute("UPDATE pages SET trial_id = NULL WHERE page_id = ?", [loose_page])
    outcome = checks.trials_have_pages(good_db)
    assert set(outcome.examples) == {
        "trials: Tlonely has 0 pages, page_count 0",
        f"trials: {nct_trial} has 1 pages, page_count 5",
        f"pages: {loose_page} parsed but in no trial",
    }


def test_history_that_disagrees_with_trials_fails(good_db):
    ((tid,),) = good_db.execute("SELECT trial_id FROM trials WHERE nct_id IS NOT NULL").fetchall()
    good_db.execute("INSERT INTO trial_history VALUES (?, 'overall_status', 'RECRUITING', "
                    "'COMPLETED', TIMESTAMP '2025-06-01', NULL)", [tid])
    outcome = checks.history_matches_trials(good_db)
    assert outcome.examples == (f"{tid}.overall_status: history 'COMPLETED', trials 'RECRUITING'",)
    assert checks.history_matches_trials not in checks.BLOCKING_CHECKS
