"""Incremental linking: a batch of pages against the warehouse, at the cost of the batch.

1. The batch's exact keys and blocking keys (pipeline.dedup.index) are joined in SQL
   against the stored index (link_keys, block_keys): the trials sharing a key or a block
   with a batch page are the candidates.  Trials of re-parsed pages, trials named by the
   caller (a review decision) and trials of the partners of review decisions join them.
2. Only those trials' pages are read back (their silver records), linked together with the
   batch by the dedup engine (exact keys, then blocked fuzzy scoring, review decisions
   applied), and only those trials are rewritten.
3. Trial ids are stable (`assign_ids`): a group keeps the id of the stored trial most of
   whose pages it holds; when stored trials merge, the one with an NCT ID (then the bigger
   one, then the smaller id) carries on and the others are retired into trial_id_aliases;
   a group with no stored page gets `trial_id_for(anchor)`.

Pages stored before the index existed (no record_links row) are linked like batch pages by
the next run, which backfills the index for an upgraded warehouse.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from pipeline.dedup import DEFAULT_CONFIG, DedupConfig, DedupInput, DedupResult, link_records
from pipeline.dedup.index import LINK_METHODS, block_rows, features_of, key_rows
from pipeline.dedup.types import RecordLink
from pipeline.link import LinkedTrial, LinkPage, anchor_for, make_trial, trial_id_for
from pipeline.serialize import record_from_json

EMPTY_KEYS = pa.table({"page_id": pa.array([], pa.string()), "kind": pa.array([], pa.string()),
                       "key": pa.array([], pa.string())})
EMPTY_BLOCKS = pa.table({"page_id": pa.array([], pa.string()), "pass": pa.array([], pa.string()),
                         "key": pa.array([], pa.string())})


@dataclass(frozen=True, slots=True)
class DedupRows:
    """What the load writes to the dedup tables, besides the golden rows."""

    indexed_page_ids: tuple[str, ...]  # pages whose link/block keys are replaced
    link_keys: pa.Table
    block_keys: pa.Table
    linked_page_ids: tuple[str, ...]  # pages whose record_links and candidates are replaced
    record_links: list[dict[str, object]]
    candidates: list[dict[str, object]]
    aliases: Mapping[str, str]  # retired trial id -> current trial id
    alias_times: Mapping[str, dt.datetime | None]
    field_sources: list[dict[str, object]]
    field_conflicts: list[dict[str, object]]
    requested: bool = False  # trials were named by the caller (a review decision)
    decisions: tuple[dict[str, object], ...] = ()  # new review decisions, written with the load

    @property
    def empty(self) -> bool:
        return not (self.linked_page_ids or self.indexed_page_ids or self.requested)


@dataclass(frozen=True, slots=True)
class RelinkPlan:
    trials: tuple[LinkedTrial, ...]  # golden records to (re)write
    page_trial_ids: Mapping[str, str]  # page_id -> trial_id of every page linked
    stale_trial_ids: tuple[str, ...]  # stored trials that no longer exist
    dedup: DedupRows
    stats: Mapping[str, float] = field(default_factory=dict)


# --- candidates from the warehouse --------------------------------------------------------

_EXACT_SQL = """
SELECT DISTINCT p.trial_id FROM _rl_keys b
JOIN link_keys k ON k.key = b.key
JOIN pages p ON p.page_id = k.page_id
WHERE p.trial_id IS NOT NULL
"""

_BLOCK_SQL = """
WITH hits AS (
    SELECT k.page_id, k.pass, k.key FROM (SELECT DISTINCT pass, key FROM _rl_blocks
                                          WHERE pass <> 'title_word') b
    JOIN block_keys k ON k.pass = b.pass AND k.key = b.key
), sizes AS (
    SELECT pass, key FROM hits GROUP BY pass, key HAVING count(DISTINCT page_id) < ?
)
SELECT DISTINCT p.trial_id FROM hits h JOIN sizes s ON s.pass = h.pass AND s.key = h.key
JOIN pages p ON p.page_id = h.page_id
WHERE p.trial_id IS NOT NULL
"""

# A batch page's k rarest title words (counted over stored and batch pages; words seen once
# left out) make its keys: every pair of them (the one word, when only one is usable).  The
# stored pages holding both words of a key are a block, used when it is smaller than
# max_block_size -- as pipeline.dedup.blocking does in memory.  SQL picks the words and
# their postings; the pairing is done on those rows with numpy (DuckDB planned the
# self-join of the postings poorly).
_CHOSEN_WORDS_SQL = """
WITH bw AS (
    SELECT DISTINCT page_id, key FROM _rl_blocks WHERE pass = 'title_word'
), df_batch AS (
    SELECT key, count(*) AS n FROM bw GROUP BY key
), df_store AS (
    SELECT key, count(*) AS n FROM block_keys
    WHERE pass = 'title_word' AND key IN (SELECT key FROM df_batch) GROUP BY key
), ranked AS (
    SELECT bw.page_id, bw.key,
           row_number() OVER (PARTITION BY bw.page_id
                              ORDER BY coalesce(s.n, 0) + b.n, bw.key) AS r
    FROM bw JOIN df_batch b USING (key) LEFT JOIN df_store s USING (key)
    WHERE coalesce(s.n, 0) + b.n >= 2
)
SELECT page_id, key FROM ranked WHERE r <= ?
"""
_POSTINGS_SQL = """
SELECT page_id, key FROM block_keys
WHERE pass = 'title_word' AND key IN (SELECT key FROM _rl_words)
"""


def _word_pairs(page: np.ndarray, word: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group index, w1, w2) rows: every pair of the words of each page (ints), or the word
    twice when the page has only one.  Input sorted by (page, word), words distinct per page."""
    starts = np.flatnonzero(np.r_[True, page[1:] != page[:-1]]) if len(page) else np.empty(0, int)
    sizes = np.diff(np.r_[starts, len(page)])
    out_p, out_a, out_b = [], [], []
    for size in np.unique(sizes):
        group = starts[sizes == size]
        if size == 1:
            out_p.append(page[group])
            out_a.append(word[group])
            out_b.append(word[group])
            continue
        for i in range(size):
            for j in range(i + 1, size):
                out_p.append(page[group])
                out_a.append(word[group + i])
                out_b.append(word[group + j])
    if not out_p:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    return np.concatenate(out_p), np.concatenate(out_a), np.concatenate(out_b)


