"""Survivorship rules (pipeline.golden): freshest, then most complete, then source order."""

import datetime as dt

from pipeline.golden import SourcePage, survive
from pipeline.models import TrialRecord

T0 = dt.datetime(2025, 1, 1)


def page(pid, source="veeva", fetched=T0, url=None, **fields):
    return SourcePage(pid, source, fetched, TrialRecord(**fields), url or f"https://x/{pid}")


def test_freshest_page_wins_and_fills_gaps_from_older_ones():
    old = page("old", fetched=T0, brief_title="Old", conditions=("AML",), enrollment=30,
               enrollment_type="ESTIMATED")
    new = page("new", fetched=T0 + dt.timedelta(days=1), brief_title="New", enrollment=12)
    golden = survive([old, new])
    assert golden.record.brief_title == "New"
    assert (golden.record.enrollment, golden.record.enrollment_type) == (12, None)  # one unit
    assert golden.record.conditions == ("AML",)
    assert golden.sources["brief_title"] == "new" and golden.sources["conditions"] == "old"
    # the group came from the new page, which shows no enrollment type: none is recorded
    assert golden.sources["enrollment"] == "new" and "enrollment_type" not in golden.sources


def test_shown_update_date_beats_a_later_fetch():
    dated = page("dated", fetched=T0, last_update_date=dt.date(2025, 6, 1), overall_status="COMPLETED")
    later = page("later", fetched=T0 + dt.timedelta(days=30), overall_status="RECRUITING")
    assert survive([later, dated]).record.overall_status == "COMPLETED"


def test_equally_fresh_pages_give_the_most_complete_value_then_source_order():
    short = page("a", source="veeva", brief_summary="Short.")
    long = page("b", source="clinconnect", brief_summary="A longer summary of the same trial.")
    golden = survive([short, long])
    assert golden.record.brief_summary == "A longer summary of the same trial."
    assert golden.sources["brief_summary"] == "b"
    tie_v = page("z", source="veeva", acronym="ABC")
    tie_c = page("a", source="clinconnect", acronym="XYZ")
    assert survive([tie_c, tie_v]).record.acronym == "ABC"  # Veeva before ClinConnect


def test_conflicts_compare_current_versions_only_and_ignore_case_and_punctuation():
    v1 = page("v1", url="https://v/1", fetched=T0, overall_status="RECRUITING", lead_sponsor="Acme, Inc")
    v2 = page("v2", url="https://v/1", fetched=T0 + dt.timedelta(days=2), overall_status="COMPLETED",
              lead_sponsor="Acme, Inc")
    c = page("c", source="clinconnect", url="https://c/1", fetched=T0 + dt.timedelta(days=1),
             overall_status="COMPLETED", lead_sponsor="ACME INC")
    assert survive([v1, v2, c]).conflicts == ()
    c2 = page("c2", source="clinconnect", url="https://c/1", fetched=T0 + dt.timedelta(days=3),
              overall_status="TERMINATED", lead_sponsor="ACME INC")
    assert survive([v1, v2, c, c2]).conflicts == (
        ("overall_status", "COMPLETED", "v2"), ("overall_status", "TERMINATED", "c2"))


def test_a_single_page_is_its_own_golden_record():
    only = page("p", brief_title="T", nct_id="nct 0000 0001", phases=("PHASE1",))
    golden = survive([only], nct_id="NCT00000001")
    assert golden.record.nct_id == "NCT00000001" and golden.record.phases == ("PHASE1",)
    assert golden.sources == {"brief_title": "p", "nct_id": "p", "phases": "p"}
    assert golden.page_ids == ("p",) and golden.conflicts == ()


def test_without_conflicts_the_golden_record_and_sources_are_the_same():
    pages = [page(f"p{i}", source=("veeva", "clinconnect")[i % 2], url=f"https://x/{i % 3}",
                  fetched=T0 + dt.timedelta(hours=i), overall_status=("RECRUITING", "COMPLETED")[i % 2],
                  brief_title=f"Title {i % 4}", conditions=("AML",) * (i % 2))
             for i in range(9)]
    full, quick = survive(pages), survive(pages, conflicts=False)
    assert full.conflicts  # the three URLs' current versions disagree on status and title
    assert quick.conflicts == ()
    assert (quick.record, quick.sources, quick.page_ids) == (full.record, full.sources, full.page_ids)
