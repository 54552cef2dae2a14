"""Deduplication quality on a labelled set built from the CT.gov corpus.

    python -m pipeline.devtools.eval_dedup [--rounds N] [--seed S] [--siblings N] [--examples K]
                                           [--no-fail]

The labelled set (one per round, different seeds): every corpus trial drawn on both sites
(1-3 pages per site, different markup variants = re-fetches), each page parsed back with
`pipeline.parse.parse_page` so the matcher sees what real parsed pages look like.  Per
page, independently, the way mirrors differ:
  * the NCT ID is hidden from ~40% of pages (ClinConnect pages may still carry it in the URL);
  * ~55% of titles are perturbed (case, punctuation, truncation with or without an
    ellipsis, 1-2 letter typos -- digits are left alone) and ~35% of sponsor names
    (case, abbreviations, legal suffix dropped/added, punctuation, a typo).
Hard negatives: the 100 COVID-19 studies of the corpus (near-identical titles, same
sponsors), the seed captures (raw/sample/seeds), and a "sibling" of 40 trials
(`--siblings`): same sponsor, conditions, interventions, locations and officials, criteria
from the same template with one edit (a new first item, changed numbers, a reworded
item), but another NCT ID, org id, enrollment and dates, and a title with a number or a
word changed or a suffix added.

Pairs of pages are scored as linked (same cluster) or not against the truth, separately
for pairs that share an exact ID (NCT, registry id, sponsor id + sponsor, site id) and
pairs that share none.  Targets: every ID-sharing pair of one trial linked; on pairs
without a shared ID precision >= 0.995 and recall >= 0.97; the seed hard negatives
apart.  Exit 1 when a target is missed (`--no-fail`: always 0).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import re
import string
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.dedup import DedupConfig, DedupInput, DedupResult, link_records
from pipeline.dedup.features import build_features
from pipeline.dedup.keys import normalize_sponsor, record_keys, record_ncts, registry_ids
from pipeline.dedup.scoring import explain_pairs
from pipeline.devtools.ctgov import Study, load_studies
from pipeline.devtools.render import SITES, VARIANTS, plan_page, render_page
from pipeline.ingest import raw_page_from_bytes, read_page_file
from pipeline.models import Criterion, Identifier, TrialRecord
from pipeline.parse import parse_page

SEEDS_DIR = Path(__file__).resolve().parents[2] / "raw" / "sample" / "seeds"
DEFAULT_SEED = 20250601
HIDE_NCT = 0.4
PERTURB_TITLE = 0.55
PERTURB_SPONSOR = 0.35
SIBLINGS = 40
FETCHED = dt.datetime(2025, 6, 1, 12, 0)
TARGET_PRECISION = 0.995
TARGET_RECALL = 0.97

# --------------------------------------------------------------------------- perturbations

_SWAP_WORDS = ("Extension", "Pilot", "Long-term", "Pediatric", "Maintenance", "Japanese",
               "Adolescent", "Follow-up", "Observational", "Registry", "Confirmatory")
_SUFFIXES = (" - Extension Study", " (Part B)", ": Long-term Follow-up", " in China",
             " - Feasibility Study", " (Canada Alternate)")
_ABBREV = (("University", "Univ."), ("Hospital", "Hosp."), ("Institute", "Inst."),
           ("Center", "Ctr."), ("Medical", "Med."), ("Pharmaceuticals", "Pharma"))
_LEGAL = (", Inc.", " Inc", " Ltd", " Ltd.", " Co., Ltd.", " LLC", " GmbH")


def typo(text: str, rng: random.Random, edits: int = 1) -> str:
    """1..n letter edits (swap, drop, double, replace) inside words of 4+ letters."""
    chars = list(text)
    spots = [m.start() + 1 + rng.randrange(len(m.group()) - 2)
             for m in re.finditer(r"[A-Za-z]{4,}", text)]
    for pos in sorted(rng.sample(spots, min(edits, len(spots))), reverse=True):
        kind = rng.randrange(4)
        if kind == 0 and chars[pos + 1].isalpha():
            chars[pos], chars[pos + 1] = chars[pos + 1], chars[pos]
        elif kind == 1:
            del chars[pos]
        elif kind == 2:
            chars.insert(pos, chars[pos])
        else:
            chars[pos] = rng.choice(string.ascii_lowercase)
    return "".join(chars)


def truncate(text: str, rng: random.Random) -> str:
    if len(text) < 50:
        return text
    cut = int(len(text) * rng.uniform(0.45, 0.8))
    cut = text.rfind(" ", 0, cut) if rng.random() < 0.7 else cut  # usually at a word end
    return text[:max(cut, 30)].rstrip(" ,:;-") + rng.choice(("…", "...", ""))


def perturb_title(title: str, rng: random.Random) -> str:
    kinds = rng.sample(("case", "punct", "truncate", "typo"), rng.choice((1, 1, 2)))
    for kind in kinds:
        if kind == "case":
            title = rng.choice((str.upper, str.lower, str.title))(title)
        elif kind == "punct":
            title = rng.choice((
                lambda t: re.sub(r"[^\w\s]", "", t),
                lambda t: t.replace("-", " ").replace(":", " -"),
                lambda t: re.sub(r"\s*([:,;])\s*", r" \1 ", t) + ".",
            ))(title)
        elif kind == "truncate":
            title = truncate(title, rng)
        else:
            title = typo(title, rng, rng.choice((1, 1, 2)))
    return title


def perturb_sponsor(sponsor: str, rng: random.Random) -> str:
    kind = rng.choice(("case", "abbrev", "legal", "punct", "typo"))
    if kind == "case":
        return rng.choice((str.upper, str.lower))(sponsor)
    if kind == "abbrev":
        for full, short in _ABBREV:
            if full in sponsor:
                return sponsor.replace(full, short)
        return sponsor.upper()
    if kind == "legal":
        for suffix in sorted(_LEGAL, key=len, reverse=True):
            if sponsor.endswith(suffix):
                return sponsor[: -len(suffix)]
        return sponsor + rng.choice(_LEGAL)
    if kind == "punct":
        return re.sub(r"[^\w\s]", " ", sponsor)
    return typo(sponsor, rng)


def perturb_record(record: TrialRecord, rng: random.Random) -> TrialRecord:
    changes = {}
    if record.brief_title and rng.random() < PERTURB_TITLE:
        changes["brief_title"] = perturb_title(record.brief_title, rng)
    if record.lead_sponsor and rng.random() < PERTURB_SPONSOR:
        changes["lead_sponsor"] = perturb_sponsor(record.lead_sponsor, rng)
    return dataclasses.replace(record, **changes) if changes else record


def sibling_title(title: str, rng: random.Random) -> str:
    """Another study's title: a number changed, a word swapped, or a suffix added."""
    numbers = list(re.finditer(r"\d+", title))
    kind = rng.randrange(3)
    if kind == 0 and numbers:
        m = rng.choice(numbers)
        return title[: m.start()] + str(int(m.group()) + rng.randint(1, 3)) + title[m.end():]
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", title)]
    if kind <= 1 and words:
        m = rng.choice(words)
        return title[: m.start()] + rng.choice(_SWAP_WORDS) + title[m.end():]
    return title.rstrip(". ") + rng.choice(_SUFFIXES)


