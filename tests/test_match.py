"""`trials match` and the match_patient macros on the bundled sample warehouse: which
recruiting trials a patient could join, and per trial the constraints that exclude them."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipeline.cli import main
from pipeline.match import Patient, condition_regex, match, parse_measure
from pipeline.run import ingest

SEED_URLS = {"000": "%/000_929af7c7df7e5e30.txt", "001": "%/001_62c8b8bbff79b9c1.txt",
             "002": "%/002_fe23090bebcda565.txt", "003": "%/003_74ea9d8d4976cfa8.txt",
             "004": "%/004_7659166414062c3b.txt"}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("match") / "trials.duckdb"
    ingest([Path(__file__).resolve().parents[1] / "raw" / "sample"], path)
    return path


@pytest.fixture(scope="module")
def db(warehouse):
    conn = duckdb.connect(str(warehouse), read_only=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def seed(db) -> dict[str, str]:
    return {k: db.execute("SELECT trial_id FROM pages WHERE url LIKE ?", [v]).fetchall()[0][0]
            for k, v in SEED_URLS.items()}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["match", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def by_trial(rows: list[dict]) -> dict[str, dict]:
    return {r["trial_id"]: r for r in rows}


def test_the_72_year_old_with_ecog_2_and_creatinine_1_8_uln(capsys, warehouse, db, seed):
    """Which recruiting trials could a 72-year-old with ECOG 2 and creatinine 1.8 x ULN join?"""
    code, out, err = run_cli(capsys, "--age", "72", "--ecog", "2", "--creatinine-xuln", "1.8",
                             "--warehouse", str(warehouse), "--format", "json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    # the CAR-NK CD123 trial (seed 000: 18-75 years, ECOG 0-2, creatinine <= 2 x ULN) admits them
    assert [(r["trial_id"], r["eligible"], r["excluded_by"]) for r in rows] == [(seed["000"], True, [])]
    assert rows[0]["rules_met"] == 4  # page age, criteria age, ECOG, creatinine
    assert rows[0]["not_checked"] > 0  # labs the patient did not give never exclude

    code, out, _ = run_cli(capsys, "--age", "72", "--ecog", "2", "--creatinine-xuln", "1.8",
                           "--include-excluded", "--warehouse", str(warehouse), "--format", "json")
    rows = by_trial(json.loads(out))
    recruiting = {t for (t,) in db.execute(
        "SELECT trial_id FROM trials WHERE overall_status = 'RECRUITING'").fetchall()}
    assert set(rows) == recruiting
    # seed 003 (NK, CLL1/CD33) asks for ECOG <= 1
    assert rows[seed["003"]]["eligible"] is False
    assert rows[seed["003"]]["excluded_by"] == [
        "inclusion 4: ecog ≤ 1 (patient 2) — Eastern Cooperative Oncology Group (ECOG) performance status ≤1"]
    by_nct = {r["nct_id"]: r for r in rows.values() if r["nct_id"]}
    assert by_nct["NCT03494712"]["excluded_by"] == [
        "page age: age 18–45 years (patient 72) — age on the page: 18 Years to 45 Years",
        "inclusion 1: age 18–45 years (patient 72) — aged between 18 and 45 years"]
    # an age stated only in the criteria excludes too
    assert by_nct["NCT04973462"]["excluded_by"] == [
        "inclusion 1: age 18–60 years (patient 72) — from 18 to 60 years old"]
    assert by_nct["NCT03424005"]["excluded_by"] == [
        "inclusion 2: ecog 0–1 (patient 2) — ECOG Performance Status of 0 or 1"]


def test_table_output_and_the_same_answer_in_sql(capsys, warehouse, seed):
    code, out, _ = run_cli(capsys, "--age", "72", "--ecog", "2", "--creatinine-xuln", "1.8",
                           "--include-excluded", "--warehouse", str(warehouse))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["nct_id", "trial_id", "overall_status", "eligible"]
    assert lines[2].split()[:4] == ["NULL", seed["000"], "RECRUITING", "True"]
    assert any("ecog ≤ 1 (patient 2)" in line for line in lines)
    assert main(["sql", "SELECT trial_id FROM match_patient(age := 72, ecog := 2, "
                 "measures := MAP {'creatinine|xULN': 1.8}) WHERE eligible", "--warehouse", str(warehouse),
                 "--format", "csv"]) == 0
    assert capsys.readouterr().out.split() == ["trial_id", seed["000"]]


def test_condition_antigen_and_targets(db, seed):
    patient = Patient(age=60, condition="AML", antigens=("CD123",))
    rows = {r[1]: r for r in match(db, patient, include_excluded=True, all_statuses=True).result.rows}
    eligible = {t for t, r in rows.items() if r[3]}
    # CD123-directed trials in AML: the CAR-NK (seed 000) and the IL3 CAR-T (seed 001)
    assert eligible == {seed["000"], seed["001"]}
    cd19 = rows[seed["002"]][5]
    assert "condition: studies AML — Acute Lymphoblastic Leukemia" in cd19
    assert "target: therapy aimed at CD19 — CAR-NK-CD19 Cells" in cd19
    assert "inclusion 2: CD19 positive — CD19 positive" in cd19
    # CLL1 or CD33 required (one alternative group), and the NK cells are aimed at them
    nk = rows[seed["003"]][5]
    assert "inclusion 3: CLEC12A positive or CD33 positive — CLL1 or CD33 expression is positive" in nk
    # an antigen the patient expresses, by another name ("CLL-1" is CLEC12A): seed 003 admits
    rows = {r[1]: r for r in match(db, Patient(antigens=("CLL-1",)), include_excluded=True).result.rows}
    assert rows[seed["003"]][3] is True


def test_alternatives_negation_flags_and_unknowns(db, seed):
    def reasons(patient: Patient, trial: str) -> list[str]:
        rows = {r[1]: r for r in match(db, patient, include_excluded=True, all_statuses=True).result.rows}
        return rows[trial][5]

    # seed 003: creatinine <= 2 x ULN OR clearance >= 50 mL/min -- meeting one is enough
    assert reasons(Patient(measures={"creatinine|xULN": 3, "creatinine_clearance|mL/min": 60}), seed["003"]) == []
    assert reasons(Patient(measures={"creatinine|xULN": 3, "creatinine_clearance|mL/min": 40}), seed["003"]) == [
        "inclusion 6: creatinine ≤ 2 xULN (patient 3) or creatinine_clearance ≥ 50 mL/min (patient 40) — "
        "creatinine (Cr) ≤ 2 x ULN / creatinine clearance (Cockcroft- Gault formula) ≥ 50 mL/min"]
    # and one unknown alternative is not held against the patient
    assert reasons(Patient(measures={"creatinine|xULN": 3}), seed["003"]) == []
    # seed 001: creatinine <= 2 mg/dL to enter, and "Creatinine>2.5mg/dl" excludes
    got = reasons(Patient(measures={"creatinine|mg/dL": 3}), seed["001"])
    assert [r.split(" — ")[0] for r in got] == [
        "inclusion 8: creatinine ≤ 2 mg/dL (patient 3)", "exclusion 9: not creatinine > 2.5 mg/dL (patient 3)"]
    assert reasons(Patient(measures={"creatinine|mg/dL": 2.2}), seed["001"])[0].startswith("inclusion 8")
    # exclusion flags
    assert reasons(Patient(flags=("hiv",)), seed["001"]) == [
        "exclusion 11: no hiv — Patients with HIV infection;"]
    # a patient we know nothing about is excluded by nothing
    rows = match(db, Patient(), all_statuses=True).result.rows
    assert all(r[3] for r in rows) and {r[1] for r in rows} >= set(seed.values())


def test_usage_errors_and_missing_warehouse(capsys, tmp_path, warehouse):
    code, _, err = run_cli(capsys, "--value", "creatinine=1.8", "--warehouse", str(warehouse))
    assert code == 2 and "say the unit of creatinine" in err
    code, _, err = run_cli(capsys, "--has", "diabetes", "--warehouse", str(warehouse))
    assert code == 2 and "invalid choice" in err
    code, _, err = run_cli(capsys, "--age", "72", "--warehouse", str(tmp_path / "missing.duckdb"))
    assert code == 1 and err.startswith("trials: error: warehouse not found") and len(err.splitlines()) == 1


def test_measure_and_condition_parsing():
    assert parse_measure("creatinine:xuln=1.8") == ("creatinine|xULN", 1.8)
    assert parse_measure("platelets=80") == ("platelets|10^9/L", 80.0)
    assert parse_measure("ecog=1") == ("ecog", 1.0)
    assert parse_measure("washout_chemotherapy=10") == ("washout_chemotherapy|days", 10.0)
    for bad in ("creatinine=1.8", "sodium=140", "platelets:mg=1", "age=old", "age"):
        with pytest.raises(ValueError):
            parse_measure(bad)
    import re

    pattern = re.compile(condition_regex("AML"), re.IGNORECASE)
    assert pattern.search("Acute Myeloid Leukaemia") and pattern.search("r/r AML")
    assert not pattern.search("Acute Lymphoblastic Leukemia") and not pattern.search("SAML")
    assert condition_regex("glioma") == r"\bglioma\b"
