"""Re-parsing everything from raw bytes, as a partitioned parse plus a single-writer load.

`staged_page_batches` fans the pages out in shards (dynamic outputs): with the multiprocess
executor each shard is a step in its own process (both cores here), with the Kubernetes
executor a pod (deploy/k8s/).  Each step writes its shard as Parquet to the staging area;
`rebuilt_warehouse` then loads the batches in shard order, the only step that writes DuckDB.
The logic is `pipeline.parse_batches` and `pipeline.rebuild`; nothing here parses or loads.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from pipeline import parse_batches, rebuild
from pipeline.defs.assets import WAREHOUSE_POOL, warehouse_connection
from pipeline.defs.metadata import markdown_table
from pipeline.ingest import iter_page_files


class RebuildSource(dg.ConfigurableResource):
    """Where the pages to re-parse are and where the parsed batches go."""

    raw_root: str = Field(default="raw", description="Raw store root: a folder or an fsspec URL (s3://, gs://, memory://).")
    manifest: str | None = Field(default=None, description="Parquet of (url, source, content_sha256, fetched_at) naming raw-store objects; e.g. exported from `fetches`.")
    paths: list[str] = Field(default_factory=list, description="Saved page files or folders (read directly, like `trials ingest`).")
    staging: str = Field(default="warehouse/staging", description="Folder (shared by every worker) for the staged Parquet batches.")
    shard_pages: int = Field(default=parse_batches.DEFAULT_SHARD_PAGES, description="Pages per shard (one step, one Parquet file).")

    def refs(self) -> list[parse_batches.PageRef]:
        refs: list[parse_batches.PageRef] = []
        if self.manifest:
            import pyarrow.parquet as pq

            rows = pq.read_table(self.manifest).to_pylist()
            refs += [parse_batches.PageRef(r["url"], r["source"], r["content_sha256"], r.get("fetched_at"))
                     for r in rows]
        refs += [parse_batches.PageRef(p.resolve().as_uri(), None, None, None)
                 for p in iter_page_files(self.paths)]
        return refs


@dg.op(out=dg.DynamicOut(parse_batches.Shard))
def page_shards(source: RebuildSource) -> Iterator[dg.DynamicOutput[parse_batches.Shard]]:
    """The pages to re-parse, cut into shards in a stable order."""
    for shard in parse_batches.shards(source.refs(), source.shard_pages):
        yield dg.DynamicOutput(shard, mapping_key=f"shard_{shard.index:06d}")


@dg.op
def parsed_shard(source: RebuildSource, shard: parse_batches.Shard) -> parse_batches.StagedBatch:
    """One shard read and parsed, staged as Parquet."""
    return parse_batches.parse_shard(shard, source.raw_root, source.staging)


@dg.op
def staged_manifest(batches: list[parse_batches.StagedBatch]) -> dg.Output[list[parse_batches.StagedBatch]]:
    """The staged batches in shard order."""
    ordered = sorted(batches, key=lambda b: b.index)
    return dg.Output(ordered, metadata={
        "dagster/row_count": sum(b.pages for b in ordered),
        "batches": len(ordered),
        "parse_cpu_s": round(sum(b.cpu_s for b in ordered), 2),
    })


@dg.graph_asset(group_name="rebuild", kinds={"python", "parquet"})
def staged_page_batches() -> list[parse_batches.StagedBatch]:
    """Every raw page parsed in parallel shards and staged as Parquet batches."""
    return staged_manifest(page_shards().map(parsed_shard).collect())


@dg.asset(group_name="rebuild", kinds={"duckdb"}, pool=WAREHOUSE_POOL)
def rebuilt_warehouse(
    warehouse: DuckDBResource, staged_page_batches: list[parse_batches.StagedBatch]
) -> dg.MaterializeResult:
    """The warehouse loaded from the staged batches by its single writer."""
    with warehouse_connection(warehouse) as conn:
        result = rebuild.load_staged(conn, [b.path for b in staged_page_batches])
    for batch in staged_page_batches:
        Path(batch.path).unlink(missing_ok=True)
    times = result.times.as_dict()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": result.trials,
        "pages_loaded": result.pages_loaded,
        "pages_skipped": result.pages_skipped,
        "load_batches": result.load_batches,
        **{f"status_{k}": v for k, v in result.by_status.items()},
        "stage_seconds": dg.MetadataValue.md(markdown_table(
            ("stage", "seconds"), [(k, round(v, 2)) for k, v in times.items()])),
    })


rebuild_job = dg.define_asset_job(
    "rebuild_job",
    selection=[staged_page_batches, rebuilt_warehouse],
    # Parse steps in parallel processes; the load step is alone in its pool anyway.
    executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2}),
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[staged_page_batches, rebuilt_warehouse],
        jobs=[rebuild_job],
        resources={"source": RebuildSource()},
    )
