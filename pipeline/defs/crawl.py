"""Crawling the mirror sites: one partition per source, loaded into the warehouse as it goes."""

import dataclasses

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from pipeline import run
from pipeline.defs.assets import WAREHOUSE_FRESHNESS, WAREHOUSE_POOL, run_origin, warehouse_connection
from pipeline.defs.metadata import markdown_table
from pipeline.defs.resources import crawl_user_agent
from pipeline.scrape import DEFAULT_USER_AGENT, SITES, CrawlConfig

sources = dg.StaticPartitionsDefinition(sorted(SITES))


class MirrorCrawlConfig(dg.Config):
    base_url: str | None = Field(None, description="Site root; default: the public site of the source.")
    limit: int | None = Field(None, description="Request at most this many pages.")
    raw_dir: str = Field("raw", description="Raw page store: a folder or an fsspec URL.")
    rate: float = Field(1.0, description="Requests per second per host.")
    concurrency: int = Field(2, description="Requests in flight per host.")
    user_agent: str | None = Field(
        None, description="User-Agent sent to the sites; default: $TRIALS_USER_AGENT, else "
        f"{DEFAULT_USER_AGENT!r}.")


# The sites are someone else's servers: a step that failed (network down, site overloaded
# beyond the crawler's own retries) is tried again after a pause.  A retried crawl resumes
# its crawl_id, so nothing already fetched is fetched twice.
NETWORK_RETRY = dg.RetryPolicy(max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL,
                               jitter=dg.Jitter.PLUS_MINUS)


@dg.asset(partitions_def=sources, group_name="crawl", kinds={"python", "duckdb"}, pool=WAREHOUSE_POOL,
          retry_policy=NETWORK_RETRY, freshness_policy=WAREHOUSE_FRESHNESS)
def mirror_pages(
    context: dg.AssetExecutionContext, config: MirrorCrawlConfig, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """Trial pages of one mirror site, fetched politely, stored raw and loaded into the warehouse."""
    source = context.partition_key
    crawl_config = dataclasses.replace(
        CrawlConfig(), rate=config.rate, concurrency=config.concurrency,
        user_agent=crawl_user_agent(config.user_agent),
    )

    def log_progress(event) -> None:
        if event.kind == "failed":
            context.log.warning(f"{source}: failed {event.url}")
        elif event.kind in ("planned", "done") or (event.completed and event.completed % 100 == 0):
            context.log.info(
                f"{source}: {event.kind} discovered={event.discovered} planned={event.planned} "
                f"done={event.completed} fetched={event.fetched} unchanged={event.unchanged} "
                f"failed={event.failed} elapsed={event.elapsed_s:.0f}s"
            )

    with warehouse_connection(warehouse) as conn:
        outcome = run.crawl_into(
            conn, source, config.raw_dir, warehouse_label=warehouse.database, config=crawl_config,
            base_url=config.base_url, limit=config.limit, progress=log_progress,
            trigger=run_origin(context)[1],
        )
        stages = conn.execute(
            "SELECT crawl_s, parse_s, link_s, load_s, trials_added, trials_changed, trials_removed "
            "FROM runs WHERE run_id = ?", [outcome.run_id],
        ).fetchall()
    crawl, summary = outcome.crawl, outcome.summary
    crawl_s, parse_s, link_s, load_s, added, changed, removed = stages[0] if stages else (None,) * 7
    context.log.info(run.format_crawl(crawl))
    context.log.info(f"stages: crawl {crawl_s or 0:.1f}s, parse {parse_s or 0:.1f}s, "
                     f"link {link_s or 0:.1f}s, load {load_s or 0:.1f}s")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": crawl.fetched,
        "crawl_id": crawl.crawl_id,
        "status": crawl.status,
        "discovered": crawl.discovered,
        "fetched": crawl.fetched,
        "unchanged": crawl.unchanged + crawl.skipped_unchanged,
        "gone": crawl.gone,
        "failed": crawl.failed,
        "elapsed_s": round(crawl.elapsed_s, 1),
        "trials_loaded": summary.trials_loaded,
        "trials_added": added or 0,
        "trials_changed": changed or 0,
        "trials_removed": removed or 0,
        "pages_quarantined": len(summary.quarantined),
        "run_id": outcome.run_id,
        **{f"{stage}_s": round(value or 0.0, 3) for stage, value in (
            ("crawl", crawl_s), ("parse", parse_s), ("link", link_s), ("load", load_s))},
        "failures": dg.MetadataValue.md(markdown_table(("url", "error"), crawl.failures[:20])),
    })


crawl_job = dg.define_asset_job(
    "crawl_job", selection=[mirror_pages], partitions_def=sources,
    description="Crawl one mirror site and load what changed.",
)


@dg.schedule(job=crawl_job, cron_schedule="0 3 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def daily_crawl(context: dg.ScheduleEvaluationContext):
    """Crawls every mirror site once a day at 03:00 UTC, one run per site."""
    for source in sources.get_partition_keys():
        yield dg.RunRequest(run_key=f"{source}-{context.scheduled_execution_time:%Y-%m-%d}",
                            partition_key=source)
