"""Asset checks on the warehouse tables; the checks themselves live in pipeline.db.checks.

Each check covers every table it applies to and reports failures per table in its metadata
(visible on the warehouse_tables asset in the UI).  The integrity checks are blocking: a
failure stops anything downstream of the warehouse in the same run.  The load itself runs
the same checks inside its transaction and refuses to commit a batch that breaks them
(pipeline.db.load), so a failure here means the file was changed outside the pipeline.
"""


from collections.abc import Mapping

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.db import checks, profiles
from pipeline.defs.assets import WAREHOUSE_POOL, warehouse_connection


def _per_table(by_table: Mapping[str, int]) -> str:
    """Every table the check covered (not cut to a preview: the list is the point)."""
    return "| table | failures |\n|---|---|\n" + "".join(
        f"| {table} | {n} |\n" for table, n in sorted(by_table.items())
    )


def _warehouse_check(
    check: checks.Check, description: str, *, blocking: bool
) -> dg.AssetChecksDefinition:
    severity = dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN

    @dg.asset_check(
        asset="warehouse_tables", name=check.__name__, description=description,
        blocking=blocking, pool=WAREHOUSE_POOL,
    )
    def _check(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        with warehouse_connection(warehouse) as conn:
            outcome = check(conn)
        return dg.AssetCheckResult(
            passed=outcome.passed,
            severity=severity,
            description=outcome.summary,
            metadata={
                "failures": outcome.failures,
                "tables_checked": len(outcome.by_table),
                "by_table": dg.MetadataValue.md(_per_table(outcome.by_table)),
                "examples": dg.MetadataValue.md(
                    "\n".join(f"- `{e}`" for e in outcome.examples) or "none"
                ),
            },
        )

    return _check


unique_keys = _warehouse_check(
    checks.unique_keys,
    "Every table's key is never NULL and never repeated; no NCT ID on two trials.",
    blocking=True,
)
foreign_keys = _warehouse_check(
    checks.foreign_keys,
    "Every reference resolves: child, page and history rows to trials; records, best pages "
    "and history rows to pages; arm interventions to arms; sub-criteria to their parent.",
    blocking=True,
)
valid_enumerations = _warehouse_check(
    checks.valid_enumerations,
    "Enumerated columns hold only API v2 codes (pipeline.vocab.CODES); history only tracked fields.",
    blocking=True,
)
trials_have_pages = _warehouse_check(
    checks.trials_have_pages,
    "No trial without a page (page_count matches); no parsed page without a trial.",
    blocking=True,
)
history_matches_trials = _warehouse_check(
    checks.history_matches_trials,
    "The latest history value of each tracked field equals the trial's current value.",
    blocking=False,
)
runs_recorded = _warehouse_check(
    checks.runs_recorded,
    "The run log (runs, run_pages, run_changes) is consistent: outcomes, times, counts, references.",
    blocking=False,
)


@dg.asset_check(
    asset="warehouse_tables", name="profiles_current", blocking=False, pool=WAREHOUSE_POOL,
    description="Eligibility and cell-therapy profiles are current for every trial (inputs and "
    "extractor versions match profile_state), constraints and flags point at existing criteria, "
    "and only the extractors' vocabularies occur (pipeline.db.profiles.check_profiles).  Not "
    "blocking: a stale profile is recomputed by the next load.",
)
def profiles_current(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    with warehouse_connection(warehouse) as conn:
        outcome = profiles.check_profiles(conn)
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=outcome.summary,
        metadata={"examples": dg.MetadataValue.md("\n".join(f"- `{e}`" for e in outcome.examples) or "none")},
    )


pages_have_links = _warehouse_check(
    checks.pages_have_links,
    "Every linked page has a record_links row and every trial field_sources; the link index has no repeated key.",
    blocking=False,
)
