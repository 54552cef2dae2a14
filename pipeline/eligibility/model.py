"""The structured form of one eligibility criterion item.

Sign convention (read this before evaluating rows against a patient)
--------------------------------------------------------------------
A row states the range the *text* describes, never its complement:

* ``lower``/``upper`` are the stated bounds in ``unit``; a missing side is ``None`` and so is
  its ``*_inclusive`` flag.  "ECOG 0-2" -> lower 0 (incl), upper 2 (incl).
* ``negated=False``: the patient's value must lie inside the range (inclusion items).
* ``negated=True``: a patient whose value lies inside the range is *excluded*.  Every row from
  an exclusion item is negated ("Creatinine>2.5mg/dl" -> lower 2.5 exclusive, negated: a
  creatinine above 2.5 excludes); so are inclusion rows written as a prohibition ("No
  chemotherapy within 4 weeks").  The admissible range of a negated row is the complement.
* ``washout_*`` variables measure days since the last exposure.  "Vaccine within 4 weeks" in
  an exclusion item -> upper 28 (incl), negated; "at least 4 weeks since prior
  chemotherapy" in an inclusion item -> lower 28 (incl), not negated.
* ``condition``: the context a row applies in (patient subgroup, study phase or cohort,
  measurement method).  A conditioned row replaces the unconditioned rows of the same
  variable for patients in that context ("ALT <= 3 xULN; <= 5 xULN for liver involvement").
* ``group``: rows of one item sharing a group number are alternatives -- meeting any one
  satisfies them all ("creatinine <= 2 xULN or CrCl >= 50 mL/min").  ``None`` = required.
* ``antigen`` names the antigen of ``antigen_expression`` rows; unit ``"positive"`` is a
  qualitative "expresses X" with no bounds.

Units: age in years; durations (life expectancy, washouts) in days (month = 30.4375 days);
counts in 10^9/L; creatinine and bilirubin in mg/dL or multiples of ULN ("xULN"); ALT/AST,
INR, aPTT in xULN (or U/L, ratio, s); hemoglobin g/dL; percentages "%"; QTc ms; clearance
"mL/min"; eGFR "mL/min/1.73m2"; ECOG and Karnofsky unitless scores.
"""

from __future__ import annotations

from dataclasses import dataclass

VARIABLES: tuple[str, ...] = (
    "age", "ecog", "karnofsky", "life_expectancy", "creatinine", "creatinine_clearance", "egfr",
    "total_bilirubin", "alt", "ast", "wbc", "neutrophils", "lymphocytes", "platelets", "hemoglobin",
    "inr", "aptt", "lvef", "oxygen_saturation", "qtc", "bone_marrow_blasts", "antigen_expression",
    "washout_steroids", "washout_chemotherapy", "washout_radiotherapy", "washout_vaccine",
    "washout_cell_therapy", "washout_transplant", "washout_antitumor", "washout_investigational",
    "washout_immunosuppressants", "washout_immunotherapy", "washout_antibody",
    "washout_hormone_therapy", "washout_surgery", "washout_antibiotics",
)

FLAGS: tuple[str, ...] = (
    "pregnancy_or_breastfeeding", "hiv", "active_hepatitis_b", "active_hepatitis_c",
    "active_cns_involvement", "prior_allogeneic_transplant",
    "prior_car_t_or_gene_modified_cell_therapy", "uncontrolled_infection",
)


@dataclass(frozen=True, slots=True)
class Constraint:
    variable: str
    lower: float | None
    lower_inclusive: bool | None
    upper: float | None
    upper_inclusive: bool | None
    unit: str | None
    negated: bool
    condition: str | None
    text: str  # the matched span of the original criterion text
    antigen: str | None = None
    group: int | None = None


@dataclass(frozen=True, slots=True)
class CriterionProfile:
    """Constraints and flags of one criterion item of a page (see `profile_criteria`)."""

    criterion_type: str
    ordinal: int
    constraints: tuple[Constraint, ...]
    flags: tuple[str, ...]
