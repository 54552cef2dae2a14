"""Which trials could a given patient join, and why not the others (`trials match`).

The semantics live in SQL, in the warehouse's `match_patient` / `match_patient_rules` table
macros (0005_eligibility.sql, documented in docs/matching.md), so an analyst asking in SQL and
the command line get the same answer.  This module turns a `Patient` into the macro's
parameters (measure names and units, a regex for the condition with its usual synonyms,
canonical antigen names), runs it on a read-only connection and renders the result.

Verdicts are conservative: a trial is `eligible` when no rule it states excludes the patient;
rules the patient's data cannot decide are counted in `not_checked`, never held against them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from pipeline.db.connection import open_warehouse
from pipeline.db.profiles import stale_trials
from pipeline.db.query import OutputFormat, QueryResult, format_result
from pipeline.eligibility import VARIABLES
from pipeline.eligibility.antigens import canonical_antigen

# Units of each variable's constraint rows (pipeline/eligibility/model.py).  Variables stated
# in more than one unit (creatinine in mg/dL or xULN) have no default: the caller says which.
DEFAULT_UNITS: dict[str, str | None] = {
    "age": "years", "ecog": None, "karnofsky": None, "life_expectancy": "days",
    "creatinine_clearance": "mL/min", "egfr": "mL/min/1.73m2", "wbc": "10^9/L", "neutrophils": "10^9/L",
    "lymphocytes": "10^9/L", "platelets": "10^9/L", "hemoglobin": "g/dL", "inr": None, "lvef": "%",
    "oxygen_saturation": "%", "qtc": "ms", "bone_marrow_blasts": "%",
    **{v: "days" for v in VARIABLES if v.startswith("washout_")},
}
UNITS: dict[str, tuple[str | None, ...]] = {
    "creatinine": ("xULN", "mg/dL"), "total_bilirubin": ("xULN", "mg/dL"), "alt": ("xULN", "U/L"),
    "ast": ("xULN", "U/L"), "aptt": ("s", "xULN"), "inr": (None, "xULN"),
}


@dataclass(frozen=True, slots=True)
class MeasureOption:
    """A `trials match` option for one measure: --creatinine-xuln 1.8 -> creatinine|xULN = 1.8."""

    option: str
    variable: str
    unit: str | None
    help: str
    scale: float = 1.0  # option value x scale = value in the constraint unit


MEASURE_OPTIONS: tuple[MeasureOption, ...] = (
    MeasureOption("--karnofsky", "karnofsky", None, "Karnofsky/Lansky score"),
    MeasureOption("--life-expectancy-months", "life_expectancy", "days", "life expectancy in months", 30.4375),
    MeasureOption("--creatinine-xuln", "creatinine", "xULN", "serum creatinine as a multiple of ULN"),
    MeasureOption("--creatinine-mgdl", "creatinine", "mg/dL", "serum creatinine in mg/dL"),
    MeasureOption("--crcl", "creatinine_clearance", "mL/min", "creatinine clearance in mL/min"),
    MeasureOption("--bilirubin-xuln", "total_bilirubin", "xULN", "total bilirubin as a multiple of ULN"),
    MeasureOption("--bilirubin-mgdl", "total_bilirubin", "mg/dL", "total bilirubin in mg/dL"),
    MeasureOption("--alt-xuln", "alt", "xULN", "ALT as a multiple of ULN"),
    MeasureOption("--ast-xuln", "ast", "xULN", "AST as a multiple of ULN"),
    MeasureOption("--platelets", "platelets", "10^9/L", "platelets in 10^9/L"),
    MeasureOption("--neutrophils", "neutrophils", "10^9/L", "absolute neutrophil count in 10^9/L"),
    MeasureOption("--hemoglobin", "hemoglobin", "g/dL", "hemoglobin in g/dL"),
    MeasureOption("--lvef", "lvef", "%", "left ventricular ejection fraction, percent"),
    MeasureOption("--spo2", "oxygen_saturation", "%", "oxygen saturation, percent"),
)


def measure_key(variable: str, unit: str | None) -> str:
    """The macro's measure key: 'creatinine|xULN', or the bare variable for unitless ones."""
    return variable if unit is None else f"{variable}|{unit}"


