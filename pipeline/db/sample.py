"""The sample warehouse docs/queries.md is written against: raw/sample, loaded twice.

1. Every page of raw/sample, "fetched" 2025-01-06 00:00 UTC (file mtimes are set, so the
   result does not depend on when the repository was checked out).
2. On 2025-02-03 09:30 UTC two pages are "re-fetched" with new content, as a crawler would
   see them change: the IL3 CAR-T trial (NCT04599543, Veeva only) starts recruiting and
   raises its target enrollment from 36 to 40; the Veeva page of Morpheus-TNBC (NCT03424005,
   on both mirrors) switches to "Active, not enrolling" while ClinConnect still says
   recruiting.

The pages are copied to `workdir` first (raw/sample is never modified); page URLs are
file:// URLs under it.  Run `python -m pipeline.db.sample OUT.duckdb` to build one.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline import run

FIRST_FETCH = dt.datetime(2025, 1, 6, 0, 0, tzinfo=dt.timezone.utc)
REFETCH = dt.datetime(2025, 2, 3, 9, 30, tzinfo=dt.timezone.utc)

# (file under raw/sample, text replaced, replacement) -- each must match exactly once.
EDITS: tuple[tuple[str, str, str], ...] = (
    ("seeds/001_62c8b8bbff79b9c1.txt", "\nNot yet enrolling\n", "\nEnrolling\n"),
    ("seeds/001_62c8b8bbff79b9c1.txt", "36 estimated patients", "40 estimated patients"),
    ("html/veeva-v2-NCT03424005.html", ">Enrolling<br>Phase 1/Phase 2<",
     ">Active, not enrolling<br>Phase 1/Phase 2<"),
)


@dataclass(frozen=True, slots=True)
class SampleBuild:
    warehouse: Path
    pages_dir: Path  # the copied pages (after the edits)
    first: run.RunSummary
    second: run.RunSummary


def _set_mtime(path: Path, when: dt.datetime) -> None:
    stamp = when.timestamp()
    os.utime(path, (stamp, stamp))


def build_sample_warehouse(
    warehouse: str | os.PathLike[str], sample_dir: str | os.PathLike[str], workdir: str | os.PathLike[str]
) -> SampleBuild:
    pages = Path(workdir) / "sample"
    shutil.copytree(sample_dir, pages, dirs_exist_ok=False)
    for path in pages.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
            _set_mtime(path, FIRST_FETCH)
    first = run.ingest([pages], warehouse)
    changed: set[Path] = set()
    for name, old, new in EDITS:
        path = pages / name
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise ValueError(f"sample edit no longer applies: {old!r} in {name}")
        path.write_text(text.replace(old, new), encoding="utf-8")
        changed.add(path)
    for path in changed:
        _set_mtime(path, REFETCH)
    second = run.ingest([pages], warehouse)
    return SampleBuild(Path(warehouse), pages, first, second)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pipeline.db.sample OUT.duckdb", file=sys.stderr)
        return 2
    target = Path(argv[0])
    if target.exists():
        print(f"refusing to overwrite {target}", file=sys.stderr)
        return 1
    root = Path(__file__).resolve().parents[2] / "raw" / "sample"
    work = Path(tempfile.mkdtemp(prefix="trials-sample-", dir=target.parent if target.parent.exists() else None))
    build_sample_warehouse(target, root, work)
    print(f"sample warehouse written to {target} (pages under {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
