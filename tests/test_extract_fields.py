"""Single-field parsers and the criteria item parser."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.clean.outline import Line, text_outline
from pipeline.extract.criteria import parse_criteria, strip_marker
from pipeline.extract.fields import (
    find_nct_ids,
    parse_age_range,
    parse_date,
    parse_enrollment,
    parse_intervention,
    parse_place,
    split_name_credentials,
)
from pipeline.models import Intervention
from pipeline.vocab import phases_from_text, to_code


def test_nct_ids_are_normalized():
    assert find_nct_ids("NCT 0459 9543 / nct04599543 / https://clinconnect.io/trials/NCT05563545") == [
        "NCT04599543", "NCT05563545"]
    assert find_nct_ids("NCT123") == []
    assert find_nct_ids("XNCT04599543") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Apr 11, 2024", dt.date(2024, 4, 11)),
        ("Current as of June 14, 2025", dt.date(2025, 6, 14)),
        ("March 2007", dt.date(2007, 3, 1)),
        ("2017-02", dt.date(2017, 2, 1)),
        ("2017-11-28", dt.date(2017, 11, 28)),
        ("11 April 2024", dt.date(2024, 4, 11)),
        ("Sept. 3, 2020", dt.date(2020, 9, 3)),
        ("Not reported", None),
        ("February 30, 2020", None),
    ],
)
def test_parse_date(text, expected):
    assert parse_date(text) == expected


def test_enrollment_and_ages():
    assert parse_enrollment("30 estimated patients") == (30, "ESTIMATED")
    assert parse_enrollment("2 patients") == (2, "ACTUAL")
    assert parse_enrollment("1,200 participants") == (1200, "ACTUAL")
    assert parse_enrollment("n/a") == (None, None)
    # thousands separators of other locales; a decimal is not a head count
    assert parse_enrollment("1.200 estimated patients") == (1200, "ESTIMATED")
    assert parse_enrollment("1 200 participants") == (1200, "ACTUAL")
    assert parse_enrollment("12.5 patients") == (None, None)
    assert parse_enrollment("1,2345 patients") == (None, None)
    assert parse_age_range("18 to 75 years old") == ("18 Years", "75 Years", 18.0, 75.0)
    assert parse_age_range("3+ years old") == ("3 Years", None, 3.0, None)
    assert parse_age_range("up to 65 years old") == (None, "65 Years", None, 65.0)
    assert parse_age_range("6 months to 17 years old") == ("6 Months", "17 Years", 0.5, 17.0)
    assert parse_age_range("up to 28 days old")[3] == pytest.approx(28 / 365.25, abs=1e-4)


def test_vocabulary_mapping():
    assert to_code("overall_status", "Enrolling") == "RECRUITING"
    assert to_code("overall_status", "Not yet enrolling") == "NOT_YET_RECRUITING"
    assert to_code("overall_status", "Active, not recruiting") == "ACTIVE_NOT_RECRUITING"
    assert to_code("overall_status", "Unknown status") == "UNKNOWN"
    assert to_code("masking", "Quadruple (Participant, Care Provider, Investigator, Outcomes Assessor)") == "QUADRUPLE"
    assert to_code("allocation", "N/A") == "NA"
    assert to_code("sex", "ALL") == "ALL"
    assert to_code("arm_type", "Placebo Comparator group") == "PLACEBO_COMPARATOR"
    assert to_code("overall_status", "Whatever") is None
    assert phases_from_text("Phase 1/Phase 2") == ("PHASE1", "PHASE2")
    assert phases_from_text("Early Phase 1") == ("EARLY_PHASE1",)
    assert phases_from_text("Phase 2/3") == ("PHASE2", "PHASE3")


def test_people_and_places():
    assert split_name_credentials("Yongxian Hu, PhD") == ("Yongxian Hu", "PhD")
    assert split_name_credentials("John Smith, MD, PhD") == ("John Smith", "MD, PhD")
    assert split_name_credentials("Smith, Jr.") == ("Smith, Jr.", None)
    assert split_name_credentials("Turgut Donmez, operator MD") == ("Turgut Donmez", "operator MD")
    assert parse_place("Hangzhou, Zhejiang, China") == ("Hangzhou", "Zhejiang", "China")
    assert parse_place("Seoul, Korea, Republic of") == ("Seoul", None, "Korea, Republic of")
    assert parse_place("Boston, Massachusetts 02115, United States") == ("Boston", "Massachusetts", "United States")
    assert parse_place("First Affiliated Hospital of Zhejiang University") is None
    assert parse_intervention("Drug: Anti-CD123 CAR NK cells") == Intervention("DRUG", "Anti-CD123 CAR NK cells")
    assert parse_intervention("Mystery: thing") == Intervention(None, "Mystery: thing")


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("• 1. Blood creatinine", "Blood creatinine"),
        ("(1) For AML patients:", "For AML patients:"),
        ("2 or more relapses;", "2 or more relapses;"),
        ("2.0 × ULN", "2.0 × ULN"),
        ("6.Females of childbearing potential", "Females of childbearing potential"),
        ("a. Systemic steroid", "Systemic steroid"),
        ("iv) prior therapy", "prior therapy"),
        ("* Adequate organ function", "Adequate organ function"),
    ],
)
def test_strip_marker(text, stripped):
    assert strip_marker(text)[0] == stripped


def test_criteria_text_numbering_nests_by_style():
    lines = list(text_outline(
        "Inclusion Criteria:\n1. Adults\n2. Organ function as below:\na. ANC > 1.5\nb. Platelets > 100\n"
        "3. Consent\nExclusion Criteria:\n• Pregnancy\n• HIV\n").lines)
    got = [(c.criterion_type, c.ordinal, c.parent_ordinal, c.text) for c in parse_criteria(lines)]
    assert got == [
        ("inclusion", 1, None, "Adults"),
        ("inclusion", 2, None, "Organ function as below:"),
        ("inclusion", 3, 2, "ANC > 1.5"),
        ("inclusion", 4, 2, "Platelets > 100"),
        ("inclusion", 5, None, "Consent"),
        ("exclusion", 1, None, "Pregnancy"),
        ("exclusion", 2, None, "HIV"),
    ]


def test_criteria_list_markup_nests_by_depth_and_joins_continuations():
    lines = [
        Line("Age 18 or older", 1, 1, True),
        Line("Adequate labs:", 1, 2, True),
        Line("ANC ≥ 1.0×109/L", 2, 3, True),
        Line("measured at", 2, 3, False),
        Line("screening", 2, 3, False),
        Line("Consent", 1, 4, True),
    ]
    got = [(c.ordinal, c.parent_ordinal, c.text) for c in parse_criteria(lines, "inclusion")]
    assert got == [(1, None, "Age 18 or older"), (2, None, "Adequate labs:"),
                   (3, 2, "ANC ≥ 1.0×10^9/L measured at screening"), (4, None, "Consent")]
