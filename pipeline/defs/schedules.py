"""The ingest job and its daily schedule (off until switched on in the UI)."""

import dagster as dg

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("warehouse_report").upstream(),
    description="Read, parse, link and load the configured pages into the warehouse, then "
                "rebuild the HTML report.",
)

daily_ingest = dg.ScheduleDefinition(
    name="daily_ingest",
    job=ingest_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Runs ingest_job every day at 06:00 UTC.",
)
