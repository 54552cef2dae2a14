"""The warehouse resource and the executor every job uses."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.db.connection import WAREHOUSE_ENV


@dg.definitions
def resources() -> dg.Definitions:
    # Resolved when a run starts, not at import: `.env` in the project root (loaded by
    # `dg dev` / `dagster dev`) sets the default warehouse/trials.duckdb; the shell or the
    # deployment may set TRIALS_WAREHOUSE instead.  `trials run` binds its own path.
    return dg.Definitions(
        resources={"warehouse": DuckDBResource(database=dg.EnvVar(WAREHOUSE_ENV))},
        # DuckDB allows one writing process per file, so steps run one at a time in-process.
        executor=dg.in_process_executor,
    )
