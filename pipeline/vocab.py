"""ClinicalTrials.gov API v2 vocabularies and the words pages use for them.

`CODES` is the closed set of valid values per enumerated column (the warehouse
checks use it too).  `to_code` maps whatever wording a page shows (CT.gov's
display words, the mirrors' own words, legacy XML words) onto those codes.
"""

from __future__ import annotations

import re

from pipeline.clean.memo import remember

CODES: dict[str, frozenset[str]] = {
    "overall_status": frozenset({
        "RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED",
        "ENROLLING_BY_INVITATION", "SUSPENDED", "TERMINATED", "WITHDRAWN", "UNKNOWN",
        "AVAILABLE", "NO_LONGER_AVAILABLE", "TEMPORARILY_NOT_AVAILABLE",
        "APPROVED_FOR_MARKETING", "WITHHELD",
    }),
    "phase": frozenset({"EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4", "NA"}),
    "study_type": frozenset({"INTERVENTIONAL", "OBSERVATIONAL", "EXPANDED_ACCESS"}),
    "sex": frozenset({"ALL", "FEMALE", "MALE"}),
    "enrollment_type": frozenset({"ACTUAL", "ESTIMATED"}),
    "primary_purpose": frozenset({
        "TREATMENT", "PREVENTION", "DIAGNOSTIC", "ECT", "SUPPORTIVE_CARE", "SCREENING",
        "HEALTH_SERVICES_RESEARCH", "BASIC_SCIENCE", "DEVICE_FEASIBILITY", "OTHER",
    }),
    "allocation": frozenset({"RANDOMIZED", "NON_RANDOMIZED", "NA"}),
    "intervention_model": frozenset({
        "SINGLE_GROUP", "PARALLEL", "CROSSOVER", "FACTORIAL", "SEQUENTIAL",
    }),
    "masking": frozenset({"NONE", "SINGLE", "DOUBLE", "TRIPLE", "QUADRUPLE"}),
    "intervention_type": frozenset({
        "BEHAVIORAL", "BIOLOGICAL", "COMBINATION_PRODUCT", "DEVICE", "DIAGNOSTIC_TEST",
        "DIETARY_SUPPLEMENT", "DRUG", "GENETIC", "PROCEDURE", "RADIATION", "OTHER",
    }),
    "arm_type": frozenset({
        "EXPERIMENTAL", "ACTIVE_COMPARATOR", "PLACEBO_COMPARATOR", "SHAM_COMPARATOR",
        "NO_INTERVENTION", "OTHER",
    }),
    "location_status": frozenset({
        "RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED",
        "ENROLLING_BY_INVITATION", "SUSPENDED", "TERMINATED", "WITHDRAWN", "UNKNOWN",
        "AVAILABLE", "NO_LONGER_AVAILABLE", "TEMPORARILY_NOT_AVAILABLE",
        "APPROVED_FOR_MARKETING", "WITHHELD",
    }),
    "funder_type": frozenset({
        "NIH", "FED", "OTHER_GOV", "INDIV", "INDUSTRY", "NETWORK", "AMBIG", "OTHER", "UNKNOWN",
    }),
    "criterion_type": frozenset({"inclusion", "exclusion"}),
    "contact_role": frozenset({"central_contact", "overall_official", "site_contact"}),
    "source": frozenset({"veeva", "clinconnect", "unknown"}),
    "parse_status": frozenset({"ok", "partial", "rejected"}),
}

