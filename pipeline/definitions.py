"""Dagster entry point (`dg dev`, `dg check defs`): everything under pipeline/defs/."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


def rebuild_job() -> dg.JobDefinition:
    """`rebuild_job` with its resources bound, for `dg.reconstructable(rebuild_job)` (a job
    launched outside `dg dev`, e.g. `execute_job` with the multiprocess executor)."""
    return defs().resolve_job_def("rebuild_job")
