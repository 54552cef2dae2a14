"""Deduplication speed and memory on synthetic records (default: 100k, 300k and 1M).

    python -m pipeline.devtools.bench_dedup [--sizes 100000,300000,1000000] [--seed S]

Each size runs in a fresh child process, so its peak memory (getrusage ru_maxrss) is
its own: generation + linking.  Records are cheap variations of the CT.gov corpus:
  * trials: a corpus record as template, 2-3 title words replaced from a pool of
    synthetic words and drug codes, a sponsor from a pool of ~20k, its own first
    criterion, officials and enrollment/dates; trials of one template and sponsor are
    near-identical titles (hard negatives);
  * pages: 1-4 per trial, Veeva-like (conditions, interventions, enrollment, org id +
    slug, NCT on 75%) or ClinConnect-like (keywords, dates, officials; NCT on 60%);
    ~30% of all records carry no id at all; ~30% of titles and ~15% of sponsors are
    perturbed like mirrors do (case, punctuation, truncation, typos).
Prints generation time, link time with the engine's own step timings, peak memory and
pairwise precision/recall against the generated truth.  Targets for 1M records:
< 5 minutes, < 8 GiB, near-linear growth.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import random
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

from pipeline.dedup import DedupConfig, DedupInput, link_records
from pipeline.devtools.ctgov import load_records
from pipeline.devtools.eval_dedup import perturb_sponsor, perturb_title
from pipeline.models import Contact, Criterion, Identifier, Intervention, Location, TrialRecord

DEFAULT_SIZES = (100_000, 300_000, 1_000_000)
DEFAULT_SEED = 7
NO_ID_SHARE = 0.30
TARGET_SECONDS = 300
TARGET_GIB = 8.0

_ONSETS = "b c d f g h j k l m n p r s t v z br cl dr fl gr pl pr st tr".split()
_VOWELS = "a e i o u ai ea io ou".split()
_STOP = frozenset("a an and are as at by for from in into of on or the to with without".split())
_FIRST = "Anna Ben Carla David Eva Felix Grace Hugo Ines Jon Kai Lena Marco Nora Omar Paula Ravi Sara Tom Uma".split()


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 4)))


class Pools:
    """Vocabulary the synthetic trials draw from (deterministic for a seed)."""

    def __init__(self, rng: random.Random, words: int = 60_000, sponsors: int = 20_000) -> None:
        seen: set[str] = set()
        while len(seen) < words:
            w = _word(rng)
            if len(w) >= 5:
                seen.add(w.capitalize())
        self.words = sorted(seen)
        self.codes = [f"{''.join(rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ') for _ in range(rng.randint(2, 4)))}-"
                      f"{rng.randint(100, 99999)}" for _ in range(words // 3)]
        kinds = ("{} University Hospital", "{} Pharmaceuticals, Inc.", "{} Medical Center",
                 "{} Biotech Co., Ltd.", "University of {}", "{} Cancer Institute", "{} Therapeutics")
        self.sponsors = sorted({rng.choice(kinds).format(rng.choice(self.words)) for _ in range(sponsors)})
        self.people = [f"{rng.choice(_FIRST)} {rng.choice(self.words)}" for _ in range(words // 2)]
        self.cities = [(rng.choice(self.words), rng.choice(("United States", "China", "France", "Germany",
                                                             "Spain", "Brazil", "Japan", "Canada")))
                       for _ in range(5000)]


@dataclasses.dataclass(frozen=True, slots=True)
class _Trial:
    truth: int
    record: TrialRecord  # everything both sites could show
    slug: str


def _title(template: str, pools: Pools, rng: random.Random) -> str:
    words = template.split()
    spots = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha() and w.lower() not in _STOP]
    for i in rng.sample(spots, min(len(spots), rng.randint(2, 3))):
        words[i] = rng.choice(pools.codes) if rng.random() < 0.3 else rng.choice(pools.words)
    if not spots:
        words.append(rng.choice(pools.words))
    return " ".join(words)


def make_trials(count: int, templates: Sequence[TrialRecord], pools: Pools, seed: int) -> list[_Trial]:
    rng = random.Random(seed)
    trials = []
    day0 = dt.date(2000, 1, 1).toordinal()
    for t in range(count):
        tpl = templates[rng.randrange(len(templates))]
        sponsor = rng.choice(pools.sponsors)
        title = _title(tpl.brief_title or "Study of Treatment", pools, rng)
        nct = f"NCT{10_000_000 + t * 7 + rng.randrange(7):08d}"
        crit = tpl.criteria
        lead = Criterion(crit[0].criterion_type if crit else "inclusion", 1, None,
                         f"Diagnosis of {rng.choice(pools.words).lower()} {rng.choice(pools.words).lower()}"
                         f" confirmed within {rng.randint(2, 90)} days, aged {rng.randint(1, 60)} or older")
        criteria = (lead,) + crit[1:]
        start = dt.date.fromordinal(day0 + rng.randrange(9000))
        city, country = rng.choice(pools.cities)
        locations = (Location(f"{city} {rng.choice(('Hospital', 'Clinic', 'Research Center'))}", city, None, country),)
        locations += tpl.locations[:2]
        record = dataclasses.replace(
            tpl,
            nct_id=nct,
            brief_title=title,
            official_title=None,
            lead_sponsor=sponsor,
            enrollment=rng.randint(10, 2000),
            start_date=start,
            first_submitted_date=start - dt.timedelta(days=rng.randrange(200)),
            completion_date=start + dt.timedelta(days=rng.randrange(100, 2000)),
            interventions=tuple(dataclasses.replace(iv, name=rng.choice(pools.codes)) for iv in tpl.interventions[:2])
            or (Intervention("DRUG", rng.choice(pools.codes)),),
            criteria=criteria,
            contacts=(Contact("overall_official", rng.choice(pools.people)),
                      Contact("central_contact", rng.choice(pools.people))),
            locations=locations,
            identifiers=(Identifier("nct", nct), Identifier("org_study_id", f"{sponsor[:3].upper()}-{t}")),
        )
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:90] + f"-{t}"
        trials.append(_Trial(t, record, slug))
    return trials


def _veeva_view(trial: _Trial, with_ids: bool, show_nct: bool) -> TrialRecord:
    rec = trial.record
    idents: tuple[Identifier, ...] = ()
    if with_ids:
        idents = tuple(i for i in rec.identifiers if i.id_type != "nct" or show_nct)
        idents += (Identifier("veeva_slug", trial.slug),)
    return dataclasses.replace(
        rec, nct_id=rec.nct_id if with_ids and show_nct else None, identifiers=idents,
        start_date=None, first_submitted_date=None, completion_date=None, keywords=(),
        contacts=tuple(c for c in rec.contacts if c.role == "central_contact"),
    )


def _clinconnect_view(trial: _Trial, show_nct: bool) -> TrialRecord:
    rec = trial.record
    return dataclasses.replace(
        rec, nct_id=rec.nct_id if show_nct else None,
        identifiers=(Identifier("nct", rec.nct_id),) if show_nct and rec.nct_id else (),
        conditions=(), interventions=(), enrollment=None, enrollment_type=None, arms=(),
    )


def make_records(size: int, seed: int) -> tuple[list[DedupInput], dict[str, int]]:
    """`size` records and the truth (key -> trial number)."""
    rng = random.Random(seed)
    templates = [r for r in load_records() if r.brief_title]
    pools = Pools(random.Random(seed + 1))
    trials = make_trials(int(size / 2.2) + 10, templates, pools, seed + 2)
    fetched = dt.datetime(2025, 6, 1)
    out: list[DedupInput] = []
    truth: dict[str, int] = {}
    for trial in trials:
        for _ in range(rng.choice((1, 2, 2, 2, 3, 3, 4))):
            if len(out) >= size:
                return out, truth
            no_id = rng.random() < NO_ID_SHARE
            if rng.random() < 0.5:
                rec = _veeva_view(trial, with_ids=not no_id, show_nct=rng.random() < 0.75)
                source = "veeva"
            else:
                rec = _clinconnect_view(trial, show_nct=not no_id and rng.random() < 0.6 / 0.7)
                source = "clinconnect"
            if rng.random() < 0.30:
                rec = dataclasses.replace(rec, brief_title=perturb_title(rec.brief_title or "", rng))
            if rng.random() < 0.15:
                rec = dataclasses.replace(rec, lead_sponsor=perturb_sponsor(rec.lead_sponsor or "", rng))
            key = f"p{len(out):08d}"
            out.append(DedupInput(key, rec, source, fetched))
            truth[key] = trial.truth
    return out, truth


def _pair_quality(clusters: Sequence[Sequence[str]], truth: dict[str, int]) -> dict[str, float]:
    by_truth: dict[int, int] = defaultdict(int)
    for t in truth.values():
        by_truth[t] += 1
    true_pairs = sum(n * (n - 1) // 2 for n in by_truth.values())
    linked = tp = 0
    for cluster in clusters:
        n = len(cluster)
        linked += n * (n - 1) // 2
        counts: dict[int, int] = defaultdict(int)
        for key in cluster:
            counts[truth[key]] += 1
        tp += sum(c * (c - 1) // 2 for c in counts.values())
    return {"precision": tp / linked if linked else 1.0, "recall": tp / true_pairs if true_pairs else 1.0}


def run_one(size: int, seed: int) -> dict[str, object]:
    t0 = time.perf_counter()
    records, truth = make_records(size, seed)
    gen = time.perf_counter() - t0
    rss_gen = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    t1 = time.perf_counter()
    result = link_records(records, DedupConfig())
    link = time.perf_counter() - t1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB -> GiB
    quality = _pair_quality(result.clusters, truth)
    stats = result.stats
    return {
        "size": size, "generate_s": round(gen, 1), "link_s": round(link, 1),
        "peak_gib_after_generate": round(rss_gen, 2), "peak_gib": round(rss, 2),
        "steps": stats.seconds, "clusters": len(result.clusters),
        "exact_clusters": stats.exact_clusters, "blocks": stats.blocks,
        "blocks_skipped": stats.blocks_skipped, "pairs_scored": stats.pairs_scored,
        "pairs_accepted": stats.pairs_accepted, "candidates": stats.candidates,
        "refused": len(result.refused), **{k: round(v, 4) for k, v in quality.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.seed)))
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"dedup benchmark: sizes {sizes}, seed {args.seed}, {NO_ID_SHARE:.0%} of records without any id")
    header = (f"{'records':>9} {'generate':>9} {'link':>8} {'peak GiB':>9} {'pairs':>10} {'accepted':>9}"
              f" {'review':>7} {'clusters':>9} {'precision':>9} {'recall':>7}  link steps (s)")
    print(header)
    rows = []
    for size in sizes:
        proc = subprocess.run([sys.executable, "-m", "pipeline.devtools.bench_dedup", "--child", str(size),
                               "--seed", str(args.seed)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        steps = " ".join(f"{k}={v:.1f}" for k, v in row["steps"].items())
        print(f"{row['size']:>9,} {row['generate_s']:>8.1f}s {row['link_s']:>7.1f}s {row['peak_gib']:>9.2f}"
              f" {row['pairs_scored']:>10,} {row['pairs_accepted']:>9,} {row['candidates']:>7,}"
              f" {row['clusters']:>9,} {row['precision']:>9.4f} {row['recall']:>7.4f}  {steps}", flush=True)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        growth = (last["link_s"] / max(first["link_s"], 1e-9)) / (last["size"] / first["size"])
        print(f"link time per record, {last['size']:,} vs {first['size']:,}: x{growth:.2f} (1.00 = linear)")
    big = max(rows, key=lambda r: r["size"])
    if big["size"] >= 1_000_000:
        ok = big["link_s"] < TARGET_SECONDS and big["peak_gib"] < TARGET_GIB
        print(f"1M target (< {TARGET_SECONDS}s link, < {TARGET_GIB:g} GiB peak): {'met' if ok else 'MISSED'}")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
