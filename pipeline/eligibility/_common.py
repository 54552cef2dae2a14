"""Internal row type shared by the extractors, and condition canonicalization."""

from __future__ import annotations

import re
from dataclasses import dataclass

# (compiled once: these run per bound)
_NEGATED_RE = re.compile(r"\s*(?:no|not|without|absence\s+of)\b")
_BONE_RE = re.compile(r"\bbone\b.*\b(?:metasta|involv)")
_FEMALES_RE = re.compile(r"\s*(?:females?|women)\s*")
_MALES_RE = re.compile(r"\s*(?:males?|men)\s*")


@dataclass(slots=True)
class Row:
    variable: str
    lower: float | None
    lower_inclusive: bool | None
    upper: float | None
    upper_inclusive: bool | None
    unit: str | None
    start: int  # normalized-text span of the evidence
    end: int
    condition: str | None = None
    antigen: str | None = None
    negated: bool | None = None  # None = follow the criterion type
    method: bool = False  # condition is a measurement method (may form alternatives)
    alt: int | None = None  # extractor-local alternative set (e.g. "CLL1 or CD33 positive")


_LIVER_RE = re.compile(r"\b(?:liver|hepatic)\b.*\b(?:metasta|invas|involv|infiltrat|lesion)|hepatic\s+metasta")
_METHODS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"flow\s*cytometr|flowcytometr|\bfcm\b|\bby\s+flow\b"), "flow cytometry"),
    (re.compile(r"immunohistochem|\bihc\b"), "immunohistochemistry"),
    (re.compile(r"morpholog"), "morphology"),
)
METHOD_RE = re.compile(
    r"flow\s*cytometr\w*|flowcytometr\w*|\bfcm\b|\bby\s+flow\b|immunohistochem\w*|\bihc\b|morpholog\w*"
)


def method_name(text: str) -> str | None:
    for pat, name in _METHODS:
        if pat.search(text):
            return name
    return None


def canonical_condition(raw: str) -> str:
    """Known subgroups get one spelling; anything else keeps the author's words."""
    low = raw.lower()
    if _NEGATED_RE.match(low):
        return " ".join(raw.strip(" ,;:.()").split())
    if _LIVER_RE.search(low):
        return "liver involvement"
    if "gilbert" in low:
        return "Gilbert's syndrome"
    if _BONE_RE.search(low):
        return "bone involvement"
    if _FEMALES_RE.fullmatch(low):
        return "females"
    if _MALES_RE.fullmatch(low):
        return "males"
    return " ".join(raw.strip(" ,;:.()").split())