def _prefix(org_id: str) -> str:
    """The sponsor's numbering scheme without its last number ('CD123-001' -> 'CD123');
    registry numbers (EudraCT, ID-RCB...) are one trial's, so a sibling gets a new one."""
    if registry_ids(org_id):
        return "SIB"
    return re.sub(r"[-_ ]*\d+$", "", org_id) or "SIB"


def sibling_record(record: TrialRecord, rng: random.Random, nct: str) -> TrialRecord:
    """A different trial of the same sponsor that looks a lot like `record`."""
    shift = dt.timedelta(days=rng.randint(200, 900))
    idents = tuple(
        Identifier("nct", nct) if i.id_type == "nct"
        else Identifier(i.id_type, f"{_prefix(i.id_value)}-{rng.randrange(100, 999)}") if i.id_type == "org_study_id"
        else i
        for i in record.identifiers if i.id_type in ("nct", "org_study_id")
    )
    return dataclasses.replace(
        record,
        nct_id=nct,
        brief_title=sibling_title(record.brief_title or "Study", rng),
        official_title=None,
        identifiers=idents,
        enrollment=(record.enrollment or 40) * 2 + rng.randint(1, 30),
        start_date=record.start_date + shift if record.start_date else None,
        first_submitted_date=record.first_submitted_date + shift if record.first_submitted_date else None,
        completion_date=record.completion_date + shift if record.completion_date else None,
        primary_completion_date=None,
        criteria=sibling_criteria(record.criteria, rng),
    )