# Words seen on pages (lower-cased, punctuation collapsed) -> code.  Codes
# themselves and their spaced forms are accepted by `to_code` without listing.
_WORDS: dict[str, dict[str, str]] = {
    "overall_status": {
        "enrolling": "RECRUITING",
        "recruiting": "RECRUITING",
        "not yet enrolling": "NOT_YET_RECRUITING",
        "not yet recruiting": "NOT_YET_RECRUITING",
        "active not recruiting": "ACTIVE_NOT_RECRUITING",
        "active not enrolling": "ACTIVE_NOT_RECRUITING",
        "enrolling by invitation": "ENROLLING_BY_INVITATION",
        "completed": "COMPLETED",
        "terminated": "TERMINATED",
        "withdrawn": "WITHDRAWN",
        "suspended": "SUSPENDED",
        "unknown status": "UNKNOWN",
        "unknown": "UNKNOWN",
        "available": "AVAILABLE",
        "no longer available": "NO_LONGER_AVAILABLE",
        "temporarily not available": "TEMPORARILY_NOT_AVAILABLE",
        "approved for marketing": "APPROVED_FOR_MARKETING",
        "withheld": "WITHHELD",
    },
    "phase": {
        "early phase 1": "EARLY_PHASE1",
        "phase 0": "EARLY_PHASE1",
        "phase 1": "PHASE1",
        "phase 2": "PHASE2",
        "phase 3": "PHASE3",
        "phase 4": "PHASE4",
        "not applicable": "NA",
        "n a": "NA",
        "na": "NA",
    },
    "study_type": {
        "interventional": "INTERVENTIONAL",
        "interventional clinical trial": "INTERVENTIONAL",
        "observational": "OBSERVATIONAL",
        "observational patient registry": "OBSERVATIONAL",
        "expanded access": "EXPANDED_ACCESS",
    },
    "sex": {
        "all": "ALL", "both": "ALL", "female": "FEMALE", "male": "MALE",
        "females": "FEMALE", "males": "MALE", "women": "FEMALE", "men": "MALE",
    },
    "enrollment_type": {
        "actual": "ACTUAL", "estimated": "ESTIMATED", "anticipated": "ESTIMATED",
    },
    "primary_purpose": {
        "treatment": "TREATMENT",
        "prevention": "PREVENTION",
        "diagnostic": "DIAGNOSTIC",
        "supportive care": "SUPPORTIVE_CARE",
        "screening": "SCREENING",
        "health services research": "HEALTH_SERVICES_RESEARCH",
        "basic science": "BASIC_SCIENCE",
        "device feasibility": "DEVICE_FEASIBILITY",
        "educational counseling training": "ECT",
        "other": "OTHER",
    },
    "allocation": {
        "randomized": "RANDOMIZED",
        "non randomized": "NON_RANDOMIZED",
        "nonrandomized": "NON_RANDOMIZED",
        "n a": "NA",
        "na": "NA",
        "not applicable": "NA",
    },
    "intervention_model": {
        "single group assignment": "SINGLE_GROUP",
        "single group": "SINGLE_GROUP",
        "parallel assignment": "PARALLEL",
        "parallel": "PARALLEL",
        "crossover assignment": "CROSSOVER",
        "crossover": "CROSSOVER",
        "factorial assignment": "FACTORIAL",
        "factorial": "FACTORIAL",
        "sequential assignment": "SEQUENTIAL",
        "sequential": "SEQUENTIAL",
    },
    "masking": {
        "none open label": "NONE",
        "none": "NONE",
        "open label": "NONE",
        "single": "SINGLE",
        "double": "DOUBLE",
        "triple": "TRIPLE",
        "quadruple": "QUADRUPLE",
    },
    "intervention_type": {
        "behavioral": "BEHAVIORAL",
        "biological": "BIOLOGICAL",
        "combination product": "COMBINATION_PRODUCT",
        "device": "DEVICE",
        "diagnostic test": "DIAGNOSTIC_TEST",
        "dietary supplement": "DIETARY_SUPPLEMENT",
        "drug": "DRUG",
        "genetic": "GENETIC",
        "procedure": "PROCEDURE",
        "procedure surgery": "PROCEDURE",
        "radiation": "RADIATION",
        "other": "OTHER",
    },
    "arm_type": {
        "experimental": "EXPERIMENTAL",
        "experimental group": "EXPERIMENTAL",
        "active comparator": "ACTIVE_COMPARATOR",
        "active comparator group": "ACTIVE_COMPARATOR",
        "placebo comparator": "PLACEBO_COMPARATOR",
        "placebo comparator group": "PLACEBO_COMPARATOR",
        "sham comparator": "SHAM_COMPARATOR",
        "sham comparator group": "SHAM_COMPARATOR",
        "no intervention": "NO_INTERVENTION",
        "no intervention group": "NO_INTERVENTION",
        "other": "OTHER",
        "other group": "OTHER",
    },
}
_WORDS["location_status"] = _WORDS["overall_status"]
_WORDS["funder_type"] = {
    "nih": "NIH", "u s fed": "FED", "us fed": "FED", "fed": "FED", "federal": "FED",
    "other gov": "OTHER_GOV", "other government": "OTHER_GOV", "individual": "INDIV", "indiv": "INDIV",
    "industry": "INDUSTRY", "network": "NETWORK", "ambiguous": "AMBIG", "other": "OTHER",
    "unknown": "UNKNOWN",
}

# Masking lines on pages often carry who is masked: "Double (Participant, Investigator)".
_MASKING_PREFIX = re.compile(r"^(none|single|double|triple|quadruple)\b")
_NON_WORD = re.compile(r"[^a-z0-9]+")


_ASCII_NON_WORD = str.maketrans({c: " " for c in map(chr, range(128))
                                 if not ("a" <= c <= "z" or "0" <= c <= "9")})


def _key(text: str) -> str:
    if text.isascii():  # same result as the regex, without it (called for many page lines)
        return " ".join(text.lower().translate(_ASCII_NON_WORD).split())
    return _NON_WORD.sub(" ", text.lower()).strip()


_CODE_MEMO: dict[tuple[str, str], str | None] = {}


def to_code(kind: str, text: str | None) -> str | None:
    """Map a page's wording for `kind` to its API v2 code, or None when unrecognised."""
    if not text:
        return None
    memo_key = (kind, text)
    code = _CODE_MEMO.get(memo_key, _MISSING)
    if code is _MISSING:
        code = _to_code(kind, text)
        remember(_CODE_MEMO, memo_key, text, code)
    return code  # type: ignore[return-value]


