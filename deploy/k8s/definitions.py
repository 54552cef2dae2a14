"""The rebuild assets as a Kubernetes code location: the same asset definitions as
`pipeline/defs/rebuild.py`, with the job's steps run by `k8s_job_executor` (one pod per
step) instead of the local multiprocess executor.

    dagster code-server start -f deploy/k8s/definitions.py      # in the user-code image

Nothing else changes: the parse shards read the raw store through its fsspec URL, write
their Parquet batches to the shared staging volume, and the load step writes DuckDB alone.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource
from dagster_k8s import k8s_job_executor

from pipeline.db.connection import WAREHOUSE_ENV
from pipeline.defs.rebuild import RebuildSource, rebuilt_warehouse, staged_page_batches

rebuild_job = dg.define_asset_job(
    "rebuild_job",
    selection=[staged_page_batches, rebuilt_warehouse],
    executor_def=k8s_job_executor,
    description="Re-parse every raw page on Kubernetes pods and load the warehouse.",
)

defs = dg.Definitions(
    assets=[staged_page_batches, rebuilt_warehouse],
    jobs=[rebuild_job],
    resources={
        "warehouse": DuckDBResource(database=dg.EnvVar(WAREHOUSE_ENV)),
        "source": RebuildSource(),
    },
)
