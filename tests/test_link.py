"""Linking pages into trials and merging their records (pure functions, hand-built records)."""

import datetime as dt
import random
import re

import pytest

from pipeline.link import (
    LinkPage,
    link_pages,
    merge_records,
    normalize_nct,
    trial_id_for,
)
from pipeline.models import Arm, Criterion, Identifier, TrialRecord

T0 = dt.datetime(2025, 1, 1)


def page(pid: str, fetched: dt.datetime = T0, source: str = "veeva", **fields) -> LinkPage:
    org = fields.pop("org", None)
    idents = tuple(fields.pop("identifiers", ()))
    if org:
        idents += (Identifier("org_study_id", org),)
    return LinkPage(pid, source, fetched, TrialRecord(identifiers=idents, **fields))


def by_pages(trials) -> dict[frozenset[str], object]:
    return {frozenset(t.page_ids): t for t in trials}


@pytest.mark.parametrize("text", [
    "NCT04599543", "nct04599543", "NCT 0459 9543", "NCT-04599543", "see NCT04599543.",
    "Nct 04599543",
])
def test_normalize_nct_accepts_spacing_and_case(text):
    assert normalize_nct(text) == "NCT04599543"


@pytest.mark.parametrize("text", [None, "", "NCT1234567", "NCT045995431", "04599543", "ABC"])
def test_normalize_nct_rejects_non_ids(text):
    assert normalize_nct(text) is None


def test_trial_id_is_T_plus_12_hex_and_deterministic():
    tid = trial_id_for("nct:NCT04599543")
    assert re.fullmatch(r"T[0-9a-f]{12}", tid)
    assert tid == trial_id_for("nct:NCT04599543")
    assert tid != trial_id_for("nct:NCT04599544")


def test_pages_sharing_an_nct_id_in_any_spelling_are_one_trial():
    trials = link_pages([
        page("a", nct_id="nct04599543", brief_title="IL3 CAR-T"),
        page("b", source="clinconnect", nct_id="NCT 0459 9543"),
        page("c", identifiers=[Identifier("nct", "NCT04599543")]),
    ])
    assert len(trials) == 1
    (trial,) = trials
    assert set(trial.page_ids) == {"a", "b", "c"}
    assert trial.record.nct_id == "NCT04599543"
    assert trial.trial_id == trial_id_for("nct:NCT04599543")
    assert trial.sources == ("clinconnect", "veeva")


def test_page_without_nct_joins_by_org_study_id_and_sponsor():
    trials = link_pages([
        page("n", nct_id="NCT00000001", lead_sponsor="Zhejiang University", org="CD123-001"),
        page("x", lead_sponsor="ZHEJIANG UNIVERSITY", org="CD123-001", brief_title="Other title"),
    ])
    assert [set(t.page_ids) for t in trials] == [{"n", "x"}]


def test_page_without_nct_joins_by_normalized_title_and_sponsor():
    trials = link_pages([
        page("n", nct_id="NCT00000001", lead_sponsor="Acme Bio", brief_title="CAR-NK Therapy for AML"),
        page("x", lead_sponsor="ACME BIO", brief_title="car nk therapy for  AML"),
    ])
    assert [set(t.page_ids) for t in trials] == [{"n", "x"}]


def test_same_title_with_other_sponsor_does_not_join():
    trials = link_pages([
        page("n", nct_id="NCT00000001", lead_sponsor="Acme", brief_title="Study A"),
        page("x", lead_sponsor="Other Org", brief_title="Study A"),
    ])
    assert len(trials) == 2


def test_a_title_alone_is_not_enough():
    trials = link_pages([page("a", brief_title="Study A"), page("b", brief_title="Study A")])
    assert len(trials) == 2


