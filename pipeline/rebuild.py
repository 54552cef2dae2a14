"""Rebuild a warehouse from raw page bytes: parse on many processes, load with one writer.

`rebuild(refs, conn, raw_root, ...)` takes the pages to (re)read as `PageRef`s -- raw-store
objects or files -- and:

1. parses them in shards on `workers` processes (`pipeline.parse_batches.stage`), each shard
   landing as a Parquet file in the staging folder;
2. meanwhile, in this process, reads the staged shards back in shard order and, every
   `load_pages` pages, links and loads them with `pipeline.run.plan_links` / `load_plan` --
   the same link and load as every other run, one transaction per batch -- taking the
   records' JSON and the pages' eligibility and therapy profiles as the workers staged them
   (`pipeline.db.profiles`: the rows are those the loader would make), and leaving what
   scans the whole warehouse (presence, the stale-profile scan, the blocking checks) to the
   last transaction.

Memory is bounded by the batch sizes, not by the corpus: at most `load_pages` parsed pages
are held here, and each worker holds one shard.  Pages the warehouse already has from the
current parser version are skipped, so a rebuild that died half-way resumes.  Stage times
are measured, because which stage dominates is the point of running this at scale.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import run
from pipeline.db.load import finish_rebuild
from pipeline.db.profiles import PageProfiles
from pipeline.models import ParsedPage
from pipeline.parse_batches import DEFAULT_SHARD_PAGES, PageRef, StagedJson, pages_from_table, read_staged_table, stage

DEFAULT_LOAD_PAGES = 10_000  # pages per load transaction (~48 KB per parsed page in memory)
# DuckDB's own memory during a rebuild.  Left at its default (80% of RAM) it kept the blocks
# it wrote cached, so the loader's peak grew with the warehouse (6.0 GB at 200k pages,
# against ~2.7 GB at 40k with this cap); past the cap it evicts, or spills to disk.
DEFAULT_DUCKDB_MEMORY = "1GB"


@dataclass(slots=True)
class StageTimes:
    """Seconds per stage.  Parsing runs in the workers while this process loads, so
    `parse_wait_s` is the time the loader sat waiting for parsed shards, not parse time."""

    total_s: float = 0.0
    parse_wait_s: float = 0.0
    parse_cpu_s: float = 0.0  # summed over workers
    read_staged_s: float = 0.0  # Parquet -> ParsedPage
    link_s: float = 0.0  # stored pages + plan_links
    load_s: float = 0.0  # load_plan: rows, history, profiles (+ checks in the last batch)
    finish_s: float = 0.0  # whole-warehouse steps once at the end (finish_rebuild), in load_s too
    loader_cpu_s: float = 0.0  # CPU time of the loader process (waiting excluded): its true cost

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RebuildResult:
    pages: int  # pages read
    pages_loaded: int  # parsed and loaded this run
    pages_skipped: int  # already in the warehouse from this parser version
    by_status: dict[str, int]
    load_batches: int
    trials: int  # rows in `trials` afterwards
    times: StageTimes
    peak_rss_main: int  # bytes
    peak_rss_worker: int  # bytes, the largest worker process (0 when parsed in-process)
    summaries: tuple[run.RunSummary, ...] = field(default=())


def _peak(who: int) -> int:
    return resource.getrusage(who).ru_maxrss * 1024  # Linux reports KiB


class StagedLoader:
    """The single writer's side: parsed pages in, one link + load transaction per
    `load_pages` pages out.  Pages the warehouse already has from the current parser version,
    or seen earlier in this run, are skipped.

    The loader does as little per page as it can: the workers staged each page's record JSON
    and profiles, so a batch's load mostly inserts them; and what reads the whole warehouse
    (presence, the profile refresh's stale scan, the blocking checks) runs once, in the last
    transaction (`finish()`), not in every batch.  The last transaction therefore checks the
    integrity of everything the rebuild wrote; should it fail, it rolls back alone (earlier
    batches stay) and raises LoadRefused."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, *, load_pages: int = DEFAULT_LOAD_PAGES,
                 warehouse_label: str | os.PathLike[str] = "", keep_summaries: bool = False,
                 times: StageTimes | None = None):
        self.conn = conn
        self.load_pages = max(1, load_pages)
        self.label = warehouse_label
        self.keep_summaries = keep_summaries
        self.times = times or StageTimes()
        self.version = run.current_parser_version()
        self.statuses: Counter[str] = Counter()
        self.summaries: list[run.RunSummary] = []
        self.pending: list[ParsedPage] = []
        self.pending_tables: list[pa.Table] = []  # the staged rows of `pending`
        self.seen: set[str] = set()
        self.loaded = self.skipped = self.batches = 0
        self.finished = False  # the last load covered the whole warehouse

    def add_staged(self, path: str | os.PathLike[str]) -> None:
        t0 = time.perf_counter()
        table = read_staged_table(path)
        self.pending.extend(pages_from_table(table))
        self.pending_tables.append(table)
        self.times.read_staged_s += time.perf_counter() - t0
        if len(self.pending) >= self.load_pages:
            self.flush()

    def finish(self) -> None:
        """Load what is pending, as the last transaction: it also runs the whole-warehouse
        steps (or, when there is nothing left to load, `finish_rebuild` does)."""
        self.flush(last=True)
        if not self.finished:
            t0 = time.perf_counter()
            finish_rebuild(self.conn)
            elapsed = time.perf_counter() - t0
            self.times.finish_s += elapsed
            self.times.load_s += elapsed
            self.finished = True

    def flush(self, *, last: bool = False) -> None:
        if not self.pending:
            return
        staged = pa.concat_tables(self.pending_tables) if self.pending_tables else None
        self.pending_tables = []
        stored = run.stored_parser_versions(self.conn, (p.page_id for p in self.pending))
        fresh: list[ParsedPage] = []
        reparsed: list[str] = []
        for page in self.pending:
            if page.page_id in self.seen or stored.get(page.page_id, object()) == self.version:
                self.skipped += 1
                continue
            self.seen.add(page.page_id)
            if page.page_id in stored:
                reparsed.append(page.page_id)
            fresh.append(page)
        self.pending = []
        if not fresh:
            return
        batch = run.ParseBatch(
            pages_read=len(fresh), skipped_known=0, pages=tuple(fresh), reparsed=tuple(reparsed),
            record_json=StagedJson.of(staged) if staged is not None else None,
            profiles=PageProfiles.of(staged) if staged is not None else None,
        )
        t0 = time.perf_counter()
        plan = run.plan_links(self.conn, batch)
        t1 = time.perf_counter()
        result = run.load_plan(self.conn, plan, whole_warehouse=last)
        self.finished = last
        t2 = time.perf_counter()
        self.times.link_s += t1 - t0
        self.times.load_s += t2 - t1
        self.statuses.update(p.parse_status for p in fresh)
        self.loaded += len(fresh)
        self.batches += 1
        if self.keep_summaries:
            self.summaries.append(run.summarize(self.label, plan, result))


