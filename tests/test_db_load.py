"""Bulk loading hand-built pages and trials into a fresh warehouse."""

import dataclasses
import datetime as dt

import duckdb
import pytest

from pipeline.db.load import load_batch
from pipeline.link import link_pages, LinkPage
from pipeline.models import (
    Arm, Contact, Criterion, Identifier, Intervention, Location, TrialRecord,
)
from pipeline.serialize import record_from_json

RECORD = TrialRecord(
    nct_id="NCT04599543", brief_title="IL3 CAR-T", lead_sponsor="Zhejiang University",
    overall_status="NOT_YET_RECRUITING", phases=("EARLY_PHASE1",), study_type="INTERVENTIONAL",
    enrollment=36, enrollment_type="ESTIMATED", sex="ALL", min_age="18 Years",
    min_age_years=18.0, healthy_volunteers=False, start_date=dt.date(2024, 4, 11),
    funder_types=("OTHER",), conditions=("AML", "BPDCN"), keywords=("CAR-T",),
    identifiers=(Identifier("nct", "NCT04599543"), Identifier("org_study_id", "CD123-001")),
    interventions=(Intervention("BIOLOGICAL", "IL3 CAR-T cells"),),
    arms=(Arm("CAR-T", "EXPERIMENTAL", "Single arm",
              ("Biological: IL3 CAR-T cells", "Apheresis")),),
    criteria=(Criterion("inclusion", 1, None, "Adults"), Criterion("inclusion", 2, 1, "Aged 18+"),
              Criterion("exclusion", 1, None, "Pregnancy")),
    contacts=(Contact("central_contact", "Jane Doe", "MD", phone="+86 1", title="Contact"),),
    locations=(Location("First Hospital", "Hangzhou", "Zhejiang", "China", "RECRUITING"),),
)


def plan(pages):
    """(new pages, page->trial ids, trials) the way run.plan_links would hand them over."""
    trials = link_pages([
        LinkPage(p.page_id, p.source, p.fetched_at, p.record)
        for p in pages if p.record is not None and p.parse_status != "rejected"
    ])
    assigned = {pid: t.trial_id for t in trials for pid in t.page_ids}
    return dict(new_pages=pages, page_trial_ids=assigned, trials=trials)


def rows(conn, sql):
    return conn.execute(sql).fetchall()


def test_load_writes_every_table(fresh_db, parsed_page):
    veeva = parsed_page("veeva", RECORD)
    rejected = parsed_page("junk", None, status="rejected", error="not a trial page")
    result = load_batch(fresh_db, **plan([veeva, rejected]), parser_version="7")
    (trial,) = link_pages([LinkPage(veeva.page_id, "veeva", veeva.fetched_at, RECORD)])
    tid = trial.trial_id

    assert result.trials_loaded == 1
    assert result.rows_written["pages"] == 2
    assert rows(fresh_db, "SELECT page_id, trial_id, parse_status, parse_error, parser_version "
                          "FROM pages ORDER BY parse_status") == [
        (veeva.page_id, tid, "ok", None, "7"),
        (rejected.page_id, None, "rejected", "not a trial page", "7"),
    ]
    ((stored,),) = rows(fresh_db, "SELECT record FROM page_records")
    assert record_from_json(stored) == RECORD
    assert rows(fresh_db, "SELECT trial_id, nct_id, phases, enrollment, min_age_years, "
                          "healthy_volunteers, start_date, funder_types, sources, page_count, "
                          "best_page_id FROM trials") == [
        (tid, "NCT04599543", ["EARLY_PHASE1"], 36, 18.0, False, dt.date(2024, 4, 11),
         ["OTHER"], ["veeva"], 1, veeva.page_id),
    ]
    assert rows(fresh_db, "SELECT position, id_type, id_value FROM identifiers ORDER BY 1") == [
        (1, "nct", "NCT04599543"), (2, "org_study_id", "CD123-001")]
    assert rows(fresh_db, "SELECT name FROM conditions ORDER BY position") == [("AML",), ("BPDCN",)]
    assert rows(fresh_db, "SELECT keyword FROM keywords") == [("CAR-T",)]
    assert rows(fresh_db, "SELECT intervention_type, name FROM interventions") == [
        ("BIOLOGICAL", "IL3 CAR-T cells")]
    assert rows(fresh_db, "SELECT label, arm_type, interventions FROM arms") == [
        ("CAR-T", "EXPERIMENTAL", ["Biological: IL3 CAR-T cells", "Apheresis"])]
    assert rows(fresh_db, "SELECT position, intervention, intervention_type, intervention_name "
                          "FROM arm_interventions ORDER BY position") == [
        (1, "Biological: IL3 CAR-T cells", "BIOLOGICAL", "IL3 CAR-T cells"),
        (2, "Apheresis", None, None),
    ]
    assert rows(fresh_db, "SELECT criterion_type, ordinal, parent_ordinal, text FROM criteria "
                          "ORDER BY 1 DESC, 2") == [
        ("inclusion", 1, None, "Adults"), ("inclusion", 2, 1, "Aged 18+"),
        ("exclusion", 1, None, "Pregnancy")]
    assert rows(fresh_db, "SELECT role, name, credentials, phone, title FROM contacts") == [
        ("central_contact", "Jane Doe", "MD", "+86 1", "Contact")]
    assert rows(fresh_db, "SELECT facility, city, state, country, status FROM locations") == [
        ("First Hospital", "Hangzhou", "Zhejiang", "China", "RECRUITING")]
    assert {t: n for t, n in result.table_rows.items() if n} == {
        "pages": 2, "page_records": 1, "trials": 1, "identifiers": 2, "conditions": 2,
        "keywords": 1, "interventions": 1, "arms": 1, "arm_interventions": 2, "criteria": 3,
        "contacts": 1, "locations": 1,
        # profiles, made in the same transaction: "Aged 18+", "Pregnancy", the intervention
        "eligibility_constraints": 1, "eligibility_flags": 1, "therapies": 1, "trial_ages": 1,
        "profile_state": 1,
    }


