"""The Dagster rebuild: parse shards as parallel steps, one step loads the warehouse."""

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from pipeline.db.connection import open_warehouse
from pipeline.definitions import rebuild_job
from pipeline.db.schema import ALL_TABLES
from pipeline.defs.rebuild import RebuildSource, rebuilt_warehouse, staged_page_batches
from pipeline.devtools import bench_corpus as bc
from pipeline.rebuild import rebuild

TRIALS = 6


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "raw"
    refs = bc.write_corpus(root, TRIALS, bases=6)
    manifest = tmp_path / "manifest.parquet"
    bc.write_manifest(manifest, refs)
    return root, refs, manifest


def snapshot(path) -> dict[str, list[tuple]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ALL_TABLES}
    finally:
        conn.close()


def source_config(root, manifest, staging, shard_pages: int = 4) -> dict:
    return {"raw_root": str(root), "manifest": str(manifest), "staging": str(staging), "shard_pages": shard_pages}


def expected_warehouse(tmp_path, root, refs):
    path = tmp_path / "expected.duckdb"
    conn = open_warehouse(path)
    rebuild(refs, conn, root)
    conn.close()
    return snapshot(path)


def test_rebuild_assets_materialize_in_process(corpus, tmp_path, clean_env):
    root, refs, manifest = corpus
    warehouse = tmp_path / "w.duckdb"
    result = dg.materialize(
        [staged_page_batches, rebuilt_warehouse],
        resources={"warehouse": DuckDBResource(database=str(warehouse)),
                   "source": RebuildSource(**source_config(root, manifest, tmp_path / "staging"))},
    )
    assert result.success
    shard_steps = [e.step_key for e in result.all_events
                   if e.is_step_success and "parsed_shard" in (e.step_key or "")]
    assert len(shard_steps) == 3  # 12 pages in shards of 4: one step each
    (mat,) = [m for m in result.asset_materializations_for_node("rebuilt_warehouse")]
    assert mat.metadata["pages_loaded"].value == 2 * TRIALS
    assert mat.metadata["dagster/row_count"].value == TRIALS
    assert not list((tmp_path / "staging").glob("*.parquet"))  # consumed
    assert snapshot(warehouse) == expected_warehouse(tmp_path, root, refs)


@pytest.mark.slow
def test_rebuild_job_runs_shards_on_the_multiprocess_executor(corpus, tmp_path, monkeypatch, clean_env):
    root, refs, manifest = corpus
    warehouse = tmp_path / "w.duckdb"
    monkeypatch.setenv("TRIALS_WAREHOUSE", str(warehouse))
    job = rebuild_job()
    assert job.executor_def.name == "multiprocess"
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        result = dg.execute_job(
            dg.reconstructable(rebuild_job), instance=instance,
            run_config={"resources": {"source": {"config": source_config(root, manifest, tmp_path / "st", 6)}}},
        )
        assert result.success
        pids = {e.pid for e in result.all_events if e.is_step_start and "parsed_shard" in e.step_key}
        assert len(pids) == 2  # every shard step ran in a process of its own
    assert snapshot(warehouse) == expected_warehouse(tmp_path, root, refs)
