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
from pipeline.db.profiles import PageProfiles
from pipeline.db.schema import ALL_TABLES, invalid_codes
from pipeline.faults import checkpoint
from pipeline.ingest import UnreadableFile, page_id_for, raw_page_from_bytes, read_pages
from pipeline.dedup import DEFAULT_CONFIG, DedupConfig
from pipeline.link import LinkedTrial, LinkPage
from pipeline.relink import DedupRows, plan_relink
from pipeline.models import ParsedPage, RawPage
from pipeline.progress import Bar, Bars
from pipeline.rawstore import CorruptObjectError, RawStore, RawStoreError
from pipeline.scrape import CrawlConfig, CrawlResult, crawl
from pipeline.scrape.progress import ProgressCallback

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
STATUSES = ("ok", "partial", "rejected")
MAX_ENROLLMENT = 2**31 - 1  # trials.enrollment is INTEGER


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
    # What parse workers already made for `pages` (pipeline.parse_batches staged batches): the
    # records' JSON and the pages' profiles; the load's rows are the same without them.
    record_json: Mapping[str, str] | None = None
    profiles: PageProfiles | None = None


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """What the load must write: the new pages plus every trial they (re)shape."""

    batch: ParseBatch
    trials: tuple[LinkedTrial, ...]  # golden records to (re)write
    page_trial_ids: Mapping[str, str]  # page_id -> trial_id, for new and re-assigned pages
    stale_trial_ids: tuple[str, ...]  # previous ids of re-assigned pages
    dedup: DedupRows | None = None  # link index, record links, candidates, provenance


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
        enrollment = parsed.record.enrollment
        if enrollment is not None and not 0 <= enrollment <= MAX_ENROLLMENT:
            # The column is a 32-bit INTEGER: such a number would fail the whole batch's load.
            problem = f"enrollment out of range: {enrollment}"
            return replace(
                parsed, parse_status="partial", record=replace(parsed.record, enrollment=None),
                parse_error="; ".join(filter(None, (parsed.parse_error, problem))),
            )
    return parsed


def parse_new_pages(
    raw: RawBatch,
    stored: Mapping[str, str | None],
    parser_version: str | None = None,
    bar: Bar | None = None,
    *,
    workers: int = 1,
) -> ParseBatch:
    """Parse the items the warehouse does not have, skipping repeats within `items`.

    `stored` maps known page_ids to the parser version that produced them: a page stored
    by another version than `parser_version` is parsed again (and replaced by the load),
    which is how a PARSER_VERSION bump reaches pages already in the warehouse.
    Unreadable files are never re-parsed: there is nothing new to parse.
    `workers` > 1 parses on that many processes (pipeline.parse_batches); same result.
    """
    seen: set[str] = set()
    attempted_at = naive_utc(dt.datetime.now(dt.timezone.utc))
    assert attempted_at is not None
    todo: list[RawPage | UnreadableFile] = []
    reparsed: list[str] = []
    skipped = 0
    bar = bar if bar is not None else Bar(None, None)
    for item in raw.items:
        page_id = item_page_id(item)
        known = page_id in stored
        unreadable = isinstance(item, UnreadableFile)
        if page_id in seen or (known and (unreadable or stored[page_id] == parser_version)):
            skipped += 1
            bar.advance()
            continue
        seen.add(page_id)
        todo.append(item)
        if known and not unreadable:
            reparsed.append(page_id)
    pages = [i for i in todo if not isinstance(i, UnreadableFile)]
    if workers > 1:
        from pipeline.parse_batches import parse_pages

        done = iter(parse_pages(pages, workers=workers))
    else:
        done = map(safe_parse, pages)
    parsed = []
    for item in todo:
        parsed.append(unreadable_page(item, attempted_at) if isinstance(item, UnreadableFile) else next(done))
        bar.advance()
    return ParseBatch(
        pages_read=len(raw.items), skipped_known=skipped, pages=tuple(parsed),
        reparsed=tuple(reparsed),
    )


# --- link -------------------------------------------------------------------------------

def linkable(page: ParsedPage) -> bool:
    return page.record is not None and page.parse_status in ("ok", "partial")


def plan_links(
    conn: duckdb.DuckDBPyConnection,
    batch: ParseBatch,
    config: DedupConfig | None = None,
    *,
    extra_trial_ids: Iterable[str] = (),
    new_decisions: Sequence[dict[str, object]] = (),
) -> LinkPlan:
    """Link the batch's pages against the warehouse incrementally (pipeline.relink): only
    the trials sharing a key or a block with the batch are read back and rewritten."""
    new_pages = [
        LinkPage(p.page_id, p.source, naive_utc(p.fetched_at), p.record, p.url)  # type: ignore[arg-type]
        for p in batch.pages
        if linkable(p)
    ]
    relinked = plan_relink(
        conn, new_pages, replaced_page_ids=batch.reparsed,
        extra_trial_ids=extra_trial_ids, new_decisions=new_decisions,
        config=config or DEFAULT_CONFIG,
    )
    return LinkPlan(
        batch=batch,
        trials=relinked.trials,
        page_trial_ids=relinked.page_trial_ids,
        stale_trial_ids=relinked.stale_trial_ids,
        dedup=relinked.dedup,
    )