_NEW_CRITERIA = ("Completed the parent study (Part A) without permanent discontinuation",
                 "Previously enrolled in the main study and received at least one dose",
                 "Signed informed consent for the extension phase")


def sibling_criteria(criteria: tuple[Criterion, ...], rng: random.Random) -> tuple[Criterion, ...]:
    """Another study's criteria: written from the same template, with a few edits (a new
    first item, changed numbers, or a reworded item); the nesting stays intact."""
    if not criteria:
        return criteria
    kind = rng.randrange(3)
    if kind == 0:
        kind_of = criteria[0].criterion_type
        first = Criterion(kind_of, 1, None, rng.choice(_NEW_CRITERIA))

        def shift(c: Criterion) -> Criterion:
            if c.criterion_type != kind_of:
                return c
            parent = c.parent_ordinal + 1 if c.parent_ordinal is not None else None
            return dataclasses.replace(c, ordinal=c.ordinal + 1, parent_ordinal=parent)

        return (first,) + tuple(shift(c) for c in criteria)
    if kind == 1 and any(re.search(r"\d", c.text) for c in criteria[:4]):
        def bump(m: re.Match[str]) -> str:
            return str(int(m.group()) + rng.choice((-6, 2, 5, 12)))
        return tuple(dataclasses.replace(c, text=re.sub(r"\d+", bump, c.text)) if i < 4 else c
                     for i, c in enumerate(criteria))
    parents = {(c.criterion_type, c.parent_ordinal) for c in criteria}
    leaf = next((i for i, c in enumerate(criteria) if (c.criterion_type, c.ordinal) not in parents), 0)
    reworded = criteria[leaf].text.rstrip(". ") + rng.choice(
        (", confirmed within 28 days before enrolment", " (cohort B only)", " or documented prior exposure"))
    return criteria[:leaf] + (dataclasses.replace(criteria[leaf], text=reworded),) + criteria[leaf + 1:]


# --------------------------------------------------------------------------- the labelled set


@dataclass(frozen=True, slots=True)
class EvalPage:
    item: DedupInput
    truth: str  # trial label: the corpus NCT ID, or "seed:<file>"
    site: str
    nct_shown: bool


def _pages_for(study: Study, record: TrialRecord, truth: str, rng: random.Random,
               round_seed: int, slug_owner: dict[str, str]) -> list[EvalPage]:
    out = []
    for site in SITES:
        count = rng.choice((1, 1, 2, 3))
        for variant in rng.sample(VARIANTS[site], count):
            show = rng.random() >= HIDE_NCT
            shown = perturb_record(record, rng)
            page = render_page(shown, site, variant, show_nct=show, rng_seed=round_seed,
                               extras=study.extras)
            html, url = page.html, page.plan.url
            if site == "veeva":
                # Veeva's slug is the trial's, fixed when it was listed: it follows the
                # real title, not this page's perturbed one, and is unique per trial.
                url = plan_page(record, site, variant, show_nct=show, rng_seed=round_seed).url
                while slug_owner.setdefault(url, truth) != truth:
                    url += "-2"
                html = html.replace(page.plan.url, url)
            fetched = FETCHED - dt.timedelta(days=rng.randrange(400), minutes=rng.randrange(1440))
            raw = raw_page_from_bytes(url, html.encode("utf-8"), fetched)
            parsed = parse_page(raw)
            if parsed.record is None or parsed.parse_status == "rejected":
                continue
            item = DedupInput(parsed.page_id, parsed.record, parsed.source, parsed.fetched_at, parsed.url)
            out.append(EvalPage(item, truth, site, page.plan.nct_visible))
    return out


def seed_pages() -> list[EvalPage]:
    """The real captures under raw/sample/seeds: five different trials."""
    out = []
    for path in sorted(SEEDS_DIR.glob("*.txt")):
        raw = read_page_file(path)
        parsed = parse_page(raw)  # type: ignore[arg-type]
        if parsed.record is None:
            continue
        item = DedupInput(parsed.page_id, parsed.record, parsed.source, parsed.fetched_at, parsed.url)
        out.append(EvalPage(item, f"seed:{path.name[:3]}", parsed.source, bool(parsed.record.nct_id)))
    return out