def _word_candidates(conn: duckdb.DuckDBPyConnection, config: DedupConfig) -> list[str]:
    """Stored pages sharing a usable rare-title-word block with a batch page."""
    chosen = conn.execute(_CHOSEN_WORDS_SQL, [config.title_rare_tokens]).fetchall()
    if not chosen:
        return []
    vocab = {w: i for i, w in enumerate(sorted({w for _, w in chosen}))}
    batch_pages = {p: i for i, p in enumerate(sorted({p for p, _ in chosen}))}
    rows = sorted((batch_pages[p], vocab[w]) for p, w in chosen)
    _, a, b = _word_pairs(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))
    width = len(vocab)
    wanted = np.unique(a * width + b)
    conn.register("_rl_words", pa.table({"key": pa.array(list(vocab), pa.string())}))
    try:
        postings = conn.execute(_POSTINGS_SQL).fetchall()
    finally:
        conn.unregister("_rl_words")
    if not postings:
        return []
    names, page_codes = np.unique(np.array([p for p, _ in postings], dtype=object).astype(str),
                                  return_inverse=True)
    word_codes = np.array([vocab[w] for _, w in postings], dtype=np.int64)
    order = np.lexsort((word_codes, page_codes))
    page, word = page_codes[order].astype(np.int64), word_codes[order]
    member, a, b = _word_pairs(page, word)
    key = a * width + b
    keep = np.isin(key, wanted)
    member, key = member[keep], key[keep]
    if len(key) == 0:
        return []
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    usable = counts[inverse] < config.max_block_size
    return sorted(str(names[i]) for i in np.unique(member[usable]).tolist())


def _ids(values: Iterable[str]) -> pa.Table:
    return pa.table({"id": pa.array(sorted(set(values)), pa.string())})


