"""The parse stage in parallel: workers parse pages and hand over Parquet batches.

Parsing is pure CPU work on independent pages, so it scales with processes; the warehouse
is one DuckDB file with a single writer.  The split is therefore:

* the pages of a run are cut into *shards* (consecutive slices of a stable order);
* a worker process reads each shard's bytes itself (raw store -- local or any fsspec URL --
  or a file), parses every page with `run.safe_parse` and writes the result as one Parquet
  file in a staging folder (`part-<shard>.parquet`: the `pages` columns plus the record as
  the same JSON `page_records` stores);
* the single writer reads the staged batches back in shard order and loads them.

Deterministic: a shard's file depends only on its pages, so 1, 2 or 200 workers (or
Dagster steps on other machines) produce byte-identical files, and loading them in shard
order gives the same warehouse as a serial run.  No Dagster here: `pipeline/defs/rebuild.py`
maps the same functions over shards.
"""

from __future__ import annotations

import atexit
import datetime as dt
import gc
import multiprocessing as mp
import os
import resource
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.db.profiles import PAGE_PROFILE_FIELDS, page_profile_columns
from pipeline.ingest import UnreadableFile, page_id_for, raw_page_from_bytes, read_page_file
from pipeline.models import ParsedPage, RawPage
from pipeline.rawstore import RawStore, RawStoreError
from pipeline.serialize import record_from_json, record_to_json

DEFAULT_SHARD_PAGES = 1000  # pages per staged Parquet file: ~2-4 s of one core's work

STAGED_SCHEMA = pa.schema([
    ("page_id", pa.string()),
    ("url", pa.string()),
    ("source", pa.string()),
    ("content_sha256", pa.string()),
    ("fetched_at", pa.timestamp("us")),
    ("parse_status", pa.string()),
    ("parse_error", pa.string()),
    ("warnings", pa.list_(pa.string())),
    ("record", pa.string()),  # TrialRecord JSON (pipeline.serialize), null when rejected
    # the page's eligibility and therapy profiles (pipeline.db.profiles), so the single
    # writer only picks them up; null when not made (rejected pages, `parse_pages` batches)
    *PAGE_PROFILE_FIELDS,
])


@dataclass(frozen=True, slots=True)
class PageRef:
    """Where one page version's bytes are: a raw-store object (`source`, `content_sha256`)
    or, when `content_sha256` is None, the file the `file://` URL names."""

    url: str
    source: str | None
    content_sha256: str | None
    fetched_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    refs: tuple[PageRef, ...]


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """One shard's parsed pages, written by a worker."""

    index: int
    path: str
    pages: int
    by_status: tuple[tuple[str, int], ...]
    cpu_s: float  # worker CPU time spent reading and parsing the shard
    peak_rss: int = 0  # the worker process's peak resident memory so far, bytes


def shards(refs: Sequence[PageRef], size: int = DEFAULT_SHARD_PAGES) -> list[Shard]:
    size = max(1, size)
    return [Shard(i, tuple(refs[start:start + size]))
            for i, start in enumerate(range(0, len(refs), size))]


def staged_path(staging: str | os.PathLike[str], index: int) -> Path:
    return Path(staging) / f"part-{index:06d}.parquet"


# --- read -------------------------------------------------------------------------------

def read_ref(ref: PageRef, store: RawStore | None) -> RawPage | UnreadableFile:
    """The page's bytes, or an UnreadableFile saying why there are none."""
    if ref.content_sha256 is None:
        parsed = urlparse(ref.url)
        path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(ref.url)
        return read_page_file(path)
    if store is None or ref.source is None:
        return UnreadableFile(ref.url, "raw store: no raw store given for a stored page")
    try:
        content = store.get(ref.source, ref.content_sha256)
    except (RawStoreError, ValueError) as exc:
        return UnreadableFile(ref.url, f"raw store: {exc}")
    return raw_page_from_bytes(ref.url, content, ref.fetched_at or dt.datetime(1970, 1, 1),
                               ref.source)


# --- parsed pages <-> Arrow ---------------------------------------------------------------

