"""The ingest pipeline as plain functions: read pages -> parse -> link -> load.

`ingest()` runs every stage against one warehouse file; the Dagster assets in
`pipeline/defs/` call the same stage functions one by one.  Nothing here raises for bad
pages: unreadable files, parser failures and values the warehouse would reject all become
rejected pages with a reason (quarantined), and the load is one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from pipeline import parse, runlog
from pipeline.db.connection import open_warehouse
from pipeline.db.load import LoadResult, load_batch, naive_utc
from pipeline.db.profiles import refresh_profiles
from pipeline.db.schema import ALL_TABLES, invalid_codes
from pipeline.ingest import UnreadableFile, page_id_for, raw_page_from_bytes, read_pages
from pipeline.link import LinkedTrial, LinkPage, link_pages
from pipeline.models import ParsedPage, RawPage
from pipeline.progress import Bar, Bars
from pipeline.rawstore import RawStore, RawStoreError
from pipeline.scrape import CrawlConfig, CrawlResult, crawl
from pipeline.scrape.progress import ProgressCallback
from pipeline.serialize import record_from_json

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
STATUSES = ("ok", "partial", "rejected")


class InputError(Exception):
    """A path given to ingest does not exist; str() is one line."""


@dataclass(frozen=True, slots=True)
class Quarantined:
    url: str
    reason: str


@dataclass(frozen=True, slots=True)
class RawBatch:
    """Everything read from the input paths, in a stable order."""

    paths: tuple[str, ...]
    items: tuple[RawPage | UnreadableFile, ...]

    @property
    def page_ids(self) -> tuple[str, ...]:
        return tuple(item_page_id(i) for i in self.items)


@dataclass(frozen=True, slots=True)
class ParseBatch:
    """The pages of one run that the warehouse did not have yet (or had from an older
    parser version), parsed."""

    pages_read: int
    skipped_known: int  # already in the warehouse, or repeated within this run
    pages: tuple[ParsedPage, ...]
    reparsed: tuple[str, ...] = ()  # page_ids among `pages` stored before by an older parser


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """What the load must write: the new pages plus every trial they (re)shape."""

    batch: ParseBatch
    trials: tuple[LinkedTrial, ...]  # golden records to (re)write
    page_trial_ids: Mapping[str, str]  # page_id -> trial_id, for new and re-assigned pages
    stale_trial_ids: tuple[str, ...]  # previous ids of re-assigned pages


@dataclass(frozen=True, slots=True)
class RunSummary:
    warehouse: str
    pages_read: int
    pages_new: int  # parsed this run (includes re-parsed)
    pages_reparsed: int  # stored before by an older parser version, replaced
    pages_skipped_known: int
    pages_by_status: Mapping[str, int]  # pages parsed this run
    quarantined: tuple[Quarantined, ...]  # pages rejected this run and why
    trials_loaded: int  # golden trials (re)written by this run
    trials_removed: int
    rows_written: Mapping[str, int]
    table_rows: Mapping[str, int]  # rows per table after the run


# --- read -------------------------------------------------------------------------------

def check_paths(paths: Sequence[str | os.PathLike[str]]) -> None:
    if not paths:
        raise InputError("no input paths given")
    for path in paths:
        if not Path(path).exists():
            raise InputError(f"no such file or directory: {path}")


def read_raw_pages(paths: Sequence[str | os.PathLike[str]]) -> RawBatch:
    """Every page file under `paths`, in a stable order; missing paths are an InputError."""
    check_paths(paths)
    return RawBatch(tuple(map(str, paths)), tuple(read_pages(paths)))


def item_page_id(item: RawPage | UnreadableFile) -> str:
    if isinstance(item, UnreadableFile):
        return page_id_for(item.url, EMPTY_SHA256)
    return page_id_for(item.url, item.content_sha256)


# --- parse ------------------------------------------------------------------------------

def stored_parser_versions(
    conn: duckdb.DuckDBPyConnection, page_ids: Iterable[str]
) -> dict[str, str | None]:
    """page_id -> parser_version of those `page_ids` the warehouse already has."""
    ids = sorted(set(page_ids))
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT page_id, parser_version FROM pages "
        "WHERE page_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    ).fetchall()
    return {page_id: version for page_id, version in rows}


def current_parser_version() -> str | None:
    return getattr(parse, "PARSER_VERSION", None)


def unreadable_page(item: UnreadableFile, attempted_at: dt.datetime) -> ParsedPage:
    """An unreadable file as a rejected page, so the warehouse keeps a row and the reason."""
    return ParsedPage(
        page_id=page_id_for(item.url, EMPTY_SHA256),
        url=item.url,
        source="unknown",
        content_sha256=EMPTY_SHA256,
        fetched_at=attempted_at,
        parse_status="rejected",
        parse_error=item.error,
    )


def safe_parse(raw: RawPage) -> ParsedPage:
    """parse_page, plus the guarantees the load relies on: it never raises and every
    enumerated value is a valid code (else the page is rejected, naming the values)."""
    try:
        parsed = parse.parse_page(raw)
    except Exception as exc:  # the parser's contract says never; a bug must not stop the run
        return ParsedPage(
            page_id=page_id_for(raw.url, raw.content_sha256),
            url=raw.url,
            source=raw.source_hint or "unknown",
            content_sha256=raw.content_sha256,
            fetched_at=raw.fetched_at,
            parse_status="rejected",
            parse_error=f"parser crashed: {type(exc).__name__}: {exc}",
        )
    if parsed.record is not None and parsed.parse_status != "rejected":
        bad = invalid_codes(parsed.record)
        if bad:
            return replace(
                parsed, parse_status="rejected", record=None,
                parse_error="invalid codes: " + ", ".join(bad),
            )
    return parsed


def parse_new_pages(
    raw: RawBatch,
    stored: Mapping[str, str | None],
    parser_version: str | None = None,
    bar: Bar | None = None,
) -> ParseBatch:
    """Parse the items the warehouse does not have, skipping repeats within `items`.

    `stored` maps known page_ids to the parser version that produced them: a page stored
    by another version than `parser_version` is parsed again (and replaced by the load),
    which is how a PARSER_VERSION bump reaches pages already in the warehouse.
    Unreadable files are never re-parsed: there is nothing new to parse.
    """
    seen: set[str] = set()
    attempted_at = naive_utc(dt.datetime.now(dt.timezone.utc))
    assert attempted_at is not None
    parsed: list[ParsedPage] = []
    reparsed: list[str] = []
    skipped = 0
    for item in raw.items:
        if bar is not None:
            bar.advance()
        page_id = item_page_id(item)
        known = page_id in stored
        unreadable = isinstance(item, UnreadableFile)
        if page_id in seen or (known and (unreadable or stored[page_id] == parser_version)):
            skipped += 1
            continue
        seen.add(page_id)
        if isinstance(item, UnreadableFile):
            parsed.append(unreadable_page(item, attempted_at))
        else:
            parsed.append(safe_parse(item))
            if known:
                reparsed.append(page_id)
    return ParseBatch(
        pages_read=len(raw.items), skipped_known=skipped, pages=tuple(parsed),
        reparsed=tuple(reparsed),
    )


# --- link -------------------------------------------------------------------------------

def linkable(page: ParsedPage) -> bool:
    return page.record is not None and page.parse_status in ("ok", "partial")


@dataclass(frozen=True, slots=True)
class StoredPages:
    """What linking needs from the warehouse: the silver records of every page not being
    re-parsed, and the current trial_id of every page (re-parsed ones included)."""

    pages: tuple[LinkPage, ...]
    trial_ids: Mapping[str, str | None]


def stored_pages(conn: duckdb.DuckDBPyConnection, batch: ParseBatch) -> StoredPages:
    replaced = set(batch.reparsed)
    rows = conn.execute(
        "SELECT p.page_id, p.source, p.fetched_at, p.trial_id, r.record "
        "FROM pages p LEFT JOIN page_records r USING (page_id) "
        "WHERE p.trial_id IS NOT NULL OR r.page_id IS NOT NULL ORDER BY p.page_id"
    ).fetchall()
    pages = tuple(
        LinkPage(page_id, source, fetched_at, record_from_json(record))
        for page_id, source, fetched_at, _, record in rows
        if record is not None and page_id not in replaced
    )
    return StoredPages(pages, {page_id: trial_id for page_id, _, _, trial_id, _ in rows})


def plan_links(stored: StoredPages, batch: ParseBatch) -> LinkPlan:
    """Link the new pages together with every stored page; keep only what changes.

    A trial must be rewritten when it gains a new page or when one of its pages moved in
    or out (a new page can bridge groups, a re-parsed page can leave its trial).
    """
    new_pages = [
        LinkPage(p.page_id, p.source, naive_utc(p.fetched_at), p.record)  # type: ignore[arg-type]
        for p in batch.pages
        if linkable(p)
    ]
    trials = link_pages([*stored.pages, *new_pages])
    assigned = {pid: t.trial_id for t in trials for pid in t.page_ids}
    previous = stored.trial_ids
    moved = {pid for pid, old in previous.items() if assigned.get(pid) != old}
    changed_pages = {lp.page_id for lp in new_pages} | moved
    old_ids = {previous[pid] for pid in moved if previous[pid]}
    touched = {assigned[pid] for pid in changed_pages if pid in assigned} | old_ids
    return LinkPlan(
        batch=batch,
        trials=tuple(t for t in trials if t.trial_id in touched),
        page_trial_ids={pid: assigned[pid] for pid in sorted(changed_pages) if pid in assigned},
        stale_trial_ids=tuple(sorted(old_ids)),
    )


# --- load -------------------------------------------------------------------------------

def load_plan(conn: duckdb.DuckDBPyConnection, plan: LinkPlan) -> LoadResult:
    result = load_batch(
        conn,
        new_pages=plan.batch.pages,
        page_trial_ids=plan.page_trial_ids,
        trials=plan.trials,
        stale_trial_ids=plan.stale_trial_ids,
        replaced_page_ids=plan.batch.reparsed,
        parser_version=current_parser_version(),
    )
    # Eligibility and therapy profiles derive from the golden rows just written.  The refresh
    # finds the trials whose inputs changed by itself, so it also completes a run that died
    # between the two steps, and backfills a warehouse upgraded to the profile tables.
    refresh_profiles(conn)
    return result


def summarize(warehouse: str | os.PathLike[str], plan: LinkPlan, result: LoadResult) -> RunSummary:
    pages = plan.batch.pages
    counts = Counter(p.parse_status for p in pages)
    return RunSummary(
        warehouse=str(warehouse),
        pages_read=plan.batch.pages_read,
        pages_new=len(pages),
        pages_reparsed=len(plan.batch.reparsed),
        pages_skipped_known=plan.batch.skipped_known,
        pages_by_status={s: counts.get(s, 0) for s in STATUSES},
        quarantined=tuple(
            Quarantined(p.url, p.parse_error or "rejected")
            for p in pages
            if p.parse_status == "rejected"
        ),
        trials_loaded=result.trials_loaded,
        trials_removed=result.trials_removed,
        rows_written=dict(result.rows_written),
        table_rows=dict(result.table_rows),
    )


def touched_trial_ids(plan: LinkPlan) -> tuple[str, ...]:
    """Every trial id the load of `plan` may write or delete."""
    return tuple(sorted({t.trial_id for t in plan.trials} | set(plan.stale_trial_ids)))


def logged_load(conn: duckdb.DuckDBPyConnection, plan: LinkPlan) -> tuple[LoadResult, tuple[runlog.TrialChange, ...]]:
    """load_plan, plus which trials it added, changed and removed (for the run log)."""
    touched = touched_trial_ids(plan)
    before = runlog.trial_states(conn, touched)  # only trials that exist already
    result = load_plan(conn, plan)
    after = runlog.trial_states(conn, before)  # changed or removed: fingerprint again
    added = runlog.nct_ids(conn, (t for t in touched if t not in before))  # new: just their ids
    return result, runlog.diff_states(before, after, added)


def ingest_batch(
    raw: RawBatch, conn: duckdb.DuckDBPyConnection, warehouse_path: str | os.PathLike[str],
    *, log: runlog.RunLog | None = None, bars: Bars | None = None,
) -> RunSummary:
    """Parse, link and load one batch of pages on an open warehouse connection; counts and
    stage times go to `log`, progress to `bars`."""
    log = log if log is not None else runlog.RunLog()
    bars = bars if bars is not None else Bars.off()
    with log.timed("parse"), bars.stage("parse", len(raw.items)) as bar:
        stored = stored_parser_versions(conn, raw.page_ids)
        batch = parse_new_pages(raw, stored, current_parser_version(), bar)
    log.pages.extend(runlog.page_issues(batch.pages))
    log.add(runlog.page_counts(batch.pages, unchanged=batch.skipped_known))
    with log.timed("link"):
        plan = plan_links(stored_pages(conn, batch), batch)
    with log.timed("load"), bars.stage("load", 1, note=f"{len(plan.trials)} trials") as bar:
        result, changes = logged_load(conn, plan)
        bar.advance()
    log.changes.extend(changes)
    log.add(runlog.change_counts(changes))
    return summarize(warehouse_path, plan, result)


def ingest(
    paths: Sequence[str | os.PathLike[str]], warehouse_path: str | os.PathLike[str],
    *, wait: float = 0.0, bars: Bars | None = None, trigger: str = "cli",
) -> RunSummary:
    """Read, parse, link and load `paths` into the warehouse; pages already there are skipped.
    `wait`: seconds to wait for another process's lock on the warehouse (0 = fail at once).
    The run is logged in `runs` (command 'ingest')."""
    raw = read_raw_pages(paths)
    conn = open_warehouse(warehouse_path, wait=wait)
    try:
        with runlog.recorded(conn, "ingest", trigger) as log:
            log.add(runlog.RunStats(pages_discovered=len(raw.items)))
            return ingest_batch(raw, conn, warehouse_path, log=log, bars=bars)
    finally:
        conn.close()


# --- crawl ------------------------------------------------------------------------------

def pending_crawled_pages(
    conn: duckdb.DuckDBPyConnection, store: RawStore, source: str | None = None
) -> RawBatch:
    """Page versions the crawler stored that the warehouse has not loaded yet.

    Reading them from `fetches` rather than from one crawl's result makes the load
    self-healing: a run killed between fetching and loading leaves its pages here, and
    the next run (of either command) loads them.  A raw object that is missing or fails
    its hash check becomes an unreadable page with the reason, never a silent skip.
    """
    rows = conn.execute(
        "SELECT coalesce(final_url, url) AS page_url, source, content_sha256, min(requested_at) "
        "FROM fetches WHERE kind = 'page' AND outcome = 'fetched' AND content_sha256 IS NOT NULL "
        "AND (CAST(? AS VARCHAR) IS NULL OR source = ?) "
        "GROUP BY ALL ORDER BY page_url, content_sha256",
        [source, source],
    ).fetchall()
    known = {pid for (pid,) in conn.execute("SELECT page_id FROM pages").fetchall()}
    items: list[RawPage | UnreadableFile] = []
    for url, src, sha, fetched_at in rows:
        if page_id_for(url, sha) in known:
            continue
        try:
            content = store.get(src, sha)
        except RawStoreError as exc:
            items.append(UnreadableFile(url=url, error=f"raw store: {exc}"))
            continue
        items.append(raw_page_from_bytes(url, content, fetched_at, src))
    return RawBatch(("fetches",), tuple(items))


@dataclass(frozen=True, slots=True)
class CrawlRun:
    crawl: CrawlResult
    summary: RunSummary
    run_id: str = ""  # its row in `runs`


def crawl_into(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    raw_root: str | os.PathLike[str],
    *,
    warehouse_label: str | os.PathLike[str] = "",
    config: CrawlConfig | None = None,
    base_url: str | None = None,
    limit: int | None = None,
    since: dt.date | None = None,
    urls_file: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    bars: Bars | None = None,
    trigger: str = "cli",
) -> CrawlRun:
    """Crawl one mirror into the raw store, then parse, link and load what changed; the run
    is logged in `runs` (command 'crawl')."""
    store = RawStore(raw_root)
    with runlog.recorded(conn, "crawl", trigger) as log:
        with log.timed("crawl"):
            result = crawl(
                source, raw_root=store, conn=conn, config=config, base_url=base_url,
                limit=limit, since=since, urls_file=urls_file, progress=progress,
            )
        log.add(runlog.RunStats(
            pages_discovered=result.discovered, pages_fetched=result.fetched,
            pages_unchanged=result.unchanged + result.skipped_unchanged,
        ))
        summary = ingest_batch(
            pending_crawled_pages(conn, store, source), conn, warehouse_label, log=log, bars=bars,
        )
    return CrawlRun(result, summary, log.run_id)


def crawl_and_ingest(
    source: str, warehouse_path: str | os.PathLike[str], raw_root: str | os.PathLike[str],
    *, wait: float = 0.0, **options
) -> CrawlRun:
    """`crawl_into` on the warehouse file at `warehouse_path` (created and migrated if needed)."""
    conn = open_warehouse(warehouse_path, wait=wait)
    try:
        return crawl_into(conn, source, raw_root, warehouse_label=warehouse_path, **options)
    finally:
        conn.close()


def format_crawl(result: CrawlResult) -> str:
    return (
        f"Crawl {result.source} ({result.base_url}): {result.status}"
        + (" (resumed)" if result.resumed else "")
        + f" in {result.elapsed_s:.1f}s\n"
        f"  discovered {result.discovered}, requested {result.planned}, fetched {result.fetched}, "
        f"unchanged {result.unchanged + result.skipped_unchanged}, gone {result.gone}, "
        f"failed {result.failed}, disallowed {result.disallowed}, deferred {result.deferred}"
        + "".join(f"\n  failed: {url}: {err}" for url, err in result.failures[:20])
        + "".join(f"\n  discovery: {err}" for err in result.errors[:20])
    )


def format_summary(summary: RunSummary) -> str:
    """The run summary as the CLI prints it."""
    status = ", ".join(f"{s} {summary.pages_by_status.get(s, 0)}" for s in STATUSES)
    lines = [
        f"Warehouse: {summary.warehouse}",
        f"Pages read: {summary.pages_read} "
        f"(new {summary.pages_new - summary.pages_reparsed}, "
        f"re-parsed {summary.pages_reparsed}, already known {summary.pages_skipped_known})",
        f"Parsed pages by status: {status}",
        f"Trials loaded: {summary.trials_loaded}"
        + (f" (removed {summary.trials_removed})" if summary.trials_removed else ""),
        "Rows per table (total, +written this run):",
    ]
    width = max(len(t) for t in ALL_TABLES)
    for table in ALL_TABLES:
        total = summary.table_rows.get(table, 0)
        added = summary.rows_written.get(table, 0)
        lines.append(f"  {table:<{width}}  {total:>7}  +{added}")
    lines.append(f"Pages quarantined: {len(summary.quarantined)}")
    for item in summary.quarantined:
        lines.append(f"  {item.url}: {item.reason}")
    return "\n".join(lines)
