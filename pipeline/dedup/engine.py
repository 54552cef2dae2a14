"""link_records: exact keys first, then blocked fuzzy matching, under hard rules.

Order of union steps (earlier steps win when later ones would conflict):
  1. shared NCT ID (aliases resolved to the ID CT.gov kept);
  2. manual accepts;
  3. registry ids, then the sponsor's own id (with normalized sponsor), then site ids;
  4. fuzzy pairs at/above accept_threshold, best score first.
Rules enforced in every union, a refused union being reported:
  * clusters holding different NCT IDs never join;
  * a manually rejected pair never ends up in one cluster;
  * fuzzy links never join two clusters when a scored pair across them contradicts a
    veto field (org id, title numbers, first-submitted date: config.veto).
And one rule for fuzzy links only: a cluster without NCT ID that matches trials of
different NCT IDs about equally well (config.ambiguity_margin) joins none of them; its
pairs become review candidates.

Everything is computed from the inputs sorted by key, so the output does not depend on
input order.
"""

from __future__ import annotations

import gc
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from pipeline.dedup.blocking import block_pairs
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.features import Features, build_features
from pipeline.dedup.scoring import explain_pairs, score_pairs
from pipeline.dedup.types import (
    METHOD_RANK,
    DedupInput,
    DedupResult,
    DedupStats,
    LinkMethod,
    PairScore,
    RecordLink,
    RefusedUnion,
)
from pipeline.dedup.unionfind import GuardedUnionFind

DEFAULT_CONFIG = DedupConfig()


def _canonical_inputs(records: Sequence[DedupInput]) -> list[DedupInput]:
    """Sorted by key; a key given twice keeps its latest fetched version."""
    best: dict[str, DedupInput] = {}
    for item in records:
        old = best.get(item.key)
        if old is None or _newer(item, old):
            best[item.key] = item
    return [best[k] for k in sorted(best)]


def _newer(a: DedupInput, b: DedupInput) -> bool:
    ta, tb = a.fetched_at, b.fetched_at
    if ta != tb:
        return tb is None or (ta is not None and ta > tb)
    return repr(a) > repr(b)  # same time, different content: any fixed choice


def _canonical_ncts(feats: Features) -> list[str | None]:
    """Each record's NCT ID with aliases replaced by the ID that lists them."""
    alias_of: dict[str, str] = {}
    for primary, aliases in zip(feats.nct, feats.aliases):
        if primary:
            for alias in aliases:
                alias_of[alias] = min(alias_of.get(alias, primary), primary)

    def resolve(nct: str) -> str:
        seen = {nct}
        while nct in alias_of and alias_of[nct] not in seen:
            nct = alias_of[nct]
            seen.add(nct)
        return nct

    return [resolve(n) if n else None for n in feats.nct]


class _Linker:
    def __init__(self, feats: Features, ncts: list[str | None]) -> None:
        self.feats = feats
        self.ncts = ncts
        self.nct_names = sorted({n for n in ncts if n})
        codes = {n: i for i, n in enumerate(self.nct_names)}
        self.uf = GuardedUnionFind([codes[n] if n else -1 for n in ncts])
        # Successful unions: (a, b, method, via, fuzzy weight)
        self.edges: list[tuple[int, int, str, str | None, float]] = []
        self.refused: list[RefusedUnion] = []

    def join(self, a: int, b: int, method: str, via: str | None, weight: float = 0.0) -> bool:
        outcome = self.uf.union(a, b)
        if outcome == "joined":
            self.edges.append((a, b, method, via, weight))
            return True
        if outcome == "same":
            return False
        keys = self.feats.keys
        if outcome == "nct_conflict":
            detail = f"{self._nct_of(a)} vs {self._nct_of(b)}"
        elif outcome == "manual_reject":
            detail = "a manual reject keeps these clusters apart"
        else:
            detail = "a scored pair across these clusters disagrees on a veto field"
        if via:
            detail += f" via {via}"
        ka, kb = sorted((keys[a], keys[b]))
        self.refused.append(RefusedUnion(ka, kb, method, outcome, detail))  # type: ignore[arg-type]
        return False

    def _nct_of(self, item: int) -> str:
        root = self.uf.find(item)
        code = self.uf.nct[root]
        return self.nct_names[code] if code >= 0 else "none"


