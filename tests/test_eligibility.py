"""Structured eligibility extraction: the seeds' criteria exactly, spelling variants, conventions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.eligibility import (
    FLAGS,
    VARIABLES,
    Constraint,
    analyze,
    benchmark,
    extract_constraints,
    flags,
    profile_criteria,
)
from pipeline.models import Criterion

LABELS = Path(__file__).parent / "fixtures" / "eligibility_labels.jsonl"
SEED_ITEMS = [d for d in map(json.loads, LABELS.read_text(encoding="utf-8").splitlines()) if d["id"].startswith("seed")]


def rows(ctype: str, text: str) -> list[tuple]:
    """Compact, comparable view of the extracted constraints."""
    return [
        (c.variable, c.lower, c.lower_inclusive, c.upper, c.upper_inclusive, c.unit, c.negated, c.condition,
         c.antigen, c.group)
        for c in extract_constraints(ctype, text)
    ]


def one(ctype: str, text: str) -> Constraint:
    cs = extract_constraints(ctype, text)
    assert len(cs) == 1, cs
    return cs[0]


def _r(t: tuple) -> tuple:
    """Floats rounded so converted values compare exactly."""
    return tuple(round(v, 4) if isinstance(v, float) else v for v in t)


def _approx_row(r: dict) -> tuple:
    return (r["variable"], r["lower"], r["lower_inclusive"], r["upper"], r["upper_inclusive"], r["unit"],
            r["negated"], r["condition"], r["antigen"], r["group"])


@pytest.mark.parametrize("item", SEED_ITEMS, ids=[d["id"] for d in SEED_ITEMS])
def test_seed_items_match_their_labels_exactly(item: dict) -> None:
    cons, fl = analyze(item["criterion_type"], item["text"])
    got = [(c.variable, c.lower, c.lower_inclusive, c.upper, c.upper_inclusive, c.unit, c.negated, c.condition,
            c.antigen, c.group) for c in cons]
    want = [_approx_row(r) for r in item["constraints"]]
    assert sorted(map(_r, got), key=repr) == sorted(map(_r, want), key=repr)
    assert sorted(fl) == sorted(item["flags"])
    for c in cons:  # every row quotes the text it came from
        assert c.text and c.text in " ".join(item["text"].split())


def test_seed_items_cover_all_five_pages() -> None:
    assert {d["source"] for d in SEED_ITEMS} == {f"seed:{i:03d}" for i in range(5)}
    assert len(SEED_ITEMS) >= 100


# ---------------------------------------------------------------- seed 000 (as the brief states it)
def test_seed000_inclusion_facts() -> None:
    assert rows("inclusion", "ECOG score of 0-2 (Appendix 2);") == [
        ("ecog", 0.0, True, 2.0, True, None, False, None, None, None)]
    assert rows("inclusion", "Expected survival time of more than 12 weeks;") == [
        ("life_expectancy", 84.0, False, None, None, "days", False, None, None, None)]
    blood = rows("inclusion", "Blood routine: white blood cells >1.0×109/L, neutrophils >0.5×109/L, "
                              "lymphocytes >0.5×109/L, platelets >50×109/L;")
    assert [(r[0], r[1], r[2], r[5]) for r in blood] == [
        ("wbc", 1.0, False, "10^9/L"), ("neutrophils", 0.5, False, "10^9/L"),
        ("lymphocytes", 0.5, False, "10^9/L"), ("platelets", 50.0, False, "10^9/L")]
    assert rows("inclusion", "Cardiac function: echocardiography indicates a left ventricular ejection fraction "
                             "≥50%, and no significant abnormalities on electrocardiogram;") == [
        ("lvef", 50.0, True, None, None, "%", False, None, None, None)]
    assert rows("inclusion", "Renal function: serum creatinine ≤2.0×ULN;") == [
        ("creatinine", None, None, 2.0, True, "xULN", False, None, None, None)]
    assert rows("inclusion", "Liver function: ALT and AST ≤3.0×ULN (for patients with liver invasion ≤5.0×ULN);") == [
        ("alt", None, None, 3.0, True, "xULN", False, None, None, None),
        ("ast", None, None, 3.0, True, "xULN", False, None, None, None),
        ("alt", None, None, 5.0, True, "xULN", False, "liver involvement", None, None),
        ("ast", None, None, 5.0, True, "xULN", False, "liver involvement", None, None)]
    assert rows("inclusion", "Total bilirubin ≤2.0×ULN (for patients with Gilbert's syndrome ≤3.0×ULN);") == [
        ("total_bilirubin", None, None, 2.0, True, "xULN", False, None, None, None),
        ("total_bilirubin", None, None, 3.0, True, "xULN", False, "Gilbert's syndrome", None, None)]
    assert rows("inclusion", "Blood oxygen saturation >92%.") == [
        ("oxygen_saturation", 92.0, False, None, None, "%", False, None, None, None)]
    assert rows("inclusion", "Patients of any gender, aged between 18 and 75 years (inclusive);") == [
        ("age", 18.0, True, 75.0, True, "years", False, None, None, None)]
    c = one("inclusion", "Positive expression of CD123 on tumor cells detected by flow cytometry;")
    assert (c.variable, c.antigen, c.unit, c.condition) == ("antigen_expression", "CD123", "positive", "flow cytometry")


def test_seed000_exclusion_facts() -> None:
    assert flags("exclusion", "Presence of active central nervous system invasion during screening;") == (
        "active_cns_involvement",)
    c = one("exclusion", "Receipt of anti-tumor therapies prior to screening, including chemotherapy, targeted therapy, "
                         "or other experimental drug treatments within 14 days or at least 5 half-lives (whichever is "
                         "shorter), except for those who have confirmed disease progression after treatment;")
    assert (c.variable, c.upper, c.upper_inclusive, c.unit, c.negated) == ("washout_antitumor", 14.0, True, "days", True)
    c = one("exclusion", "Receipt of live attenuated vaccines within 4 weeks prior to screening;")
    assert (c.variable, c.upper, c.negated) == ("washout_vaccine", 28.0, True)
    assert flags("exclusion", "Pregnant or breastfeeding women, as well as male or female subjects who plan to have "
                              "children within 1 year after receiving CAR-NK cell infusion;") == (
        "pregnancy_or_breastfeeding",)


def test_seed001_unit_conversions_and_exclusion_bounds() -> None:
    got = rows("inclusion", "Total bilirubin ≤ 51 umol/L, ALT and AST ≤ 3 times of upper limit ofnormal, "
                            "creatinine ≤ 176.8 umol/L;")
    assert got == [
        ("total_bilirubin", None, None, 2.98, True, "mg/dL", False, None, None, None),  # 51 / 17.104
        ("alt", None, None, 3.0, True, "xULN", False, None, None, None),
        ("ast", None, None, 3.0, True, "xULN", False, None, None, None),
        ("creatinine", None, None, 2.0, True, "mg/dL", False, None, None, None)]  # 176.8 / 88.42
    got = rows("exclusion", "Creatinine>2.5mg/dl, or ALT / AST > 3 times of normal amounts, or bilirubin>2.0 mg/dl;")
    assert got == [
        ("creatinine", 2.5, False, None, None, "mg/dL", True, None, None, None),
        ("alt", 3.0, False, None, None, "xULN", True, None, None, None),
        ("ast", 3.0, False, None, None, "xULN", True, None, None, None),
        ("total_bilirubin", 2.0, False, None, None, "mg/dL", True, None, None, None)]
    assert rows("inclusion", "The number of primordial cells in bone marrow is > 5% (by morphology), and/or > 0.01% "
                             "(by flowcytometry);") == [
        ("bone_marrow_blasts", 5.0, False, None, None, "%", False, "morphology", None, 1),
        ("bone_marrow_blasts", 0.01, False, None, None, "%", False, "flow cytometry", None, 1)]
    assert rows("inclusion", "Estimated survival time ≥ 3 months;")[0][1] == pytest.approx(91.3125)
    assert rows("inclusion", "ECOG performance status 0 to 2;")[0][:5] == ("ecog", 0.0, True, 2.0, True)


def test_seed002_conditioned_ages() -> None:
    assert rows("inclusion", "Age ≥12 years in the single-dose exploration phase, age ≥3 years in the dose "
                             "exploration phase, both sexes;") == [
        ("age", 12.0, True, None, None, "years", False, "single-dose exploration phase", None, None),
        ("age", 3.0, True, None, None, "years", False, "dose exploration phase", None, None)]


def test_seed003_alternatives_and_ocr_damage() -> None:
    assert rows("inclusion", "1. Blood creatinine (Cr) ≤ 2 x ULN or calculated creatinine clearance (Cockcroft- "
                             "Gault formula) ≥ 50 mL/min;") == [
        ("creatinine", None, None, 2.0, True, "xULN", False, None, None, 1),
        ("creatinine_clearance", 50.0, True, None, None, "mL/min", False, None, None, 1)]
    assert rows("inclusion", "CLL1 or CD33 expression is positive in AML blasts.") == [
        ("antigen_expression", None, None, None, None, "positive", False, None, "CLEC12A", 1),
        ("antigen_expression", None, None, None, None, "positive", False, None, "CD33", 1)]
    got = rows("exclusion", "Serious cardiovascular and cerebrovascular diseases:a. Severe heart rhythm or conduction "
                            "abnormalities, corrected OT interval (OTc)\\>480 ms:h, Aute coronay sndrome. left "
                            "ventricular eiection fraction (LVEF \\<50% in olor Doppler echocardiography,d.")
    assert got == [("qtc", 480.0, False, None, None, "ms", True, None, None, None),
                   ("lvef", None, None, 50.0, False, "%", True, None, None, None)]
    assert rows("inclusion", "≥18 years old.") == [("age", 18.0, True, None, None, "years", False, None, None, None)]
    assert flags("exclusion", "Uncontrolled bacterial, fungal, or viral infection.Known HlV infection, active "
                              "Hepatitis B (HBV) or Hepatitis C (HCV) infection") == (
        "hiv", "active_hepatitis_b", "active_hepatitis_c", "uncontrolled_infection")


def test_seed004_antigen_thresholds_by_method() -> None:
    got = rows("inclusion", "Comply with the 2022 WHO standards, and after testing, CD7-positive flow cytometry "
                            "leukemia cells expressed CD7 by ≥70%; or immunohistochemical leukemia cells expressed "
                            "CD7 ≥50%.")
    assert got == [
        ("antigen_expression", 70.0, True, None, None, "%", False, "flow cytometry", "CD7", 1),
        ("antigen_expression", 50.0, True, None, None, "%", False, "immunohistochemistry", "CD7", 1)]
    assert rows("inclusion", "Age 18-70 years old, gender is not limited;")[0][:5] == ("age", 18.0, True, 70.0, True)
    assert rows("inclusion", "The expected survival time exceeds 12 weeks;")[0][:3] == ("life_expectancy", 84.0, False)


# ---------------------------------------------------------------- spelling variants
@pytest.mark.parametrize(("text", "want"), [
    ("Absolute neutrophil count (ANC) ≥ 1.5 × 10^9/L", ("neutrophils", 1.5, None, "10^9/L")),
    ("ANC ≥ 1,500/µL", ("neutrophils", 1.5, None, "10^9/L")),
    ("Platelets ≥ 100,000/ mm3", ("platelets", 100.0, None, "10^9/L")),
    ("Platelets ≥ 100 x 10⁹/L", ("platelets", 100.0, None, "10^9/L")),
    ("Platelet count >= 75 x 10^3/uL", ("platelets", 75.0, None, "10^9/L")),
    ("Lymphocyte count less than 1.2 K/μL", ("lymphocytes", None, 1.2, "10^9/L")),
    ("Hemoglobin ≥ 90 g/L", ("hemoglobin", 9.0, None, "g/dL")),
    ("Haemoglobin ≥ 10.0 g/dL", ("hemoglobin", 10.0, None, "g/dL")),
    ("Serum creatinine ≤ 133 µmol/L", ("creatinine", None, 1.5, "mg/dL")),
    ("Total bilirubin ≤ 34.2 μmol/L", ("total_bilirubin", None, 2.0, "mg/dL")),
    ("Total bilirubin ≤ 1.5 times ULN", ("total_bilirubin", None, 1.5, "xULN")),
    ("Total bilirubin ≤ 2 x the ULN", ("total_bilirubin", None, 2.0, "xULN")),
    ("Total serum bilirubin ≤ ULN", ("total_bilirubin", None, 1.0, "xULN")),
    ("AST ≤ 2.5 x institutional upper limit of normal", ("ast", None, 2.5, "xULN")),
    ("Creatinine clearance ≥ 40 mL/min (Cockcroft-Gault)", ("creatinine_clearance", 40.0, None, "mL/min")),
    ("eGFR ≥ 30 mL/min/1.73 m²", ("egfr", 30.0, None, "mL/min/1.73m2")),
    ("INR ≤ 1.5", ("inr", None, 1.5, None)),
    ("LVEF ≥ 45% by echocardiogram or MUGA", ("lvef", 45.0, None, "%")),
    ("SpO2 > 90% on room air", ("oxygen_saturation", 90.0, None, "%")),
    ("Bone marrow blasts ≥ 5%", ("bone_marrow_blasts", 5.0, None, "%")),
    ("Karnofsky performance status ≥ 60%", ("karnofsky", 60.0, None, None)),
    ("Karnofsky performance score >/= 30", ("karnofsky", 30.0, None, None)),
    ("WHO performance status 0-2", ("ecog", 0.0, 2.0, None)),
    ("ECOG Performance Status of 0, 1, or 2", ("ecog", 0.0, 2.0, None)),
    ("Zubrod status 0-1.", ("ecog", 0.0, 1.0, None)),
    ("life expectancy greater than 12 weeks", ("life_expectancy", 84.0, None, "days")),
    ("Life expectancy =/> 3 months, as determined by the investigator", ("life_expectancy", 91.3125, None, "days")),
    ("Age 18 or older", ("age", 18.0, None, "years")),
    ("Patients must be > or = 40 years old.", ("age", 40.0, None, "years")),
    ("Males and females age >/= 13 years.", ("age", 13.0, None, "years")),
    ("Age 3 months to 17 years (13-17 years to be capped at 10%)", ("age", 0.25, 17.0, "years")),
    ("Age ≥ 18 years and ≤ 70 years", ("age", 18.0, 70.0, "years")),
    ("Aged between 18 and 45 years (both inclusive)", ("age", 18.0, 45.0, "years")),
    ("CD19 expression ≥ 20% by flow cytometry", ("antigen_expression", 20.0, None, "%")),
    ("At least 2 weeks since the last dose of chemotherapy", ("washout_chemotherapy", 14.0, None, "days")),
    ("Serum creatinine ≤ 1.5 ULN", ("creatinine", None, 1.5, "xULN")),
    ("Pulse oximetry > 91% on room air", ("oxygen_saturation", 91.0, None, "%")),
    ("CD33 positive expression ≥ 20% of AML blasts by flow cytometry", ("antigen_expression", 20.0, None, "%")),
    ("Patients ≥ 1 and ≤ 25 years of age", ("age", 1.0, 25.0, "years")),
    ("Hb≥80g/L", ("hemoglobin", 8.0, None, "g/dL")),
    ("Absolute lymphocyte count (ALC) ≥ 0.1 × 10^9/L", ("lymphocytes", 0.1, None, "10^9/L")),
])
def test_spelling_variants(text: str, want: tuple) -> None:
    c = one("inclusion", text)
    assert _r((c.variable, c.lower, c.upper, c.unit)) == _r(want)


def test_exception_written_after_the_bound() -> None:
    got = rows("inclusion", "AST and ALT ≤ 2.5 times ULN (≤ 5 times ULN in patients with liver metastases)")
    assert [(r[0], r[3], r[7]) for r in got] == [
        ("ast", 2.5, None), ("alt", 2.5, None), ("ast", 5.0, "liver involvement"), ("alt", 5.0, "liver involvement")]
    got = rows("inclusion", "AST (SGOT)/ALT (SGPT) ≤ 2.5 x institutional upper limit of normal unless liver "
                            "metastases are present in which case it must be ≤ 5x ULN")
    assert [(r[0], r[3], r[7]) for r in got] == [
        ("ast", 2.5, None), ("alt", 2.5, None), ("ast", 5.0, "liver involvement"), ("alt", 5.0, "liver involvement")]


def test_exception_phrasings_from_other_registries() -> None:
    got = rows("inclusion", "serum alanine transaminase (ALT) ≤ 2.5 x ULN (in case of liver metastases < 5 x ULN) total "
                            "bilirubin ≤ 1.5 x ULN (patients with Gilbert's syndrome total bilirubin ≤2.5 x ULN)")
    assert [(r[0], r[3], r[4], r[7]) for r in got] == [
        ("alt", 2.5, True, None), ("alt", 5.0, False, "liver involvement"),
        ("total_bilirubin", 1.5, True, None), ("total_bilirubin", 2.5, True, "Gilbert's syndrome")]
    got = rows("inclusion", "AST (SGOT), ALT (SGPT) ≤ 2.5 x upper limit of normal range (ULN), unless liver "
                            "metastases are present, then ≤ 5 x ULN is acceptable.")
    assert [(r[0], r[3], r[7]) for r in got] == [
        ("ast", 2.5, None), ("alt", 2.5, None), ("ast", 5.0, "liver involvement"), ("alt", 5.0, "liver involvement")]
    assert [(r[0], r[3], r[7]) for r in rows("inclusion", "AST ≤ 2.5 x ULN (≤ 5 x ULN if liver metastases).")] == [
        ("ast", 2.5, None), ("ast", 5.0, "liver involvement")]
    # an exception without a bound of its own does not make the bound conditional
    assert rows("inclusion", "Total bilirubin ≤ 1.5 mg/dL, except in subjects with Gilbert's syndrome")[0][7] is None


def test_sex_specific_and_if_conditions() -> None:
    got = rows("exclusion", "Has a mean QTcF prolongation >470 ms for females and >450 ms for males")
    assert [(r[0], r[1], r[7]) for r in got] == [("qtc", 470.0, "females"), ("qtc", 450.0, "males")]
    got = rows("exclusion", "QTc interval > 450 ms (males) or > 470 ms (females)")
    assert [(r[0], r[1], r[7]) for r in got] == [("qtc", 450.0, "males"), ("qtc", 470.0, "females")]
    got = rows("exclusion", "Baseline QTc >480 if QRS width normal; QTc >510 if QRS >120")
    assert [(r[0], r[1], r[7]) for r in got] == [("qtc", 480.0, "QRS width normal"), ("qtc", 510.0, "QRS >120")]


def test_numbers_of_other_analytes_do_not_leak() -> None:
    assert rows("inclusion", "CD4+ cell count <50 cells/mm^3 obtained within 45 days prior to study entry") == []
    assert rows("inclusion", "Gleason score 6 and PSA level is < or = 10 ng/mL.") == []
    assert rows("exclusion", "History of liver dysfunction or total bilirubin or ALT or AST or ALP or γGT > ULN") == [
        ("total_bilirubin", 1.0, False, None, None, "xULN", True, None, None, None),
        ("alt", 1.0, False, None, None, "xULN", True, None, None, None),
        ("ast", 1.0, False, None, None, "xULN", True, None, None, None)]
    assert rows("inclusion", "Participant with a body mass index (BMI) <30.0 kg/m2") == []


def test_age_as_a_subgroup_is_not_an_age_bound() -> None:
    assert rows("inclusion", "CD4%<25% for infants <12 months;") == []
    assert rows("inclusion", "For children aged 18 months or over: antibody positive serology by ELISA test") == []
    assert rows("exclusion", "family history of unexplained sudden death under 40 years of age in first degree "
                             "relatives") == []
    assert rows("inclusion", "term delivery (≥37 weeks gestation at birth);") == []


def test_definitions_and_permissions_state_no_bounds() -> None:
    assert rows("inclusion", "Relapsed refers to the reappearance of leukemic cells, or ≥5% blasts in bone marrow") == []
    assert rows("inclusion", "No prior pelvic radiation; induction hormonal therapy beginning < or = 6 months prior "
                             "to registration is acceptable.") == []
    assert rows("exclusion", "Patients who have received systemic steroids for more than 28 days during the 6 months "
                             "prior to the study") == []


# ---------------------------------------------------------------- conventions
def test_exclusion_rows_are_negated_with_the_stated_bound() -> None:
    c = one("exclusion", "Creatinine>2.5mg/dl")
    assert (c.lower, c.lower_inclusive, c.upper, c.negated) == (2.5, False, None, True)
    c = one("exclusion", "Age <18")
    assert (c.lower, c.upper, c.upper_inclusive, c.negated) == (None, 18.0, False, True)


def test_inclusion_prohibition_is_negated_and_since_is_a_lower_bound() -> None:
    c = one("inclusion", "No chemotherapy within 4 weeks before enrollment")
    assert (c.variable, c.upper, c.negated) == ("washout_chemotherapy", 28.0, True)
    c = one("inclusion", "At least 4 weeks since prior radiotherapy")
    assert (c.variable, c.lower, c.lower_inclusive, c.negated) == ("washout_radiotherapy", 28.0, True, False)


def test_washout_categories_share_a_window() -> None:
    got = rows("exclusion", "Allogeneic cell therapy, major surgery, and live or attenuated vaccine had been received "
                            "within 4 weeks prior to CAR NK-CD19 infusion;")
    assert [(r[0], r[3]) for r in got] == [("washout_cell_therapy", 28.0), ("washout_surgery", 28.0),
                                           ("washout_vaccine", 28.0)]
    got = rows("exclusion", "a. Systemic steroid therapy within 3 days (except physiological replacement therapy):b. "
                            "Systemic antitumor therapy within 2 weeks or at least 5 half-lives, whichever is less; c. "
                            "Radiotherapy within 4 weeks; d. Donor lmphocyte infusion within 6 weeks: e. Intrathecal "
                            "treatment within 1 week; f CAR-T therapy, CAR-NK therapy, or any other genetically "
                            "modified cell therapy product within 6 months;")
    assert [(r[0], r[3]) for r in got] == [
        ("washout_steroids", 3.0), ("washout_antitumor", 14.0), ("washout_radiotherapy", 28.0),
        ("washout_cell_therapy", 42.0), ("washout_cell_therapy", 182.625)]


def test_flags_need_a_required_absence_in_inclusion_items() -> None:
    assert flags("inclusion", "Negative HIV test at screening") == ("hiv",)
    assert flags("inclusion", "HIV-1 infection") == ()
    assert flags("inclusion", "Females of childbearing potential must have a negative serum pregnancy test.") == (
        "pregnancy_or_breastfeeding",)
    assert flags("inclusion", "Pregnant women are allowed to participate") == ()
    assert flags("inclusion", "No active infection in the lungs") == ("uncontrolled_infection",)
    assert flags("exclusion", "Previously treated with any CAR-T cell product") == (
        "prior_car_t_or_gene_modified_cell_therapy",)
    # the study's own infusion, and a time-limited exposure, are no lifelong exclusions
    assert flags("exclusion", "Systemic steroids were used within 3 days before CAR NK-CD19 infusion;") == ()
    assert flags("exclusion", "History of allogeneic stem cell transplantation.") == ("prior_allogeneic_transplant",)
    assert flags("exclusion", "Received hematopoietic stem cell transplantation within the last 3 months") == ()
    assert flags("exclusion", "Active infection of hepatitis B virus or hepatitis C virus;") == (
        "active_hepatitis_b", "active_hepatitis_c")


def test_constraint_text_is_the_original_span() -> None:
    c = extract_constraints("exclusion", "Patients with an ANC < 500 cells/mm^3.")[0]
    assert c.text == "ANC < 500 cells/mm^3"
    assert (c.upper, c.unit) == (0.5, "10^9/L")


def test_vocabularies_are_closed() -> None:
    for item in SEED_ITEMS:
        cons, fl = analyze(item["criterion_type"], item["text"])
        assert {c.variable for c in cons} <= set(VARIABLES)
        assert set(fl) <= set(FLAGS)


# ---------------------------------------------------------------- page level
def test_profile_criteria_rejoins_a_split_exception_and_applies_headings() -> None:
    crit = (
        Criterion("inclusion", 1, None, "Liver function: ALT and AST ≤3.0×ULN (for patients with liver invasion"),
        Criterion("inclusion", 2, 1, "5.0×ULN);"),
        Criterion("inclusion", 3, None, "Age:"),
        Criterion("inclusion", 4, 3, "18 and over"),
        Criterion("inclusion", 5, None, "Performance status:"),
        Criterion("inclusion", 6, 5, "ECOG 0-2 OR"),
        Criterion("inclusion", 7, 5, "Karnofsky 70-100%"),
        Criterion("exclusion", 1, None, "Pregnant or breastfeeding women"),
    )
    prof = {(p.criterion_type, p.ordinal): p for p in profile_criteria(crit)}
    assert [(c.variable, c.upper, c.condition) for c in prof[("inclusion", 1)].constraints] == [
        ("alt", 3.0, None), ("ast", 3.0, None), ("alt", 5.0, "liver involvement"), ("ast", 5.0, "liver involvement")]
    assert prof[("inclusion", 2)].constraints == ()
    assert [(c.variable, c.lower) for c in prof[("inclusion", 4)].constraints] == [("age", 18.0)]
    assert [(c.variable, c.lower, c.upper) for c in prof[("inclusion", 6)].constraints] == [("ecog", 0.0, 2.0)]
    assert [(c.variable, c.lower, c.upper) for c in prof[("inclusion", 7)].constraints] == [
        ("karnofsky", 70.0, 100.0)]
    assert prof[("exclusion", 1)].flags == ("pregnancy_or_breastfeeding",)
    assert [(p.criterion_type, p.ordinal) for p in profile_criteria(crit)] == [
        (c.criterion_type, c.ordinal) for c in crit]


def test_bad_input_never_raises() -> None:
    for text in ("", "   ", "≤≥<>", "1" * 500, "ALT ≤ x ULN", "(((( ALT ≤ 3", "\\<=\\>=", "Age: ", "10⁹⁹⁹/L"):
        analyze("inclusion", text)
        analyze("exclusion", text)


def test_extraction_is_fast() -> None:
    items = [(d["criterion_type"], d["text"]) for d in SEED_ITEMS]
    per_item = benchmark(items, repeat=3)
    assert per_item < 1e-3, f"{per_item * 1e3:.3f} ms per item"
