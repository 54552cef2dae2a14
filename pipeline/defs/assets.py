"""The ingest pipeline as assets: raw_pages -> parsed_pages -> trial_records -> warehouse_tables."""


import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from pipeline import run, runlog
from pipeline.db.migrate import migrate
from pipeline.dedup import DEFAULT_CONFIG as DEFAULT_DEDUP
from pipeline.dedup import DedupConfig
from pipeline.db.schema import ALL_TABLES
from pipeline.defs.metadata import markdown_table
from pipeline.ingest import UnreadableFile

DEFAULT_PATHS = ("raw/sample",)

# Every step that opens the warehouse shares this concurrency pool: DuckDB allows one
# writing process per file, so with a pool limit of 1 (dagster.yaml) steps of concurrent
# runs queue for the file instead of failing on its lock.
WAREHOUSE_POOL = "warehouse"

# The warehouse should be at most a day old (the daily schedules); a day and a half late fails.
WAREHOUSE_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=36), warn_window=dt.timedelta(hours=26)
)

# Run tag naming the `trials` command that launched a run (`trials run` sets "run").
COMMAND_TAG = "trials/command"


def run_origin(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(command, trigger) of this Dagster run, for the run log."""
    tags = context.run.tags
    how = next((f"{kind} {tags[tag]}" for kind, tag in (
        ("schedule", "dagster/schedule_name"), ("sensor", "dagster/sensor_name"),
        ("backfill", "dagster/backfill")) if tag in tags), "launched by hand")
    return tags.get(COMMAND_TAG, "dagster"), f"dagster run {context.run.run_id[:8]} ({how})"


@contextmanager
def logged_step(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> Iterator[None]:
    """A step failure marks this Dagster run failed in the warehouse's run log, then goes on up."""
    try:
        yield
    except BaseException as exc:
        try:
            with warehouse_connection(warehouse) as conn:
                runlog.finish_run(conn, context.run.run_id, error=runlog.one_line(exc))
        except Exception as log_exc:  # e.g. the warehouse is locked: the next run marks it abandoned
            context.log.warning(f"could not record the failed run: {runlog.one_line(log_exc)}")
        raise


@contextmanager
def warehouse_connection(warehouse: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to an up-to-date warehouse (the file and its folder are created)."""
    if warehouse.database != ":memory:":
        Path(warehouse.database).parent.mkdir(parents=True, exist_ok=True)
    with warehouse.get_connection() as conn:
        migrate(conn)
        yield conn


class RawPagesConfig(dg.Config):
    paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PATHS),
        description="Saved page files or folders to ingest, relative to the working directory.",
    )


@dg.asset(group_name="ingest", kinds={"python"})
def raw_pages(config: RawPagesConfig) -> dg.Output[run.RawBatch]:
    """Page files read from disk, bytes untouched (the bundled sample by default)."""
    raw = run.read_raw_pages(config.paths)
    unreadable = sum(isinstance(i, UnreadableFile) for i in raw.items)
    preview = [
        (i.url, "unreadable" if isinstance(i, UnreadableFile) else len(i.content))
        for i in raw.items
    ]
    return dg.Output(raw, metadata={
        "dagster/row_count": len(raw.items),
        "paths": ", ".join(config.paths),
        "unreadable": unreadable,
        "preview": dg.MetadataValue.md(markdown_table(("url", "bytes"), preview)),
    })


@dg.asset(group_name="ingest", kinds={"python"}, pool=WAREHOUSE_POOL)
def parsed_pages(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, raw_pages: run.RawBatch
) -> dg.Output[run.ParseBatch]:
    """Pages the warehouse does not have yet, parsed into trial records or rejected with a reason."""
    with logged_step(context, warehouse):
        with warehouse_connection(warehouse) as conn:
            command, trigger = run_origin(context)
            runlog.start_run(conn, command, trigger, run_id=context.run.run_id)
            stored = run.stored_parser_versions(conn, raw_pages.page_ids)
        start = time.perf_counter()
        batch = run.parse_new_pages(raw_pages, stored, run.current_parser_version())
        parse_s = time.perf_counter() - start
        with warehouse_connection(warehouse) as conn:
            runlog.update_run(conn, context.run.run_id, runlog.RunStats(
                pages_discovered=batch.pages_read, parse_s=parse_s,
            ).plus(runlog.page_counts(batch.pages, unchanged=batch.skipped_known)))
    by_status = {s: sum(p.parse_status == s for p in batch.pages) for s in run.STATUSES}
    context.log.info(f"parse: {len(batch.pages)} pages in {parse_s:.2f}s "
                     f"({', '.join(f'{s} {n}' for s, n in by_status.items())}), "
                     f"{batch.skipped_known} already loaded")
    preview = [(p.url, p.source, p.parse_status, p.parse_error) for p in batch.pages]
    return dg.Output(batch, metadata={
        "dagster/row_count": len(batch.pages),
        "skipped_known": batch.skipped_known,
        "reparsed": len(batch.reparsed),
        "parse_s": round(parse_s, 3),
        **{f"status_{s}": n for s, n in by_status.items()},
        "preview": dg.MetadataValue.md(
            markdown_table(("url", "source", "status", "error"), preview)
        ),
    })


class LinkConfig(dg.Config):
    """Deduplication thresholds: match weights (log2 odds) of a scored page pair."""

    accept_threshold: float = Field(
        DEFAULT_DEDUP.accept_threshold, description="Pairs scoring at/above this are merged.")
    reject_threshold: float = Field(
        DEFAULT_DEDUP.reject_threshold,
        description="Pairs scoring below this are dropped; between the two: review candidates.")

    def dedup_config(self) -> DedupConfig:
        return DEFAULT_DEDUP.with_changes(
            accept_threshold=self.accept_threshold, reject_threshold=self.reject_threshold)


@dg.asset(group_name="ingest", kinds={"python"}, pool=WAREHOUSE_POOL)
def trial_records(
    context: dg.AssetExecutionContext, config: LinkConfig, warehouse: DuckDBResource,
    parsed_pages: run.ParseBatch,
) -> dg.Output[run.LinkPlan]:
    """Golden records of every trial the new pages create or change, linked incrementally (exact keys, then fuzzy scores)."""
    with logged_step(context, warehouse):
        start = time.perf_counter()
        with warehouse_connection(warehouse) as conn:
            plan = run.plan_links(conn, parsed_pages, config.dedup_config())
        link_s = time.perf_counter() - start
        with warehouse_connection(warehouse) as conn:
            runlog.update_run(conn, context.run.run_id, runlog.RunStats(link_s=link_s))
    context.log.info(f"link: {len(plan.trials)} trials to write in {link_s:.2f}s")
    preview = [
        (t.trial_id, t.record.nct_id, t.record.brief_title, len(t.page_ids)) for t in plan.trials
    ]
    return dg.Output(plan, metadata={
        "dagster/row_count": len(plan.trials),
        "pages_assigned": len(plan.page_trial_ids),
        "link_s": round(link_s, 3),
        "review_candidates": len(plan.dedup.candidates) if plan.dedup else 0,
        "accept_threshold": config.accept_threshold,
        "reject_threshold": config.reject_threshold,
        "preview": dg.MetadataValue.md(
            markdown_table(("trial_id", "nct_id", "brief_title", "pages"), preview)
        ),
    })


@dg.asset(group_name="ingest", kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          freshness_policy=WAREHOUSE_FRESHNESS)
def warehouse_tables(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, trial_records: run.LinkPlan
) -> dg.Output[run.RunSummary]:
    """The DuckDB warehouse tables (pages, page_records, trials, their child tables, history)."""
    with logged_step(context, warehouse):
        start = time.perf_counter()
        with warehouse_connection(warehouse) as conn:
            result, changes = run.logged_load(conn, trial_records)
            load_s = time.perf_counter() - start
            runlog.finish_run(
                conn, context.run.run_id,
                stats=runlog.RunStats(load_s=load_s).plus(runlog.change_counts(changes)),
                pages=runlog.page_issues(trial_records.batch.pages), changes=changes,
            )
            cursor = conn.execute(
                "SELECT trial_id, nct_id, brief_title, overall_status, page_count "
                "FROM trials ORDER BY trial_id LIMIT 10"
            )
            preview_rows = cursor.fetchall()
            logged = conn.execute(
                "SELECT parse_s, link_s, load_s, trials_added, trials_changed, trials_removed "
                "FROM runs WHERE run_id = ?", [context.run.run_id],
            ).fetchall()
    summary = run.summarize(warehouse.database, trial_records, result)
    parse_s, link_s, _, added, changed, removed = logged[0] if logged else (None,) * 6
    context.log.info(f"load: {summary.trials_loaded} trials written in {load_s:.2f}s "
                     f"(added {added}, changed {changed}, removed {removed})")
    return dg.Output(summary, metadata={
        "dagster/row_count": result.table_rows.get("trials", 0),
        "trials_loaded": summary.trials_loaded,
        "trials_added": added or 0,
        "trials_changed": changed or 0,
        "trials_removed": removed or 0,
        "pages_quarantined": len(summary.quarantined),
        "run_id": context.run.run_id,
        "parse_s": round(parse_s or 0.0, 3),
        "link_s": round(link_s or 0.0, 3),
        "load_s": round(load_s, 3),
        "history_rows_written": summary.rows_written.get("trial_history", 0),
        **{f"rows_{t}": result.table_rows.get(t, 0) for t in ALL_TABLES},
        "trials_preview": dg.MetadataValue.md(markdown_table(
            ("trial_id", "nct_id", "brief_title", "overall_status", "pages"), preview_rows
        )),
        "summary": dg.MetadataValue.md("```\n" + run.format_summary(summary) + "\n```"),
    })