def parse_measure(text: str) -> tuple[str, float]:
    """'VARIABLE[:UNIT]=NUMBER' -> (measure key, value); ValueError with a readable reason."""
    name, sep, number = text.partition("=")
    if not sep:
        raise ValueError(f"expected VARIABLE[:UNIT]=NUMBER, got {text!r}")
    variable, has_unit, unit = name.strip().partition(":")
    variable = variable.strip()
    if variable not in VARIABLES or variable == "antigen_expression":
        raise ValueError(f"unknown variable {variable!r} (one of: {', '.join(sorted(DEFAULT_UNITS | UNITS))})")
    allowed = UNITS.get(variable, (DEFAULT_UNITS.get(variable),))
    if has_unit:
        chosen: str | None = unit.strip() or None
        match = next((u for u in allowed if (u or "").lower() == (chosen or "").lower()), "?")
        if match == "?":
            shown = ", ".join(u or "(none)" for u in allowed)
            raise ValueError(f"{variable} is stated in {shown}, not {unit!r}")
        chosen = match
    elif variable in UNITS and variable not in DEFAULT_UNITS:
        raise ValueError(f"say the unit of {variable}: {', '.join(f'{variable}:{u}=...' for u in allowed if u)}")
    else:
        chosen = DEFAULT_UNITS.get(variable)
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a number: {number!r}") from None
    return measure_key(variable, chosen), value


# Condition names and their usual abbreviations: asking for one finds trials written with any.
_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("AML", "acute myeloid leuk(a)?emia", "acute myelogenous leuk(a)?emia", "acute myelocytic leuk(a)?emia"),
    ("ALL", "acute lymphoblastic leuk(a)?emia", "acute lymphocytic leuk(a)?emia", "B-ALL", "T-ALL"),
    ("CLL", "chronic lymphocytic leuk(a)?emia"),
    ("CML", "chronic myeloid leuk(a)?emia", "chronic myelogenous leuk(a)?emia"),
    ("MDS", "myelodysplastic"),
    ("MM", "multiple myeloma", "plasma cell myeloma"),
    ("DLBCL", "diffuse large B[- ]cell lymphoma"),
    ("NHL", "non[- ]hodgkin'?s? lymphoma"),
    ("HL", "hodgkin'?s? lymphoma"),
    ("BPDCN", "blastic plasmacytoid dendritic cell neoplasm"),
    ("COVID-19", "covid[- ]?19", "sars[- ]cov[- ]2", "coronavirus"),
)


def condition_regex(term: str) -> str:
    """A case-insensitive regex for a condition: the term itself (as whole words) or any of its
    known synonyms ("AML" also finds "acute myeloid leukemia")."""
    term = " ".join(term.split())
    alternatives = [r"\b" + re.escape(term) + r"\b"]
    for group in _SYNONYMS:  # the entries are regex fragments
        if any(re.fullmatch(p, term, re.IGNORECASE) for p in group):
            alternatives += [r"\b" + p + r"\b" for p in group]
    return "|".join(dict.fromkeys(alternatives))


@dataclass(frozen=True, slots=True)
class Patient:
    age: float | None = None
    ecog: float | None = None
    measures: Mapping[str, float] = field(default_factory=dict)  # measure_key -> value
    condition: str | None = None  # a condition name or abbreviation ("AML")
    antigens: tuple[str, ...] | None = None  # what the tumour expresses; None = unknown
    flags: tuple[str, ...] | None = None  # pipeline.eligibility.FLAGS the patient has

    def describe(self) -> str:
        parts = [f"age {self.age:g}" if self.age is not None else "",
                 f"ECOG {self.ecog:g}" if self.ecog is not None else ""]
        parts += [f"{k} {v:g}" for k, v in sorted(self.measures.items())]
        if self.condition:
            parts.append(f"condition {self.condition}")
        if self.antigens is not None:
            parts.append("antigens " + (", ".join(self.antigens) or "none"))
        if self.flags:
            parts.append("has " + ", ".join(self.flags))
        return "; ".join(p for p in parts if p) or "no data"