class _Views:
    """Arrow tables registered on the connection for the duration of a `with` block."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self.names: list[str] = []

    def add(self, name: str, table: pa.Table) -> None:
        self.conn.register(name, table)
        self.names.append(name)

    def __enter__(self) -> _Views:
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.names:
            self.conn.unregister(name)


def candidate_trials(
    conn: duckdb.DuckDBPyConnection, keys: pa.Table, blocks: pa.Table, config: DedupConfig,
) -> set[str]:
    """Stored trials sharing an exact key or a usable block with the batch."""
    if keys.num_rows == 0 and blocks.num_rows == 0:
        return set()
    with _Views(conn) as views:
        views.add("_rl_keys", keys)
        views.add("_rl_blocks", blocks)
        found = {t for (t,) in conn.execute(_EXACT_SQL).fetchall()}
        found |= {t for (t,) in conn.execute(_BLOCK_SQL, [config.max_block_size]).fetchall()}
        if "title_rare" in config.blocking_passes:
            pages = _word_candidates(conn, config)
            if pages:
                views.add("_rl_word_pages", _ids(pages))
                found |= {t for (t,) in conn.execute(
                    "SELECT DISTINCT trial_id FROM pages WHERE trial_id IS NOT NULL "
                    "AND page_id IN (SELECT id FROM _rl_word_pages)").fetchall()}
    return found


def unindexed_pages(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Stored linkable pages without a record_links row (loaded before the dedup tables)."""
    rows = conn.execute(
        "SELECT r.page_id FROM page_records r JOIN pages p USING (page_id) "
        "WHERE p.parse_status IN ('ok', 'partial') AND NOT EXISTS "
        "(SELECT 1 FROM record_links l WHERE l.page_id = r.page_id) ORDER BY 1"
    ).fetchall()
    return [pid for (pid,) in rows]


@dataclass(frozen=True, slots=True)
class StoredPage:
    page: LinkPage
    trial_id: str | None


def read_pages(
    conn: duckdb.DuckDBPyConnection, *, trial_ids: Iterable[str] = (),
    page_ids: Iterable[str] = (),
) -> dict[str, StoredPage]:
    """Stored linkable pages of `trial_ids`, and the pages `page_ids`, with their records."""
    with _Views(conn) as views:
        views.add("_rl_trial_ids", _ids(trial_ids))
        views.add("_rl_page_ids", _ids(page_ids))
        rows = conn.execute(
            "SELECT p.page_id, p.source, p.fetched_at, p.url, p.trial_id, r.record "
            "FROM pages p JOIN page_records r USING (page_id) "
            "WHERE p.parse_status IN ('ok', 'partial') AND (p.trial_id IN (SELECT id FROM _rl_trial_ids) "
            "OR p.page_id IN (SELECT id FROM _rl_page_ids)) ORDER BY p.page_id"
        ).fetchall()
    out: dict[str, StoredPage] = {}
    for page_id, source, fetched_at, url, trial_id, record in rows:
        try:
            parsed = record_from_json(record)
        except Exception:  # a damaged silver row must not stop the run; the page sits out
            continue
        out[page_id] = StoredPage(LinkPage(page_id, source, fetched_at, parsed, url), trial_id)
    return out


def decisions_for(
    conn: duckdb.DuckDBPyConnection, page_ids: Iterable[str]
) -> dict[tuple[str, str], bool]:
    """Review decisions with both pages among `page_ids`: (a, b) -> True for accept."""
    with _Views(conn) as views:
        views.add("_rl_members", _ids(page_ids))
        rows = conn.execute(
            "SELECT page_a, page_b, decision FROM link_decisions "
            "WHERE page_a IN (SELECT id FROM _rl_members) AND page_b IN (SELECT id FROM _rl_members) "
            "ORDER BY page_a, page_b, decided_at"
        ).fetchall()
    out: dict[tuple[str, str], bool] = {}
    for a, b, decision in rows:
        out[(a, b)] = decision == "accept"  # the latest decision on a pair wins
    return out