def rebuild(
    refs: Sequence[PageRef],
    conn: duckdb.DuckDBPyConnection,
    raw_root: str | os.PathLike[str] | None,
    *,
    workers: int = 1,
    shard_pages: int = DEFAULT_SHARD_PAGES,
    load_pages: int = DEFAULT_LOAD_PAGES,
    staging: str | os.PathLike[str] | None = None,
    warehouse_label: str | os.PathLike[str] = "",
    keep_summaries: bool = False,
    duckdb_memory: str | None = DEFAULT_DUCKDB_MEMORY,
) -> RebuildResult:
    """Parse `refs` on `workers` processes and load them into the warehouse on `conn`
    (DuckDB held to `duckdb_memory` meanwhile; None leaves its setting alone)."""
    times = StageTimes()
    started = time.perf_counter()
    cpu_started = time.process_time()
    own_staging = staging is None
    folder = Path(tempfile.mkdtemp(prefix="trials-staging-")) if staging is None else Path(staging)
    folder.mkdir(parents=True, exist_ok=True)
    loader = StagedLoader(conn, load_pages=load_pages, warehouse_label=warehouse_label,
                          keep_summaries=keep_summaries, times=times)
    worker_peak = 0
    try:
        with memory_limit(conn, duckdb_memory):
            batches = stage(refs, os.fspath(raw_root) if raw_root is not None else None, folder,
                            workers=workers, shard_pages=shard_pages)
            while True:
                t0 = time.perf_counter()
                staged = next(batches, None)
                times.parse_wait_s += time.perf_counter() - t0
                if staged is None:
                    break
                times.parse_cpu_s += staged.cpu_s
                worker_peak = max(worker_peak, staged.peak_rss) if workers > 1 else 0
                loader.add_staged(staged.path)
                Path(staged.path).unlink(missing_ok=True)  # its pages are loaded or pending
            loader.finish()
    finally:
        if own_staging:
            shutil.rmtree(folder, ignore_errors=True)
    times.total_s = time.perf_counter() - started
    times.loader_cpu_s = time.process_time() - cpu_started
    return _result(loader, len(refs), worker_peak)


@contextmanager
def memory_limit(conn: duckdb.DuckDBPyConnection, limit: str | None) -> Iterator[None]:
    """DuckDB's memory_limit set to `limit` ("1GB") inside the block, restored after.

    DuckDB shows the setting rounded ("2.7 GiB"), so a value set by hand comes back as
    that rounding; the default (the usual case) comes back exactly, by RESET."""
    if limit is None:
        yield
        return
    setting = "SELECT current_setting('memory_limit')"
    old = conn.execute(setting).fetchall()[0][0]
    conn.execute("RESET memory_limit")
    was_default = conn.execute(setting).fetchall()[0][0] == old
    conn.execute("SET memory_limit = ?", [limit])
    try:
        yield
    finally:
        if was_default:
            conn.execute("RESET memory_limit")
        else:
            conn.execute("SET memory_limit = ?", [old])


def load_staged(
    conn: duckdb.DuckDBPyConnection, paths: Sequence[str | os.PathLike[str]], *,
    load_pages: int = DEFAULT_LOAD_PAGES, warehouse_label: str | os.PathLike[str] = "",
    duckdb_memory: str | None = DEFAULT_DUCKDB_MEMORY,
) -> RebuildResult:
    """Load staged batches written elsewhere (Dagster steps, other machines), in order."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    loader = StagedLoader(conn, load_pages=load_pages, warehouse_label=warehouse_label)
    pages = 0
    with memory_limit(conn, duckdb_memory):
        for path in paths:
            before = len(loader.pending) + loader.loaded + loader.skipped
            loader.add_staged(path)
            pages += len(loader.pending) + loader.loaded + loader.skipped - before
        loader.finish()
    loader.times.total_s = time.perf_counter() - started
    loader.times.loader_cpu_s = time.process_time() - cpu_started
    return _result(loader, pages, 0)


def _result(loader: StagedLoader, pages: int, worker_peak: int) -> RebuildResult:
    trials = loader.conn.execute("SELECT count(*) FROM trials").fetchall()[0][0]
    return RebuildResult(
        pages=pages, pages_loaded=loader.loaded, pages_skipped=loader.skipped,
        by_status=dict(sorted(loader.statuses.items())), load_batches=loader.batches,
        trials=int(trials), times=loader.times,
        peak_rss_main=_peak(resource.RUSAGE_SELF), peak_rss_worker=worker_peak,
        summaries=tuple(loader.summaries),
    )
