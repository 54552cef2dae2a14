"""Materialize every asset in-process, as `trials run` does (no definitions in this module)."""

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.run import RunSummary

# Dagster's step logs are for the UI; on a terminal the caller reports the outcome (the
# summary, or the failure's root cause in one line), so the console logger stays silent.
_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class RunFailed(Exception):
    """The run failed; str() is the underlying error in one line."""


@dataclass(frozen=True, slots=True)
class MaterializeOutcome:
    summary: RunSummary
    checks: tuple[tuple[str, bool, str], ...]  # (check name, passed, description)

    @property
    def failed_checks(self) -> tuple[str, ...]:
        return tuple(f"{name}: {desc}" for name, passed, desc in self.checks if not passed)


def load_definitions() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


def _instance() -> dg.DagsterInstance:
    # With DAGSTER_HOME set (the Makefile points it at .dagster_home/), runs are recorded
    # where `dg dev` shows them; otherwise an ephemeral instance leaves nothing behind.
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    try:
        return dg.DagsterInstance.get()
    except Exception as exc:  # a misconfigured DAGSTER_HOME is the user's to fix
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunFailed(f"cannot use the Dagster instance in DAGSTER_HOME={home}: {first}") from exc


def _root_cause(error: object) -> str:
    """The innermost error message of a Dagster SerializableErrorInfo, on one line."""
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    message = (getattr(error, "message", None) or str(error)).strip()
    first = message.splitlines()[0] if message else "unknown error"
    cls = getattr(error, "cls_name", None)
    if cls and first.startswith(f"{cls}: "):
        first = first[len(cls) + 2:]
    elif ": " in first and first.split(": ", 1)[0].replace(".", "").isidentifier():
        first = first.split(": ", 1)[1]  # "pipeline.run.InputError: ..." -> "..."
    return first


def _is_check_failure(event: dg.DagsterEvent) -> bool:
    data = event.step_failure_data
    return data is not None and getattr(data.error, "cls_name", None) == "DagsterAssetCheckFailedError"


def materialize_all(
    warehouse: str | os.PathLike[str], link_config: dict[str, float] | None = None,
) -> MaterializeOutcome:
    """Run every offline asset and asset check (the ingest job) against `warehouse`, default
    config except the linking thresholds in `link_config` (trial_records' LinkConfig fields).

    The crawl assets are left out: they fetch from the public sites, which `trials run`
    (and so `make run`) must never need; `trials crawl` and the crawl schedule run them.
    """
    defs = load_definitions()
    job = defs.resolve_job_def("ingest_job")
    with _instance() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config={**_QUIET, "ops": {"trial_records": {"config": link_config}}}
            if link_config else _QUIET,
            tags={"trials/command": "run"},  # the run log names the command (assets.COMMAND_TAG)
            resources={"warehouse": DuckDBResource(database=str(warehouse))},
            raise_on_error=False,
        )
        failures = [e for e in result.all_events if e.is_step_failure]
        # A failed blocking asset check fails its step (and the run) but the load itself
        # committed: report it with the other check results instead of as a crash.
        crashes = [e for e in failures if not _is_check_failure(e)]
        if not result.success and (crashes or not failures):
            if crashes and crashes[0].step_failure_data is not None:
                raise RunFailed(_root_cause(crashes[0].step_failure_data.error))
            raise RunFailed("the Dagster run failed (see the run's logs)")
        summary = result.output_for_node("warehouse_tables")
        checks = tuple(
            (
                evaluation.check_name,
                evaluation.passed,
                evaluation.description or "",
            )
            for evaluation in result.get_asset_check_evaluations()
        )
    return MaterializeOutcome(summary, tuple(sorted(checks)))