def parsed_table(pages: Iterable[ParsedPage], *, profiles: bool = False) -> pa.Table:
    """The pages as STAGED_SCHEMA rows; `profiles`: also profile every linkable page."""
    pages = list(pages)
    cols: dict[str, list] = {name: [] for name in STAGED_SCHEMA.names}
    linkable = [p.record if p.record is not None and p.parse_status in ("ok", "partial") else None
                for p in pages]
    cols.update(page_profile_columns(linkable if profiles else [None] * len(pages)))
    for p in pages:
        cols["page_id"].append(p.page_id)
        cols["url"].append(p.url)
        cols["source"].append(p.source)
        cols["content_sha256"].append(p.content_sha256)
        cols["fetched_at"].append(_naive_utc(p.fetched_at))
        cols["parse_status"].append(p.parse_status)
        cols["parse_error"].append(p.parse_error)
        cols["warnings"].append(list(p.warnings))
        cols["record"].append(record_to_json(p.record) if p.record is not None else None)
    return pa.table(cols, schema=STAGED_SCHEMA)


_PAGE_COLUMNS = ("page_id", "url", "source", "content_sha256", "fetched_at", "parse_status",
                 "parse_error", "warnings", "record")


def pages_from_table(table: pa.Table) -> list[ParsedPage]:
    out = []
    for row in table.select(list(_PAGE_COLUMNS)).to_pylist():
        record = row["record"]
        out.append(ParsedPage(
            page_id=row["page_id"], url=row["url"], source=row["source"],
            content_sha256=row["content_sha256"], fetched_at=row["fetched_at"],
            parse_status=row["parse_status"], parse_error=row["parse_error"],
            record=record_from_json(record) if record is not None else None,
            warnings=tuple(row["warnings"] or ()),
        ))
    return out


class StagedJson(Mapping[str, str]):
    """page_id -> the record JSON a worker staged, read from the Arrow column on demand (the
    loader stores it in `page_records` as it is, instead of encoding the record again)."""

    def __init__(self, column: pa.ChunkedArray | pa.Array, rows: Mapping[str, int]):
        self._column = column
        self._rows = rows

    @classmethod
    def of(cls, table: pa.Table) -> StagedJson:
        ids = table.column("page_id").to_pylist()
        valid = table.column("record").is_valid().to_pylist()
        return cls(table.column("record"), {pid: i for i, (pid, ok) in enumerate(zip(ids, valid)) if ok})

    def __getitem__(self, page_id: str) -> str:
        return self._column[self._rows[page_id]].as_py()

    def __contains__(self, page_id: object) -> bool:
        return page_id in self._rows  # (Mapping's default would decode the JSON to answer)

    def take(self, page_ids: Sequence[str]) -> pa.Array | pa.ChunkedArray:
        """The JSON of `page_ids` (all staged), as Arrow: no Python strings, and no copy when
        they are the staged rows in staged order (a rebuild's usual batch) -- the records
        are ~25 KB each, so copying a batch's (`take`) cost the loader ~0.1 ms a page."""
        rows = np.fromiter((self._rows[pid] for pid in page_ids), dtype=np.int64, count=len(page_ids))
        size = len(self._column)
        if len(rows) == size and bool((rows == np.arange(size)).all()):
            return self._column
        if bool((np.diff(rows) > 0).all()):  # ascending: a mask keeps the order
            mask = np.zeros(size, dtype=bool)
            mask[rows] = True
            return self._column.filter(pa.array(mask))
        return self._column.take(pa.array(rows))

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def write_staged(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Atomically (temp + rename), so a half-written batch is never read as complete."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    # No statistics and a fixed writer: the bytes depend on the rows only.
    pq.write_table(table, tmp, compression="zstd", write_statistics=False,
                   store_schema=False)
    os.replace(tmp, target)


def read_staged_table(path: str | os.PathLike[str]) -> pa.Table:
    return pq.read_table(path, schema=STAGED_SCHEMA)


def read_staged(path: str | os.PathLike[str]) -> list[ParsedPage]:
    return pages_from_table(read_staged_table(path))


# --- parse ------------------------------------------------------------------------------

def parse_items(items: Iterable[RawPage | UnreadableFile], attempted_at: dt.datetime) -> list[ParsedPage]:
    from pipeline.run import safe_parse, unreadable_page  # run imports this module lazily too

    return [unreadable_page(i, attempted_at) if isinstance(i, UnreadableFile) else safe_parse(i)
            for i in items]


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic GC off inside the block.  Parsing allocates millions of objects and
    the collector kept tracing the shard's growing list of parsed pages (5-8 % of a worker's
    time); a parse makes no reference cycles (`tests/test_parse_batches.py` checks), so
    there is nothing for it to find, and reference counting frees everything as usual."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def staged_table(items: Iterable[RawPage | UnreadableFile], attempted_at: dt.datetime, *,
                 profiles: bool = True) -> tuple[list[ParsedPage], pa.Table]:
    """What a parse worker makes of its pages: the parsed pages and their staged rows."""
    with cyclic_gc_paused():
        pages = parse_items(items, attempted_at)
        return pages, parsed_table(pages, profiles=profiles)


