"""Bulk-load one batch into the warehouse in a single transaction.

Every table's rows are built as Arrow tables first, registered on the connection and
inserted with `INSERT INTO t BY NAME SELECT * FROM <arrow>`; nothing is written row by row.
Either the whole batch lands or, on any error, nothing does.

Idempotency: page rows are insert-only (a page_id already present is left alone), and
the golden rows of every trial the batch touches are deleted and re-inserted, so loading
the same batch twice leaves identical values.  The same goes for those trials' history,
which is recomputed from their pages (pipeline.db.history); presence columns are refreshed
for every trial but written only where they differ.

Before committing, the blocking data-quality checks (pipeline.db.checks) run inside the
transaction: a batch that would break the warehouse's integrity is rolled back with
LoadRefused instead of landing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from pipeline.db import history
from pipeline.db.checks import BLOCKING_CHECKS, run_checks
from pipeline.db.profiles import PageProfiles, RefreshResult, pick_page_profiles, refresh_profiles
from pipeline.db.dedup_store import write_dedup
from pipeline.db.schema import (
    ALL_TABLES,
    ARROW_SCHEMAS,
    CHILD_TABLES,
    GOLDEN_TABLES,
    TRIAL_TIME_COLUMNS,
)
from pipeline.faults import checkpoint, rollback_quietly
from pipeline.link import LinkedTrial, LinkPage
from pipeline.models import ParsedPage, TrialRecord
from pipeline.relink import DedupRows
from pipeline.serialize import record_to_json
from pipeline.vocab import to_code


# Tests only: the path of a marker file the load writes once it is inside its transaction
# (everything written, nothing committed), then it sleeps PAUSE_SECONDS_ENV seconds (default
# 60) -- so a test can kill the process mid-load, or hold the write lock while it looks.
PAUSE_ENV = "TRIALS_TEST_PAUSE_IN_LOAD"
PAUSE_SECONDS_ENV = "TRIALS_TEST_PAUSE_SECONDS"


class LoadRefused(Exception):
    """The batch would break the warehouse's integrity; nothing was written.  One line."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    rows_written: Mapping[str, int]  # rows inserted per table by this load
    trials_loaded: int  # golden trials (re)written
    trials_removed: int  # trial ids that no longer exist after relinking
    table_rows: Mapping[str, int]  # rows per table after the load


def naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Timestamps are stored as naive UTC; aware values are converted, naive ones kept."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def page_rows(
    pages: Sequence[ParsedPage], trial_ids: Mapping[str, str], parser_version: str | None
) -> pa.Table:
    return _table("pages", [
        {
            "page_id": p.page_id,
            "source": p.source,
            "url": p.url,
            "content_sha256": p.content_sha256,
            "fetched_at": naive_utc(p.fetched_at),
            "trial_id": trial_ids.get(p.page_id),
            "parse_status": p.parse_status,
            "parse_error": p.parse_error,
            "warnings": list(p.warnings),
            "parser_version": parser_version,
        }
        for p in pages
    ])


def page_record_rows(pages: Sequence[ParsedPage], record_json: Mapping[str, str] | None = None) -> pa.Table:
    """`record_json`: the records' JSON where the parse workers already made it (staged)."""
    known = record_json or {}
    ids: list[str] = []
    texts: list[str | None] = []  # None: in `known`
    for p in pages:
        if p.record is not None and p.parse_status in ("ok", "partial"):
            ids.append(p.page_id)
            texts.append(None if p.page_id in known else record_to_json(p.record))
    take = getattr(known, "take", None)
    if take is not None and all(t is None for t in texts):  # staged JSON straight from Arrow
        records = take(ids)
    else:
        records = pa.array([t if t is not None else known[i] for i, t in zip(ids, texts)], type=pa.string())
    return pa.table({"page_id": pa.array(ids, type=pa.string()), "record": records},
                    schema=ARROW_SCHEMAS["page_records"])


def _split_intervention(text: str) -> tuple[str | None, str | None]:
    """'Drug: Name' -> ('DRUG', 'Name') when the prefix is a known type, else (None, None)."""
    kind, sep, name = text.partition(":")
    code = to_code("intervention_type", kind) if sep else None
    return (code, name.strip() or None) if code else (None, None)