def build_eval_set(studies: Sequence[Study], seed: int, siblings: int = SIBLINGS) -> list[EvalPage]:
    rng = random.Random(seed)
    pages: list[EvalPage] = []
    slug_owner: dict[str, str] = {}
    for study in studies:
        rec = study.record
        pages += _pages_for(study, rec, rec.nct_id or "?", rng, seed, slug_owner)
    for i, study in enumerate(rng.sample(list(studies), min(siblings, len(studies)))):
        nct = f"NCT9{(seed + i * 7919) % 10**7:07d}"
        sib = sibling_record(study.record, rng, nct)
        pages += _pages_for(study, sib, nct, rng, seed, slug_owner)
    pages += seed_pages()
    return pages


# --------------------------------------------------------------------------- scoring


def _pairs_within(groups: Iterable[Sequence[str]]) -> set[tuple[str, str]]:
    out = set()
    for g in groups:
        members = sorted(g)
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                out.add((a, b))
    return out


def id_sharing_pairs(items: Sequence[DedupInput]) -> set[tuple[str, str]]:
    """Pairs that share an exact key the matcher uses (NCT ID or another id key)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for it in items:
        nct, aliases = record_ncts(it.record, it.url)
        for n in ((nct,) if nct else ()) + aliases:
            groups["nct:" + n].append(it.key)
        for _, key in record_keys(it.record, normalize_sponsor(it.record.lead_sponsor)):
            groups[key].append(it.key)
    return _pairs_within(g for g in groups.values() if len(g) > 1)


@dataclass
class Tally:
    true: int = 0
    linked: int = 0
    tp: int = 0

    @property
    def fp(self) -> int:
        return self.linked - self.tp

    @property
    def fn(self) -> int:
        return self.true - self.tp

    @property
    def precision(self) -> float:
        return self.tp / self.linked if self.linked else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: Tally) -> None:
        self.true += other.true
        self.linked += other.linked
        self.tp += other.tp


@dataclass
class RoundResult:
    id_pairs: Tally
    no_id_pairs: Tally
    false_links: list[tuple[str, str]]
    missed: list[tuple[str, str]]
    result: DedupResult
    pages: dict[str, EvalPage]
    seeds_apart: bool
    band_true: int  # missed no-id pairs whose clusters are review candidates


def score_round(pages: Sequence[EvalPage], result: DedupResult) -> RoundResult:
    by_key = {p.item.key: p for p in pages}
    truth_groups: dict[str, list[str]] = defaultdict(list)
    for p in pages:
        truth_groups[p.truth].append(p.item.key)
    true_pairs = _pairs_within(truth_groups.values())
    linked = _pairs_within(result.clusters)
    shares = id_sharing_pairs([p.item for p in pages])
    tallies = {True: Tally(), False: Tally()}
    for pair in true_pairs:
        tallies[pair in shares].true += 1
    for pair in linked:
        t = tallies[pair in shares]
        t.linked += 1
        t.tp += pair in true_pairs
    false_links = sorted(linked - true_pairs)
    missed = sorted(true_pairs - linked)
    seed_keys = [p.item.key for p in pages if p.truth in ("seed:000", "seed:001", "seed:003")]
    cluster_of = {k: ci for ci, c in enumerate(result.clusters) for k in c}
    seeds_apart = len({cluster_of[k] for k in seed_keys}) == len(seed_keys)
    cand_clusters = {frozenset((cluster_of[c.key_a], cluster_of[c.key_b])) for c in result.candidates}
    band_true = sum(
        1 for a, b in missed
        if (a, b) not in shares and frozenset((cluster_of[a], cluster_of[b])) in cand_clusters
    )
    return RoundResult(tallies[True], tallies[False], false_links, missed, result, by_key,
                       seeds_apart, band_true)


def _describe(key: str, pages: dict[str, EvalPage]) -> str:
    p = pages[key]
    r = p.item.record
    return f"{p.truth} {p.site:<11} nct={'y' if r.nct_id else 'n'} {(r.brief_title or '')[:70]!r} / {r.lead_sponsor!r}"


def _pair_explanation(a: str, b: str, config: DedupConfig, items: dict[str, DedupInput]) -> str:
    """The score the engine gives the pair (whether or not blocking put it together)."""
    pair = sorted((items[a], items[b]), key=lambda i: i.key)
    feats = build_features(pair, config)
    return explain_pairs(feats, np.array([0]), np.array([1]), config)[0].explain()


def _row(name: str, t: Tally) -> str:
    return (f"{name:<16}{t.true:>8}{t.linked:>8}{t.tp:>7}{t.fp:>6}{t.fn:>6}"
            f"{t.precision:>11.4f}{t.recall:>9.4f}{t.f1:>8.4f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="labelled sets (seeds) to pool")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--siblings", type=int, default=SIBLINGS, help="hard-negative siblings per round")
    parser.add_argument("--examples", type=int, default=5, help="false links / misses to show")
    parser.add_argument("--no-fail", action="store_true")
    args = parser.parse_args(argv)

    config = DedupConfig()
    studies = load_studies()
    totals = {True: Tally(), False: Tally()}
    false_links: list[tuple[str, str, RoundResult]] = []
    missed: list[tuple[str, str, RoundResult]] = []
    seeds_ok = True
    pages_total = candidates = band_true = 0
    t_build = t_link = 0.0
    for r in range(args.rounds):
        t0 = time.perf_counter()
        pages = build_eval_set(studies, args.seed + r, args.siblings)
        t1 = time.perf_counter()
        result = link_records([p.item for p in pages], config)
        t2 = time.perf_counter()
        t_build += t1 - t0
        t_link += t2 - t1
        rr = score_round(pages, result)
        totals[True].add(rr.id_pairs)
        totals[False].add(rr.no_id_pairs)
        false_links += [(a, b, rr) for a, b in rr.false_links]
        missed += [(a, b, rr) for a, b in rr.missed]
        seeds_ok &= rr.seeds_apart
        pages_total += len(pages)
        candidates += len(result.candidates)
        band_true += rr.band_true

    print(f"dedup eval: {args.rounds} round(s), {pages_total} parsed pages "
          f"({len(studies)} corpus trials + {args.siblings} hard-negative siblings + seeds per round); "
          f"build {t_build:.1f}s, link {t_link:.2f}s")
    print(f"{'pairs':<16}{'true':>8}{'linked':>8}{'TP':>7}{'FP':>6}{'FN':>6}{'precision':>11}{'recall':>9}{'F1':>8}")
    print(_row("share an ID", totals[True]))
    print(_row("no shared ID", totals[False]))
    both = Tally()
    both.add(totals[True])
    both.add(totals[False])
    print(_row("all", both))
    print(f"review candidates: {candidates} (missed no-ID true pairs whose clusters are a candidate: {band_true})")
    print(f"seed hard negatives (000 CAR-NK / 001 IL3 CAR-T / 003 NK) kept apart: {'yes' if seeds_ok else 'NO'}")

    def show(title: str, rows: list[tuple[str, str, RoundResult]]) -> None:
        if not rows or not args.examples:
            return
        print(f"\n{title} ({len(rows)} pairs; first {min(args.examples, len(rows))}):")
        for a, b, rr in rows[: args.examples]:
            items = {k: p.item for k, p in rr.pages.items()}
            print("  -", _describe(a, rr.pages))
            print("    ", _describe(b, rr.pages))
            print("     ", _pair_explanation(a, b, config, items))

    wrong_edges = []
    for rr in {id(rr): rr for _, _, rr in false_links}.values():
        edges = {
            tuple(sorted((link.key, link.matched_key))) for link in rr.result.links
            if link.matched_key and rr.pages[link.key].truth != rr.pages[link.matched_key].truth
        }
        wrong_edges += [(a, b, rr) for a, b in sorted(edges)]
    show("links between different trials (the edges behind false links)", wrong_edges)
    show("missed links", missed)

    failures = []
    if totals[True].recall < 1.0:
        failures.append(f"ID-sharing recall {totals[True].recall:.4f} < 1")
    if totals[False].precision < TARGET_PRECISION:
        failures.append(f"no-ID precision {totals[False].precision:.4f} < {TARGET_PRECISION}")
    if totals[False].recall < TARGET_RECALL:
        failures.append(f"no-ID recall {totals[False].recall:.4f} < {TARGET_RECALL}")
    if not seeds_ok:
        failures.append("seed hard negatives linked")
    if failures:
        print("\nFAILED: " + "; ".join(failures))
        return 0 if args.no_fail else 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