def test_two_nct_ids_never_merge_even_with_shared_keys():
    trials = link_pages([
        page("a", nct_id="NCT00000001", lead_sponsor="Acme", org="X-1", brief_title="Same"),
        page("b", nct_id="NCT00000002", lead_sponsor="Acme", org="X-1", brief_title="Same"),
        # shares the sponsor's id with both: it may join one of them, never bridge them
        page("c", lead_sponsor="Acme", org="X-1"),
    ])
    assert len(trials) == 2
    assert sorted(t.record.nct_id for t in trials) == ["NCT00000001", "NCT00000002"]
    assert not any({"a", "b"} <= set(t.page_ids) for t in trials)


def test_pages_without_nct_group_together_and_get_a_page_based_id():
    trials = link_pages([
        page("p2", fetched=T0 + dt.timedelta(days=1), lead_sponsor="Acme", org="X-1"),
        page("p1", fetched=T0, lead_sponsor="Acme", org="X-1", brief_title="Trial"),
        page("lonely"),
    ])
    groups = by_pages(trials)
    grouped = groups[frozenset({"p1", "p2"})]
    # anchored on the group's first page id
    assert grouped.trial_id == trial_id_for("page:p1")
    assert groups[frozenset({"lonely"})].trial_id == trial_id_for("page:lonely")


def test_linking_does_not_depend_on_input_order():
    pages = [
        page("a", nct_id="NCT00000001", lead_sponsor="Acme", org="X-1"),
        page("b", lead_sponsor="Acme", org="X-1"),
        page("c", lead_sponsor="Acme", brief_title="Other"),
        page("d", nct_id="NCT00000002"),
        page("e"),
    ]
    expected = link_pages(pages)
    for seed in range(5):
        shuffled = pages[:]
        random.Random(seed).shuffle(shuffled)
        assert link_pages(shuffled) == expected


def test_merge_prefers_freshest_page_and_fills_gaps():
    old = page("old", fetched=T0 + dt.timedelta(days=30), nct_id="NCT00000001",
               brief_title="Old title", overall_status="RECRUITING", enrollment=30,
               enrollment_type="ESTIMATED", conditions=("AML",),
               arms=(Arm("Arm A", "EXPERIMENTAL"),), min_age="18 Years", min_age_years=18.0)
    new = page("new", fetched=T0, source="clinconnect", nct_id="NCT00000001",
               brief_title="New title", overall_status="COMPLETED",
               last_update_date=dt.date(2025, 6, 14), enrollment=12,
               criteria=(Criterion("inclusion", 1, None, "Adults"),))
    (trial,) = link_pages([old, new])
    r = trial.record
    assert trial.page_ids == ("new", "old")  # a shown update date beats a later fetch
    assert r.brief_title == "New title" and r.overall_status == "COMPLETED"
    # enrollment and its type come from the same page
    assert (r.enrollment, r.enrollment_type) == (12, None)
    assert r.conditions == ("AML",) and r.arms == (Arm("Arm A", "EXPERIMENTAL"),)
    assert r.criteria == (Criterion("inclusion", 1, None, "Adults"),)
    assert (r.min_age, r.min_age_years) == ("18 Years", 18.0)


def test_merge_without_dates_uses_fetched_at_then_page_id():
    a = page("a", fetched=T0, nct_id="NCT00000001", brief_title="A")
    b = page("b", fetched=T0 + dt.timedelta(hours=1), nct_id="NCT00000001", brief_title="B")
    c = page("c", fetched=T0 + dt.timedelta(hours=1), nct_id="NCT00000001", brief_title="C")
    (trial,) = link_pages([a, c, b])
    assert trial.page_ids == ("b", "c", "a")
    assert trial.record.brief_title == "B"


def test_merge_keeps_false_and_zero_values():
    merged = merge_records([
        TrialRecord(healthy_volunteers=False, enrollment=0),
        TrialRecord(healthy_volunteers=True, enrollment=5, enrollment_type="ACTUAL"),
    ])
    assert merged.healthy_volunteers is False
    assert merged.enrollment == 0


def test_merge_needs_records():
    with pytest.raises(ValueError):
        merge_records([])


def test_duplicate_page_ids_count_once():
    (trial,) = link_pages([page("a", nct_id="NCT00000001")] * 2)
    assert trial.page_ids == ("a",)