@dataclass(frozen=True, slots=True)
class MatchResult:
    result: QueryResult  # nct_id, trial_id, brief_title, overall_status, eligible, excluded_by, ...
    unprofiled: int  # trials whose profile is missing or outdated (answers may be incomplete)


_MATCH_SQL = """
SELECT nct_id, trial_id, overall_status, eligible, brief_title, excluded_by, rules_met, not_checked
FROM match_patient(age := ?, ecog := ?, measures := CAST(? AS MAP(VARCHAR, DOUBLE)),
                   condition_regex := ?, condition_label := ?, antigens := CAST(? AS VARCHAR[]),
                   has_flags := CAST(? AS VARCHAR[]), all_statuses := ?)
WHERE eligible OR ?
ORDER BY eligible DESC, nct_id NULLS LAST, trial_id
"""


def match(
    conn: duckdb.DuckDBPyConnection, patient: Patient, *, include_excluded: bool = False,
    all_statuses: bool = False,
) -> MatchResult:
    """Recruiting trials (or all, with `all_statuses`) whose rules admit `patient`; with
    `include_excluded` the others too, each with the rules that exclude the patient."""
    antigens = None if patient.antigens is None else sorted({canonical_antigen(a) for a in patient.antigens})
    params: list[Any] = [
        patient.age, patient.ecog, dict(patient.measures) or None,
        condition_regex(patient.condition) if patient.condition else None, patient.condition,
        antigens, None if patient.flags is None else sorted(set(patient.flags)), all_statuses, include_excluded,
    ]
    cursor = conn.execute(_MATCH_SQL, params)
    columns = tuple(d[0] for d in cursor.description or ())
    rows = tuple(tuple(r) for r in cursor.fetchall())
    return MatchResult(QueryResult(columns, rows), len(stale_trials(conn)))


def run_match(
    warehouse: str | os.PathLike[str], patient: Patient, *, include_excluded: bool = False,
    all_statuses: bool = False, wait: float = 0.0,
) -> MatchResult:
    """`match` on a read-only connection to the warehouse file."""
    conn = open_warehouse(warehouse, read_only=True, wait=wait)
    try:
        return match(conn, patient, include_excluded=include_excluded, all_statuses=all_statuses)
    finally:
        conn.close()


def format_match(result: MatchResult, fmt: OutputFormat = "table") -> str:
    """JSON keeps excluded_by a list; table and CSV join it with ' | ' (and the table cuts long titles)."""
    res = result.result
    if fmt == "json":
        return format_result(res, "json")
    i_title, i_excl = res.columns.index("brief_title"), res.columns.index("excluded_by")
    rows = []
    for row in res.rows:
        r = list(row)
        r[i_excl] = " | ".join(r[i_excl] or [])
        if fmt == "table" and r[i_title] and len(r[i_title]) > 50:
            r[i_title] = r[i_title][:49] + "…"
        rows.append(tuple(r))
    return format_result(QueryResult(res.columns, tuple(rows)), fmt)


def notes(result: MatchResult) -> list[str]:
    """Warnings for stderr: profiles that are not current make answers incomplete."""
    if result.unprofiled:
        return [f"note: {result.unprofiled} trial(s) have no current eligibility profile; "
                "run `trials ingest` (any loading command refreshes them) for complete answers"]
    return []



__all__ = [
    "DEFAULT_UNITS", "MEASURE_OPTIONS", "MatchResult", "MeasureOption", "Patient", "condition_regex",
    "format_match", "match", "measure_key", "notes", "parse_measure", "run_match",
]
