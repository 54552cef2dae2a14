"""Vectorized pair scoring: similarities -> comparison levels -> match weights.

Comparisons work on whole arrays of pairs (rapidfuzz `cpdist` in C++ threads, numpy
for numbers and dates).  The one per-pair Python step is the title alignment
(`title_diff`), and it only runs for pairs with close but unequal titles that are still
in the running: comparisons run in `COMPARISON_KINDS` order, and before each of the
later ones, pairs that can no longer reach reject_threshold even if every remaining
field agreed are dropped from further work -- they are out either way, so the result
does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from pipeline.dedup.config import COMPARISON_KINDS, COUNT, DAYS, RELATIVE, Comparison, DedupConfig
from pipeline.dedup.features import Features
from pipeline.dedup.types import ComparisonResult, PairScore

MISSING = 255  # level index of "a side lacks the field"
_CHEAP = ("title", "sponsor", "org_id", "phases", "enrollment",
          "start_date", "first_submitted", "completion_date")


@dataclass(slots=True)
class Scores:
    weight: np.ndarray  # float64 per pair; -inf for pairs dropped early
    conflict: np.ndarray  # bool per pair: a `config.veto` comparison landed in "else"
    levels: dict[str, np.ndarray] | None = None  # comparison -> uint8 level index (detail)
    sims: dict[str, np.ndarray] | None = None  # comparison -> float32 similarity (detail)


def _cpdist(a: np.ndarray, b: np.ndarray, scorer: Callable[..., float], cutoff: float,
            workers: int) -> np.ndarray:
    if len(a) == 0:
        return np.empty(0, np.float32)
    return process.cpdist(a, b, scorer=scorer, processor=None, score_cutoff=cutoff,
                          workers=workers, dtype=np.float32).astype(np.float32)


def _text_cutoff(comp: Comparison) -> float:
    return min((lv.threshold for lv in comp.levels), default=0.0)


def _present(feats: Features, name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    has = feats.shown[name]
    return has[a] & has[b]


def _title_sim(feats: Features, a: np.ndarray, b: np.ndarray, config: DedupConfig) -> np.ndarray:
    ta, tb = feats.title[a], feats.title[b]
    ok = (feats.title_len[a] > 0) & (feats.title_len[b] > 0)
    sim = np.full(len(a), np.nan, np.float32)
    idx = np.flatnonzero(ok)
    sim[idx] = _cpdist(ta[idx], tb[idx], fuzz.ratio, 0.0, config.workers)
    # Mirrors cut long titles: compare the shorter one with the start of the longer.
    la, lb = feats.title_len[a], feats.title_len[b]
    short = np.minimum(la, lb)
    pre = np.flatnonzero(ok & (sim < 100) & (la != lb) & (short >= config.title_prefix_min_chars))
    if len(pre):
        shorter = np.where(la[pre] <= lb[pre], ta[pre], tb[pre])
        longer = np.where(la[pre] <= lb[pre], tb[pre], ta[pre])
        cut = np.array([lg[: len(sh)] for sh, lg in zip(shorter, longer)], dtype=object)
        prefix = _cpdist(shorter, cut, fuzz.ratio, 0.0, config.workers)
        sim[pre] = np.maximum(sim[pre], prefix * config.title_prefix_factor)
    return sim


def title_diff(a: str, b: str, gap: int = 3) -> tuple[int, bool]:
    """(letters edited in the most edited stretch, whether a changed stretch holds a digit).

    Edits less than `gap` letters apart form one stretch (a replaced word often shares a
    letter or two with the new one); a stretch counts its edited letters, not the letters
    in between, so two typos in neighbouring words stay small while a swapped word is
    large.  A cut-off tail -- one title truncated by a mirror -- is not a change, so
    "covid 2019" cut to "covid 20" is no number change: the longer title is first cut to
    the shorter one's length (plus `gap` letters of slack for typos), else the aligner may
    spread the shorter title's last letters over the tail.
    """
    if len(a) > len(b) + gap:
        a = a[: len(b) + gap]
    elif len(b) > len(a) + gap:
        b = b[: len(a) + gap]
    ops = list(Levenshtein.opcodes(a, b))
    if ops and ops[-1].tag in ("insert", "delete"):
        ops.pop()
    largest = 0
    digit = False
    edits = 0  # edited letters in the current stretch; 0 = no stretch open
    for op in ops:
        if op.tag == "equal":
            if edits and op.src_end - op.src_start >= gap:
                largest = max(largest, edits)
                edits = 0
            continue
        edits += max(op.src_end - op.src_start, op.dest_end - op.dest_start)
        if not digit:
            changed = a[op.src_start:op.src_end] + b[op.dest_start:op.dest_end]
            digit = any(ch.isdigit() for ch in changed)
    return max(largest, edits), digit


def _title_diffs(feats: Features, a: np.ndarray, b: np.ndarray,
                 config: DedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """`title_change` and `title_numbers` similarities from one alignment per close pair
    (compact titles, ratio >= 70, not equal); other pairs: NaN (the title comparison
    already judged them) or 0 changes (equal titles)."""
    ca, cb = feats.title_compact[a], feats.title_compact[b]
    change = np.full(len(a), np.nan, np.float32)
    numbers = np.full(len(a), np.nan, np.float32)
    ok = np.flatnonzero((feats.title_len[a] > 0) & (feats.title_len[b] > 0))
    close = _cpdist(ca[ok], cb[ok], fuzz.ratio, 70.0, config.workers)
    change[ok[close >= 100]] = 0.0
    todo = ok[(close >= 70) & (close < 100)]
    diffs = [title_diff(x, y) for x, y in zip(ca[todo], cb[todo])]
    if diffs:
        change[todo] = [d[0] for d in diffs]
        numbers[todo] = [0.0 if d[1] else 1.0 for d in diffs]
    # Numbers: only where a title has digits.  Roman numerals (Phase II / III, Part IV)
    # never look like digits: they agree when one title's set holds the other's.
    digits = feats.title_digits[a] | feats.title_digits[b]
    numbers[~digits] = np.nan
    ra, rb = feats.title_roman[a], feats.title_roman[b]
    has_roman = (ra[:, 0] != 0) | (rb[:, 0] != 0)
    if has_roman.any():
        a_in_b = ((ra[:, :, None] == rb[:, None, :]).any(axis=2) | (ra == 0)).all(axis=1)
        b_in_a = ((rb[:, :, None] == ra[:, None, :]).any(axis=2) | (rb == 0)).all(axis=1)
        roman_ok = (a_in_b | b_in_a).astype(np.float32)
        both = has_roman & ~np.isnan(numbers)
        numbers[both] = np.minimum(numbers[both], roman_ok[both])
        only = has_roman & np.isnan(numbers)
        numbers[only] = roman_ok[only]
    return change, numbers


def _similarity(name: str, feats: Features, a: np.ndarray, b: np.ndarray,
                config: DedupConfig, cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """float32 similarity per pair, NaN where either side lacks the field."""
    if name == "title":
        return _title_sim(feats, a, b, config)
    if name in ("title_change", "title_numbers"):
        key = ("title_diffs", len(a))
        if key not in cache:
            cache.clear()
            cache[key] = _title_diffs(feats, a, b, config)
        change, numbers = cache[key]
        return change if name == "title_change" else numbers
    if name == "sponsor":
        sa, sb = feats.sponsor[a], feats.sponsor[b]
        sim = np.full(len(a), np.nan, np.float32)
        idx = np.flatnonzero(_present(feats, "sponsor", a, b))
        ratio = _cpdist(sa[idx], sb[idx], fuzz.ratio, 0.0, config.workers)
        # One name inside the other ("Zhejiang University" / "... School of Medicine")
        # counts as close, not exact.
        subset = _cpdist(sa[idx], sb[idx], fuzz.token_set_ratio, 0.0, config.workers)
        sim[idx] = np.where(subset >= 100, np.maximum(ratio, 90.0), ratio)
        return sim
    if name == "org_id":
        oa, ob = feats.org[a], feats.org[b]
        sim = (oa == ob).astype(np.float32)
        sim[(oa == 0) | (ob == 0)] = np.nan
        return sim
    if name == "phases":
        pa, pb = feats.phases[a], feats.phases[b]
        sim = np.full(len(a), np.nan, np.float32)
        sim[pa == pb] = 1.0
        sim[(pa & pb) == 0] = 0.0
        sim[(pa == 0) | (pb == 0)] = np.nan
        return sim
    if name == "enrollment":
        ea, eb = feats.enrollment[a], feats.enrollment[b]
        top = np.maximum(ea, eb)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(top > 0, np.abs(ea - eb) / top, 0.0)
        rel[np.isnan(ea) | np.isnan(eb)] = np.nan
        return rel.astype(np.float32)
    if name in ("start_date", "first_submitted", "completion_date"):
        da, db = getattr(feats, name)[a], getattr(feats, name)[b]
        return np.abs(da - db).astype(np.float32)  # NaN stays NaN
    values: np.ndarray = getattr(feats, name)
    sim = np.full(len(a), np.nan, np.float32)
    idx = np.flatnonzero(_present(feats, name, a, b))
    scorer = fuzz.ratio if name == "criteria" else fuzz.token_set_ratio
    sim[idx] = _cpdist(values[a[idx]], values[b[idx]], scorer,
                       _text_cutoff(config.comparison(name)), config.workers)
    return sim


def _level_index(sim: np.ndarray, comp: Comparison, kind: str) -> np.ndarray:
    idx = np.full(len(sim), len(comp.levels), np.uint8)  # "else"
    for i in range(len(comp.levels) - 1, -1, -1):  # earlier levels win
        thr = comp.levels[i].threshold
        with np.errstate(invalid="ignore"):
            hit = sim <= thr if kind in (RELATIVE, DAYS, COUNT) else sim >= thr
        idx[hit] = i
    idx[np.isnan(sim)] = MISSING
    return idx


def _weights(levels: np.ndarray, comp: Comparison) -> np.ndarray:
    table = np.zeros(256, np.float64)
    for i, lv in enumerate(comp.levels):
        table[i] = lv.weight
    table[len(comp.levels)] = comp.else_weight
    return table[levels]


def score_pairs(feats: Features, a: np.ndarray, b: np.ndarray, config: DedupConfig,
                detail: bool = False) -> Scores:
    """Match weight per pair.  With detail=True nothing is dropped early and the level and
    similarity of every comparison are kept (for explanations)."""
    names = [n for n in COMPARISON_KINDS if config.comparison(n).enabled]
    weight = np.full(len(a), config.prior_weight)
    conflict = np.zeros(len(a), bool)
    alive = np.arange(len(a))
    cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    levels: dict[str, np.ndarray] = {}
    sims: dict[str, np.ndarray] = {}
    remaining_max = {n: sum(config.comparison(m).max_weight for m in names[i:])
                     for i, n in enumerate(names)}
    for name in names:
        comp = config.comparison(name)
        if not detail and name not in _CHEAP:
            reachable = weight[alive] + remaining_max[name] >= config.reject_threshold
            alive = alive[reachable]
        sim = _similarity(name, feats, a[alive], b[alive], config, cache)
        lv = _level_index(sim, comp, COMPARISON_KINDS[name])
        weight[alive] += _weights(lv, comp)
        if name in config.veto:
            conflict[alive[lv == len(comp.levels)]] = True
        if detail:
            levels[name], sims[name] = lv, sim
    if not detail:
        dropped = np.ones(len(a), bool)
        dropped[alive] = False
        weight[dropped] = -np.inf
    return Scores(weight, conflict, levels if detail else None, sims if detail else None)


def probability(weight: float) -> float:
    return float(1.0 / (1.0 + 2.0 ** (-weight))) if weight > -1000 else 0.0


def explain_pairs(feats: Features, a: np.ndarray, b: np.ndarray,
                  config: DedupConfig) -> list[PairScore]:
    """Full PairScore objects (every comparison's level, similarity and weight).

    Built column by column; equal (comparison, similarity) results are one shared
    object, so a million explanations cost a tuple of references each.
    """
    if len(a) == 0:
        return []
    scores = score_pairs(feats, a, b, config, detail=True)
    assert scores.levels is not None and scores.sims is not None
    columns = []
    for name, levels in scores.levels.items():
        comp = config.comparison(name)
        sims = np.round(scores.sims[name].astype(np.float64), 3)
        interned: dict[tuple[int, float], ComparisonResult] = {}
        missing = ComparisonResult(name, "missing", None, 0.0)
        column = []
        for li, sim in zip(levels.tolist(), sims.tolist()):
            if li == MISSING:
                column.append(missing)
                continue
            got = interned.get((li, sim))
            if got is None:
                if li == len(comp.levels):
                    got = ComparisonResult(name, "else", sim, comp.else_weight)
                else:
                    lv = comp.levels[li]
                    got = ComparisonResult(name, lv.label, sim, lv.weight)
                interned[(li, sim)] = got
            column.append(got)
        columns.append(column)
    keys = feats.keys
    weights = np.round(scores.weight, 6).tolist()
    probs = (1.0 / (1.0 + np.exp2(-np.clip(scores.weight, -1000, 1000)))).tolist()
    return [
        PairScore(keys[ia], keys[ib], w, p, comps)
        for ia, ib, w, p, comps in zip(a.tolist(), b.tolist(), weights, probs, zip(*columns))
    ]


__all__ = ["MISSING", "Scores", "explain_pairs", "probability", "score_pairs", "title_diff"]