def decision_partner_trials(
    conn: duckdb.DuckDBPyConnection, page_ids: Iterable[str]
) -> set[str]:
    """Trials of pages that have a review decision with one of `page_ids`."""
    with _Views(conn) as views:
        views.add("_rl_members", _ids(page_ids))
        rows = conn.execute(
            "SELECT DISTINCT p.trial_id FROM link_decisions d JOIN pages p "
            "ON p.page_id = d.page_a OR p.page_id = d.page_b "
            "WHERE (d.page_a IN (SELECT id FROM _rl_members) OR d.page_b IN (SELECT id FROM _rl_members)) "
            "AND p.trial_id IS NOT NULL"
        ).fetchall()
    return {t for (t,) in rows}


# --- stable ids --------------------------------------------------------------------------

def assign_ids(
    clusters: Sequence[Sequence[LinkPage]],
    old_ids: Mapping[str, str | None],
    old_has_nct: Mapping[str, bool],
    taken: set[str],
) -> tuple[list[str], list[str], dict[str, str]]:
    """(trial id per cluster, anchor per cluster, retired id -> survivor).

    old_ids: page_id -> the trial it was in (stored pages).  taken: ids that must not be
    issued anew (every current and retired id the warehouse knows, for collisions).
    """
    # Each stored trial's heir: the cluster holding most of its pages (then the smaller
    # cluster index, clusters being sorted by their first page).
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for ci, members in enumerate(clusters):
        for page in members:
            old = old_ids.get(page.page_id)
            if old:
                counts[old][ci] += 1
    claims: dict[int, list[str]] = defaultdict(list)
    for old, by_cluster in counts.items():
        heir = min(by_cluster, key=lambda ci: (-by_cluster[ci], ci))
        claims[heir].append(old)
    ids: list[str] = []
    anchors: list[str] = []
    retired: dict[str, str] = {}
    # Every stored id in play -- kept or retired here -- is off limits for a new cluster: a
    # stored trial split in two keeps its id in one part, and the other part's anchor (say
    # the trial's first page) may hash to that very id.
    issued = set(taken) | set(counts)
    for ci, members in enumerate(clusters):
        olds = claims.get(ci)
        if olds:
            keep = min(olds, key=lambda t: (not old_has_nct.get(t, False), -counts[t][ci], t))
            ids.append(keep)
            anchors.append("stored")
            retired.update({t: keep for t in olds if t != keep})
            continue
        anchor = anchor_for(members)
        tid = trial_id_for(anchor)
        n = 1
        while tid in issued:  # an id once issued is never issued to another trial
            n += 1
            tid = trial_id_for(f"{anchor}#{n}")
        issued.add(tid)
        ids.append(tid)
        anchors.append(anchor)
    return ids, anchors, retired


# --- the plan ----------------------------------------------------------------------------

def _explain(link: RecordLink, cluster_size: int) -> str:
    m = link.matched_key
    if link.method == "nct":
        return f"same NCT ID {(link.via or '')[4:]} as page {m}"
    if link.method == "secondary_id":
        return f"same registry id {link.via} as page {m}"
    if link.method == "org_id":
        return f"same sponsor and sponsor's study id ({(link.via or '')[4:]}) as page {m}"
    if link.method == "url":
        return f"same site id {(link.via or '')[5:]} as page {m}"
    if link.method == "manual":
        return f"accepted in review together with page {m}"
    if link.method == "fuzzy" and link.score is not None:
        return f"matched page {m}: {link.score.explain()}"
    if cluster_size > 1:
        return "first page of the trial"
    return "no other page shares an id or scores at the accept threshold"


def _existing_ids(conn: duckdb.DuckDBPyConnection, proposed: Iterable[str]) -> set[str]:
    with _Views(conn) as views:
        views.add("_rl_proposed", _ids(proposed))
        rows = conn.execute(
            "SELECT trial_id FROM trials WHERE trial_id IN (SELECT id FROM _rl_proposed) "
            "UNION SELECT retired_id FROM trial_id_aliases WHERE retired_id IN (SELECT id FROM _rl_proposed)"
        ).fetchall()
    return {t for (t,) in rows}