def link_records(
    records: Sequence[DedupInput],
    config: DedupConfig = DEFAULT_CONFIG,
    decisions: Mapping[tuple[str, str], bool] | None = None,
) -> DedupResult:
    """Cluster records that describe the same trial.

    `decisions` maps a pair of keys (either order) to True (same trial: join) or False
    (different trials: keep apart); they override scores and survive re-runs as long as
    the caller passes them again.  A reject wins over an accept of the same pair.
    """
    with _gc_paused():
        return _link(records, config, decisions)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Millions of small acyclic objects (features, explanations) would trigger the cyclic
    collector over and over, each pass walking every live object; pause it meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _link(
    records: Sequence[DedupInput],
    config: DedupConfig,
    decisions: Mapping[tuple[str, str], bool] | None,
) -> DedupResult:
    timer = _Timer()
    inputs = _canonical_inputs(records)
    feats = build_features(inputs, config)
    timer.lap("features")
    n = feats.n
    linker = _Linker(feats, _canonical_ncts(feats))
    uf = linker.uf
    accepts, rejects = _decisions(decisions or {}, {k: i for i, k in enumerate(feats.keys)})
    for a, b in rejects:
        uf.forbid(a, b)
    _exact_unions(linker, accepts)
    roots = np.array(uf.roots(), dtype=np.int64)
    free = np.array([uf.nct[r] < 0 for r in roots], dtype=bool) if n else np.zeros(0, bool)
    timer.lap("exact")

    lo, hi, bstats = block_pairs(feats, roots, free, config)
    timer.lap("blocking")
    weight = np.empty(len(lo))
    conflict = np.zeros(len(lo), bool)
    for start in range(0, len(lo), config.score_batch):
        stop = start + config.score_batch
        scores = score_pairs(feats, lo[start:stop], hi[start:stop], config)
        weight[start:stop] = scores.weight
        conflict[start:stop] = scores.conflict
    timer.lap("scoring")

    decided = set(accepts) | set(rejects)
    accepted = weight >= config.accept_threshold
    ambiguous = _ambiguous(lo, hi, weight, accepted, roots, uf.nct, config.ambiguity_margin)
    accepted &= ~ambiguous
    acc = np.flatnonzero(accepted)
    # Conflicting pairs matter only between clusters that a fuzzy link might join.
    touched = np.zeros(n, bool)
    touched[roots[lo[acc]]] = True
    touched[roots[hi[acc]]] = True
    for p in np.flatnonzero(conflict & touched[roots[lo]] & touched[roots[hi]]):
        uf.forbid(int(lo[p]), int(hi[p]), "score_conflict")
    joined = 0
    for p in acc[np.lexsort((hi[acc], lo[acc], -weight[acc]))].tolist():
        a, b = int(lo[p]), int(hi[p])
        if (a, b) not in decided:
            joined += linker.join(a, b, "fuzzy", None, float(weight[p]))
    band = ((weight >= config.reject_threshold) & (weight < config.accept_threshold)) | ambiguous
    review = _review_pairs(uf, lo, hi, weight, band, decided)
    timer.lap("union")

    groups: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(uf.roots()):
        groups[r].append(i)
    ordered = sorted(groups.values(), key=lambda g: feats.keys[g[0]])  # members ascending
    clusters = tuple(tuple(feats.keys[i] for i in g) for g in ordered)
    links = _record_links(linker, ordered, config)
    candidates = explain_pairs(feats, lo[review], hi[review], config)
    candidates.sort(key=lambda s: (-s.weight, s.key_a, s.key_b))
    timer.lap("results")
    stats = DedupStats(
        records=n, exact_clusters=int(np.count_nonzero(roots == np.arange(n))),
        blocks=bstats.blocks, blocks_skipped=bstats.blocks_skipped, pairs_blocked=bstats.pairs_raw,
        pairs_scored=len(lo), pairs_accepted=joined, candidates=len(candidates),
        seconds=timer.laps,
    )
    refused = tuple(sorted(linker.refused, key=lambda r: (r.key_a, r.key_b, r.method)))
    return DedupResult(clusters, links, tuple(candidates), refused, stats)


def _exact_unions(linker: _Linker, accepts: Sequence[tuple[int, int]]) -> None:
    """NCT IDs, then manual accepts, then the other keys, strongest kind first; inside a
    kind, keys and members in sorted order."""
    by_nct: dict[str, list[int]] = defaultdict(list)
    for i, nct in enumerate(linker.ncts):
        if nct:
            by_nct[nct].append(i)
    for nct in sorted(by_nct):
        members = by_nct[nct]
        for other in members[1:]:
            linker.join(members[0], other, "nct", f"nct:{nct}")
    for a, b in accepts:
        linker.join(a, b, "manual", None)
    by_key: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, keys in enumerate(linker.feats.exact):
        for method, key in keys:
            by_key[(METHOD_RANK[method], key)].append(i)
    rank_method = {r: m for m, r in METHOD_RANK.items()}
    for rank, key in sorted(by_key):
        members = by_key[(rank, key)]
        for other in members[1:]:
            linker.join(members[0], other, rank_method[rank], key)


def _review_pairs(uf: GuardedUnionFind, lo: np.ndarray, hi: np.ndarray, weight: np.ndarray,
                  band: np.ndarray, decided: set[tuple[int, int]]) -> np.ndarray:
    """Pair indexes to offer for review: in the band, undecided, across two clusters that
    may still join; the best pair between two clusters stands for them."""
    idx = np.flatnonzero(band)
    keep: list[int] = []
    seen: set[tuple[int, int]] = set()
    for p in idx[np.lexsort((hi[idx], lo[idx], -weight[idx]))].tolist():
        a, b = int(lo[p]), int(hi[p])
        if (a, b) in decided:
            continue
        ra, rb = uf.find(a), uf.find(b)
        if uf.check(ra, rb) != "joined":
            continue  # same cluster already, or can never join
        pair = (min(ra, rb), max(ra, rb))
        if pair not in seen:
            seen.add(pair)
            keep.append(p)
    return np.array(keep, dtype=np.int64)


