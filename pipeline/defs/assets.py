"""The ingest pipeline as assets: raw_pages -> parsed_pages -> trial_records -> warehouse_tables."""


from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from pipeline import run
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
    warehouse: DuckDBResource, raw_pages: run.RawBatch
) -> dg.Output[run.ParseBatch]:
    """Pages the warehouse does not have yet, parsed into trial records or rejected with a reason."""
    with warehouse_connection(warehouse) as conn:
        stored = run.stored_parser_versions(conn, raw_pages.page_ids)
    batch = run.parse_new_pages(raw_pages, stored, run.current_parser_version())
    by_status = {s: sum(p.parse_status == s for p in batch.pages) for s in run.STATUSES}
    preview = [(p.url, p.source, p.parse_status, p.parse_error) for p in batch.pages]
    return dg.Output(batch, metadata={
        "dagster/row_count": len(batch.pages),
        "skipped_known": batch.skipped_known,
        "reparsed": len(batch.reparsed),
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
    config: LinkConfig, warehouse: DuckDBResource, parsed_pages: run.ParseBatch
) -> dg.Output[run.LinkPlan]:
    """Golden records of every trial the new pages create or change, linked incrementally (exact keys, then fuzzy scores)."""
    with warehouse_connection(warehouse) as conn:
        plan = run.plan_links(conn, parsed_pages, config.dedup_config())
    preview = [
        (t.trial_id, t.record.nct_id, t.record.brief_title, len(t.page_ids)) for t in plan.trials
    ]
    return dg.Output(plan, metadata={
        "dagster/row_count": len(plan.trials),
        "pages_assigned": len(plan.page_trial_ids),
        "review_candidates": len(plan.dedup.candidates) if plan.dedup else 0,
        "accept_threshold": config.accept_threshold,
        "reject_threshold": config.reject_threshold,
        "preview": dg.MetadataValue.md(
            markdown_table(("trial_id", "nct_id", "brief_title", "pages"), preview)
        ),
    })


@dg.asset(group_name="ingest", kinds={"duckdb"}, pool=WAREHOUSE_POOL)
def warehouse_tables(
    warehouse: DuckDBResource, trial_records: run.LinkPlan
) -> dg.Output[run.RunSummary]:
    """The DuckDB warehouse tables (pages, page_records, trials, their child tables, history)."""
    with warehouse_connection(warehouse) as conn:
        result = run.load_plan(conn, trial_records)
        cursor = conn.execute(
            "SELECT trial_id, nct_id, brief_title, overall_status, page_count "
            "FROM trials ORDER BY trial_id LIMIT 10"
        )
        preview_rows = cursor.fetchall()
    summary = run.summarize(warehouse.database, trial_records, result)
    return dg.Output(summary, metadata={
        "dagster/row_count": result.table_rows.get("trials", 0),
        "trials_loaded": summary.trials_loaded,
        "pages_quarantined": len(summary.quarantined),
        "history_rows_written": summary.rows_written.get("trial_history", 0),
        **{f"rows_{t}": result.table_rows.get(t, 0) for t in ALL_TABLES},
        "trials_preview": dg.MetadataValue.md(markdown_table(
            ("trial_id", "nct_id", "brief_title", "overall_status", "pages"), preview_rows
        )),
        "summary": dg.MetadataValue.md("```\n" + run.format_summary(summary) + "\n```"),
    })