def _nct_of_trials(conn: duckdb.DuckDBPyConnection, trial_ids: Iterable[str]) -> dict[str, bool]:
    with _Views(conn) as views:
        views.add("_rl_old", _ids(trial_ids))
        rows = conn.execute(
            "SELECT trial_id, nct_id IS NOT NULL FROM trials WHERE trial_id IN (SELECT id FROM _rl_old)"
        ).fetchall()
    return {t: bool(has) for t, has in rows}


def plan_relink(
    conn: duckdb.DuckDBPyConnection,
    new_pages: Sequence[LinkPage],
    *,
    replaced_page_ids: Iterable[str] = (),
    extra_trial_ids: Iterable[str] = (),
    new_decisions: Sequence[dict[str, object]] = (),
    config: DedupConfig = DEFAULT_CONFIG,
) -> RelinkPlan:
    """Link `new_pages` (linkable pages of this batch, re-parsed ones included) against the
    warehouse on `conn`; see the module docstring.  Reads only; the load writes the plan."""
    import time

    t0 = time.perf_counter()
    stats: dict[str, float] = {}
    replaced = set(replaced_page_ids)
    batch = {p.page_id: p for p in new_pages}
    backfill = [pid for pid in unindexed_pages(conn) if pid not in batch and pid not in replaced]
    stored_backfill = read_pages(conn, page_ids=backfill) if backfill else {}
    to_index = {**{pid: sp.page for pid, sp in stored_backfill.items()}, **batch}
    index_inputs = [DedupInput(p.page_id, p.record, p.source, p.fetched_at, p.url)
                    for p in to_index.values()]
    feats = features_of(index_inputs, config)
    keys = key_rows(feats) if index_inputs else EMPTY_KEYS
    blocks = block_rows(feats, config) if index_inputs else EMPTY_BLOCKS
    stats["index"] = time.perf_counter() - t0

    trials = candidate_trials(conn, keys, blocks, config)
    old_of_batch = {}
    if batch or replaced:
        with _Views(conn) as views:
            views.add("_rl_batch_ids", _ids([*batch, *replaced]))
            old_of_batch = dict(conn.execute(
                "SELECT page_id, trial_id FROM pages WHERE page_id IN (SELECT id FROM _rl_batch_ids) "
                "AND trial_id IS NOT NULL").fetchall())
    trials |= set(old_of_batch.values())
    trials |= {sp.trial_id for sp in stored_backfill.values() if sp.trial_id}
    extra_trial_ids = set(extra_trial_ids)
    trials |= extra_trial_ids
    stored = read_pages(conn, trial_ids=trials)
    partners = decision_partner_trials(conn, [*stored, *to_index]) - trials
    if partners:
        trials |= partners
        stored.update(read_pages(conn, trial_ids=partners))
    stats["candidates"] = time.perf_counter() - t0 - stats["index"]

    members: dict[str, LinkPage] = {
        pid: sp.page for pid, sp in stored.items() if pid not in replaced and pid not in batch}
    members.update(to_index)
    old_ids: dict[str, str | None] = {pid: sp.trial_id for pid, sp in stored.items()}
    old_ids.update({pid: sp.trial_id for pid, sp in stored_backfill.items()})
    old_ids.update(old_of_batch)
    decisions = decisions_for(conn, members)
    for d in new_decisions:  # taken now, written by the load in the same transaction
        decisions[(str(d["page_a"]), str(d["page_b"]))] = d["decision"] == "accept"
    result: DedupResult = link_records(
        [DedupInput(p.page_id, p.record, p.source, p.fetched_at, p.url) for p in members.values()],
        config, decisions,
    )
    stats["link"] = time.perf_counter() - t0 - stats["index"] - stats["candidates"]

    clusters = [[members[k] for k in cluster] for cluster in result.clusters]
    old_trials = {t for t in old_ids.values() if t}
    proposed = [trial_id_for(anchor_for(c)) for c in clusters]
    has_nct = _nct_of_trials(conn, old_trials)
    taken = _existing_ids(conn, proposed) - old_trials
    while True:  # a fallback id (`anchor#2`, ...) may itself be in the warehouse already
        ids, anchors, retired = assign_ids(clusters, old_ids, has_nct, taken)
        minted = {tid for tid, anchor in zip(ids, anchors) if anchor != "stored"}
        clash = (_existing_ids(conn, minted) - old_trials) - taken
        if not clash:
            break
        taken |= clash
    # Only groups that differ from what is stored are rewritten: a stored trial read back as
    # a candidate that gained no page, lost none and kept its id stays as it is.
    fresh_pages = set(to_index) | replaced
    stored_members: dict[str, set[str]] = defaultdict(set)
    for pid, tid in old_ids.items():
        if tid:
            stored_members[tid].add(pid)
    changed: list[bool] = []
    for tid, cluster in zip(ids, clusters):
        pids = {p.page_id for p in cluster}
        changed.append(bool(pids & fresh_pages) or any(old_ids.get(p) != tid for p in pids)
                       or stored_members.get(tid, set()) != pids)
    linked: list[LinkedTrial] = []
    page_trial: dict[str, str] = {}
    changed_pages: set[str] = set(replaced)
    sources_rows: list[dict[str, object]] = []
    conflict_rows: list[dict[str, object]] = []
    for tid, anchor, cluster, is_changed in zip(ids, anchors, clusters, changed):
        for page in cluster:
            page_trial[page.page_id] = tid
        if not is_changed:
            continue
        changed_pages.update(p.page_id for p in cluster)
        trial, golden = make_trial(tid, anchor, cluster)
        linked.append(trial)
        sources_rows.extend({"trial_id": tid, "field": f, "page_id": pid}
                            for f, pid in sorted(golden.sources.items()))
        conflict_rows.extend({"trial_id": tid, "field": f, "value": v, "page_id": pid}
                             for f, v, pid in golden.conflicts)
    sizes = Counter(page_trial.values())
    link_rows = [
        {
            "page_id": link.key, "trial_id": page_trial[link.key],
            "method": LINK_METHODS[link.method], "matched_page_id": link.matched_key,
            "score": link.score.weight if link.score is not None else None,
            "explanation": _explain(link, sizes[page_trial[link.key]]),
        }
        for link in result.links
        if link.key in changed_pages
    ]
    candidate_rows = [
        {
            "page_a": c.key_a, "page_b": c.key_b, "trial_a": page_trial[c.key_a],
            "trial_b": page_trial[c.key_b], "score": c.weight, "probability": c.probability,
            "explanation": c.explain(),
        }
        for c in result.candidates
        if page_trial[c.key_a] != page_trial[c.key_b]
        and (c.key_a in changed_pages or c.key_b in changed_pages)
    ]
    when: dict[str, dt.datetime | None] = {}
    for old, new in retired.items():
        times = [members[p].fetched_at for p, t in page_trial.items() if t == new
                 and members[p].fetched_at is not None]
        when[old] = max(times) if times else None
    stats["plan"] = time.perf_counter() - t0 - sum(stats.values())
    written = set(ids)
    return RelinkPlan(
        trials=tuple(sorted(linked, key=lambda t: t.trial_id)),
        page_trial_ids={p: t for p, t in sorted(page_trial.items()) if p in changed_pages},
        stale_trial_ids=tuple(sorted(old_trials - written)),
        dedup=DedupRows(
            indexed_page_ids=tuple(sorted({*to_index, *replaced})),
            link_keys=keys, block_keys=blocks,
            linked_page_ids=tuple(sorted(changed_pages)),
            record_links=link_rows, candidates=candidate_rows,
            aliases=dict(sorted(retired.items())), alias_times=when,
            field_sources=sources_rows, field_conflicts=conflict_rows,
            requested=bool(set(extra_trial_ids)) or bool(new_decisions),
            decisions=tuple(new_decisions),
        ),
        stats=stats,
    )


__all__ = [
    "DedupRows", "RelinkPlan", "assign_ids", "candidate_trials", "plan_relink",
    "read_pages", "unindexed_pages",
]
