"""How much structured eligibility adds to parsing a page.

    python -m pipeline.devtools.bench_profiles [--pages DIR] [--repeat N]

For every committed fixture page (default `tests/fixtures/pages/`, read with
`pipeline.devtools.eval.read_corpus`) it times `pipeline.parse.parse_page`, then
`profile_criteria(record.criteria)` (constraints + flags) and `profile_record(record)`
(therapy profiles) on the parsed record, best of `--repeat` rounds each, and prints the
per-page means and the ratio to the parse time.  The issue's budget: constraint extraction
adds no more than 20 % to the time to parse a page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.devtools.eval import read_corpus
from pipeline.eligibility import profile_criteria
from pipeline.ingest import raw_page_from_bytes
from pipeline.models import RawPage, TrialRecord
from pipeline.parse import parse_page
from pipeline.therapy import profile_record

DEFAULT_PAGES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "pages"
BUDGET = 0.20  # constraint extraction / page parse


@dataclass(frozen=True, slots=True)
class BenchResult:
    pages: int
    criteria_items: int
    parse_s: float  # mean seconds per page
    constraints_s: float  # mean seconds per page for profile_criteria
    therapy_s: float  # mean seconds per page for profile_record

    @property
    def constraints_ratio(self) -> float:
        return self.constraints_s / self.parse_s if self.parse_s else 0.0

    @property
    def therapy_ratio(self) -> float:
        return self.therapy_s / self.parse_s if self.parse_s else 0.0


def _cpu(fn: Callable[[], object]) -> float:
    # CPU time of this process: other work on the machine stretches wall time, not this.
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def bench(raws: Sequence[RawPage], *, repeat: int = 7) -> BenchResult:
    """Time parse, constraint extraction and therapy profiling over `raws`: best of `repeat`
    rounds, the three interleaved so that a busy spell on the machine hits all of them."""
    records: list[TrialRecord] = []
    for raw in raws:  # also warms every lazily built regex and cache before timing
        parsed = parse_page(raw)
        if parsed.record is not None:
            records.append(parsed.record)
            profile_criteria(parsed.record.criteria)
            profile_record(parsed.record)
    n = max(1, len(raws))

    def parse_all() -> None:
        for raw in raws:
            parse_page(raw)

    def constraints_all() -> None:
        for rec in records:
            profile_criteria(rec.criteria)

    def therapy_all() -> None:
        for rec in records:
            profile_record(rec)

    best = [float("inf")] * 3
    for _ in range(repeat):
        for i, fn in enumerate((parse_all, constraints_all, therapy_all)):
            best[i] = min(best[i], _cpu(fn))
    return BenchResult(
        pages=len(raws),
        criteria_items=sum(len(r.criteria) for r in records),
        parse_s=best[0] / n,
        constraints_s=best[1] / n,
        therapy_s=best[2] / n,
    )


def fixture_pages(directory: Path = DEFAULT_PAGES) -> list[RawPage]:
    fetched = dt.datetime(2025, 1, 1)
    return [raw_page_from_bytes(p.url, p.html, fetched) for p in read_corpus(directory)]


@dataclass(frozen=True, slots=True)
class PipelineResult:
    pages: int
    trials: int
    extract_s: float  # constraints, flags, therapies and doses of every trial (profile_rows)
    refresh_s: float  # refresh_profiles recomputing every trial, warehouse reads and writes included


def bench_pipeline(raws: Sequence[RawPage], *, repeat: int = 7) -> PipelineResult:
    """What the pipeline spends: profiles are made once per trial (on its golden record), not
    once per page.  Loads `raws` into a scratch warehouse, then times the extraction for every
    trial alone and a whole `refresh_profiles` that recomputes them all."""
    from pipeline.db.connection import open_warehouse
    from pipeline.db.profiles import profile_rows, read_inputs, refresh_profiles, stale_trials
    from pipeline.run import RawBatch, ingest_batch

    with tempfile.TemporaryDirectory() as tmp:
        conn = open_warehouse(Path(tmp) / "bench.duckdb")
        try:
            ingest_batch(RawBatch(("bench",), tuple(raws)), conn, "bench")
            trial_ids = [t for (t,) in conn.execute("SELECT trial_id FROM trials").fetchall()]
            conn.execute("DELETE FROM profile_state")
            inputs = read_inputs(conn, stale_trials(conn))
            extract = min(_cpu(lambda: profile_rows(inputs)) for _ in range(repeat))
            refresh = min(_cpu(lambda: refresh_profiles(conn, trial_ids)) for _ in range(repeat))
        finally:
            conn.close()
    return PipelineResult(len(raws), len(trial_ids), extract, refresh)


def format_result(r: BenchResult) -> str:
    return "\n".join([
        f"pages: {r.pages}  criteria items: {r.criteria_items} "
        f"({r.criteria_items / max(1, r.pages):.1f}/page)",
        f"parse_page:                 {r.parse_s * 1e3:7.3f} ms/page",
        f"profile_criteria (constr.): {r.constraints_s * 1e3:7.3f} ms/page  "
        f"= {r.constraints_ratio:6.1%} of parse (budget {BUDGET:.0%})",
        f"profile_record (therapy):   {r.therapy_s * 1e3:7.3f} ms/page  = {r.therapy_ratio:6.1%} of parse",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=Path, default=DEFAULT_PAGES, help="a build_fixtures folder")
    ap.add_argument("--repeat", type=int, default=7, help="rounds; the best one counts")
    ap.add_argument("--check", action="store_true", help="exit 1 when over budget")
    args = ap.parse_args(argv)
    pages = fixture_pages(args.pages)
    result = bench(pages, repeat=args.repeat)
    print(format_result(result))
    pipe = bench_pipeline(pages, repeat=args.repeat)
    parse_all = result.parse_s * pipe.pages
    print(f"in the pipeline, once per trial: {pipe.pages} pages -> {pipe.trials} trials; extraction "
          f"{pipe.extract_s * 1e3:.1f} ms ({pipe.extract_s / max(1, pipe.trials) * 1e3:.2f} ms/trial) "
          f"= {pipe.extract_s / parse_all:.1%} of parsing the pages; whole refresh_profiles "
          f"{pipe.refresh_s * 1e3:.1f} ms (warehouse reads and writes included)")
    if args.check and result.constraints_ratio > BUDGET:
        print(f"over budget: constraint extraction is {result.constraints_ratio:.1%} of parse time",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