# --- load -------------------------------------------------------------------------------

def load_plan(conn: duckdb.DuckDBPyConnection, plan: LinkPlan, *, whole_warehouse: bool = True) -> LoadResult:
    """Load one linked batch; `whole_warehouse=False` between the batches of a rebuild (see
    `pipeline.db.load.load_batch`)."""
    result = load_batch(
        conn,
        new_pages=plan.batch.pages,
        page_trial_ids=plan.page_trial_ids,
        trials=plan.trials,
        stale_trial_ids=plan.stale_trial_ids,
        replaced_page_ids=plan.batch.reparsed,
        parser_version=current_parser_version(),
        dedup=plan.dedup if plan.dedup and not plan.dedup.empty else None,
        record_json=plan.batch.record_json,
        page_profiles=plan.batch.profiles,
        whole_warehouse=whole_warehouse,
    )
    # (eligibility and therapy profiles are refreshed inside the load's transaction)
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
    dedup: DedupConfig | None = None, workers: int = 1,
) -> RunSummary:
    """Parse (on `workers` processes), link and load one batch of pages on an open warehouse
    connection; counts and stage times go to `log`, progress to `bars`."""
    log = log if log is not None else runlog.RunLog()
    bars = bars if bars is not None else Bars.off()
    with log.timed("parse"), bars.stage("parse", len(raw.items)) as bar:
        stored = stored_parser_versions(conn, raw.page_ids)
        batch = parse_new_pages(raw, stored, current_parser_version(), bar, workers=workers)
    checkpoint("ingest.parsed")
    return load_parsed(batch, conn, warehouse_path, log=log, bars=bars, dedup=dedup)


def load_parsed(
    batch: ParseBatch, conn: duckdb.DuckDBPyConnection, warehouse_path: str | os.PathLike[str],
    *, log: runlog.RunLog | None = None, bars: Bars | None = None,
    dedup: DedupConfig | None = None,
) -> RunSummary:
    """Link and load pages parsed here or elsewhere (pipeline.parse_batches workers, staged
    batches); counts and stage times go to `log`, progress to `bars`."""
    log = log if log is not None else runlog.RunLog()
    bars = bars if bars is not None else Bars.off()
    log.pages.extend(runlog.page_issues(batch.pages))
    log.add(runlog.page_counts(batch.pages, unchanged=batch.skipped_known))
    with log.timed("link"):
        plan = plan_links(conn, batch, dedup)
    checkpoint("ingest.linked")
    with log.timed("load"), bars.stage("load", 1, note=f"{len(plan.trials)} trials") as bar:
        result, changes = logged_load(conn, plan)
        bar.advance()
    log.changes.extend(changes)
    log.add(runlog.change_counts(changes))
    checkpoint("ingest.done")
    return summarize(warehouse_path, plan, result)


def ingest(
    paths: Sequence[str | os.PathLike[str]], warehouse_path: str | os.PathLike[str],
    *, wait: float = 0.0, bars: Bars | None = None, trigger: str = "cli",
    dedup: DedupConfig | None = None,
) -> RunSummary:
    """Read, parse, link and load `paths` into the warehouse; pages already there are skipped.
    `wait`: seconds to wait for another process's lock on the warehouse (0 = fail at once).
    `dedup`: linking thresholds (default DedupConfig()).  The run is logged in `runs`
    (command 'ingest')."""
    raw = read_raw_pages(paths)
    conn = open_warehouse(warehouse_path, wait=wait)
    try:
        with runlog.recorded(conn, "ingest", trigger) as log:
            log.add(runlog.RunStats(pages_discovered=len(raw.items)))
            return ingest_batch(raw, conn, warehouse_path, log=log, bars=bars, dedup=dedup)
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
        except CorruptObjectError as exc:
            moved = store.quarantine(src, sha)  # the next crawl refetches and stores a good copy
            where = f"; moved to {moved}, the next crawl fetches the page again" if moved else ""
            items.append(UnreadableFile(url=url, error=f"raw store: {exc}{where}"))
            continue
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
    dedup: DedupConfig | None = None,
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
        pending = pending_crawled_pages(conn, store, source)
        checkpoint("ingest.pending_read")
        summary = ingest_batch(pending, conn, warehouse_label, log=log, bars=bars,
                               dedup=dedup)
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
        + (f", no longer listed {result.unlisted}" if result.unlisted else "")
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
