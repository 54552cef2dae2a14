"""Incremental linking cost: a full build of N stored pages, then one batch of new pages.

    python -m pipeline.devtools.bench_relink [--stored 200000] [--batch 1000] [--seed 7]

Pages are the synthetic records of bench_dedup (both site styles, ~30% without any id,
perturbed titles and sponsors) wrapped as parsed pages, so parsing is not measured; every
other step of a run is: linking against the warehouse (pipeline.relink), the load (golden
rows, history, the dedup tables, the blocking checks) and the profile refresh (run.load_plan).
The batch is a random sample of further pages: new pages of stored trials and new trials.
Prints seconds per step for the full build and for the incremental run, and peak memory.
Target (issue 7): the incremental run under 60 s on a 200,000-page warehouse.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline import run
from pipeline.db.connection import open_warehouse
from pipeline.dedup.types import DedupInput
from pipeline.devtools.bench_dedup import make_records
from pipeline.models import ParsedPage

TARGET_SECONDS = 60.0


def _page(item: DedupInput) -> ParsedPage:
    host = "ctv.veeva.com/study" if item.source == "veeva" else "clinconnect.io/trials"
    return ParsedPage(
        page_id=item.key, url=f"https://{host}/{item.key}", source=item.source,  # type: ignore[arg-type]
        content_sha256=item.key.rjust(64, "0"), fetched_at=item.fetched_at,  # type: ignore[arg-type]
        parse_status="ok", record=item.record,
    )


def _run(conn, pages: list[ParsedPage]) -> dict[str, float]:
    batch = run.ParseBatch(pages_read=len(pages), skipped_known=0, pages=tuple(pages))
    t0 = time.perf_counter()
    plan = run.plan_links(conn, batch)
    t1 = time.perf_counter()
    result = run.load_plan(conn, plan)
    t2 = time.perf_counter()
    return {"link": t1 - t0, "load": t2 - t1, "total": t2 - t0,
            "trials_written": float(result.trials_loaded)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1, help="incremental batches, one after another")
    parser.add_argument("--warehouse", help="keep the warehouse here (default: a temp file); "
                                            "a copy of a built one (`--warehouse X --build-only`) "
                                            "skips the full build")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    records, _ = make_records(args.stored + args.batch * max(args.rounds, 1), args.seed)
    random.Random(args.seed).shuffle(records)
    stored = [_page(r) for r in records[: args.stored]]
    batches = [[_page(r) for r in records[args.stored + i * args.batch:args.stored + (i + 1) * args.batch]]
               for i in range(args.rounds)]
    print(f"generated {len(stored)} stored + {args.rounds} x {args.batch} new pages "
          f"in {time.perf_counter() - t0:.1f}s")
    inc = {"total": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.warehouse) if args.warehouse else Path(tmp) / "bench.duckdb"
        conn = open_warehouse(path)
        try:
            (have,), = conn.execute("SELECT count(*) FROM pages").fetchall()
            if have == 0:
                full = _run(conn, stored)
                print(f"full build, {len(stored)} pages: link {full['link']:.1f}s, "
                      f"load {full['load']:.1f}s, total {full['total']:.1f}s "
                      f"({int(full['trials_written'])} trials)")
            elif have != len(stored):
                raise SystemExit(f"{path} holds {have} pages, not the {len(stored)} stored ones")
            for batch in ([] if args.build_only else batches):
                inc = _run(conn, batch)
                print(f"incremental, {len(batch)} new pages on {len(stored)}: link {inc['link']:.1f}s, "
                      f"load {inc['load']:.1f}s, total {inc['total']:.1f}s "
                      f"({int(inc['trials_written'])} trials rewritten)")
            (n_trials,), = conn.execute("SELECT count(*) FROM trials").fetchall()
            print(f"warehouse: {n_trials} trials")
        finally:
            conn.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    ok = inc["total"] < TARGET_SECONDS
    print(f"peak memory {peak:.2f} GiB; incremental target < {TARGET_SECONDS:.0f}s: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
