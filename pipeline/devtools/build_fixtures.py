"""Write rendered fixture pages plus their manifest and ground truth.

    python -m pipeline.devtools.build_fixtures --out DIR [--set dev|fixtures|sample] [--n N]
                                               [--sites veeva clinconnect] [--seed S]
    python -m pipeline.devtools.build_fixtures --committed      # tests/fixtures/pages + raw/sample/html

Output directory layout:
    <site>-v<variant>-<NCT>.html   one page each
    manifest.jsonl                 one line per page: file, site, variant, nct_id, url, shown fields, ...
    truth.jsonl                    one serialized TrialRecord per NCT ID (dates ISO)

The "dev" set is every record on every selected site in every variant (NCT shown or not
by `default_show_nct`); "fixtures" and "sample" are the small curated sets that are
committed.  Rebuilding is byte-identical: no clocks, seeded randomness only, sorted output,
and stale pages from an earlier build are removed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.devtools.ctgov import CORPUS_DIR, Study, load_studies, record_to_dict
from pipeline.devtools.render import (
    SITES,
    VARIANT_NAMES,
    VARIANTS,
    RenderedPage,
    default_show_nct,
    must_be_empty,
    render_page,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures" / "pages"
SAMPLE_DIR = REPO_ROOT / "raw" / "sample" / "html"
DEFAULT_SEED = 20250601


@dataclass(frozen=True, slots=True)
class PageSpec:
    nct_id: str
    site: str
    variant: int
    show_nct: bool | None = None  # None = default_show_nct policy


# Committed test fixtures: every variant of both sites over a mix of records --
# oncology (NCT03599518 EGFR NSCLC phase 1 with nested criteria, NCT01298141 with deep
# nesting), an observational study (NCT00513591), many locations (NCT02210780: 42 sites),
# no phase (NCT03133988 expanded access, NCT00513591), months-based ages and 9 arms
# (NCT02028676), many contacts (NCT04565522, NCT04978207), Markdown v2 criteria (NCT04431453,
# NCT06171568).
FIXTURE_SPECS: tuple[PageSpec, ...] = (
    PageSpec("NCT03599518", "veeva", 1, True),
    PageSpec("NCT03599518", "veeva", 2, False),
    PageSpec("NCT03599518", "clinconnect", 3, True),
    PageSpec("NCT02210780", "veeva", 1, True),
    PageSpec("NCT02210780", "veeva", 3, True),
    PageSpec("NCT02210780", "clinconnect", 2, True),
    PageSpec("NCT00513591", "veeva", 2, True),
    PageSpec("NCT00513591", "clinconnect", 1, True),
    PageSpec("NCT00513591", "clinconnect", 3, False),
    PageSpec("NCT03133988", "veeva", 1, False),
    PageSpec("NCT03133988", "clinconnect", 2, False),
    PageSpec("NCT04431453", "veeva", 3, True),
    PageSpec("NCT04431453", "clinconnect", 1, True),
    PageSpec("NCT04431453", "clinconnect", 3, True),
    PageSpec("NCT02028676", "veeva", 2, True),
    PageSpec("NCT02028676", "clinconnect", 2, True),
    PageSpec("NCT04565522", "veeva", 1, True),
    PageSpec("NCT04565522", "veeva", 3, False),
    PageSpec("NCT04565522", "clinconnect", 1, False),
    PageSpec("NCT01298141", "veeva", 3, True),
    PageSpec("NCT01298141", "clinconnect", 3, True),
    PageSpec("NCT04978207", "veeva", 2, True),
    PageSpec("NCT04978207", "clinconnect", 2, True),
    PageSpec("NCT06171568", "veeva", 1, True),
)

# The bundled sample: both sites, three trials on both mirrors (cross-mirror duplicates).
SAMPLE_SPECS: tuple[PageSpec, ...] = (
    PageSpec("NCT04349592", "veeva", 1),
    PageSpec("NCT04349592", "clinconnect", 2),
    PageSpec("NCT03424005", "veeva", 2),
    PageSpec("NCT03424005", "clinconnect", 1),
    PageSpec("NCT04332835", "veeva", 3),
    PageSpec("NCT04332835", "clinconnect", 3),
    PageSpec("NCT03494712", "veeva", 1),
    PageSpec("NCT04361422", "veeva", 2),
    PageSpec("NCT02438137", "veeva", 3),
    PageSpec("NCT04973462", "clinconnect", 1),
    PageSpec("NCT04730401", "clinconnect", 2),
    PageSpec("NCT06171568", "clinconnect", 3),
)


def dev_specs(studies: Sequence[Study], sites: Iterable[str] = SITES, *, exhaustive: bool = False) -> list[PageSpec]:
    """Every record x site x variant; `exhaustive` renders each page both with and without the NCT ID."""
    specs: list[PageSpec] = []
    for study in studies:
        nct = study.record.nct_id
        if not nct:
            continue
        for site in sites:
            for variant in VARIANTS[site]:
                if exhaustive:
                    specs += [PageSpec(nct, site, variant, True), PageSpec(nct, site, variant, False)]
                else:
                    specs.append(PageSpec(nct, site, variant))
    return specs


def render_spec(study: Study, spec: PageSpec, seed: int | str = DEFAULT_SEED) -> RenderedPage:
    show = default_show_nct(spec.nct_id, spec.site, spec.variant) if spec.show_nct is None else spec.show_nct
    return render_page(study.record, spec.site, spec.variant, show_nct=show, rng_seed=seed, extras=study.extras)


def manifest_entry(page: RenderedPage, file_name: str, content: bytes) -> dict[str, object]:
    plan = page.plan
    return {
        "file": file_name,
        "site": plan.site,
        "variant": plan.variant,
        "variant_name": VARIANT_NAMES.get(plan.variant, str(plan.variant)),
        "nct_id": page.nct_id,
        "url": plan.url,
        "canonical": plan.canonical,
        "show_nct": plan.show_nct,
        "nct_visible": plan.nct_visible,
        "shown": sorted(page.shown),
        "must_be_empty": sorted(must_be_empty(plan.site)),
        "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def build(
    out: str | os.PathLike[str],
    specs: Sequence[PageSpec],
    studies: Sequence[Study],
    *,
    seed: int | str = DEFAULT_SEED,
    nct_in_name: bool = False,
) -> list[dict[str, object]]:
    """Render `specs` into `out` (replacing pages of an earlier build); returns the manifest.

    `nct_in_name` adds "-nct"/"-nonct" to file names, for sets holding both renderings of a page.
    """
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_nct = {s.record.nct_id: s for s in studies}
    missing = sorted({s.nct_id for s in specs} - by_nct.keys())
    if missing:
        raise SystemExit(f"records not in the corpus: {', '.join(missing)}")
    manifest: list[dict[str, object]] = []
    written: set[str] = set()
    for spec in specs:
        page = render_spec(by_nct[spec.nct_id], spec, seed)
        name = page.file_name
        if nct_in_name:
            name = name.removesuffix(".html") + ("-nct.html" if page.plan.show_nct else "-nonct.html")
        if name in written:
            continue  # one file per (site, variant, trial)
        content = page.html.encode("utf-8")
        (out_dir / name).write_bytes(content)
        written.add(name)
        manifest.append(manifest_entry(page, name, content))
    for stale in out_dir.glob("*.html"):
        if stale.name not in written:
            stale.unlink()
    manifest.sort(key=lambda m: str(m["file"]))
    (out_dir / "manifest.jsonl").write_text("".join(_dumps(m) + "\n" for m in manifest), encoding="utf-8")
    ncts = sorted({str(m["nct_id"]) for m in manifest})
    truth = "".join(_dumps(record_to_dict(by_nct[n].record)) + "\n" for n in ncts)
    (out_dir / "truth.jsonl").write_text(truth, encoding="utf-8")
    return manifest


def build_committed(studies: Sequence[Study] | None = None, *, root: Path = REPO_ROOT) -> dict[str, int]:
    """Regenerate the two committed sets: tests/fixtures/pages and raw/sample/html."""
    studies = load_studies() if studies is None else studies
    sizes = {}
    for rel, specs in (("tests/fixtures/pages", FIXTURE_SPECS), ("raw/sample/html", SAMPLE_SPECS)):
        manifest = build(root / rel, specs, studies)
        sizes[rel] = sum(int(m["bytes"]) for m in manifest)  # type: ignore[call-overload]
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.devtools.build_fixtures", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--set", choices=("dev", "fixtures", "sample"), default="dev",
                    help="dev = every record x site x variant (default); fixtures/sample = the curated sets")
    ap.add_argument("--n", type=int, help="dev set: only the first N records (by NCT ID)")
    ap.add_argument("--sites", nargs="+", choices=SITES, default=list(SITES))
    ap.add_argument("--all", action="store_true", help="dev set: render each page with and without the NCT ID")
    ap.add_argument("--seed", default=str(DEFAULT_SEED))
    ap.add_argument("--corpus", default=str(CORPUS_DIR), help="CT.gov corpus directory")
    ap.add_argument("--committed", action="store_true",
                    help="regenerate tests/fixtures/pages and raw/sample/html (ignores the other options)")
    args = ap.parse_args(argv)

    studies = load_studies(args.corpus)
    if args.committed:
        for rel, size in build_committed(studies).items():
            print(f"{rel}: {size / 1024:.0f} KiB")
        return 0
    if not args.out:
        ap.error("--out is required (or use --committed)")
    if args.set == "dev":
        chosen = studies[: args.n] if args.n else studies
        specs = dev_specs(chosen, args.sites, exhaustive=args.all)
    else:
        specs = [s for s in (FIXTURE_SPECS if args.set == "fixtures" else SAMPLE_SPECS) if s.site in args.sites]
    manifest = build(args.out, specs, studies, seed=args.seed, nct_in_name=args.all and args.set == "dev")
    total = sum(int(m["bytes"]) for m in manifest)  # type: ignore[call-overload]
    print(f"wrote {len(manifest)} pages ({total / 1024:.0f} KiB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
