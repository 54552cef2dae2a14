"""`trials review`: the link candidates waiting for a person, and their decisions.

A decision names two pages (page ids, or unambiguous prefixes of at least 6 characters)
and is stored in link_decisions in the same transaction that relinks the two pages'
trials (so the warehouse shows it at once, and a killed review leaves nothing), and
every later run applies the decision again whenever it relinks either page:
accept -> the pages are one trial (record_links method `manual`), unless they show two
different NCT IDs; reject -> they are never put in one trial, whatever their score.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Literal

import duckdb

from pipeline import run
from pipeline.db.connection import open_warehouse
from pipeline.db.query import QueryResult
from pipeline.dedup import DedupConfig
from pipeline.dedup.keys import record_ncts
from pipeline.serialize import record_from_json

Decision = Literal["accept", "reject"]
MIN_PREFIX = 6


class ReviewError(Exception):
    """A decision that cannot be taken (unknown page, contradiction); str() is one line."""


_LIST_SQL = """
SELECT c.score, c.probability, c.page_a, c.trial_a, pa.source AS source_a,
       ta.brief_title AS title_a, c.page_b, c.trial_b, pb.source AS source_b,
       tb.brief_title AS title_b, c.explanation
FROM link_candidates c
JOIN pages pa ON pa.page_id = c.page_a
JOIN pages pb ON pb.page_id = c.page_b
LEFT JOIN trials ta ON ta.trial_id = c.trial_a
LEFT JOIN trials tb ON tb.trial_id = c.trial_b
ORDER BY c.score DESC, c.page_a, c.page_b
"""


def list_candidates(warehouse: str | os.PathLike[str], *, wait: float = 0.0) -> QueryResult:
    """Every open candidate pair, best score first."""
    conn = open_warehouse(warehouse, read_only=True, wait=wait)
    try:
        cursor = conn.execute(_LIST_SQL)
        columns = tuple(d[0] for d in cursor.description or ())
        return QueryResult(columns, tuple(tuple(r) for r in cursor.fetchall()))
    finally:
        conn.close()


def resolve_page(conn: duckdb.DuckDBPyConnection, ref: str) -> str:
    """A linkable page's full id from its id or a unique prefix."""
    ref = ref.strip()
    if len(ref) < MIN_PREFIX:
        raise ReviewError(f"page id {ref!r} is too short (give at least {MIN_PREFIX} characters)")
    rows = conn.execute(
        "SELECT p.page_id FROM pages p JOIN page_records r USING (page_id) "
        "WHERE starts_with(p.page_id, ?) AND p.trial_id IS NOT NULL ORDER BY 1 LIMIT 2", [ref],
    ).fetchall()
    if not rows:
        raise ReviewError(f"no linked page with id {ref}")
    if len(rows) > 1:
        raise ReviewError(f"page id prefix {ref} names several pages; give more characters")
    return str(rows[0][0])


def _ncts(conn: duckdb.DuckDBPyConnection, page_id: str) -> str | None:
    ((record, url),) = conn.execute(
        "SELECT r.record, p.url FROM page_records r JOIN pages p USING (page_id) WHERE page_id = ?",
        [page_id],
    ).fetchall()
    return record_ncts(record_from_json(record), url)[0]


@dataclass(frozen=True, slots=True)
class DecisionResult:
    page_a: str
    page_b: str
    decision: Decision
    trial_a: str  # trial of page_a after relinking
    trial_b: str
    summary: run.RunSummary


def decide_on(
    conn: duckdb.DuckDBPyConnection, ref_a: str, ref_b: str, decision: Decision, *,
    note: str | None = None, config: DedupConfig | None = None,
    warehouse_label: str | os.PathLike[str] = "", now: dt.datetime | None = None,
) -> DecisionResult:
    a, b = sorted((resolve_page(conn, ref_a), resolve_page(conn, ref_b)))
    if a == b:
        raise ReviewError("a decision needs two different pages")
    nct_a, nct_b = _ncts(conn, a), _ncts(conn, b)
    if decision == "accept" and nct_a and nct_b and nct_a != nct_b:
        raise ReviewError(f"cannot accept: the pages show two NCT IDs ({nct_a}, {nct_b})")
    if decision == "reject" and nct_a and nct_a == nct_b:
        raise ReviewError(f"cannot reject: both pages show {nct_a}")
    trials = [t for (t,) in conn.execute(
        "SELECT DISTINCT trial_id FROM pages WHERE page_id IN (?, ?)", [a, b]).fetchall()]
    when = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    row = {"page_a": a, "page_b": b, "decision": decision, "decided_at": when, "note": note}
    # Relink the two trials now (a run with no new pages), so the warehouse shows the
    # decision; the decision row is written in the same transaction as the relinked trials.
    empty = run.ParseBatch(pages_read=0, skipped_known=0, pages=())
    plan = run.plan_links(conn, empty, config, extra_trial_ids=trials, new_decisions=[row])
    result = run.load_plan(conn, plan)
    summary = run.summarize(warehouse_label, plan, result)
    after = dict(conn.execute(
        "SELECT page_id, trial_id FROM pages WHERE page_id IN (?, ?)", [a, b]).fetchall())
    return DecisionResult(a, b, decision, after[a], after[b], summary)


def decide(
    warehouse: str | os.PathLike[str], ref_a: str, ref_b: str, decision: Decision, *,
    note: str | None = None, config: DedupConfig | None = None, wait: float = 0.0,
) -> DecisionResult:
    conn = open_warehouse(warehouse, wait=wait)
    try:
        return decide_on(conn, ref_a, ref_b, decision, note=note, config=config,
                         warehouse_label=warehouse)
    finally:
        conn.close()


def format_decision(result: DecisionResult) -> str:
    verb = "accepted" if result.decision == "accept" else "rejected"
    together = result.trial_a == result.trial_b
    state = (f"now one trial {result.trial_a}" if together
             else f"now trials {result.trial_a} and {result.trial_b}")
    return (f"{verb}: pages {result.page_a} and {result.page_b} ({state}); "
            f"the decision is kept and applied by every later run\n"
            f"Trials rewritten: {result.summary.trials_loaded}"
            + (f" (removed {result.summary.trials_removed})" if result.summary.trials_removed else ""))


__all__ = ["DecisionResult", "ReviewError", "decide", "decide_on", "format_decision",
           "list_candidates", "resolve_page"]
