"""`trials status`: the last runs from the run log, and what they rejected and why.

Reads a read-only connection, so it works while nothing writes the warehouse and never
changes it (a 'running' row of a killed process shows as running until the next run).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import duckdb

from pipeline.db.connection import open_warehouse

DEFAULT_LIMIT = 10
MAX_PAGES_SHOWN = 50  # per run; the rest are counted


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    command: str
    trigger: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str
    error: str | None
    pages_discovered: int | None
    pages_fetched: int | None
    pages_unchanged: int | None
    pages_parsed: int | None
    pages_partial: int | None
    pages_rejected: int | None
    trials_added: int | None
    trials_changed: int | None
    trials_removed: int | None
    crawl_s: float | None
    parse_s: float | None
    link_s: float | None
    load_s: float | None

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class RunPage:
    run_id: str
    url: str
    parse_status: str
    parse_error: str | None


@dataclass(frozen=True, slots=True)
class Status:
    warehouse: str
    runs: tuple[RunRow, ...]  # newest first
    pages: tuple[RunPage, ...]  # rejected/partial pages of those runs, by run then URL
    total_runs: int


_COLUMNS = (
    "run_id, command, trigger, started_at, finished_at, outcome, error, pages_discovered, "
    "pages_fetched, pages_unchanged, pages_parsed, pages_partial, pages_rejected, trials_added, "
    "trials_changed, trials_removed, crawl_s, parse_s, link_s, load_s"
)


def read_status(conn: duckdb.DuckDBPyConnection, limit: int = DEFAULT_LIMIT, warehouse: str = "") -> Status:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM runs ORDER BY started_at DESC, run_id LIMIT ?", [limit]
    ).fetchall()
    runs = tuple(RunRow(*row) for row in rows)
    pages = conn.execute(
        "SELECT run_id, url, parse_status, parse_error FROM run_pages "
        "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY run_id, parse_status DESC, url",
        [[r.run_id for r in runs]],
    ).fetchall()
    order = {r.run_id: i for i, r in enumerate(runs)}
    ordered = sorted((RunPage(*p) for p in pages), key=lambda p: order[p.run_id])
    total = conn.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    return Status(warehouse, runs, tuple(ordered), int(total))


def status(warehouse: str | os.PathLike[str], limit: int = DEFAULT_LIMIT, *, wait: float = 0.0) -> Status:
    conn = open_warehouse(warehouse, read_only=True, wait=wait)
    try:
        return read_status(conn, limit, str(warehouse))
    finally:
        conn.close()


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    return [line(header), *(line(r) for r in rows)]


def format_status(st: Status) -> str:
    if not st.runs:
        return f"Warehouse: {st.warehouse}\nNo runs recorded yet."
    header = ("run", "command", "started (UTC)", "outcome", "took s", "found", "fetched",
              "unchanged", "parsed", "partial", "rejected", "+trials", "~trials", "-trials",
              "crawl s", "parse s", "link s", "load s")
    rows = [(
        r.run_id[:8], r.command, f"{r.started_at:%Y-%m-%d %H:%M:%S}", r.outcome, _s(r.duration_s),
        _n(r.pages_discovered), _n(r.pages_fetched), _n(r.pages_unchanged), _n(r.pages_parsed),
        _n(r.pages_partial), _n(r.pages_rejected), _n(r.trials_added), _n(r.trials_changed),
        _n(r.trials_removed), _s(r.crawl_s), _s(r.parse_s), _s(r.link_s), _s(r.load_s),
    ) for r in st.runs]
    lines = [
        f"Warehouse: {st.warehouse}",
        f"Last {len(st.runs)} of {st.total_runs} runs, newest first:",
        *("  " + line for line in _table(header, rows, set(range(4, len(header))))),
    ]
    failed = [r for r in st.runs if r.error]
    if failed:
        lines.append("Failed runs:")
        lines += [f"  {r.run_id[:8]} {r.command}: {r.error}" for r in failed]
    if not st.pages:
        lines.append("Rejected or partial pages in these runs: none")
        return "\n".join(lines)
    lines.append("Rejected or partial pages in these runs (why):")
    shown: dict[str, int] = {}
    for p in st.pages:
        shown[p.run_id] = shown.get(p.run_id, 0) + 1
        if shown[p.run_id] <= MAX_PAGES_SHOWN:
            lines.append(f"  {p.run_id[:8]} {p.parse_status:<8} {p.url}: {p.parse_error or '(no reason given)'}")
    for run_id, n in shown.items():
        if n > MAX_PAGES_SHOWN:
            lines.append(f"  {run_id[:8]} ... and {n - MAX_PAGES_SHOWN} more")
    return "\n".join(lines)
