"""Write a relink plan's dedup rows (pipeline.relink.DedupRows) inside the load transaction.

Replaced per page: link_keys and block_keys of the pages indexed by this batch; record_links
and link_candidates of every page linked by this batch.  Replaced per trial: field_sources
and field_conflicts of the trials written or removed.  Appended: trial_id_aliases for ids
retired by merges (older aliases pointing at a retired id are re-pointed, so an alias always
names a current trial).  Decisions are written by `trials review` only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb
import pyarrow as pa

from pipeline.db.schema import ARROW_SCHEMAS
from pipeline.relink import DedupRows

_EPOCH = dt.datetime(1970, 1, 1)


def _ids(values: Iterable[str]) -> pa.Table:
    return pa.table({"id": pa.array(sorted(set(values)), pa.string())})


def _rows(name: str, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMAS[name])


def write_dedup(
    conn: duckdb.DuckDBPyConnection, rows: DedupRows, trial_ids: Iterable[str]
) -> dict[str, int]:
    """Apply `rows`; `trial_ids`: every trial written or removed by the load.  Runs in the
    caller's transaction.  Returns rows inserted per table."""
    views: list[str] = []

    def register(name: str, table: pa.Table) -> None:
        conn.register(name, table)
        views.append(name)

    def run(sql: str, params: list[object] | None = None) -> int:
        got = conn.execute(sql, params or []).fetchall()
        return int(got[0][0]) if got and got[0] and isinstance(got[0][0], int) else 0

    aliases = pa.table({
        "retired_id": pa.array(list(rows.aliases), pa.string()),
        "trial_id": pa.array(list(rows.aliases.values()), pa.string()),
        "retired_at": pa.array([rows.alias_times.get(k) or _EPOCH for k in rows.aliases],
                               pa.timestamp("us")),
    })
    written: dict[str, int] = {}
    try:
        register("_dd_indexed", _ids(rows.indexed_page_ids))
        register("_dd_linked", _ids(rows.linked_page_ids))
        register("_dd_trials", _ids(trial_ids))
        register("_dd_link_keys", rows.link_keys)
        register("_dd_block_keys", rows.block_keys)
        register("_dd_record_links", _rows("record_links", rows.record_links))
        register("_dd_candidates", _rows("link_candidates", rows.candidates))
        register("_dd_sources", _rows("field_sources", rows.field_sources))
        register("_dd_conflicts", _rows("field_conflicts", rows.field_conflicts))
        register("_dd_aliases", aliases)
        register("_dd_decisions", _rows("link_decisions", list(rows.decisions)))
        written["link_decisions"] = run(
            "INSERT INTO link_decisions BY NAME SELECT * FROM _dd_decisions")
        for table in ("link_keys", "block_keys"):
            run(f"DELETE FROM {table} WHERE page_id IN (SELECT id FROM _dd_indexed)")
        written["link_keys"] = run("INSERT INTO link_keys BY NAME SELECT * FROM _dd_link_keys")
        written["block_keys"] = run("INSERT INTO block_keys BY NAME SELECT * FROM _dd_block_keys")
        run("DELETE FROM record_links WHERE page_id IN (SELECT id FROM _dd_linked)")
        written["record_links"] = run(
            "INSERT INTO record_links BY NAME SELECT * FROM _dd_record_links")
        run("DELETE FROM link_candidates WHERE page_a IN (SELECT id FROM _dd_linked) "
            "OR page_b IN (SELECT id FROM _dd_linked)")
        written["link_candidates"] = run(
            "INSERT INTO link_candidates BY NAME SELECT * FROM _dd_candidates")
        # A decided pair is no longer a candidate (the decision may leave both trials as they were).
        run("DELETE FROM link_candidates WHERE EXISTS (SELECT 1 FROM link_decisions d "
            "WHERE d.page_a = link_candidates.page_a AND d.page_b = link_candidates.page_b)")
        # Candidates elsewhere that name a trial this load retired or re-identified.
        run("UPDATE link_candidates SET trial_a = l.trial_id FROM record_links l "
            "WHERE l.page_id = link_candidates.page_a AND link_candidates.trial_a <> l.trial_id")
        run("UPDATE link_candidates SET trial_b = l.trial_id FROM record_links l "
            "WHERE l.page_id = link_candidates.page_b AND link_candidates.trial_b <> l.trial_id")
        for table in ("field_sources", "field_conflicts"):
            run(f"DELETE FROM {table} WHERE trial_id IN (SELECT id FROM _dd_trials)")
        written["field_sources"] = run("INSERT INTO field_sources BY NAME SELECT * FROM _dd_sources")
        written["field_conflicts"] = run(
            "INSERT INTO field_conflicts BY NAME SELECT * FROM _dd_conflicts")
        if aliases.num_rows:
            run("UPDATE trial_id_aliases SET trial_id = a.trial_id FROM _dd_aliases a "
                "WHERE trial_id_aliases.trial_id = a.retired_id")
            run("DELETE FROM trial_id_aliases WHERE retired_id IN (SELECT retired_id FROM _dd_aliases)")
            written["trial_id_aliases"] = run(
                "INSERT INTO trial_id_aliases BY NAME SELECT * FROM _dd_aliases")
        # An id issued again (a trial split off under an old id) is no longer retired.
        run("DELETE FROM trial_id_aliases WHERE retired_id IN (SELECT id FROM _dd_trials) "
            "AND retired_id IN (SELECT trial_id FROM trials)")
    finally:
        for name in views:
            conn.unregister(name)
    return written


__all__ = ["write_dedup"]
