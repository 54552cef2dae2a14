"""Dagster definitions: they load, the assets materialize into a temporary DuckDB, and the
asset checks pass on good data and fail on a broken table."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from pipeline.db.schema import ALL_TABLES
from pipeline.defs import assets, checks
from pipeline.defs.materialize import RunFailed, materialize_all
from pipeline.run import LinkPlan, ParseBatch, RawBatch, RunSummary

ASSETS = [assets.raw_pages, assets.parsed_pages, assets.trial_records, assets.warehouse_tables]
CHECKS = [checks.unique_keys, checks.foreign_keys, checks.valid_enumerations,
          checks.trials_have_pages, checks.history_matches_trials, checks.runs_recorded,
          checks.profiles_current, checks.pages_have_links]
CHECK_NAMES = ["unique_keys", "foreign_keys", "valid_enumerations", "trials_have_pages",
               "history_matches_trials", "runs_recorded", "profiles_current", "pages_have_links"]
BLOCKING = {"unique_keys", "foreign_keys", "valid_enumerations", "trials_have_pages"}


def materialize(paths, warehouse: Path, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*ASSETS, *CHECKS],
        resources={"warehouse": DuckDBResource(database=str(warehouse))},
        run_config={"ops": {"raw_pages": {"config": {"paths": [str(p) for p in paths]}}}},
        **kwargs,
    )


def check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_definitions_load_with_every_asset_check_job_and_schedule():
    from pipeline.definitions import defs as load_defs

    defs = load_defs()
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {"raw_pages", "parsed_pages", "trial_records", "warehouse_tables", "mirror_pages",
                    "warehouse_report", "staged_page_batches", "rebuilt_warehouse"}
    check_keys = {k.name for c in defs.asset_checks or [] for k in c.check_keys}
    assert check_keys == set(CHECK_NAMES)
    blocking = {spec.name for c in defs.asset_checks or [] for spec in c.check_specs if spec.blocking}
    assert blocking == BLOCKING
    # every step that opens the warehouse queues on one concurrency pool
    for key in ("parsed_pages", "trial_records", "warehouse_tables", "mirror_pages", "warehouse_report"):
        assert defs.resolve_assets_def(key).get_op_def_for_asset_key(dg.AssetKey(key)).pool \
            == "warehouse", key
    schedule = defs.resolve_schedule_def("daily_ingest")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "ingest_job"
    assert defs.resolve_job_def("ingest_job") is not None
    crawl_schedule = defs.resolve_schedule_def("daily_crawl")
    assert crawl_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert crawl_schedule.job_name == "crawl_job"
    assert defs.resolve_assets_def("mirror_pages").partitions_def.get_partition_keys() == [
        "clinconnect", "veeva"]
    resource = defs.resources["warehouse"]
    assert isinstance(resource, DuckDBResource)
    # bound to the environment, resolved only when a run starts
    assert isinstance(resource.database, dg.EnvVar)
    assert resource.database.env_var_name == "TRIALS_WAREHOUSE"


def test_every_asset_has_a_one_line_description():
    for asset in ASSETS:
        (description,) = asset.descriptions_by_key.values()
        assert description and "\n" not in description.strip()


def test_dg_check_defs_passes(project_root):
    dg_bin = Path(sys.executable).parent / "dg"
    if not dg_bin.exists():
        pytest.skip("dg (dagster-dg-cli, dev extra) is not installed")
    done = subprocess.run([str(dg_bin), "check", "defs"], cwd=project_root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_assets_materialize_into_the_warehouse(seeds_dir, warehouse_path, clean_env):
    result = materialize([seeds_dir], warehouse_path)
    assert result.success

    raw = result.output_for_node("raw_pages")
    assert isinstance(raw, RawBatch) and len(raw.items) == 5
    batch = result.output_for_node("parsed_pages")
    assert isinstance(batch, ParseBatch) and len(batch.pages) == 5
    plan = result.output_for_node("trial_records")
    assert isinstance(plan, LinkPlan)
    summary = result.output_for_node("warehouse_tables")
    assert isinstance(summary, RunSummary)
    assert summary.pages_new == 5 and summary.trials_loaded == len(plan.trials)

    conn = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM pages").fetchall() == [(5,)]
        assert conn.execute("SELECT count(*) FROM trials").fetchall() == [(len(plan.trials),)]
    finally:
        conn.close()

    (materialization,) = result.asset_materializations_for_node("warehouse_tables")
    assert materialization.metadata["dagster/row_count"].value == len(plan.trials)
    assert materialization.metadata["rows_pages"].value == 5
    assert "| trial_id |" in materialization.metadata["trials_preview"].value
    (parsed_meta,) = result.asset_materializations_for_node("parsed_pages")
    assert parsed_meta.metadata["dagster/row_count"].value == 5
    assert check_results(result) == dict.fromkeys(CHECK_NAMES, True)
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "unique_keys"]
    # every warehouse table but the link index (checked by pages_have_links)
    assert evaluation.metadata["tables_checked"].value == len(ALL_TABLES) - 2
    assert "| eligibility_constraints | 0 |" in evaluation.metadata["by_table"].value
    assert "| trial_history | 0 |" in evaluation.metadata["by_table"].value


def test_rematerializing_changes_no_row(seeds_dir, warehouse_path, snapshot, clean_env):
    materialize([seeds_dir], warehouse_path)
    before = snapshot(warehouse_path)
    result = materialize([seeds_dir], warehouse_path)
    assert result.output_for_node("parsed_pages").skipped_known == 5
    assert snapshot(warehouse_path) == before


def test_checks_fail_on_a_broken_warehouse(seeds_dir, warehouse_path, clean_env):
    materialize([seeds_dir], warehouse_path)
    conn = duckdb.connect(str(warehouse_path))
    try:
        conn.execute("INSERT INTO conditions VALUES ('Tnot-a-trial', 1, 'Orphan')")
        conn.execute("CREATE TABLE arms_copy AS SELECT * FROM arms")
        conn.execute("DROP TABLE arms")
        conn.execute("ALTER TABLE arms_copy RENAME TO arms")
        conn.execute("INSERT INTO arms (trial_id, position, label, arm_type) "
                     "SELECT trial_id, 99, 'Bad', 'Experimental group' FROM trials LIMIT 1")
    finally:
        conn.close()
    result = dg.materialize(  # only the checks, against the broken file
        [*ASSETS, *CHECKS],
        resources={"warehouse": DuckDBResource(database=str(warehouse_path))},
        selection=dg.AssetSelection.checks(*CHECKS),
        raise_on_error=False,
    )
    # blocking checks fail their step, so nothing downstream of the warehouse would run
    assert not result.success
    assert check_results(result) == {
        "unique_keys": True, "foreign_keys": False, "valid_enumerations": False,
        "trials_have_pages": True, "history_matches_trials": True, "runs_recorded": True,
        "profiles_current": True, "pages_have_links": True,
    }
    evaluation = next(e for e in result.get_asset_check_evaluations()
                      if e.check_name == "foreign_keys")
    assert evaluation.metadata["failures"].value == 1
    assert evaluation.description == "foreign_keys: 1 failing (conditions: Tnot-a-trial)"
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR


def test_materialize_all_runs_the_default_config(project_root, sample_page_count, warehouse_path,
                                                 monkeypatch, clean_env):
    monkeypatch.chdir(project_root)  # the default config reads raw/sample from the CWD
    outcome = materialize_all(warehouse_path)
    assert outcome.summary.pages_read == sample_page_count
    assert outcome.failed_checks == ()
    assert {name for name, _, _ in outcome.checks} == set(CHECK_NAMES)


def test_materialize_all_reports_the_root_cause(tmp_path, warehouse_path, monkeypatch, clean_env):
    monkeypatch.chdir(tmp_path)  # no raw/sample here
    with pytest.raises(RunFailed, match=r"^no such file or directory: raw/sample$"):
        materialize_all(warehouse_path)