# `trials` columns that are TrialRecord fields of the same name, in the table's order; the
# tuples golden_rows builds follow this layout (checked here, so a schema change fails loudly).
_RECORD_COLUMNS: tuple[str, ...] = tuple(
    n for n in ARROW_SCHEMAS["trials"].names if n in {f.name for f in dataclasses.fields(TrialRecord)})
assert ARROW_SCHEMAS["trials"].names == [
    "trial_id", *_RECORD_COLUMNS, "sources", "page_count", "best_page_id", *TRIAL_TIME_COLUMNS]


def golden_rows(trials: Sequence[LinkedTrial]) -> dict[str, pa.Table]:
    """Arrow tables for every golden table, for the given trials.  Rows are built as tuples in
    each table's column order and turned into columns at the end (no dict per row)."""
    rows: dict[str, list[tuple[object, ...]]] = {t: [] for t in GOLDEN_TABLES}
    no_times = (None,) * len(TRIAL_TIME_COLUMNS)  # filled after the insert
    trial_rows, identifiers, conditions, keywords = rows["trials"], rows["identifiers"], rows["conditions"], rows["keywords"]
    interventions, arms, arm_interventions = rows["interventions"], rows["arms"], rows["arm_interventions"]
    criteria, contacts, locations = rows["criteria"], rows["contacts"], rows["locations"]
    for trial in trials:
        r = trial.record
        tid = trial.trial_id
        trial_rows.append((
            tid, *(getattr(r, name) for name in _RECORD_COLUMNS), trial.sources,
            len(trial.page_ids), trial.page_ids[0] if trial.page_ids else None, *no_times,
        ))
        identifiers.extend((tid, pos, i.id_type, i.id_value) for pos, i in enumerate(r.identifiers, 1))
        conditions.extend((tid, pos, name) for pos, name in enumerate(r.conditions, 1))
        keywords.extend((tid, pos, keyword) for pos, keyword in enumerate(r.keywords, 1))
        interventions.extend((tid, pos, i.intervention_type, i.name, i.description)
                             for pos, i in enumerate(r.interventions, 1))
        for pos, arm in enumerate(r.arms, 1):
            arms.append((tid, pos, arm.label, arm.arm_type, arm.description, arm.interventions))
            for ipos, text in enumerate(arm.interventions, 1):
                kind, name = _split_intervention(text)
                arm_interventions.append((tid, pos, arm.label, ipos, text, kind, name))
        criteria.extend((tid, c.criterion_type, c.ordinal, c.parent_ordinal, c.text) for c in r.criteria)
        contacts.extend((tid, pos, c.role, c.name, c.credentials, c.affiliation, c.phone, c.email, c.title)
                        for pos, c in enumerate(r.contacts, 1))
        locations.extend((tid, pos, loc.facility, loc.city, loc.state, loc.country, loc.status)
                         for pos, loc in enumerate(r.locations, 1))
    return {name: _tuples_table(name, table_rows) for name, table_rows in rows.items()}


def _tuples_table(name: str, rows: list[tuple[object, ...]]) -> pa.Table:
    schema = ARROW_SCHEMAS[name]
    columns = list(zip(*rows)) if rows else [()] * len(schema)
    return pa.table([pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)], schema=schema)


def _table(name: str, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMAS[name])


def _ids_table(ids: Iterable[str]) -> pa.Table:
    return pa.table({"trial_id": pa.array(sorted(set(ids)), type=pa.string())})


def trial_timelines(
    conn: duckdb.DuckDBPyConnection,
    trials: Sequence[LinkedTrial],
    new_pages: Sequence[ParsedPage],
) -> list[history.Timeline]:
    """Each trial's history replayed over all of its pages (this batch's and stored ones)."""
    pages: dict[str, LinkPage] = {
        p.page_id: LinkPage(p.page_id, p.source, naive_utc(p.fetched_at), p.record)
        for p in new_pages
        if p.record is not None and p.parse_status in ("ok", "partial")
    }
    pages = {
        **history.stored_link_pages(
            conn, [pid for t in trials for pid in t.page_ids if pid not in pages]),
        **pages,
    }
    return [
        history.replay(
            t.trial_id, [pages[pid] for pid in t.page_ids if pid in pages],
            history.tracked_values(t.record),
        )
        for t in trials
    ]


