"""The run log: one `runs` row per run that writes the warehouse (0007_runs.sql).

Bookkeeping stays out of the load transaction on purpose: the 'running' row is committed on
its own before anything is loaded, and the outcome, counts, rejected pages and trial changes
are written after the load has committed or rolled back.  So a load that fails leaves a
failed run behind, and a process killed mid-run leaves a 'running' row that the next run
marks failed ('abandoned: ...') once the process is gone.

`recorded()` wraps a whole run on one connection (trials ingest / crawl / reparse); the
Dagster assets, whose stages run as separate steps, call `start_run`, `update_run` and
`finish_run` themselves.  Nothing here imports Dagster.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace

import duckdb
import pyarrow as pa

from pipeline.db.schema import ARROW_SCHEMAS, CHILD_TABLES, RUN_COUNT_COLUMNS, TRIAL_TIME_COLUMNS
from pipeline.models import ParsedPage

# trials columns that say which pages back a trial, not what the trial says: a new but
# identical page version moves them without the trial changing.
_BOOKKEEPING = frozenset({"trial_id", "page_count", "best_page_id", *TRIAL_TIME_COLUMNS})
TRIAL_VALUE_COLUMNS: tuple[str, ...] = tuple(
    c for c in ARROW_SCHEMAS["trials"].names if c not in _BOOKKEEPING
)

# Run ids started by this process and not finished yet: never abandoned by a sibling run.
_ACTIVE: set[str] = set()


@dataclass(frozen=True, slots=True)
class RunStats:
    """Counts and stage durations of a run; None = not measured (the stage did not run)."""

    pages_discovered: int | None = None
    pages_fetched: int | None = None
    pages_unchanged: int | None = None
    pages_parsed: int | None = None
    pages_partial: int | None = None
    pages_rejected: int | None = None
    trials_added: int | None = None
    trials_changed: int | None = None
    trials_removed: int | None = None
    crawl_s: float | None = None
    parse_s: float | None = None
    link_s: float | None = None
    load_s: float | None = None

    def plus(self, other: RunStats) -> RunStats:
        """Field-wise sum; None + x = x (a run of several batches adds them up)."""
        merged = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            merged[f.name] = b if a is None else a if b is None else a + b
        return RunStats(**merged)


assert tuple(f.name for f in fields(RunStats)) == RUN_COUNT_COLUMNS


@dataclass(frozen=True, slots=True)
class PageIssue:
    """A page a run rejected or parsed partially (just what the log keeps, not the record)."""

    page_id: str
    url: str
    parse_status: str  # partial / rejected
    parse_error: str | None


def page_issues(pages: Iterable[ParsedPage]) -> list[PageIssue]:
    return [PageIssue(p.page_id, p.url, p.parse_status, p.parse_error)
            for p in pages if p.parse_status in ("partial", "rejected")]


@dataclass(frozen=True, slots=True)
class TrialChange:
    trial_id: str
    nct_id: str | None
    change: str  # added / changed / removed
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TrialState:
    nct_id: str | None
    values: tuple[int, ...]  # hash per TRIAL_VALUE_COLUMNS column
    children: Mapping[str, int]  # child table -> hash of the trial's rows there


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def new_run_id() -> str:
    return uuid.uuid4().hex


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours
        return True
    return True


def mark_abandoned(conn: duckdb.DuckDBPyConnection, *, keep: str | None = None) -> int:
    """Mark 'running' rows whose process is gone as failed; returns how many.

    Gone = on this host, a process id that no longer exists, or this very process but a run
    it is no longer running.  Rows from other hosts are left alone: we cannot tell.
    """
    host, me = socket.gethostname(), os.getpid()
    rows = conn.execute(
        "SELECT run_id, pid FROM runs WHERE outcome = 'running' AND host = ? AND run_id <> ?",
        [host, keep or ""],
    ).fetchall()
    stale = [
        run_id for run_id, pid in rows
        if pid is None or (pid == me and run_id not in _ACTIVE) or (pid != me and not _pid_alive(pid))
    ]
    if stale:
        conn.execute(
            "UPDATE runs SET outcome = 'failed', finished_at = ?, "
            "error = 'abandoned: the process ended before the run finished (killed or crashed)' "
            "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) AND outcome = 'running'",
            [now_utc(), stale],
        ).fetchall()
    return len(stale)


def start_run(
    conn: duckdb.DuckDBPyConnection, command: str, trigger: str | None = None,
    *, run_id: str | None = None,
) -> str:
    """Commit a 'running' row (its own transaction) and return its run_id.  Starting a run_id
    that exists (a retried Dagster step) sets it running again."""
    run_id = run_id or new_run_id()
    if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchall():
        conn.execute(
            "UPDATE runs SET outcome = 'running', finished_at = NULL, error = NULL, pid = ?, host = ? "
            "WHERE run_id = ?", [os.getpid(), socket.gethostname(), run_id],
        ).fetchall()
    else:
        conn.execute(
            "INSERT INTO runs (run_id, command, trigger, started_at, outcome, host, pid) "
            "VALUES (?, ?, ?, ?, 'running', ?, ?)",
            [run_id, command, trigger, now_utc(), socket.gethostname(), os.getpid()],
        ).fetchall()
    _ACTIVE.add(run_id)
    mark_abandoned(conn, keep=run_id)
    return run_id


def update_run(conn: duckdb.DuckDBPyConnection, run_id: str, stats: RunStats) -> None:
    """Set the measured (non-None) counts of `stats` on the run, leaving the others."""
    values = {f.name: getattr(stats, f.name) for f in fields(stats)}
    measured = {k: v for k, v in values.items() if v is not None}
    if not measured:
        return
    # column names come from RunStats' own fields, never from input
    sets = ", ".join(f"{name} = ?" for name in measured)
    conn.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*measured.values(), run_id]).fetchall()


def finish_run(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    error: str | None = None,
    stats: RunStats = RunStats(),
    pages: Sequence[PageIssue] = (),
    changes: Sequence[TrialChange] = (),
) -> None:
    """Write the outcome with its counts, rejected/partial pages and trial changes in one
    small transaction (after the load's own transaction has ended)."""
    conn.begin()
    try:
        update_run(conn, run_id, stats)
        record_pages(conn, run_id, pages)
        record_changes(conn, run_id, changes)
        conn.execute(
            "UPDATE runs SET outcome = ?, error = ?, finished_at = ? WHERE run_id = ?",
            ["failed" if error else "succeeded", error, now_utc(), run_id],
        ).fetchall()
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        _ACTIVE.discard(run_id)


def record_pages(conn: duckdb.DuckDBPyConnection, run_id: str, pages: Sequence[PageIssue]) -> None:
    """The run's rejected and partial pages (replacing any recorded for it before)."""
    bad = list(pages)
    conn.execute("DELETE FROM run_pages WHERE run_id = ?", [run_id]).fetchall()
    if not bad:
        return
    table = pa.table({
        "run_id": pa.array([run_id] * len(bad), pa.string()),
        "page_id": pa.array([p.page_id for p in bad], pa.string()),
        "url": pa.array([p.url for p in bad], pa.string()),
        "parse_status": pa.array([p.parse_status for p in bad], pa.string()),
        "parse_error": pa.array([p.parse_error for p in bad], pa.string()),
    })
    conn.register("_runlog_pages", table)
    try:
        conn.execute("INSERT INTO run_pages BY NAME SELECT * FROM _runlog_pages").fetchall()
    finally:
        conn.unregister("_runlog_pages")


def record_changes(
    conn: duckdb.DuckDBPyConnection, run_id: str, changes: Sequence[TrialChange]
) -> None:
    conn.execute("DELETE FROM run_changes WHERE run_id = ?", [run_id]).fetchall()
    if not changes:
        return
    table = pa.table({
        "run_id": pa.array([run_id] * len(changes), pa.string()),
        "trial_id": pa.array([c.trial_id for c in changes], pa.string()),
        "nct_id": pa.array([c.nct_id for c in changes], pa.string()),
        "change": pa.array([c.change for c in changes], pa.string()),
        "fields": pa.array([list(c.fields) for c in changes], pa.list_(pa.string())),
    })
    conn.register("_runlog_changes", table)
    try:
        conn.execute("INSERT INTO run_changes BY NAME SELECT * FROM _runlog_changes").fetchall()
    finally:
        conn.unregister("_runlog_changes")


# --- what a load changed ------------------------------------------------------------------

def trial_states(conn: duckdb.DuckDBPyConnection, trial_ids: Iterable[str]) -> dict[str, TrialState]:
    """A fingerprint of each trial's golden rows (value columns and child tables), to compare
    before and after a load.  Only the trials a load touches are read."""
    ids = sorted(set(trial_ids))
    if not ids:
        return {}
    # column and table names are our own constants
    hashes = ", ".join(f"hash({c})" for c in TRIAL_VALUE_COLUMNS)
    rows = conn.execute(
        f"SELECT trial_id, nct_id, [{hashes}] FROM trials "
        "WHERE trial_id IN (SELECT unnest(?::VARCHAR[]))", [ids],
    ).fetchall()
    children: dict[str, dict[str, int]] = {tid: {} for tid, _, _ in rows}
    for table in CHILD_TABLES:
        for tid, digest in conn.execute(
            f"SELECT trial_id, bit_xor(hash(t)) FROM {table} t "
            "WHERE trial_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY trial_id", [ids],
        ).fetchall():
            if tid in children:
                children[tid][table] = int(digest)
    return {tid: TrialState(nct, tuple(vals), children[tid]) for tid, nct, vals in rows}


def nct_ids(conn: duckdb.DuckDBPyConnection, trial_ids: Iterable[str]) -> dict[str, str | None]:
    """trial_id -> nct_id of those `trial_ids` the warehouse holds."""
    ids = sorted(set(trial_ids))
    if not ids:
        return {}
    return dict(conn.execute(
        "SELECT trial_id, nct_id FROM trials WHERE trial_id IN (SELECT unnest(?::VARCHAR[]))", [ids],
    ).fetchall())


def diff_states(
    before: Mapping[str, TrialState], after: Mapping[str, TrialState],
    added: Mapping[str, str | None] | None = None,
) -> tuple[TrialChange, ...]:
    """Trials added, changed (naming the columns / child tables that differ) and removed.

    `added`: trial_id -> nct_id of trials new since `before`, when the caller found them
    without fingerprinting (a first load of many trials need not hash them all)."""
    out: list[TrialChange] = []
    extra = {tid: nct for tid, nct in (added or {}).items() if tid not in before}
    for tid in sorted(set(before) | set(after) | set(extra)):
        old, new = before.get(tid), after.get(tid)
        if old is None and tid in extra:
            out.append(TrialChange(tid, extra[tid], "added"))
        elif old is None and new is not None:
            out.append(TrialChange(tid, new.nct_id, "added"))
        elif new is None and old is not None:
            out.append(TrialChange(tid, old.nct_id, "removed"))
        elif old is not None and new is not None:
            changed = [c for c, a, b in zip(TRIAL_VALUE_COLUMNS, old.values, new.values) if a != b]
            changed += [t for t in CHILD_TABLES if old.children.get(t) != new.children.get(t)]
            if changed:
                out.append(TrialChange(tid, new.nct_id, "changed", tuple(changed)))
    return tuple(out)


def change_counts(changes: Sequence[TrialChange]) -> RunStats:
    return RunStats(
        trials_added=sum(c.change == "added" for c in changes),
        trials_changed=sum(c.change == "changed" for c in changes),
        trials_removed=sum(c.change == "removed" for c in changes),
    )


def page_counts(pages: Sequence[ParsedPage], *, unchanged: int) -> RunStats:
    return RunStats(
        pages_unchanged=unchanged,
        pages_parsed=len(pages),
        pages_partial=sum(p.parse_status == "partial" for p in pages),
        pages_rejected=sum(p.parse_status == "rejected" for p in pages),
    )


# --- one run on one connection --------------------------------------------------------------

@dataclass(slots=True)
class RunLog:
    """What a run has measured so far; `recorded()` writes it when the run ends."""

    run_id: str = ""
    stats: RunStats = field(default_factory=RunStats)
    pages: list[PageIssue] = field(default_factory=list)  # only the bad ones: a long run stays small
    changes: list[TrialChange] = field(default_factory=list)

    def add(self, stats: RunStats) -> None:
        self.stats = self.stats.plus(stats)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the block's wall time to `<stage>_s` (crawl, parse, link, load)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(replace(RunStats(), **{f"{stage}_s": time.perf_counter() - start}))


@contextmanager
def recorded(
    conn: duckdb.DuckDBPyConnection, command: str, trigger: str | None = "cli"
) -> Iterator[RunLog]:
    """Run the block as one logged run: 'running' first, then succeeded or failed (with the
    error on one line) whatever happens -- the exception itself goes on up."""
    log = RunLog(start_run(conn, command, trigger))
    try:
        yield log
    except BaseException as exc:
        _finish_quietly(conn, log, one_line(exc))
        raise
    finish_run(conn, log.run_id, stats=log.stats, pages=log.pages, changes=log.changes)


def _finish_quietly(conn: duckdb.DuckDBPyConnection, log: RunLog, error: str) -> None:
    """Record a failure without hiding the error that caused it (a broken connection may
    refuse the bookkeeping too; the next run then marks the row abandoned)."""
    try:
        finish_run(conn, log.run_id, error=error, stats=log.stats, pages=log.pages, changes=log.changes)
    except Exception:
        _ACTIVE.discard(log.run_id)