def _ambiguous(lo: np.ndarray, hi: np.ndarray, weight: np.ndarray, accepted: np.ndarray,
               roots: np.ndarray, nct_of_root: list[int], margin: float) -> np.ndarray:
    """Accepted pairs tying a cluster without NCT ID to clusters of different NCT IDs
    about equally well (runner-up within `margin` bits of the best)."""
    out = np.zeros(len(lo), bool)
    idx = np.flatnonzero(accepted)
    if len(idx) == 0:
        return out
    codes = np.array(nct_of_root, dtype=np.int64)
    ra, rb = roots[lo[idx]], roots[hi[idx]]
    ca, cb = codes[ra], codes[rb]
    one = (ca < 0) != (cb < 0)  # exactly one side has an NCT ID
    idx, ra, rb, ca, cb = idx[one], ra[one], rb[one], ca[one], cb[one]
    if len(idx) == 0:
        return out
    free_root = np.where(ca < 0, ra, rb)
    code = np.where(ca < 0, cb, ca)
    frame = pd.DataFrame({"free": free_root, "code": code, "w": weight[idx], "pair": idx})
    best = frame.groupby(["free", "code"], sort=True)["w"].max().reset_index()
    best = best.sort_values(["free", "w"], ascending=[True, False], kind="stable")
    top = best.groupby("free")["w"].nth(0)
    second = best.groupby("free")["w"].nth(1)
    top_by_free = dict(zip(best.loc[top.index, "free"], top))
    unclear = {
        int(best.loc[i, "free"]) for i, w2 in second.items()
        if w2 >= top_by_free[best.loc[i, "free"]] - margin
    }
    if unclear:
        out[frame.loc[frame["free"].isin(unclear), "pair"].to_numpy()] = True
    return out


def _decisions(decisions: Mapping[tuple[str, str], bool],
               index: Mapping[str, int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    verdict: dict[tuple[int, int], bool] = {}
    for (ka, kb), same in decisions.items():
        if ka not in index or kb not in index or ka == kb:
            continue  # a decision about a page not in this run waits for it
        a, b = sorted((index[ka], index[kb]))
        verdict[(a, b)] = verdict.get((a, b), True) and bool(same)  # reject wins
    accepts = sorted(p for p, v in verdict.items() if v)
    rejects = sorted(p for p, v in verdict.items() if not v)
    return accepts, rejects


def _record_links(linker: _Linker, groups: Sequence[Sequence[int]],
                  config: DedupConfig) -> tuple[RecordLink, ...]:
    """One link per record from the union edges (a spanning tree per cluster).

    Each cluster is walked from its anchor -- the first record with an NCT ID, else its
    first record -- so every other record gets the edge that tied it to the tree, and
    every union edge shows up exactly once.  The anchor gets its strongest edge.
    """
    feats = linker.feats
    adjacent: dict[int, list[tuple[int, int, str | None, float]]] = defaultdict(list)
    for a, b, method, via, w in linker.edges:
        adjacent[a].append((b, METHOD_RANK[method], via, w))
        adjacent[b].append((a, METHOD_RANK[method], via, w))
    chosen: dict[int, tuple[int, int, str | None, float]] = {}  # item -> (other, rank, via, w)
    for ci, members in enumerate(groups):
        if len(members) < 2:
            continue
        anchor = next((i for i in members if linker.ncts[i]), members[0])
        chosen[anchor] = min(adjacent[anchor], key=lambda e: (e[1], -e[3], e[0]))
        seen = {anchor}
        queue = deque([anchor])
        while queue:
            item = queue.popleft()
            for edge in sorted(adjacent[item], key=lambda e: e[0]):
                other = edge[0]
                if other not in seen:
                    seen.add(other)
                    chosen[other] = (item, edge[1], edge[2], edge[3])
                    queue.append(other)
    fuzzy_rank = METHOD_RANK["fuzzy"]
    pairs = sorted({(min(i, e[0]), max(i, e[0])) for i, e in chosen.items() if e[1] == fuzzy_rank})
    scores: dict[tuple[int, int], PairScore] = {}
    if pairs:
        pa = np.array([p[0] for p in pairs], dtype=np.int64)
        pb = np.array([p[1] for p in pairs], dtype=np.int64)
        scores = dict(zip(pairs, explain_pairs(feats, pa, pb, config)))
    rank_method = {r: m for m, r in METHOD_RANK.items()}
    cluster_of = {i: ci for ci, members in enumerate(groups) for i in members}
    out = []
    for i, key in enumerate(feats.keys):
        got = chosen.get(i)
        if got is None:
            out.append(RecordLink(key, cluster_of[i], "new", None, None, None))
            continue
        other, rank, via, _ = got
        method: LinkMethod = rank_method[rank]  # type: ignore[assignment]
        score = scores.get((min(i, other), max(i, other))) if rank == fuzzy_rank else None
        out.append(RecordLink(key, cluster_of[i], method, feats.keys[other], via, score))
    return tuple(out)


class _Timer:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 3)
        self.last = now
