"""`make bench`: parse speed, parallel speed-up, rebuild and incremental times, load rates.

    python -m pipeline.devtools.bench [--scale full|medium|small|tiny] [--workers 2] [--json FILE]

Everything runs on a synthetic corpus generated from the ClinicalTrials.gov records in
`../shared/corpus/ctgov/` (`pipeline.devtools.bench_corpus`: ~50-60 KB pages, both sites,
every markup variant) and ends in ONE table with the machine's core count.  Figures that
compare two things (pipeline vs bare lxml, 1 vs 2 workers, Arrow vs executemany) are
measured side by side in the same run, interleaved, so a busy machine skews both alike;
absolute figures on a shared machine are noisy -- re-run on a quiet one to quote them.

Scales: `full` is the issue's (rebuilds at 10k, 50k, 200k pages; hours on 2 cores while
linking re-reads the warehouse per batch),
`small` (`make bench-quick`) takes ~1-2 minutes on a quiet 2-core machine (several times
that under load), `tiny` is for the test suite.
Each rebuild runs in a subprocess of its own, so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

TARGET_PAGES_PER_S = 300.0
TARGET_SPEEDUP = 1.7
TARGET_REBUILD_S = 15 * 60
TARGET_PEAK_BYTES = 4 * 2**30
TARGET_INCREMENTAL_S = 60.0
TARGET_CONSTRAINT_SHARE = 0.20
FULL_CORPUS_PAGES = 1_100_000


@dataclass(frozen=True, slots=True)
class Scale:
    parse_pages: int  # pages timed for parse speed (both sites, all variants)
    rounds: int  # parse rounds, the best counts
    worker_pages: int  # corpus for the 1 vs 2 workers comparison
    rebuilds: tuple[int, ...]  # pages per full rebuild
    incremental: int  # changed pages on top of the largest rebuild
    load_rows: int  # rows for the Arrow loads (child table: 10x)
    executemany_rows: int
    bases: int  # distinct base pages (rendered once each, both sites)
    shard_pages: int
    load_pages: int


SCALES: dict[str, Scale] = {
    "full": Scale(600, 5, 6000, (10_000, 50_000, 200_000), 1000, 100_000, 2000, 300, 1000, 10_000),
    # medium: the full scale's batch sizes and 1,000-page incremental run on 2k-10k pages
    # (~5 minutes on 2 cores): multi-batch loads, growth, without the 200k-page hour
    "medium": Scale(400, 3, 2000, (2_000, 5_000, 10_000), 1000, 50_000, 1000, 300, 1000, 4_000),
    "small": Scale(200, 3, 800, (500, 1000, 2000), 200, 20_000, 500, 60, 100, 1000),
    "tiny": Scale(24, 1, 48, (20, 40), 10, 500, 50, 12, 10, 40),
}


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    value: str
    target: str = ""
    met: bool | None = None


# --- helpers ----------------------------------------------------------------------------

def _cpu(fn: Callable[[], object]) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def _best_interleaved(fns: Sequence[Callable[[], object]], rounds: int) -> list[float]:
    best = [float("inf")] * len(fns)
    for _ in range(max(1, rounds)):
        for i, fn in enumerate(fns):
            best[i] = min(best[i], _cpu(fn))
    return best


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


# --- 1. parse per core ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ParseFigures:
    pages: int
    mean_kb: float
    lxml_s: float  # per page
    parse_s: float  # parse_page alone
    pipeline_s: float  # parse + staged record (JSON + Parquet)
    constraints_s: float  # profile_criteria on the page's criteria
    staged_s: float  # what a parse worker does: parse + record + profiles (constraints, flags, therapy)


def bench_parse(raws: Sequence, rounds: int) -> ParseFigures:
    from lxml import html as lxml_html

    from pipeline.eligibility import profile_criteria
    from pipeline.parse import parse_page
    from pipeline.parse_batches import staged_table

    parsed = [parse_page(r) for r in raws]  # warm every lazy regex and cache
    criteria = [p.record.criteria for p in parsed if p.record is not None]
    for c in criteria:
        profile_criteria(c)
    epoch = dt.datetime(1970, 1, 1)

    def bare() -> None:
        for r in raws:
            lxml_html.fromstring(r.content)

    def parse_only() -> None:
        for r in raws:
            parse_page(r)

    def pipeline_stage() -> None:
        _, table = staged_table(raws, epoch, profiles=False)
        pq.write_table(table, io.BytesIO(), compression="zstd")

    def constraints() -> None:
        for c in criteria:
            profile_criteria(c)

    def worker_stage() -> None:  # (staged_table: exactly what a worker runs on a shard)
        _, table = staged_table(raws, epoch, profiles=True)
        pq.write_table(table, io.BytesIO(), compression="zstd")

    t = _best_interleaved([bare, parse_only, pipeline_stage, constraints, worker_stage], rounds)
    n = max(1, len(raws))
    return ParseFigures(len(raws), sum(len(r.content) for r in raws) / n / 1024,
                        t[0] / n, t[1] / n, t[2] / n, t[3] / n, t[4] / n)


# --- 2. workers -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WorkerFigures:
    one_s: float  # wall seconds, 1 worker
    many_s: float  # wall seconds, `workers` workers
    one_cpu_s: float  # CPU seconds summed over the workers
    many_cpu_s: float


def bench_workers(refs: Sequence, raw_root: Path, shard_pages: int, workers: int, rounds: int) -> WorkerFigures:
    """Stage `refs` with 1 worker and with `workers` (warm pools, interleaved, best of rounds)."""
    from pipeline.parse_batches import pool, stage

    wall = {1: float("inf"), workers: float("inf")}
    cpu = {1: float("inf"), workers: float("inf")}
    pools = {w: pool(w) for w in wall}
    try:
        for w, ex in pools.items():  # start the processes and import everything
            list(stage(refs[: w * 2], raw_root, Path(tempfile.mkdtemp(prefix="bench-warm-")),
                       workers=w, shard_pages=1, executor=ex))
        for _ in range(max(1, rounds)):
            for w, ex in pools.items():
                out = Path(tempfile.mkdtemp(prefix="bench-stage-"))
                t0 = time.perf_counter()
                used = sum(b.cpu_s for b in stage(refs, raw_root, out, workers=w,
                                                   shard_pages=shard_pages, executor=ex))
                elapsed = time.perf_counter() - t0
                if elapsed < wall[w]:
                    wall[w], cpu[w] = elapsed, used
                shutil.rmtree(out, ignore_errors=True)
    finally:
        for ex in pools.values():
            ex.shutdown()
    return WorkerFigures(wall[1], wall[workers], cpu[1], cpu[workers])


# --- 3. rebuild + incremental (each in its own process) -----------------------------------

def rebuild_one(manifest: Path, pages: int, raw_root: Path, warehouse: Path, workers: int,
                shard_pages: int, load_pages: int, incremental: int) -> dict:
    from pipeline import run
    from pipeline.db.connection import open_warehouse
    from pipeline.devtools.bench_corpus import changed_page, read_manifest
    from pipeline.parse_batches import read_ref
    from pipeline.rawstore import RawStore
    from pipeline.rebuild import rebuild

    refs = read_manifest(manifest)[:pages]
    conn = open_warehouse(warehouse)
    try:
        result = rebuild(refs, conn, raw_root, workers=workers, shard_pages=shard_pages,
                         load_pages=load_pages)
        conn.execute("CHECKPOINT")  # the file size below then includes everything written
        out: dict = {
            "pages": pages, "trials": result.trials, "by_status": result.by_status,
            "times": result.times.as_dict(), "load_batches": result.load_batches,
            "peak_main": result.peak_rss_main, "peak_worker": result.peak_rss_worker,
            "warehouse_bytes": warehouse.stat().st_size,
        }
        if incremental:
            store = RawStore(raw_root)
            changed = [changed_page(read_ref(r, store)) for r in refs[:incremental]]  # type: ignore[arg-type]
            raw = run.RawBatch(("bench",), tuple(changed))
            t0 = time.perf_counter()
            stored = run.stored_parser_versions(conn, raw.page_ids)
            batch = run.parse_new_pages(raw, stored, run.current_parser_version(), workers=1)
            t1 = time.perf_counter()
            plan = run.plan_links(conn, batch)
            t2 = time.perf_counter()
            run.load_plan(conn, plan)
            t3 = time.perf_counter()
            out["incremental"] = {"pages": len(changed), "parse_s": t1 - t0, "link_s": t2 - t1,
                                  "load_s": t3 - t2, "total_s": t3 - t0}
    finally:
        conn.close()
    return out


def _rebuild_subprocess(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pipeline.devtools.bench", "rebuild-one", *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"rebuild subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- 4. loading -------------------------------------------------------------------------

def _trials_like(n: int) -> pa.Table:
    from pipeline.db.schema import ARROW_SCHEMAS

    schema = pa.schema(list(ARROW_SCHEMAS["trials"])[:31])
    cols = {}
    for f in schema:
        if pa.types.is_list(f.type):
            cols[f.name] = pa.array([["PHASE1", "PHASE2"]] * n, type=f.type)
        elif pa.types.is_string(f.type):
            cols[f.name] = pa.array([f"{f.name} value {i} " * 3 for i in range(n)], type=f.type)
        elif pa.types.is_integer(f.type):
            cols[f.name] = pa.array([i % 1000 for i in range(n)], type=f.type)
        elif pa.types.is_floating(f.type):
            cols[f.name] = pa.array([float(i % 90) for i in range(n)], type=f.type)
        elif pa.types.is_boolean(f.type):
            cols[f.name] = pa.array([i % 2 == 0 for i in range(n)], type=f.type)
        else:  # dates
            cols[f.name] = pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i % 2000) for i in range(n)],
                                    type=f.type)
    return pa.table(cols, schema=schema)


def _child(n: int) -> pa.Table:
    return pa.table({
        "trial_id": pa.array([f"T{i // 20:012x}" for i in range(n)]),
        "criterion_type": pa.array(["inclusion" if i % 3 else "exclusion" for i in range(n)]),
        "ordinal": pa.array([i % 20 + 1 for i in range(n)], type=pa.int32()),
        "parent_ordinal": pa.array([None if i % 4 else i % 20 for i in range(n)], type=pa.int32()),
        "text": pa.array([f"Criterion text number {i} with some words in it" for i in range(n)]),
    })


def bench_load(rows: int, executemany_rows: int) -> dict[str, float]:
    """rows/s into a DuckDB file: Arrow vs executemany, for a 31-column and a 5-column table."""
    out: dict[str, float] = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        conn = duckdb.connect(str(folder / "load.duckdb"))
        for name, table in (("wide", _trials_like(rows)), ("child", _child(rows * 10))):
            conn.register("src", table)
            conn.execute(f"CREATE TABLE {name} AS SELECT * FROM src LIMIT 0")
            conn.execute(f"CREATE TABLE {name}_em AS SELECT * FROM src LIMIT 0")
            t0 = time.perf_counter()
            conn.begin()
            conn.execute(f"INSERT INTO {name} SELECT * FROM src")
            conn.commit()
            out[f"{name}_arrow"] = table.num_rows / (time.perf_counter() - t0)
            conn.unregister("src")
            few = table.slice(0, executemany_rows).to_pylist()
            values = [tuple(r.values()) for r in few]
            marks = ", ".join("?" * table.num_columns)
            t0 = time.perf_counter()
            conn.begin()
            conn.executemany(f"INSERT INTO {name}_em VALUES ({marks})", values)
            conn.commit()
            out[f"{name}_executemany"] = len(values) / (time.perf_counter() - t0)
            out[f"{name}_cols"] = table.num_columns
        conn.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


# --- the table --------------------------------------------------------------------------

def run_bench(scale_name: str, workers: int, work: Path, log: Callable[[str], None]) -> list[Row]:
    from pipeline.devtools import bench_corpus as bc

    scale = SCALES[scale_name]
    rows: list[Row] = []

    log(f"generating the corpus ({max(scale.rebuilds)} pages, {scale.bases} base pages)")
    t0 = time.perf_counter()
    raw_root = work / "raw"
    trials = max(max(scale.rebuilds), scale.worker_pages, scale.parse_pages) // 2
    refs = bc.write_corpus(raw_root, trials, bases=scale.bases)
    manifest = work / "manifest.parquet"
    bc.write_manifest(manifest, refs)
    gen_s = time.perf_counter() - t0
    raw_bytes = sum(f.stat().st_size for f in raw_root.rglob("*.html.gz"))
    rows.append(Row("corpus generated (raw store, gzip)",
                    f"{len(refs):,} pages in {gen_s:.0f} s, {raw_bytes / len(refs) / 1024:.1f} KB/page on disk"))

    log("parse speed")
    raws = list(bc.iter_pages(scale.parse_pages // 2, bases=scale.bases))
    pf = bench_parse(raws, scale.rounds)
    per_s = 1 / pf.pipeline_s
    with_constraints = 1 / pf.staged_s
    rows += [
        Row("pages timed (mean size)", f"{pf.pages} ({pf.mean_kb:.0f} KB)"),
        Row("bare lxml.html parse, pages/s per core", f"{1 / pf.lxml_s:,.0f}"),
        Row("parse+extract+staged record, pages/s per core", f"{per_s:,.0f}",
            f">= {TARGET_PAGES_PER_S:.0f}", per_s >= TARGET_PAGES_PER_S),
        Row("  ... + eligibility constraints and therapy profiles (as a worker stages them), pages/s per core",
            f"{with_constraints:,.0f}",
            f">= {TARGET_PAGES_PER_S:.0f}", with_constraints >= TARGET_PAGES_PER_S),
        Row("ratio bare lxml / pipeline", f"{pf.pipeline_s / pf.lxml_s:.1f}x"),
        Row("constraint extraction / parse_page time", f"{pf.constraints_s / pf.parse_s:.0%}",
            f"<= {TARGET_CONSTRAINT_SHARE:.0%} (issue 6)", pf.constraints_s / pf.parse_s <= TARGET_CONSTRAINT_SHARE),
    ]

    log(f"1 vs {workers} workers")
    wf = bench_workers(refs[: scale.worker_pages], raw_root, scale.shard_pages, workers,
                       max(1, scale.rounds - 1))
    n = len(refs[: scale.worker_pages])
    speedup = wf.one_s / wf.many_s
    rows += [
        Row(f"stage {n:,} pages (read+parse+Parquet), 1 worker, pages/s", f"{n / wf.one_s:,.0f}"),
        Row(f"stage {n:,} pages, {workers} workers, pages/s", f"{n / wf.many_s:,.0f}"),
        Row(f"speed-up {workers} vs 1 worker (wall clock)", f"{speedup:.2f}x", f">= {TARGET_SPEEDUP}x",
            speedup >= TARGET_SPEEDUP),
        Row(f"  CPU per page {workers} vs 1 worker (parallel overhead)",
            f"{wf.many_cpu_s / max(wf.one_cpu_s, 1e-9):.2f}x", "~1.0x"),
    ]

    results = []
    for pages in scale.rebuilds:
        log(f"full rebuild of {pages:,} pages")
        last = pages == max(scale.rebuilds)
        wh = work / f"rebuild-{pages}.duckdb"
        r = _rebuild_subprocess([
            "--manifest", str(manifest), "--pages", str(pages), "--raw", str(raw_root),
            "--warehouse", str(wh), "--workers", str(workers), "--shard-pages", str(scale.shard_pages),
            "--load-pages", str(scale.load_pages), "--incremental", str(scale.incremental if last else 0),
        ])
        results.append(r)
        t = r["times"]
        peak = r["peak_main"] + workers * r["peak_worker"]
        full = pages >= 200_000
        rows.append(Row(
            f"full rebuild {pages:,} pages -> {r['trials']:,} trials",
            f"{t['total_s']:,.0f} s ({pages / t['total_s']:,.0f} pages/s)",
            f"< {TARGET_REBUILD_S // 60} min" if full else "", (t["total_s"] < TARGET_REBUILD_S) if full else None))
        rows.append(Row(
            "  stages: parse wait / read staged / link / load (s)",
            f"{t['parse_wait_s']:.1f} / {t['read_staged_s']:.1f} / {t['link_s']:.1f} / {t['load_s']:.1f}"
            f" (workers' parse CPU {t['parse_cpu_s']:.1f})"))
        rows.append(Row(
            "  loader CPU, ms per page (read staged + link + load; waiting excluded)",
            f"{t['loader_cpu_s'] * 1000 / pages:.2f}"))
        rows.append(Row("  peak memory: loader + workers", f"{_gib(peak)} ({_gib(r['peak_main'])} + "
                        f"{workers} x {_gib(r['peak_worker'])})", "< 4 GiB" if full else "",
                        (peak < TARGET_PEAK_BYTES) if full else None))
        if last:
            rows.append(Row("  warehouse file size", f"{r['warehouse_bytes'] / 2**20:,.0f} MiB "
                            f"({r['warehouse_bytes'] / pages / 1024:.1f} KB/page)"))
        else:
            wh.unlink(missing_ok=True)
    big = results[-1]
    per_page = big["times"]["total_s"] / big["pages"]
    if len(results) > 1:
        first = results[0]
        growth = (big["times"]["total_s"] / big["pages"]) / (first["times"]["total_s"] / first["pages"])
        rows.append(Row(f"time per page, {big['pages']:,} vs {first['pages']:,} pages", f"{growth:.2f}x",
                        "1.0x = linear"))
    rows.append(Row(f"extrapolated rebuild of {FULL_CORPUS_PAGES:,} pages (at the largest run's rate)",
                    f"{per_page * FULL_CORPUS_PAGES / 60:,.0f} min"))
    inc = big.get("incremental")
    if inc:
        rows.append(Row(f"incremental {inc['pages']:,} changed pages on {big['pages']:,}-page warehouse",
                        f"{inc['total_s']:.1f} s", f"< {TARGET_INCREMENTAL_S:.0f} s" if big["pages"] >= 200_000 else "",
                        inc["total_s"] < TARGET_INCREMENTAL_S if big["pages"] >= 200_000 else None))
        rows.append(Row("  stages: parse / link / load (s)",
                        f"{inc['parse_s']:.1f} / {inc['link_s']:.1f} / {inc['load_s']:.1f}"))

    log("loading")
    ld = bench_load(scale.load_rows, scale.executemany_rows)
    rows += [
        Row(f"load {ld['wide_cols']}-col trials-like table: Arrow vs executemany, rows/s",
            f"{ld['wide_arrow']:,.0f} vs {ld['wide_executemany']:,.0f} "
            f"({ld['wide_arrow'] / ld['wide_executemany']:,.0f}x)"),
        Row(f"load {ld['child_cols']}-col child table: Arrow vs executemany, rows/s",
            f"{ld['child_arrow']:,.0f} vs {ld['child_executemany']:,.0f} "
            f"({ld['child_arrow'] / ld['child_executemany']:,.0f}x)"),
    ]
    return rows


def _load() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def format_table(rows: Sequence[Row], scale: str, workers: int, load_before: str = "") -> str:
    head = (f"make bench -- scale {scale}, {os.cpu_count()} cores, {workers} workers, "
            f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, "
            f"load average {load_before or _load()} before / {_load()} after")
    w1 = max(len(r.metric) for r in rows)
    w2 = max(len(r.value) for r in rows)
    w3 = max([len(r.target) for r in rows] + [6])
    lines = [head, f"{'metric':<{w1}}  {'value':<{w2}}  {'target':<{w3}}  met",
             f"{'-' * w1}  {'-' * w2}  {'-' * w3}  ---"]
    lines += [f"{r.metric:<{w1}}  {r.value:<{w2}}  {r.target:<{w3}}  {_mark(r.met)}".rstrip() for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rebuild-one"]:
        ap = argparse.ArgumentParser()
        for name in ("--manifest", "--raw", "--warehouse"):
            ap.add_argument(name, type=Path, required=True)
        for name in ("--pages", "--workers", "--shard-pages", "--load-pages", "--incremental"):
            ap.add_argument(name, type=int, required=True)
        a = ap.parse_args(argv[1:])
        out = rebuild_one(a.manifest, a.pages, a.raw, a.warehouse, a.workers, a.shard_pages,
                          a.load_pages, a.incremental)
        print(json.dumps(out))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default=os.environ.get("BENCH_SCALE") or "full")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work-dir", type=Path, default=None, help="keep the corpus and warehouses here")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="trials-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_before = _load()

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - started:6.0f} s] {msg}", file=sys.stderr, flush=True)

    try:
        rows = run_bench(args.scale, args.workers, work, log)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    rows.append(Row("bench wall time", f"{time.perf_counter() - started:,.0f} s"))
    print(format_table(rows, args.scale, args.workers, load_before))
    print(f"(a load average above {os.cpu_count()} means other work shared the cores: absolute "
          "figures and the wall-clock speed-up are then lower bounds; compare ratios)")
    if args.json:
        args.json.write_text(json.dumps(
            [{"metric": r.metric, "value": r.value, "target": r.target, "met": r.met} for r in rows],
            indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