def _pause_for_tests() -> None:
    marker = os.environ.get(PAUSE_ENV)
    if not marker:
        return
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV) or 60))


def table_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in ALL_TABLES:  # names come from our own constant, never from input
        rows = conn.execute(f"SELECT count(*) FROM {name}").fetchall()
        counts[name] = int(rows[0][0])
    return counts


def load_batch(
    conn: duckdb.DuckDBPyConnection,
    *,
    new_pages: Sequence[ParsedPage],
    page_trial_ids: Mapping[str, str],
    trials: Sequence[LinkedTrial],
    stale_trial_ids: Iterable[str] = (),
    replaced_page_ids: Iterable[str] = (),
    parser_version: str | None = None,
    dedup: DedupRows | None = None,
    record_json: Mapping[str, str] | None = None,
    page_profiles: PageProfiles | None = None,
    whole_warehouse: bool = True,
) -> LoadResult:
    """Write one batch atomically.

    new_pages: pages to add; rows for page_ids already stored are skipped unless they are
        in `replaced_page_ids` (re-parsed pages), whose page and silver rows are replaced.
    page_trial_ids: trial_id of every page whose assignment is new or changed, existing
        pages included (their `pages.trial_id` is updated).
    trials: golden records to (re)write; their previous rows are deleted first.
    stale_trial_ids: further trial ids whose golden rows must go (trials that lost all
        their pages to another trial when relinking).
    dedup: link index, record links, review candidates, aliases and field provenance of
        the relinked pages and trials (pipeline.relink), written in the same transaction.
    record_json, page_profiles: what the parse workers already made for `new_pages` (the
        records' JSON, their profiles: pipeline.parse_batches); the rows are the same without.
    whole_warehouse: False between the batches of a rebuild -- presence, the profile
        refresh's self-healing scan and the blocking checks, which all read the whole
        warehouse, are left to the rebuild's last transaction (`finish_rebuild`); only the
        batch's own trials are profiled.
    """
    frames: dict[str, pa.Table] = {
        "pages": page_rows(new_pages, page_trial_ids, parser_version),
        "page_records": page_record_rows(new_pages, record_json),
        **golden_rows(trials),
    }
    written_ids = {t.trial_id for t in trials}
    stale = frozenset(stale_trial_ids)
    delete_ids = _ids_table([*written_ids, *stale])
    assignments = pa.table({
        "page_id": pa.array(sorted(page_trial_ids), type=pa.string()),
        "trial_id": pa.array([page_trial_ids[k] for k in sorted(page_trial_ids)], type=pa.string()),
    })
    written: dict[str, int] = {}
    registered: list[str] = []

    def register(view: str, table: pa.Table) -> str:
        conn.register(view, table)
        registered.append(view)
        return view

    def run(sql: str) -> int:
        # Fetch every result: DuckDB refuses further work on a connection with a pending one.
        rows = conn.execute(sql).fetchall()
        return int(rows[0][0]) if rows and rows[0] and isinstance(rows[0][0], int) else 0

    conn.begin()
    try:
        checkpoint("load.begun")
        register("_load_delete_ids", delete_ids)
        register("_load_gone_ids", _ids_table(stale - written_ids))
        removed = run(
            "SELECT count(*) FROM trials WHERE trial_id IN (SELECT trial_id FROM _load_gone_ids)"
        )
        register("_load_replaced", pa.table({
            "page_id": pa.array(sorted(set(replaced_page_ids)), type=pa.string()),
        }))
        for name in ("page_records", "pages"):
            run(f"DELETE FROM {name} WHERE page_id IN (SELECT page_id FROM _load_replaced)")
        register("_load_pages", frames["pages"])
        written["pages"] = run(
            "INSERT INTO pages BY NAME SELECT * FROM _load_pages "
            "WHERE page_id NOT IN (SELECT page_id FROM pages)"
        )
        register("_load_page_records", frames["page_records"])
        written["page_records"] = run(
            "INSERT INTO page_records BY NAME SELECT * FROM _load_page_records "
            "WHERE page_id NOT IN (SELECT page_id FROM page_records)"
        )
        checkpoint("load.pages_written")
        register("_load_assignments", assignments)
        run(
            "UPDATE pages SET trial_id = a.trial_id FROM _load_assignments a "
            "WHERE pages.page_id = a.page_id AND pages.trial_id IS DISTINCT FROM a.trial_id"
        )
        for name in (*CHILD_TABLES, "trials"):  # children first, parents last
            run(f"DELETE FROM {name} WHERE trial_id IN (SELECT trial_id FROM _load_delete_ids)")
        for name in GOLDEN_TABLES:
            frame = frames[name]
            if name == "trials":  # filled below from the page timeline and the crawl log
                frame = frame.drop_columns(list(TRIAL_TIME_COLUMNS))
            view = register(f"_load_{name}", frame)
            written[name] = run(f"INSERT INTO {name} BY NAME SELECT * FROM {view}")
        run("DELETE FROM trial_history WHERE trial_id IN (SELECT trial_id FROM _load_delete_ids)")
        written["trial_history"] = history.write_timelines(
            conn, trial_timelines(conn, trials, new_pages)
        )
        if whole_warehouse:
            history.refresh_presence(conn)
        checkpoint("load.golden_written")
        if dedup is not None:
            written.update(write_dedup(conn, dedup, [*written_ids, *stale]))
        # Eligibility and therapy profiles derive from the golden rows just written; made in
        # this transaction they commit (and are checked) with them.  The refresh finds stale
        # trials itself, so it also backfills a warehouse upgraded to the profile tables.
        precomputed = None
        if page_profiles is not None and page_profiles.rows and trials:
            records = {p.page_id: p.record for p in new_pages if p.record is not None}
            precomputed = pick_page_profiles(
                page_profiles, ((t.trial_id, t.record, t.page_ids) for t in trials), records)
        refreshed = refresh_profiles(
            conn, transaction=False, precomputed=precomputed,
            scope=None if whole_warehouse else written_ids, gone=stale - written_ids)
        written.update({k: v for k, v in refreshed.rows_written.items() if v})
        # A batch with nothing in it cannot break integrity; skip the scans then.
        touched = whole_warehouse and bool(new_pages or trials or stale or page_trial_ids or dedup
                                           or refreshed.trials_profiled or refreshed.trials_dropped)
        failed = [o.summary for o in run_checks(conn, BLOCKING_CHECKS) if not o.passed] if touched else []
        if failed:
            raise LoadRefused("load refused, nothing written: " + "; ".join(failed))
        _pause_for_tests()
        checkpoint("load.before_commit")
        conn.commit()
    except BaseException:
        rollback_quietly(conn)
        raise
    finally:
        for view in registered:
            conn.unregister(view)
    checkpoint("load.committed")
    return LoadResult(
        rows_written={name: written.get(name, 0) for name in ALL_TABLES},
        trials_loaded=len(written_ids),
        trials_removed=removed,
        table_rows=table_counts(conn),
    )


def finish_rebuild(conn: duckdb.DuckDBPyConnection) -> RefreshResult:
    """The whole-warehouse steps the batches of a rebuild left out (`whole_warehouse=False`),
    in one transaction: presence, the profile refresh's scan for stale trials, ages and
    orphans, and the blocking checks -- a failure rolls this back and raises LoadRefused.
    Writes nothing on a warehouse that is already up to date."""
    conn.begin()
    try:
        history.refresh_presence(conn)
        refreshed = refresh_profiles(conn, transaction=False)
        failed = [o.summary for o in run_checks(conn, BLOCKING_CHECKS) if not o.passed]
        if failed:
            raise LoadRefused("load refused, nothing written: " + "; ".join(failed))
        conn.commit()
    except BaseException:
        rollback_quietly(conn)
        raise
    return refreshed
