"""Crawl state in DuckDB: the `crawls` and `fetches` tables (migration 0002_fetches.sql).

Nothing about a crawl is kept anywhere else, so a crawl killed at any moment
restarts from what was committed: finished URLs of the interrupted crawl are
skipped, the rest are fetched with the validators of their last good fetch.
Rows are written in batches (one Arrow insert + one transaction each).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.faults import checkpoint, rollback_quietly

MIGRATION_FILE = Path(__file__).resolve().parent.parent / "db" / "migrations" / "0002_fetches.sql"
SUCCESS_OUTCOMES = ("fetched", "unchanged")
DONE_OUTCOMES = ("fetched", "unchanged", "gone")  # nothing left to do for the URL in this crawl

FETCH_SCHEMA = pa.schema(
    [
        ("crawl_id", pa.string()),
        ("kind", pa.string()),
        ("url", pa.string()),
        ("final_url", pa.string()),
        ("source", pa.string()),
        ("requested_at", pa.timestamp("us")),
        ("http_status", pa.int32()),
        ("etag", pa.string()),
        ("last_modified", pa.string()),
        ("sitemap_lastmod", pa.timestamp("us")),
        ("content_sha256", pa.string()),
        ("bytes", pa.int64()),
        ("elapsed_ms", pa.int32()),
        ("attempts", pa.int32()),
        ("outcome", pa.string()),
        ("error", pa.string()),
    ]
)


class SchemaMissing(Exception):
    pass


def ensure_fetch_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create `crawls`/`fetches` if absent (for tools run before the migration runner)."""
    if not _has_table(conn, "fetches"):
        conn.execute(MIGRATION_FILE.read_text(encoding="utf-8"))


def _has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    # fetchall, not fetchone: DuckDB 2 keeps a half-fetched result open and blocks the connection.
    rows = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()",
        [name],
    ).fetchall()
    return bool(rows and rows[0][0])


def check_schema(conn: duckdb.DuckDBPyConnection) -> None:
    missing = [t for t in ("crawls", "fetches") if not _has_table(conn, t)]
    if missing:
        raise SchemaMissing(
            f"warehouse lacks table(s) {', '.join(missing)}: apply migrations "
            "(pipeline.db.migrate) or pipeline.scrape.state.ensure_fetch_schema first"
        )


@dataclass(frozen=True, slots=True)
class UrlState:
    """What the last crawls learnt about one page URL."""

    url: str
    last_outcome: str
    last_success_at: dt.datetime | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_sha256: str | None = None
    sitemap_lastmod: dt.datetime | None = None

    @property
    def last_ok(self) -> bool:
        return self.last_outcome in SUCCESS_OUTCOMES

    def conditional_headers(self) -> dict[str, str]:
        if not self.last_success_at or not self.content_sha256:
            return {}
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def unchanged_per_sitemap(self, lastmod: dt.datetime | None) -> bool:
        """True when the sitemap says the page has not changed since our last good fetch.

        Requires the URL's latest outcome to be a success (failed/gone URLs are always
        retried).  Same lastmod as at that fetch, or a lastmod no later than the fetch.
        """
        if lastmod is None or not self.last_ok or self.last_success_at is None:
            return False
        if self.sitemap_lastmod is not None and lastmod <= self.sitemap_lastmod:
            return True
        return lastmod <= self.last_success_at


def new_crawl_id(source: str, now: dt.datetime) -> str:
    return f"{source}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def find_unfinished_crawl(conn: duckdb.DuckDBPyConnection, source: str, base_url: str) -> str | None:
    rows = conn.execute(
        "SELECT crawl_id FROM crawls WHERE source = ? AND base_url = ? AND finished_at IS NULL "
        "ORDER BY started_at DESC LIMIT 1",
        [source, base_url],
    ).fetchall()
    return rows[0][0] if rows else None


def start_crawl(conn: duckdb.DuckDBPyConnection, crawl_id: str, source: str, base_url: str, now: dt.datetime) -> None:
    conn.execute(
        "INSERT INTO crawls (crawl_id, source, base_url, started_at, status) VALUES (?, ?, ?, ?, 'running')",
        [crawl_id, source, base_url, now],
    )


def end_crawl(conn: duckdb.DuckDBPyConnection, crawl_id: str, status: str, now: dt.datetime) -> None:
    finished = now if status == "finished" else None
    conn.execute(
        "UPDATE crawls SET status = ?, finished_at = ? WHERE crawl_id = ?",
        [status, finished, crawl_id],
    )


def load_url_states(conn: duckdb.DuckDBPyConnection, source: str, exclude_crawl: str) -> dict[str, UrlState]:
    """Per page URL: latest outcome + validators of the latest success, ignoring `exclude_crawl`.

    Excluding the crawl being resumed makes the plan of a resumed crawl identical to the
    plan the interrupted run computed.
    """
    rows = conn.execute(
        """
        WITH page AS (
            SELECT * FROM fetches WHERE source = ? AND kind = 'page' AND crawl_id <> ?
        ),
        latest AS (
            SELECT url, outcome FROM page
            QUALIFY row_number() OVER (PARTITION BY url ORDER BY requested_at DESC, outcome) = 1
        ),
        good AS (
            SELECT url, requested_at, etag, last_modified, content_sha256, sitemap_lastmod FROM page
            WHERE outcome IN ('fetched', 'unchanged')
            QUALIFY row_number() OVER (PARTITION BY url ORDER BY requested_at DESC) = 1
        )
        SELECT l.url, l.outcome, g.requested_at, g.etag, g.last_modified, g.content_sha256, g.sitemap_lastmod
        FROM latest l LEFT JOIN good g USING (url)
        """,
        [source, exclude_crawl],
    ).fetchall()
    return {r[0]: UrlState(*r) for r in rows}


def done_urls(conn: duckdb.DuckDBPyConnection, crawl_id: str) -> set[str]:
    rows = conn.execute(
        "SELECT DISTINCT url FROM fetches "
        "WHERE crawl_id = ? AND kind = 'page' AND outcome IN ('fetched', 'unchanged', 'gone')",
        [crawl_id],
    ).fetchall()
    return {r[0] for r in rows}


def new_versions(conn: duckdb.DuckDBPyConnection, crawl_id: str) -> list[tuple[Any, ...]]:
    """(url, final_url, sha, requested_at, bytes) of page versions first stored by this crawl."""
    return conn.execute(
        "SELECT url, final_url, content_sha256, requested_at, bytes FROM fetches "
        "WHERE crawl_id = ? AND kind = 'page' AND outcome = 'fetched' ORDER BY requested_at, url",
        [crawl_id],
    ).fetchall()


class FetchWriter:
    """Buffers fetch rows and inserts them in batches, one transaction per batch."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, batch_rows: int):
        self._conn = conn
        self._batch_rows = batch_rows
        self._rows: list[dict[str, Any]] = []
        self.written = 0

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._batch_rows:
            self.flush()

    @property
    def pending(self) -> int:
        return len(self._rows)

    def flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=FETCH_SCHEMA)
        conn = self._conn
        conn.register("_fetch_batch", table)
        try:
            conn.execute("BEGIN TRANSACTION")
            try:
                conn.execute("INSERT INTO fetches BY NAME SELECT * FROM _fetch_batch")
                checkpoint("fetches.before_commit")
                conn.execute("COMMIT")
            except BaseException:
                rollback_quietly(conn)
                raise
        finally:
            conn.unregister("_fetch_batch")
        self.written += len(self._rows)
        self._rows = []
        checkpoint("fetches.committed")