def parse_shard(shard: Shard, raw_root: str | None, staging: str | os.PathLike[str]) -> StagedBatch:
    """Read, parse and stage one shard (runs in a worker process)."""
    t0 = time.process_time()
    store = RawStore(raw_root) if raw_root else None
    # Unreadable pages get a fixed attempt time so a shard's bytes never depend on the clock.
    attempted = dt.datetime(1970, 1, 1)
    pages, table = staged_table((read_ref(r, store) for r in shard.refs), attempted)
    path = staged_path(staging, shard.index)
    write_staged(table, path)
    counts: dict[str, int] = {}
    for p in pages:
        counts[p.parse_status] = counts.get(p.parse_status, 0) + 1
    return StagedBatch(shard.index, str(path), len(pages), tuple(sorted(counts.items())),
                       time.process_time() - t0,
                       resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def _parse_raws(raws: Sequence[RawPage]) -> bytes:
    """Worker side of `parse_pages`: the parsed pages as an Arrow IPC stream."""
    _, table = staged_table(raws, dt.datetime(1970, 1, 1), profiles=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers start from a clean interpreter with the parser imported
    (forkserver): never a fork of a process holding DuckDB connections or threads."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.parse", "pipeline.parse_batches"])
    return ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx)


def stage(
    refs: Sequence[PageRef], raw_root: str | os.PathLike[str] | None, staging: str | os.PathLike[str],
    *, workers: int = 1, shard_pages: int = DEFAULT_SHARD_PAGES, executor: Executor | None = None,
) -> Iterator[StagedBatch]:
    """Parse `refs` into staged Parquet batches; yields them in shard order as they finish
    (the caller can load batch k while later shards are still being parsed)."""
    parts = shards(refs, shard_pages)
    root = os.fspath(raw_root) if raw_root is not None else None
    if workers <= 1 and executor is None:
        for part in parts:
            yield parse_shard(part, root, staging)
        return
    own = executor is None
    ex = executor or pool(workers)
    try:
        # Bounded look-ahead: at most 2 shards per worker queued, so a slow loader does
        # not let finished-but-unloaded batches pile up (they are on disk anyway).
        window = max(2, 2 * workers)
        futures = []
        for part in parts:
            futures.append(ex.submit(parse_shard, part, root, os.fspath(staging)))
            if len(futures) >= window:
                yield futures.pop(0).result()
        for fut in futures:
            yield fut.result()
    finally:
        if own:
            ex.shutdown(cancel_futures=True)


def parse_pages(raws: Sequence[RawPage], *, workers: int = 1, chunk: int = 200,
                executor: Executor | None = None) -> list[ParsedPage]:
    """`safe_parse` over `raws`, in order, on `workers` processes (in-process when 1)."""
    if (workers <= 1 and executor is None) or len(raws) < 2:
        return parse_items(raws, dt.datetime(1970, 1, 1))
    ex = executor or _shared_pool(workers)
    chunk = max(1, min(chunk, len(raws) // (4 * max(workers, 2))))  # several chunks per worker
    parts = [raws[i:i + chunk] for i in range(0, len(raws), chunk)]
    out: list[ParsedPage] = []
    for blob in ex.map(_parse_raws, parts):
        with pa.ipc.open_stream(blob) as reader:
            out.extend(pages_from_table(reader.read_all()))
    return out


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _shared_pool(workers: int) -> ProcessPoolExecutor:
    """One pool per worker count for the life of the process: a run that parses batch after
    batch (`trials reparse --workers N`) starts its workers once."""
    if workers not in _POOLS:
        _POOLS[workers] = pool(workers)
        if len(_POOLS) == 1:
            atexit.register(lambda: [p.shutdown(cancel_futures=True) for p in _POOLS.values()])
    return _POOLS[workers]


def page_id(ref: PageRef) -> str | None:
    """The page_id a stored page gets (None for files: their hash is only known once read)."""
    return page_id_for(ref.url, ref.content_sha256) if ref.content_sha256 else None
