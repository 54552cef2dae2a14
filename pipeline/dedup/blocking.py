"""Blocking: which record pairs get scored at all (never all pairs).

Several passes each give every record a few block keys; records sharing a key form a
block.  Passes (config.blocking_passes):

  title_rare        pairs of the record's k rarest title words (words seen in at least
                    two titles, stop words left out): typos in two words (a typo'd word
                    is rare, so it crowds out a real one), a changed case or punctuation
                    still leave a shared pair;
  title_prefix      the first N letters/digits of the title: survives truncation and
                    typos late in the title;
  title_suffix      the last N letters/digits: survives typos early in the title;
  sponsor_criteria  the normalized sponsor plus the first words of the criteria: pages
                    of one trial on both sites list the same criteria even when titles
                    were mangled;
  criteria          the first words of the criteria alone (a typo in the sponsor too);
                    generic openings ("Age 18 years or older") make blocks over the
                    size cap, which are skipped.

A block larger than max_block_size is skipped (a key that common says nothing) and
counted.  Only pairs with at least one record whose cluster has no NCT ID are made:
two clusters with NCT IDs can never merge, so scoring them is wasted work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.dedup.config import DedupConfig
from pipeline.dedup.features import Features

STOP_WORDS = frozenset(
    """a an and are as at be by for from in into is it of on or the to with without via vs versus
    study trial clinical patients patient subjects participants phase randomized randomised
    controlled open label single multicenter multi center double blind placebo evaluate evaluation
    efficacy safety effect effects treatment therapy""".split()
)
_CRITERIA_WORDS = 12


@dataclass(frozen=True, slots=True)
class BlockStats:
    blocks: int  # blocks used
    blocks_skipped: int  # over max_block_size
    pairs_raw: int  # pairs made from the blocks, repeats across passes included
    pairs: int  # distinct pairs across clusters: the ones to score


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sorting beats numpy's hash-based unique on big int arrays)."""
    out = np.sort(values)
    return out[np.r_[True, out[1:] != out[:-1]]] if len(out) else out


def _codes(values: pd.Series) -> np.ndarray:
    codes, _ = pd.factorize(values, sort=False)
    return codes.astype(np.int64)


