"""Deduplication engine: which pages describe the same trial.

Pure functions over `DedupInput` (a page key + its TrialRecord); no database, no Dagster.
Entry point: `link_records(inputs, config, decisions) -> DedupResult`.
"""

from pipeline.dedup.config import (
    BLOCKING_PASSES,
    COMPARISON_KINDS,
    Comparison,
    DedupConfig,
    Level,
    config_from_dict,
    config_to_dict,
)
from pipeline.dedup.engine import DEFAULT_CONFIG, link_records
from pipeline.dedup.inputs import inputs_from_parsed
from pipeline.dedup.keys import normalize_sponsor, registry_ids
from pipeline.dedup.types import (
    ComparisonResult,
    DedupInput,
    DedupResult,
    DedupStats,
    LinkMethod,
    PairScore,
    RecordLink,
    RefusedUnion,
)

__all__ = [
    "BLOCKING_PASSES",
    "COMPARISON_KINDS",
    "Comparison",
    "ComparisonResult",
    "DEFAULT_CONFIG",
    "DedupConfig",
    "DedupInput",
    "DedupResult",
    "DedupStats",
    "Level",
    "LinkMethod",
    "PairScore",
    "RecordLink",
    "RefusedUnion",
    "config_from_dict",
    "config_to_dict",
    "inputs_from_parsed",
    "link_records",
    "normalize_sponsor",
    "registry_ids",
]
