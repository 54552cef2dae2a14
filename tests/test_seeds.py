"""Every field of the five real captures, as a person reading them would fill it in."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest import read_page_file
from pipeline.models import Arm, Contact, Identifier, Intervention, Location
from pipeline.parse import parse_page

SEEDS = Path(__file__).resolve().parent.parent / "raw" / "sample" / "seeds"


def parse_seed(prefix: str):
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return parse_page(read_page_file(path))


def criteria(record, ctype):
    return [(c.ordinal, c.parent_ordinal, c.text) for c in record.criteria if c.criterion_type == ctype]


def test_seed_000_veeva_car_nk_cd123():
    page = parse_seed("000")
    assert (page.source, page.parse_status, page.parse_error) == ("veeva", "partial", "missing fields: nct_id")
    r = page.record
    assert r.nct_id is None
    assert r.brief_title == "Clinical Trial of CD123-targeted CAR-NK Therapy for Relapse/refractory AML or BPDCN"
    assert r.lead_sponsor == "Chongqing Precision Biotech"
    assert (r.overall_status, r.phases, r.study_type) == ("RECRUITING", ("PHASE1",), "INTERVENTIONAL")
    assert r.conditions == (
        "AML (Acute Myeloid Leukemia)",
        "BPDCN (blastic Plasmacytoid Dendritic Cell Neoplasm)",
    )
    assert r.interventions == (Intervention("DRUG", "Anti-CD123 CAR NK cells"),)
    assert r.funder_types == ("INDUSTRY",)
    assert r.identifiers == ()
    assert r.brief_summary.startswith("This is a clincal trial initiated by investigator")
    assert "1×10^7 CAR-positive cells/kg, 3×10^7 CAR-positive cells/kg, and 5×10^7" in r.detailed_description
    assert (r.enrollment, r.enrollment_type, r.sex) == (30, "ESTIMATED", "ALL")
    assert (r.min_age, r.max_age, r.min_age_years, r.max_age_years) == ("18 Years", "75 Years", 18.0, 75.0)
    assert r.healthy_volunteers is False
    assert (r.primary_purpose, r.allocation, r.intervention_model, r.masking) == (
        "TREATMENT", "NA", "SINGLE_GROUP", "NONE")
    assert r.arms == (Arm("CD123 CAR-NK cells", "EXPERIMENTAL", None, ("Drug: Anti-CD123 CAR NK cells",)),)
    assert r.contacts == (Contact("central_contact", "Wei Jia", "Professor"),)
    assert r.locations == ()
    inc = criteria(r, "inclusion")
    assert len(inc) == 18
    assert inc[0] == (1, None, "Patients of any gender, aged between 18 and 75 years (inclusive);")
    assert inc[3] == (4, None, "For AML patients:")
    assert [c[1] for c in inc[4:6]] == [4, 4]  # the two bullets under "(1) For AML patients:"
    assert inc[4][2].startswith("Relapsed refers to the reappearance")
    assert inc[7] == (8, None, "Expected survival time of more than 12 weeks;")
    assert inc[8] == (9, None, "ECOG score of 0-2 (Appendix 2);")
    assert inc[11][2] == ("Blood routine: white blood cells >1.0×10^9/L, neutrophils >0.5×10^9/L, "
                          "lymphocytes >0.5×10^9/L, platelets >50×10^9/L;")
    assert inc[15] == (16, 15, "5.0×ULN);")  # the capture split "≤5.0×ULN" into a sub-bullet
    exc = criteria(r, "exclusion")
    assert len(exc) == 14
    assert exc[4] == (5, None, "Presence of any of the following cardiac diseases:")
    assert [c[1] for c in exc[5:9]] == [5, 5, 5, 5]
    assert exc[13] == (14, None, "Other conditions that the investigator deems unsuitable for participation in the study.")


def test_seed_001_veeva_il3_car_t():
    page = parse_seed("001")
    assert (page.source, page.parse_status, page.parse_error) == ("veeva", "ok", None)
    r = page.record
    assert r.nct_id == "NCT04599543"
    assert r.brief_title == ("IL3 CAR-T Cell Therapy for Patients With CD123 Positive Relapsed and/or "
                             "Refractory Acute Myeloid Leukemia")
    assert r.lead_sponsor == "Zhejiang University"
    assert (r.overall_status, r.phases) == ("NOT_YET_RECRUITING", ("EARLY_PHASE1",))
    assert r.identifiers == (Identifier("nct", "NCT04599543"), Identifier("org_study_id", "CD123-001"))
    assert r.funder_types == ("OTHER", "INDUSTRY")
    assert r.conditions == ("Acute Myeloid Leukemia",)
    assert r.interventions == (Intervention("DRUG", "IL3 CAR T-cells"),)
    assert (r.enrollment, r.enrollment_type, r.sex) == (36, "ESTIMATED", "ALL")
    assert (r.min_age, r.max_age, r.min_age_years) == (None, None, None)  # no Ages on this page
    assert r.arms == (Arm("Administration of IL3 CAR T-cells", "EXPERIMENTAL", None, ("Drug: IL3 CAR T-cells",)),)
    assert r.contacts == (
        Contact("central_contact", "Yongxian Hu", "PhD"),
        Contact("central_contact", "He Huang", "PhD"),
    )
    inc = criteria(r, "inclusion")
    assert len(inc) == 13
    assert inc[1] == (2, None, "Relapsed or refractory CD123+ AML (meeting one of the following conditions):")
    assert inc[2:6] == [
        (3, 2, "CR not achieved after standardized chemotherapy;"),
        (4, 2, "CR achieved following the first induction, but CR duration is less than 12 months;"),
        (5, 2, "Ineffectively after first or multiple remedial treatments;"),
        (6, 2, "2 or more relapses;"),
    ]
    assert inc[11] == (12, None, "ECOG performance status 0 to 2;")
    exc = criteria(r, "exclusion")
    assert len(exc) == 12
    assert exc[0] == (1, None, "Subjects with any of the following exclusion criteria were not eligible for this trial:")
    assert exc[1][1] is None  # list items after an intro paragraph stay top-level
    assert exc[8] == (9, None, "Creatinine>2.5mg/dl, or ALT / AST > 3 times of normal amounts, or bilirubin>2.0 mg/dl;")
    assert exc[10] == (11, None, "Patients with HIV infection;")


def test_seed_002_veeva_car_nk_cd19_completed():
    page = parse_seed("002")
    assert (page.source, page.parse_status) == ("veeva", "ok")
    r = page.record
    assert r.nct_id == "NCT05563545"
    assert r.lead_sponsor == "Shanghai Simnova Biotechnology"
    assert (r.overall_status, r.phases) == ("COMPLETED", ("PHASE1",))
    assert r.interventions == (Intervention("BIOLOGICAL", "CAR-NK-CD19 Cells"),)
    assert r.identifiers[1] == Identifier("org_study_id", "XB-NK-1003")
    assert (r.enrollment, r.enrollment_type) == (2, "ACTUAL")
    assert (r.min_age, r.max_age, r.min_age_years, r.max_age_years) == ("3 Years", None, 3.0, None)
    assert "The initial dose is 1.0 × 10^7 CAR positive NK cells/kg" in r.detailed_description
    assert r.arms == (Arm("CAR-NK-CD19 Cells", "EXPERIMENTAL",
                          "After preconditioning with chemotherapy, CAR-NK-CD19 Cells will be evaluated.",
                          ("Biological: CAR-NK-CD19 Cells",)),)
    assert r.contacts == ()
    assert len(criteria(r, "inclusion")) == 6 and len(criteria(r, "exclusion")) == 11
    assert criteria(r, "inclusion")[0] == (
        1, None, "Age ≥12 years in the single-dose exploration phase, age ≥3 years in the dose exploration phase, both sexes;")
    assert criteria(r, "exclusion")[-1][2] == (
        "Other conditions determined by Investigator which are not suitable for participation in the study")


def test_seed_003_clinconnect_nk_cll1_cd33():
    page = parse_seed("003")
    assert (page.source, page.parse_status, page.parse_error) == ("clinconnect", "partial", "missing fields: nct_id")
    r = page.record
    assert r.brief_title == "Natural Killer(NK) Cell Therapy Targeting CLL1 or CD33 in Acute Myeloid Leukemia"
    assert r.lead_sponsor == "Zhejiang University"
    assert r.overall_status == "RECRUITING"
    assert r.sex == "ALL"
    assert str(r.start_date) == "2024-04-11"
    assert str(r.last_update_date) == "2025-06-14"
    assert r.completion_date is None  # "Not reported"
    # The site-written summary and sponsor blurb are not trial data.
    assert r.brief_summary is None and r.detailed_description is None
    assert r.keywords == ()
    assert r.locations == (Location(None, "Hangzhou", "Zhejiang", "China"),)
    assert Contact("overall_official", "He Huang", "MD", "First Affiliated Hospital of Zhejiang University",
                   title="Principal Investigator") in r.contacts
    inc = criteria(r, "inclusion")
    assert inc[0] == (1, None, "≥18 years old.")
    assert inc[4] == (5, None, "Adequate organ and marrow function, as defined below:")
    assert inc[5][2].startswith("Blood creatinine (Cr) ≤ 2 x ULN")
    assert len(inc) == 9
    exc = criteria(r, "exclusion")
    assert exc[0] == (1, None, "Allergic to drug used in this study.")
    assert exc[7][2].startswith("History of other malicnant tumors")  # stray "." before the text removed
    assert len(exc) == 14


def test_seed_004_veeva_partial_capture():
    page = parse_seed("004")
    assert page.source == "veeva"
    assert page.parse_status == "partial"
    assert page.parse_error == "missing fields: brief_title, overall_status, nct_id"
    r = page.record
    assert r.brief_title is None and r.lead_sponsor is None and r.overall_status is None
    assert r.conditions == () and r.interventions == ()
    assert r.brief_summary.startswith("This study is a single-arm, open-label, dose-escalation clinical trial")
    assert r.detailed_description.count("\n") == 3  # four paragraphs kept apart
    assert r.enrollment == 18  # only the "18 participants in 1 patient group" line shows it
    assert r.contacts == (
        Contact("central_contact", "xianmin song", "Doctor"),
        Contact("central_contact", "jiahua niu", "Master"),
    )
    inc = criteria(r, "inclusion")
    assert [c[2] for c in inc[:3]] == [
        "Age 18-70 years old, gender is not limited;",
        "The expected survival time exceeds 12 weeks;",
        "ECOG score 0 to 2 points;",
    ]
    assert len(inc) == 7
    assert criteria(r, "exclusion") == []


@pytest.mark.parametrize("prefix", ["000", "001", "002", "003", "004"])
def test_seed_text_is_not_polluted_by_site_chrome(prefix):
    r = parse_seed(prefix).record
    blob = repr(r)
    for chrome in ("Loading...", "Veeva Systems", "ClinConnect Summary", "Patients applied",
                   "Data sourced from", "prestigious research institution"):
        assert chrome not in blob
