"""Operations in the Dagster definitions: retries, freshness, the instance's concurrency and
retry settings, and the run log written by the assets."""

from __future__ import annotations

import gc
import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb
import yaml
from dagster_duckdb import DuckDBResource

from pipeline.defs import assets, checks
from pipeline.defs.materialize import materialize_all
from pipeline.defs.report import warehouse_report

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_network_assets_retry_and_warehouse_assets_have_a_freshness_policy():
    from pipeline.definitions import defs as load_defs

    defs = load_defs()
    crawl = defs.resolve_assets_def("mirror_pages")
    policy = crawl.op.retry_policy
    assert policy is not None and policy.max_retries == 3 and policy.delay == 60
    assert policy.backoff == dg.Backoff.EXPONENTIAL
    for key in ("warehouse_tables", "warehouse_report", "mirror_pages"):
        spec = next(s for s in defs.resolve_assets_def(key).specs if s.key == dg.AssetKey(key))
        freshness = spec.freshness_policy
        assert isinstance(freshness, dg.FreshnessPolicy), key
        assert freshness.fail_window.to_timedelta() == dt.timedelta(hours=36), key
    # the daily job rebuilds the report after the load
    job_assets = {k.to_user_string() for k in defs.resolve_job_def("ingest_job").asset_layer.executable_asset_keys}
    assert {"warehouse_tables", "warehouse_report"} <= job_assets


def test_instance_config_queues_runs_and_retries_crashed_ones(tmp_path):
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    assert "run_queue" not in config
    assert config["concurrency"] == {"runs": {"max_concurrent_runs": 1}, "pools": {"default_limit": 1}}
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    (tmp_path / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:  # Dagster accepts the file
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        settings = instance.get_concurrency_config()
        assert settings.run_queue_config.max_concurrent_runs == 1
        assert settings.pool_config.default_pool_limit == 1


def test_trials_run_logs_one_run_with_stage_times_and_metadata(
    project_root, sample_page_count, warehouse_path, monkeypatch, clean_env
):
    monkeypatch.chdir(project_root)
    outcome = materialize_all(warehouse_path)
    assert outcome.failed_checks == ()
    conn = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        rows = conn.execute(
            "SELECT command, trigger, outcome, pages_discovered, pages_parsed, trials_added, "
            "parse_s IS NOT NULL, link_s IS NOT NULL, load_s IS NOT NULL, crawl_s FROM runs").fetchall()
        trials = conn.execute("SELECT count(*) FROM trials").fetchall()[0][0]
    finally:
        conn.close()
    assert len(rows) == 1
    command, trigger, *rest = rows[0]
    assert command == "run" and trigger.startswith("dagster run ") and trigger.endswith("(launched by hand)")
    assert rest == ["succeeded", sample_page_count, sample_page_count, trials, True, True, True, None]
    assert (warehouse_path.parent / "report.html").exists()  # the job ends with the report


def test_a_failing_asset_marks_its_run_failed(seeds_dir, warehouse_path, monkeypatch, clean_env):
    from pipeline import run

    def broken(*_args, **_kwargs):
        raise RuntimeError("linker exploded")

    monkeypatch.setattr(run, "plan_links", broken)
    result = dg.materialize(
        [assets.raw_pages, assets.parsed_pages, assets.trial_records, assets.warehouse_tables,
         warehouse_report, checks.runs_recorded],
        resources={"warehouse": DuckDBResource(database=str(warehouse_path))},
        run_config={"ops": {"raw_pages": {"config": {"paths": [str(seeds_dir)]}}}},
        raise_on_error=False,
    )
    assert not result.success
    # The failed step's traceback (kept by Dagster in this process) holds the step's DuckDB
    # connection in a reference cycle; DuckDB refuses a read-only open while it is alive.
    gc.collect()
    conn = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        rows = conn.execute("SELECT run_id, command, outcome, error, pages_parsed, link_s FROM runs").fetchall()
        pages = conn.execute("SELECT count(*) FROM pages").fetchall()[0][0]
    finally:
        conn.close()
    assert rows == [(result.run_id, "dagster", "failed", "RuntimeError: linker exploded", 5, None)]
    assert pages == 0
