"""What goes into and comes out of the matcher."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pipeline.models import TrialRecord

# How a record is tied into its cluster (its strongest successful link):
#   nct          shares a (normalized, alias-resolved) NCT ID with another record
#   secondary_id shares a registry id (EudraCT, ChiCTR, ISRCTN, ...)
#   org_id       shares the sponsor's own study id, with the same normalized sponsor
#   url          shares a site's own stable id (veeva_slug, ...)
#   manual       joined by an accept decision
#   fuzzy        joined by a score at/above accept_threshold
#   new          alone in its cluster
LinkMethod = Literal["nct", "secondary_id", "org_id", "url", "manual", "fuzzy", "new"]
METHOD_RANK: dict[str, int] = {
    "nct": 0, "secondary_id": 1, "org_id": 2, "url": 3, "manual": 4, "fuzzy": 5, "new": 6,
}


@dataclass(frozen=True, slots=True)
class DedupInput:
    """One page as the matcher sees it."""

    key: str  # stable and unique: the page_id
    record: TrialRecord
    source: str = "unknown"
    fetched_at: dt.datetime | None = None
    url: str | None = None  # NCT IDs in it (ClinConnect's /trials/NCT...) count as the record's


@dataclass(frozen=True, slots=True)
class ComparisonResult:
    name: str  # "title", "sponsor", ...
    level: str  # the level label, "else", or "missing" (a side lacks the field: weight 0)
    similarity: float | None  # score 0..100, relative difference, days apart or 1/0 flag
    weight: float


@dataclass(frozen=True, slots=True)
class PairScore:
    """A scored pair: key_a < key_b."""

    key_a: str
    key_b: str
    weight: float  # prior + sum of comparison weights (log2 odds)
    probability: float
    comparisons: tuple[ComparisonResult, ...]  # every enabled comparison, in config order

    def explain(self) -> str:
        """'title exact +9.0, sponsor >=90 +3.0, ..., total 12.5 (p=0.9998)'; missing fields left out."""
        parts = [
            f"{c.name} {c.level} {c.weight:+.1f}" for c in self.comparisons if c.level != "missing"
        ]
        return ", ".join(parts) + f"; total {self.weight:.1f} (p={self.probability:.4f})"


@dataclass(frozen=True, slots=True)
class RecordLink:
    """How one record came into its cluster."""

    key: str
    cluster: int  # index into DedupResult.clusters
    method: LinkMethod
    matched_key: str | None  # the record it is linked through (None for `new`)
    via: str | None  # the shared key ("nct:NCT04599543", "org:...") for key methods
    score: PairScore | None  # the accepted fuzzy pair's score (fuzzy only)


@dataclass(frozen=True, slots=True)
class RefusedUnion:
    """A link that was not made because it would break a rule."""

    key_a: str
    key_b: str
    method: str  # the link that was refused: "nct", "org_id", ..., "manual", "fuzzy"
    reason: Literal["nct_conflict", "manual_reject", "score_conflict"]
    detail: str  # e.g. "NCT04599543 vs NCT05563545 via org:zhejiang university|cd123001"


@dataclass(frozen=True, slots=True)
class DedupStats:
    records: int
    exact_clusters: int  # clusters after the exact-key step
    blocks: int  # blocks used (2..max_block_size records, at least one record without NCT)
    blocks_skipped: int  # over max_block_size
    pairs_blocked: int  # pairs made from blocks (repeats across passes included)
    pairs_scored: int  # distinct pairs across clusters, at least one without NCT ID
    pairs_accepted: int
    candidates: int
    seconds: dict[str, float]  # per step: features, exact, blocking, scoring, union


@dataclass(frozen=True, slots=True)
class DedupResult:
    clusters: tuple[tuple[str, ...], ...]  # keys sorted; clusters sorted by their first key
    links: tuple[RecordLink, ...]  # one per input key, sorted by key
    candidates: tuple[PairScore, ...]  # review band, across clusters, best first
    refused: tuple[RefusedUnion, ...]
    stats: DedupStats

    def link_map(self) -> dict[str, RecordLink]:
        """key -> its RecordLink (built on each call: keep the dict when looking up many)."""
        return {link.key: link for link in self.links}