_MISSING = object()


def _to_code(kind: str, text: str) -> str | None:
    key = _key(text)
    if not key:
        return None
    code = _WORDS.get(kind, {}).get(key)
    if code:
        return code
    upper = key.upper().replace(" ", "_")
    if upper in CODES.get(kind, ()):
        return upper
    if kind == "masking":
        m = _MASKING_PREFIX.match(key)
        if m:
            return m.group(1).upper()
    return None


def phases_from_text(text: str | None) -> tuple[str, ...]:
    """All phases named in a phase line: 'Phase 1/Phase 2', 'Phase 1 Phase 2', 'Early Phase 1'."""
    if not text:
        return ()
    key = _key(text)
    found: list[str] = []
    for m in re.finditer(r"(early phase 1|phase 0|phase (\d)(?: (\d))?(?! \d)|not applicable|\bn a\b)", key):
        word = m.group(1)
        if m.group(2) and m.group(3):  # "phase 1 2" as left by "Phase 1/2"
            codes = [f"PHASE{m.group(2)}", f"PHASE{m.group(3)}"]
        else:
            code = to_code("phase", word)
            codes = [code] if code else []
        for code in codes:
            if code in CODES["phase"] and code not in found:
                found.append(code)
    return tuple(found)


# CT.gov display words for each code, used to render fixture pages and reports.
DISPLAY: dict[str, dict[str, str]] = {
    "overall_status": {
        "RECRUITING": "Recruiting",
        "NOT_YET_RECRUITING": "Not yet recruiting",
        "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
        "COMPLETED": "Completed",
        "ENROLLING_BY_INVITATION": "Enrolling by invitation",
        "SUSPENDED": "Suspended",
        "TERMINATED": "Terminated",
        "WITHDRAWN": "Withdrawn",
        "UNKNOWN": "Unknown status",
        "AVAILABLE": "Available",
        "NO_LONGER_AVAILABLE": "No longer available",
        "TEMPORARILY_NOT_AVAILABLE": "Temporarily not available",
        "APPROVED_FOR_MARKETING": "Approved for marketing",
        "WITHHELD": "Withheld",
    },
    "phase": {
        "EARLY_PHASE1": "Early Phase 1", "PHASE1": "Phase 1", "PHASE2": "Phase 2",
        "PHASE3": "Phase 3", "PHASE4": "Phase 4", "NA": "Not Applicable",
    },
    "study_type": {
        "INTERVENTIONAL": "Interventional", "OBSERVATIONAL": "Observational",
        "EXPANDED_ACCESS": "Expanded Access",
    },
    "sex": {"ALL": "All", "FEMALE": "Female", "MALE": "Male"},
    "primary_purpose": {
        "TREATMENT": "Treatment", "PREVENTION": "Prevention", "DIAGNOSTIC": "Diagnostic",
        "ECT": "Educational/Counseling/Training", "SUPPORTIVE_CARE": "Supportive Care",
        "SCREENING": "Screening", "HEALTH_SERVICES_RESEARCH": "Health Services Research",
        "BASIC_SCIENCE": "Basic Science", "DEVICE_FEASIBILITY": "Device Feasibility",
        "OTHER": "Other",
    },
    "allocation": {"RANDOMIZED": "Randomized", "NON_RANDOMIZED": "Non-Randomized", "NA": "N/A"},
    "intervention_model": {
        "SINGLE_GROUP": "Single Group Assignment", "PARALLEL": "Parallel Assignment",
        "CROSSOVER": "Crossover Assignment", "FACTORIAL": "Factorial Assignment",
        "SEQUENTIAL": "Sequential Assignment",
    },
    "masking": {
        "NONE": "None (Open label)", "SINGLE": "Single", "DOUBLE": "Double",
        "TRIPLE": "Triple", "QUADRUPLE": "Quadruple",
    },
    "intervention_type": {
        "BEHAVIORAL": "Behavioral", "BIOLOGICAL": "Biological",
        "COMBINATION_PRODUCT": "Combination Product", "DEVICE": "Device",
        "DIAGNOSTIC_TEST": "Diagnostic Test", "DIETARY_SUPPLEMENT": "Dietary Supplement",
        "DRUG": "Drug", "GENETIC": "Genetic", "PROCEDURE": "Procedure",
        "RADIATION": "Radiation", "OTHER": "Other",
    },
    "arm_type": {
        "EXPERIMENTAL": "Experimental", "ACTIVE_COMPARATOR": "Active Comparator",
        "PLACEBO_COMPARATOR": "Placebo Comparator", "SHAM_COMPARATOR": "Sham Comparator",
        "NO_INTERVENTION": "No Intervention", "OTHER": "Other",
    },
}
DISPLAY["location_status"] = DISPLAY["overall_status"]
