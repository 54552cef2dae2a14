"""Thresholds and weights of the matcher: configuration, not constants in code.

Scoring follows splink's model: each field comparison puts a pair into one *level*
("exact", ">=95", ...) and each level carries a *match weight*, the log2 Bayes factor
log2(m/u) -- how much more often true duplicates land there than different trials do.
A pair's match weight is `prior_weight` plus the weights of its levels; a field that is
missing on either side adds nothing (pages show different subsets of a trial).  The
weight maps to a probability 1 / (1 + 2**-weight).

Pairs at or above `accept_threshold` are merged, pairs at or above `reject_threshold`
(and below accept) are returned as review candidates, the rest are dropped.

What a level's `threshold` means depends on the comparison's kind (fixed in code):
  * text comparisons: the minimum rapidfuzz score, 0..100;
  * `enrollment`: the maximum relative difference |a-b| / max(a, b);
  * dates: the maximum number of days apart;
  * `title_change`: the maximum number of letters edited in one stretch of the titles;
  * flag comparisons (`title_numbers`, `phases`, `org_id`): 1 = agree, 0 = conflict
    (levels at threshold 1 = agree; else_weight = conflict).
Levels are tried in order; the first one the pair reaches wins; a pair that reaches
none gets `else_weight`.

Scorers (fixed in code, see scoring.py), all on lower-cased, punctuation-free text:
title = max(fuzz.ratio, title_prefix_factor x ratio of the shorter title against the
start of the longer); sponsor = fuzz.ratio of normalized names (legal forms dropped),
at least 90 when one name's words hold the other's; conditions, interventions,
keywords, officials (all contact names) and locations (facility, else city) =
fuzz.token_set_ratio over the sorted distinct items; criteria = fuzz.ratio over the
first `criteria_prefix_chars` characters of the criteria text.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

# Comparison kinds decide how `Level.threshold` is read (see the module docstring).
TEXT, RELATIVE, DAYS, COUNT, FLAG = "text", "relative", "days", "count", "flag"

# name -> kind, in scoring order: vectorized comparisons first, so the alignment and
# long-string ones can be skipped for pairs that cannot reach reject_threshold any more.
COMPARISON_KINDS: dict[str, str] = {
    "title": TEXT,
    "sponsor": TEXT,
    "org_id": FLAG,
    "phases": FLAG,
    "enrollment": RELATIVE,
    "start_date": DAYS,
    "first_submitted": DAYS,
    "completion_date": DAYS,
    "title_numbers": FLAG,
    "title_change": COUNT,
    "conditions": TEXT,
    "interventions": TEXT,
    "keywords": TEXT,
    "officials": TEXT,
    "locations": TEXT,
    "criteria": TEXT,
}


BLOCKING_PASSES: tuple[str, ...] = (
    "title_rare", "title_prefix", "title_suffix", "sponsor_criteria", "criteria")


@dataclass(frozen=True, slots=True)
class Level:
    """One comparison level: reaching `threshold` (and no earlier level) adds `weight`."""

    label: str
    threshold: float
    weight: float


@dataclass(frozen=True, slots=True)
class Comparison:
    levels: tuple[Level, ...]
    else_weight: float  # both sides have the field but no level was reached
    enabled: bool = True

    @property
    def max_weight(self) -> float:
        return max([lv.weight for lv in self.levels] + [self.else_weight, 0.0])


def _text(exact: float, *steps: tuple[float, float], other: float) -> Comparison:
    levels = [Level("exact", 100.0, exact)] + [Level(f">={t:g}", t, w) for t, w in steps]
    return Comparison(tuple(levels), other)


def _flag(agree: float, conflict: float) -> Comparison:
    return Comparison((Level("agree", 1.0, agree),), conflict)


def _days(*steps: tuple[float, float], other: float) -> Comparison:
    levels = [Level("same day" if d == 0 else f"<={d:g}d", float(d), w) for d, w in steps]
    return Comparison(tuple(levels), other)


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """Everything tunable about linking.  Frozen: pass a changed copy (`with_changes`)."""

    accept_threshold: float = 6.0  # match weight at/above which a pair is merged
    reject_threshold: float = 0.0  # below: dropped; between: a review candidate
    prior_weight: float = -6.0  # log2 prior odds that a blocked pair is one trial

    # Title similarity is max(fuzz.ratio, title_prefix_factor * prefix ratio), the prefix
    # ratio comparing the shorter title with the start of the longer one (mirrors cut
    # long titles).  Prefixes shorter than title_prefix_min_chars are not trusted.
    title_prefix_factor: float = 0.93
    title_prefix_min_chars: int = 24

    title: Comparison = _text(9.0, (95.0, 7.5), (88.0, 4.5), (75.0, 0.0), other=-7.0)
    # Numbers in titles ("Phase 2" / "Phase 3", "Part II"): conflict when a changed stretch
    # of the aligned titles holds a digit (a cut-off tail does not count), or when neither
    # title's roman numerals are a subset of the other's.
    title_numbers: Comparison = _flag(0.0, -7.0)
    # Letters edited in the most edited stretch of the aligned titles (spaces ignored,
    # edits < 3 letters apart are one stretch, a cut-off tail not counted): typos edit 1-2
    # letters in a place, another study swaps a word.  Judged for titles with ratio >= 70
    # (equal titles: 0 letters).
    title_change: Comparison = Comparison(
        (Level("<=2 letters", 2.0, 0.0), Level("<=4 letters", 4.0, -2.0)), -8.0)
    sponsor: Comparison = _text(4.0, (90.0, 3.0), (75.0, 1.0), other=-6.0)
    # Sponsor's own study ids that differ: the same sponsor numbered two studies.
    org_id: Comparison = _flag(0.0, -10.0)
    # Phase sets: equal = agree; disjoint = conflict; overlapping = no evidence.
    phases: Comparison = _flag(0.5, -5.0)
    enrollment: Comparison = Comparison(
        (Level("exact", 0.0, 2.5), Level("<=10%", 0.10, 0.5)), -2.0)
    start_date: Comparison = _days((0, 3.0), (31, 1.0), (366, -1.0), other=-4.0)
    first_submitted: Comparison = _days((0, 4.0), (31, 1.0), other=-5.0)
    completion_date: Comparison = _days((0, 1.5), (366, 0.0), other=-1.5)
    # Conditions, interventions and keywords are often generic ("COVID-19", "Placebo"):
    # agreeing on them says little, disagreeing says more.
    conditions: Comparison = _text(1.5, (90.0, 1.0), (60.0, 0.0), other=-2.0)
    interventions: Comparison = _text(2.0, (90.0, 1.5), (60.0, 0.0), other=-2.5)
    keywords: Comparison = _text(1.5, (90.0, 1.0), (60.0, 0.0), other=-1.5)
    officials: Comparison = _text(2.0, (90.0, 1.5), (60.0, 0.5), other=-1.0)
    locations: Comparison = _text(2.5, (90.0, 2.0), (60.0, 0.5), other=-2.0)
    # Pages of one trial show the same criteria text; a sibling study edits a few.
    criteria: Comparison = _text(6.0, (95.0, 1.5), (80.0, 0.0), other=-5.0)

    # A record without NCT ID that clears accept_threshold with trials of different NCT
    # IDs, the runner-up within this many bits of the best, joins neither: it becomes a
    # review candidate for each.
    ambiguity_margin: float = 4.0
    # Facts that never differ between pages of one trial.  Two clusters are not merged
    # by a fuzzy link when any scored pair across them lands in the "else" level of one
    # of these comparisons (stops chains like: truncated title links to both a trial and
    # its sibling study, whose own pages disagree on the org id).
    veto: tuple[str, ...] = ("org_id", "title_numbers", "first_submitted")

    # Blocking: passes whose blocks are unioned; a block above max_block_size is skipped
    # (a key that common says nothing) and counted in the stats.
    blocking_passes: tuple[str, ...] = (
        "title_rare", "title_prefix", "title_suffix", "sponsor_criteria", "criteria")
    max_block_size: int = 60
    title_rare_tokens: int = 4  # pairs of a record's k rarest title words are its keys
    title_prefix_chars: int = 20
    criteria_prefix_chars: int = 300  # criteria text compared / hashed (whole words)
    max_list_items: int = 25  # conditions, locations, officials... compared per record

    # Speed only, never results: rapidfuzz threads (-1 = all cores) and pairs per batch.
    workers: int = -1
    score_batch: int = 1_000_000

    def comparison(self, name: str) -> Comparison:
        return getattr(self, name)  # type: ignore[no-any-return]

    def with_changes(self, **changes: Any) -> DedupConfig:
        return replace(self, **changes)

    def __post_init__(self) -> None:
        if self.reject_threshold > self.accept_threshold:
            raise ValueError("reject_threshold must not exceed accept_threshold")
        if self.max_block_size < 2:
            raise ValueError("max_block_size must be at least 2")
        if set(self.veto) - set(COMPARISON_KINDS):
            raise ValueError(f"unknown veto comparisons: {sorted(set(self.veto) - set(COMPARISON_KINDS))}")
        unknown = set(self.blocking_passes) - set(BLOCKING_PASSES)
        if unknown:
            raise ValueError(f"unknown blocking passes: {sorted(unknown)}")
        for name, kind in COMPARISON_KINDS.items():
            comp = self.comparison(name)
            if not isinstance(comp, Comparison):
                raise TypeError(f"{name} must be a Comparison")
            if kind == TEXT and any(not 0 <= lv.threshold <= 100 for lv in comp.levels):
                raise ValueError(f"{name}: text thresholds are rapidfuzz scores 0..100")


def config_to_dict(config: DedupConfig) -> dict[str, Any]:
    """Plain data (for a Dagster Config / JSON / the review log)."""
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Comparison):
            out[f.name] = {
                "levels": [[lv.label, lv.threshold, lv.weight] for lv in value.levels],
                "else_weight": value.else_weight,
                "enabled": value.enabled,
            }
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def config_from_dict(data: dict[str, Any]) -> DedupConfig:
    """Inverse of `config_to_dict`; keys left out keep their defaults."""
    kwargs: dict[str, Any] = {}
    for f in fields(DedupConfig):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in COMPARISON_KINDS:
            kwargs[f.name] = Comparison(
                tuple(Level(str(lb), float(t), float(w)) for lb, t, w in value["levels"]),
                float(value["else_weight"]),
                bool(value.get("enabled", True)),
            )
        elif f.name in ("blocking_passes", "veto"):
            kwargs[f.name] = tuple(value)
        else:
            kwargs[f.name] = value
    return DedupConfig(**kwargs)


__all__ = [
    "BLOCKING_PASSES",
    "COMPARISON_KINDS",
    "Comparison",
    "DedupConfig",
    "Level",
    "config_from_dict",
    "config_to_dict",
]
