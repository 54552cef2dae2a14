"""The HTML report as an asset: charts of the warehouse, rebuilt after every load."""

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from pipeline import report
from pipeline.defs.assets import WAREHOUSE_FRESHNESS, WAREHOUSE_POOL, warehouse_connection


class ReportConfig(dg.Config):
    out: str | None = Field(
        None, description="Where to write the HTML file; default: report.html beside the warehouse.",
    )


@dg.asset(group_name="ingest", kinds={"html", "plotly"}, pool=WAREHOUSE_POOL,
          deps=["warehouse_tables"], freshness_policy=WAREHOUSE_FRESHNESS)
def warehouse_report(
    context: dg.AssetExecutionContext, config: ReportConfig, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """A self-contained HTML report with charts of the warehouse (status, phase, antigen, sponsor, starts, changes)."""
    out = config.out or report.default_report_path(warehouse.database)
    with warehouse_connection(warehouse) as conn:
        data = report.read_report_data(conn)
    result = report.save_report(data, out)
    context.log.info(f"report: {result.path} ({result.bytes // 1024} KiB, {len(result.charts)} charts)")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(result.path.resolve())),
        "bytes": result.bytes,
        "charts": len(result.charts),
        "trials": result.trials,
        "preview": dg.MetadataValue.md(result.markdown),
    })
