"""Structured eligibility: criterion text -> typed bounds (`Constraint`) and exclusion flags.

Pure Python, no I/O.  See `model` for the sign/negation convention every consumer must follow.
"""

from pipeline.eligibility.bench import benchmark
from pipeline.eligibility.extract import analyze, extract_constraints, flags, profile_criteria
from pipeline.eligibility.model import FLAGS, VARIABLES, Constraint, CriterionProfile

# Bump when extraction output changes, so stored rows can be traced to the code that made them.
EXTRACTOR_VERSION = "2"

__all__ = [
    "EXTRACTOR_VERSION",
    "FLAGS",
    "VARIABLES",
    "Constraint",
    "CriterionProfile",
    "analyze",
    "benchmark",
    "extract_constraints",
    "flags",
    "profile_criteria",
]
