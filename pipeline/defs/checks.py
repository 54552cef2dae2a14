"""Asset checks on the warehouse tables; the checks themselves live in pipeline.db.checks."""


from collections.abc import Callable

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pipeline.db import checks
from pipeline.defs.assets import warehouse_connection


def _warehouse_check(
    check: Callable[[duckdb.DuckDBPyConnection], checks.CheckOutcome], description: str
) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset="warehouse_tables", name=check.__name__, description=description)
    def _check(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        with warehouse_connection(warehouse) as conn:
            outcome = check(conn)
        return dg.AssetCheckResult(
            passed=outcome.passed,
            description=outcome.summary,
            metadata={
                "failures": outcome.failures,
                "examples": dg.MetadataValue.md(
                    "\n".join(f"- `{e}`" for e in outcome.examples) or "none"
                ),
            },
        )

    return _check


unique_trial_ids = _warehouse_check(
    checks.unique_trial_ids, "trials.trial_id is never NULL and never repeated."
)
unique_nct_ids = _warehouse_check(
    checks.unique_nct_ids, "No NCT ID belongs to more than one trial."
)
no_orphan_rows = _warehouse_check(
    checks.no_orphan_rows,
    "Child rows and linked pages point at existing trials; silver records at existing pages.",
)
valid_enumerations = _warehouse_check(
    checks.valid_enumerations, "Enumerated columns hold only API v2 codes (pipeline.vocab.CODES)."
)