def _title_rare_keys(feats: Features, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(record, key) rows: pairs among each record's k rarest (df >= 2) title words."""
    words = pd.Series(feats.title, dtype=object).str.split().explode()
    words = words[words.notna()]
    words = words[(words.str.len() >= 2) & ~words.isin(STOP_WORDS)]
    if words.empty:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rec = words.index.to_numpy(dtype=np.int64)
    code = _codes(words)
    pair = _unique(rec * (int(code.max()) + 1) + code)  # one row per (record, word)
    vocab = int(code.max()) + 1
    rec, code = pair // vocab, pair % vocab
    df = np.bincount(code, minlength=vocab)
    keep = df[code] >= 2
    rec, code = rec[keep], code[keep]
    order = np.lexsort((code, df[code], rec))  # per record: rarest first, then word code
    rec, code = rec[order], code[order]
    starts = np.flatnonzero(np.r_[True, rec[1:] != rec[:-1]])
    rank = np.arange(len(rec)) - np.repeat(starts, np.diff(np.r_[starts, len(rec)]))
    sel = rank < k
    rec, code, rank = rec[sel], code[sel], rank[sel]
    n = feats.n
    table = np.full((n, k), -1, dtype=np.int64)
    table[rec, rank] = code
    out_rec, out_key = [], []
    count = (table >= 0).sum(axis=1)
    single = np.flatnonzero(count == 1)  # only one usable word: it alone is the key
    out_rec.append(single)
    out_key.append(table[single, 0] * vocab + table[single, 0])
    for i in range(k):
        for j in range(i + 1, k):
            ok = np.flatnonzero((table[:, i] >= 0) & (table[:, j] >= 0))
            lo = np.minimum(table[ok, i], table[ok, j])
            hi = np.maximum(table[ok, i], table[ok, j])
            out_rec.append(ok)
            out_key.append(lo * vocab + hi)
    return np.concatenate(out_rec), np.concatenate(out_key)


def _string_keys(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    series = pd.Series(values, dtype=object)
    mask = series.str.len().fillna(0).to_numpy() > 0
    rec = np.flatnonzero(mask)
    return rec, _codes(series[mask])


def _prefix_keys(feats: Features, chars: int, suffix: bool) -> tuple[np.ndarray, np.ndarray]:
    compact = feats.title_compact
    if suffix:
        # Short titles are covered by the prefix pass; a suffix of a whole short title
        # would only repeat it.
        values = [c[-chars:] if len(c) > chars * 2 else "" for c in compact]
    else:
        values = [c[:chars] if len(c) >= chars // 2 else "" for c in compact]
    return _string_keys(values)


def _criteria_keys(feats: Features, with_sponsor: bool) -> tuple[np.ndarray, np.ndarray]:
    values = []
    for sponsor, crit in zip(feats.sponsor, feats.criteria):
        if crit and (sponsor or not with_sponsor):
            words = " ".join(crit.split(" ", _CRITERIA_WORDS)[:_CRITERIA_WORDS])
            values.append(f"{sponsor}|{words}" if with_sponsor else words)
        else:
            values.append("")
    return _string_keys(values)


def block_pairs(
    feats: Features, cluster: np.ndarray, free: np.ndarray, config: DedupConfig
) -> tuple[np.ndarray, np.ndarray, BlockStats]:
    """Distinct pairs (a < b) sharing a block, in different clusters, one of them free.

    `cluster[i]` is record i's cluster after exact keys; `free[i]` says that cluster has
    no NCT ID.  Output is sorted, so it does not depend on input order.
    """
    recs: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    for pass_no, name in enumerate(config.blocking_passes):
        if name == "title_rare":
            rec, key = _title_rare_keys(feats, config.title_rare_tokens)
        elif name == "title_prefix":
            rec, key = _prefix_keys(feats, config.title_prefix_chars, suffix=False)
        elif name == "title_suffix":
            rec, key = _prefix_keys(feats, config.title_prefix_chars, suffix=True)
        elif name == "sponsor_criteria":
            rec, key = _criteria_keys(feats, with_sponsor=True)
        else:
            rec, key = _criteria_keys(feats, with_sponsor=False)
        recs.append(rec)
        keys.append(_codes(pd.Series(key)) * len(config.blocking_passes) + pass_no)
    if not recs:
        return np.empty(0, np.int64), np.empty(0, np.int64), BlockStats(0, 0, 0, 0)
    rec = np.concatenate(recs)
    key = np.concatenate(keys)
    if rec.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), BlockStats(0, 0, 0, 0)

    # Group rows by key, free records first inside each block.
    order = np.lexsort((rec, ~free[rec], key))
    rec, key = rec[order], key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, len(key)])
    n_free = np.add.reduceat(free[rec].astype(np.int64), starts)
    skipped = int(np.count_nonzero(sizes > config.max_block_size))
    use = (sizes >= 2) & (sizes <= config.max_block_size) & (n_free >= 1)
    starts, sizes, n_free = starts[use], sizes[use], n_free[use]

    # Each free record at block position p pairs with every record after it.
    total_free = int(n_free.sum())
    if total_free == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), BlockStats(len(starts), skipped, 0, 0)
    block_of = np.repeat(np.arange(len(starts)), n_free)
    offset = np.arange(total_free) - np.repeat(np.cumsum(n_free) - n_free, n_free)
    pos = starts[block_of] + offset
    count = sizes[block_of] - offset - 1
    first = np.repeat(pos, count)
    step = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    second = first + 1 + step
    a, b = rec[first], rec[second]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = cluster[lo] != cluster[hi]
    code = _unique(lo[keep] * feats.n + hi[keep])
    lo, hi = code // feats.n, code % feats.n
    return lo, hi, BlockStats(len(starts), skipped, len(first), len(lo))
