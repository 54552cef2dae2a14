"""Antigen names as criteria and cell-therapy descriptions write them, and one spelling each.

Shared by eligibility ("CD123-positive AML") and therapy profiling ("anti-CD123 CAR-NK").
CD markers that describe T/NK cells or CAR building blocks (CD3, CD4, CD8, CD16, CD28, CD34,
CD45, CD56, CD137...) are deliberately not antigens here.
"""

from __future__ import annotations

import re

# Lower-case patterns (the callers lower-case their text first).
ANTIGEN_PATTERN = (
    r"(?:\bcd\s?(?!(?:3|4|8|16|25|27|28|34|45|56|62|69|134|137|152|154)\b)\d{1,3}[a-z]?\b|\bcll-?1\b|\bclec12a\b|"
    r"\bbcma\b|\bgpc-?3\b|\bher-?2\b|\berbb2\b|\bnkg2d\s*(?:ligands?|l)\b|\bmesothelin\b|\bmsln\b|\bgd2\b|"
    r"\bpsma\b|\bclaudin\s*18\.2|\bcldn18\.2|\bror1\b|\bgprc5d\b|\bdll3\b|\bb7-?h3\b|\begfrviii\b|\bmuc1\b|"
    r"\bslamf7\b|\bcs1\b|\bepcam\b|\bcea\b|\bpsca\b|\bil-?13\s*r(?:alpha|α|a)2\b|\bny-?eso-?1\b|\bmage-?a4\b|"
    r"\bafp\b|\btrop-?2\b|\bc-?met\b|\bfap\b|\bkappa\s+light\s+chain\b)"
)
ANTIGEN_RE = re.compile(ANTIGEN_PATTERN)

_CANONICAL = {
    "cll1": "CLEC12A", "clec12a": "CLEC12A", "mesothelin": "MSLN", "msln": "MSLN", "cs1": "SLAMF7",
    "slamf7": "SLAMF7", "erbb2": "HER2", "her2": "HER2", "claudin18.2": "CLDN18.2", "cldn18.2": "CLDN18.2",
    "nyeso1": "NY-ESO-1", "magea4": "MAGE-A4", "trop2": "TROP2", "cmet": "MET", "b7h3": "B7-H3",
    "kappalightchain": "kappa light chain",
}


def canonical_antigen(raw: str) -> str:
    """One spelling per antigen: "CLL-1" -> "CLEC12A", "cd 19" -> "CD19", "NKG2D ligands" -> "NKG2DL"."""
    a = re.sub(r"[\s-]", "", raw.lower())
    if a.startswith("nkg2d"):
        return "NKG2DL"
    if a.startswith("il13r"):
        return "IL13RA2"
    return _CANONICAL.get(a, a.upper())