def test_loading_the_same_batch_twice_changes_no_row(fresh_db, parsed_page, snapshot):
    batch = plan([parsed_page("a", RECORD), parsed_page("b", None, status="rejected", error="x")])
    load_batch(fresh_db, **batch)
    before = snapshot(fresh_db)
    again = load_batch(fresh_db, **batch)
    assert snapshot(fresh_db) == before
    assert again.rows_written["pages"] == 0 and again.rows_written["page_records"] == 0


def test_golden_rows_of_a_trial_are_replaced_not_duplicated(fresh_db, parsed_page):
    first = parsed_page("a", RECORD)
    load_batch(fresh_db, **plan([first]))
    newer = parsed_page("b", dataclasses.replace(
        RECORD, brief_title="IL3 CAR-T (updated)", conditions=("AML",),
        last_update_date=dt.date(2025, 6, 1)), source="clinconnect")
    # the load receives both pages' golden trial, as run.plan_links would build it
    trials = link_pages([LinkPage(p.page_id, p.source, p.fetched_at, p.record) for p in (first, newer)])
    load_batch(fresh_db, new_pages=[newer],
               page_trial_ids={newer.page_id: trials[0].trial_id}, trials=trials)
    assert rows(fresh_db, "SELECT brief_title, page_count, sources FROM trials") == [
        ("IL3 CAR-T (updated)", 2, ["clinconnect", "veeva"])]
    assert rows(fresh_db, "SELECT name FROM conditions") == [("AML",)]
    assert rows(fresh_db, "SELECT count(*) FROM identifiers") == [(2,)]


def test_stale_trials_are_removed_and_pages_reassigned(fresh_db, parsed_page):
    title = "CAR-NK Cells in Relapsed Acute Myeloid Leukemia"
    loose = parsed_page("loose", TrialRecord(brief_title=title, lead_sponsor="Acme"))
    load_batch(fresh_db, **plan([loose]))
    ((old_id,),) = rows(fresh_db, "SELECT trial_id FROM trials")
    # an NCT page with the same title + sponsor arrives: the loose page moves into its trial
    nct = parsed_page("nct", TrialRecord(nct_id="NCT00000001", brief_title=title,
                                         lead_sponsor="Acme", conditions=("X",)))
    trials = link_pages([LinkPage(p.page_id, p.source, p.fetched_at, p.record) for p in (loose, nct)])
    (trial,) = trials
    result = load_batch(
        fresh_db, new_pages=[nct], trials=trials, stale_trial_ids=[old_id],
        page_trial_ids={loose.page_id: trial.trial_id, nct.page_id: trial.trial_id},
    )
    assert result.trials_removed == 1
    assert rows(fresh_db, "SELECT trial_id, nct_id, page_count FROM trials") == [
        (trial.trial_id, "NCT00000001", 2)]
    assert rows(fresh_db, "SELECT DISTINCT trial_id FROM pages") == [(trial.trial_id,)]


def test_a_failing_load_leaves_the_warehouse_as_it_was(fresh_db, parsed_page, snapshot):
    load_batch(fresh_db, **plan([parsed_page("a", RECORD)]))
    before = snapshot(fresh_db)
    # an invalid code slips past validation: the CHECK constraint fails mid-transaction,
    # after the new page rows were already inserted
    bad = parsed_page("b", TrialRecord(nct_id="NCT00000009", overall_status="SOMETIMES"))
    with pytest.raises(duckdb.ConstraintException):
        load_batch(fresh_db, **plan([parsed_page("c", None, status="rejected", error="x"), bad]))
    assert snapshot(fresh_db) == before
    # the connection is usable again afterwards
    load_batch(fresh_db, **plan([parsed_page("d", None, status="rejected", error="y")]))
    assert rows(fresh_db, "SELECT count(*) FROM pages") == [(2,)]


def test_timezone_aware_fetch_times_are_stored_as_utc(fresh_db, parsed_page):
    aware = dt.datetime(2025, 1, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    load_batch(fresh_db, **plan([parsed_page("a", None, status="rejected", fetched_at=aware)]))
    assert rows(fresh_db, "SELECT fetched_at FROM pages") == [(dt.datetime(2025, 1, 1, 12, 0),)]


def test_reparsed_pages_replace_their_rows(fresh_db, parsed_page):
    page = parsed_page("a", RECORD)
    load_batch(fresh_db, **plan([page]), parser_version="1")
    reparsed = dataclasses.replace(page, parse_status="partial", parse_error="missing: x",
                                   record=dataclasses.replace(RECORD, brief_title="Better"))
    load_batch(fresh_db, **plan([reparsed]), replaced_page_ids=[page.page_id], parser_version="2")
    assert rows(fresh_db, "SELECT parse_status, parse_error, parser_version FROM pages") == [
        ("partial", "missing: x", "2")]
    ((stored,),) = rows(fresh_db, "SELECT record FROM page_records")
    assert record_from_json(stored).brief_title == "Better"
    assert rows(fresh_db, "SELECT brief_title FROM trials") == [("Better",)]
