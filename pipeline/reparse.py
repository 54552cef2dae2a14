"""`trials reparse`: re-read pages stored by an older parser version, without fetching.

Every page row remembers its URL, content hash and the parser version that read it.  When
`pipeline.parse.PARSER_VERSION` changes, the pages read by another version are fetched back
from where their bytes live -- the raw store for crawled pages (`<raw>/<source>/objects/`),
the file itself for pages ingested from disk -- and go through the normal parse -> link ->
load path, which replaces their rows and rewrites the trials they shape (history included)
in one transaction per batch.  A page whose bytes are no longer available (file moved or
edited, object missing or corrupt) keeps its old parse and is listed, never dropped.

Nothing is fetched from the network.  `trials ingest PATH` also re-parses stale pages under
PATH; this command covers everything else, crawled pages above all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb

from pipeline import run, runlog
from pipeline.db.connection import open_warehouse
from pipeline.ingest import raw_page_from_bytes
from pipeline.models import RawPage
from pipeline.progress import Bars
from pipeline.rawstore import RawStore, RawStoreError

DEFAULT_BATCH = 2000  # pages per transaction: bounds memory, and a killed run resumes


@dataclass(frozen=True, slots=True)
class StalePage:
    page_id: str
    url: str
    source: str
    content_sha256: str
    fetched_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ReparseResult:
    parser_version: str | None
    stale: int  # pages read by another parser version before this run
    summaries: tuple[run.RunSummary, ...]  # one per batch
    unavailable: tuple[run.Quarantined, ...]  # stale pages whose bytes could not be read

    @property
    def reparsed(self) -> int:
        return sum(s.pages_reparsed for s in self.summaries)


def stale_pages(conn: duckdb.DuckDBPyConnection, parser_version: str | None) -> list[StalePage]:
    """Pages whose stored parse came from another parser version (unreadable files excluded:
    there were no bytes to parse)."""
    rows = conn.execute(
        "SELECT page_id, url, source, content_sha256, fetched_at FROM pages "
        "WHERE parser_version IS DISTINCT FROM ? AND content_sha256 IS NOT NULL "
        "AND NOT (source = 'unknown' AND content_sha256 = ?) ORDER BY url, content_sha256",
        [parser_version, run.EMPTY_SHA256],
    ).fetchall()
    return [StalePage(*row) for row in rows]


def _file_path(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def read_stale(page: StalePage, store: RawStore) -> RawPage:
    """The page's original bytes; raises LookupError saying why they are unavailable."""
    if page.url.startswith("file:"):
        path = _file_path(page.url)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise LookupError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if hashlib.sha256(content).hexdigest() != page.content_sha256:
            raise LookupError(f"{path} changed since it was loaded")
        source_hint = None  # the parser recognises the site, as on first ingest
    else:
        try:
            content = store.get(page.source, page.content_sha256)
        except (RawStoreError, ValueError) as exc:
            raise LookupError(f"raw store: {exc}") from exc
        source_hint = page.source
    fetched_at = page.fetched_at or dt.datetime(1970, 1, 1)
    return raw_page_from_bytes(page.url, content, fetched_at, source_hint)


def reparse_on(
    conn: duckdb.DuckDBPyConnection,
    raw_root: str | os.PathLike[str],
    *,
    warehouse_label: str | os.PathLike[str] = "",
    batch_size: int = DEFAULT_BATCH,
    bars: Bars | None = None,
    workers: int = 1,
) -> ReparseResult:
    version = run.current_parser_version()
    store = RawStore(raw_root)
    unavailable: list[run.Quarantined] = []
    summaries = []
    size = max(1, batch_size)
    with runlog.recorded(conn, "reparse") as log:  # logged in `runs`, failed or not
        stale = stale_pages(conn, version)
        log.add(runlog.RunStats(pages_discovered=len(stale)))
        for start in range(0, len(stale), size):
            chunk: list[RawPage] = []  # only one batch of page bytes in memory at a time
            for page in stale[start:start + size]:
                try:
                    chunk.append(read_stale(page, store))
                except LookupError as exc:
                    unavailable.append(run.Quarantined(page.url, str(exc)))
            if chunk:
                batch = run.RawBatch(("reparse",), tuple(chunk))
                summaries.append(run.ingest_batch(batch, conn, warehouse_label, log=log, bars=bars,
                                                    workers=workers))
    return ReparseResult(version, len(stale), tuple(summaries), tuple(unavailable))


def reparse(
    warehouse: str | os.PathLike[str], raw_root: str | os.PathLike[str], *,
    wait: float = 0.0, batch_size: int = DEFAULT_BATCH, bars: Bars | None = None,
    workers: int = 1,
) -> ReparseResult:
    """`workers` > 1 parses each batch on that many processes (same result, faster)."""
    conn = open_warehouse(warehouse, wait=wait)
    try:
        return reparse_on(conn, raw_root, warehouse_label=warehouse, batch_size=batch_size, bars=bars,
                          workers=workers)
    finally:
        conn.close()


def format_reparse(result: ReparseResult) -> str:
    by_status: Counter[str] = Counter()
    for s in result.summaries:
        by_status.update(s.pages_by_status)
    lines = [
        f"Parser version: {result.parser_version}",
        f"Pages from other parser versions: {result.stale} "
        f"(re-parsed {result.reparsed}, bytes unavailable {len(result.unavailable)})",
        "Re-parsed pages by status: " + ", ".join(f"{s} {by_status.get(s, 0)}" for s in run.STATUSES),
        f"Trials rewritten: {sum(s.trials_loaded for s in result.summaries)}",
    ]
    lines += [f"  kept old parse: {q.url}: {q.reason}" for q in result.unavailable[:50]]
    if len(result.unavailable) > 50:
        lines.append(f"  ... and {len(result.unavailable) - 50} more")
    if result.summaries:
        totals = result.summaries[-1].table_rows
        lines.append("Rows per table after the run: " + ", ".join(f"{t} {n}" for t, n in totals.items()))
    return "\n".join(lines)
