"""Field-by-field accuracy of the extractor against CT.gov ground truth.

    python -m pipeline.devtools.eval [--corpus DIR] [--all] [--sites ...] [--limit N]
                                     [--examples K] [--by-variant] [--json PATH] [--no-fail]

Default corpus: every CT.gov record rendered on both sites in every markup variant, in
memory (the "dev corpus"); `--all` renders each page both with and without the NCT ID;
`--corpus DIR` reads a directory written by `build_fixtures` instead.  Each page goes
through `pipeline.parse.parse_page` (as a RawPage at the URL the page would have) and the
record is compared with the ground truth cut down to what the page shows
(`render.visible_truth`); fields a page does not show are not scored.

Scoring:
  * enumerations, numbers, dates, booleans, phases: exact; funder types: as a set;
    nct_id: exact, expected None when the page shows the ID nowhere (a guessed ID is wrong);
  * fields a site does not show but fills with site-written look-alike text (ClinConnect's
    summary and sponsor blurb -> brief_summary, detailed_description) must stay empty;
  * free text (titles, sponsor, summaries): whitespace/case-normalized rapidfuzz ratio,
    >= 0.95 counts as correct; the mean similarity is reported too;
  * ages as text: number + unit, plural-insensitive ("18 Years" == "18 years");
  * collections (conditions, keywords, identifiers, interventions, arms, contacts,
    locations, criteria): each truth item is matched to an unused extracted item of the
    same kind (criterion type, contact role, id type, ...) with similar text whose shown
    attributes also agree; micro precision/recall/F1 over items, F1 is the field's score
    (identifiers: only CT.gov id types are scored -- a site's own ids are extras, not errors);
  * criteria.nesting: of matched criteria, the share whose parent is the match of the
    true parent (pages whose markup shows nesting only).
The run fails (exit 1) when any scored field is below 98% on either site or overall
(`--no-fail` always exits 0).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from pipeline.devtools.ctgov import CORPUS_DIR, load_studies, record_from_dict
from pipeline.devtools.render import SITES, VARIANTS, default_show_nct, must_be_empty, render_page, visible_truth
from pipeline.ingest import raw_page_from_bytes
from pipeline.models import ParsedPage, TrialRecord

THRESHOLD = 0.98
TEXT_OK = 0.95
FETCHED_AT = dt.datetime(2025, 6, 1, 12, 0, 0)
DEFAULT_SEED = 20250601


@dataclass(frozen=True, slots=True)
class EvalPage:
    """One page to score: its bytes, where it would come from, the truth and what it shows."""

    file: str
    site: str
    variant: int
    url: str
    html: bytes
    truth: TrialRecord
    shown: frozenset[str]
    empty: frozenset[str] = frozenset()  # not shown, but decoy text on the page: must stay empty


Extractor = Callable[[EvalPage], "TrialRecord | ParsedPage | None"]

# --------------------------------------------------------------------------- corpora


def dev_corpus(
    root: str | Path = CORPUS_DIR,
    *,
    exhaustive: bool = False,
    sites: Sequence[str] = SITES,
    limit: int | None = None,
    rng_seed: int | str = DEFAULT_SEED,
) -> Iterator[EvalPage]:
    """Every record x site x variant, rendered on the fly (NCT shown per `default_show_nct`)."""
    studies = load_studies(root)
    if limit:
        studies = studies[:limit]
    for study in studies:
        rec = study.record
        for site in sites:
            for variant in VARIANTS[site]:
                shows = (True, False) if exhaustive else (default_show_nct(rec.nct_id, site, variant),)
                for show in shows:
                    page = render_page(rec, site, variant, show_nct=show, rng_seed=rng_seed, extras=study.extras)
                    yield EvalPage(
                        file=page.file_name if not exhaustive else page.file_name.replace(".html", f"-{int(show)}.html"),
                        site=site, variant=variant, url=page.plan.url, html=page.html.encode("utf-8"),
                        truth=rec, shown=page.shown, empty=must_be_empty(site),
                    )


def read_corpus(directory: str | Path) -> list[EvalPage]:
    """Pages of a directory written by `build_fixtures` (manifest.jsonl + truth.jsonl + pages)."""
    base = Path(directory)
    truth: dict[str, TrialRecord] = {}
    for line in (base / "truth.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = record_from_dict(json.loads(line))
            truth[rec.nct_id or ""] = rec
    pages = []
    for line in (base / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        m = json.loads(line)
        pages.append(EvalPage(
            file=m["file"], site=m["site"], variant=int(m["variant"]), url=m["url"],
            html=(base / m["file"]).read_bytes(), truth=truth[m["nct_id"]], shown=frozenset(m["shown"]),
            empty=frozenset(m.get("must_be_empty", must_be_empty(m["site"]))),
        ))
    return pages


def parser_extract(page: EvalPage) -> ParsedPage:
    """The real extractor: RawPage at the page's would-be URL -> parse_page."""
    from pipeline.parse import parse_page  # imported late: the parser is being written in parallel

    return parse_page(raw_page_from_bytes(page.url, page.html, FETCHED_AT))


# --------------------------------------------------------------------------- comparison helpers

_WS = re.compile(r"\s+")


def norm_text(text: str | None) -> str:
    return _WS.sub(" ", text).strip().casefold() if text else ""


def text_similarity(a: str | None, b: str | None) -> float:
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    na, nb = norm_text(a), norm_text(b)
    if na == nb:
        return 1.0
    return fuzz.ratio(na, nb) / 100.0


def _text_ok(a: str | None, b: str | None) -> bool:
    return text_similarity(a, b) >= TEXT_OK


_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*([a-z]+?)s?$")


def age_key(text: str | None) -> str | None:
    t = norm_text(text)
    if not t:
        return None
    m = _AGE.match(t)
    return f"{float(m[1]):g} {m[2]}" if m else t


def _float_ok(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-3 * max(1.0, abs(a))


def _cred_key(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (text or "").casefold())


def _phone_key(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def _id_key(text: str | None) -> str:
    return _WS.sub("", text or "").casefold()


# Collections: (compatibility key, primary text for pairing, attribute checks).
def _item_spec(field: str, item: Any) -> tuple[Any, str, tuple[Any, ...]]:
    if field in ("conditions", "keywords"):
        return None, item, ()
    if field == "identifiers":
        return item.id_type, _id_key(item.id_value), ()
    if field == "interventions":
        return item.intervention_type, item.name, (("text", item.description),)
    if field == "arms":
        return item.arm_type, item.label, (
            ("text", item.description),
            ("set", frozenset(norm_text(x) for x in item.interventions)),
        )
    if field == "contacts":
        return item.role, item.name, (
            ("exact", _cred_key(item.credentials)),
            ("exact", _phone_key(item.phone)),
            ("exact", (item.email or "").casefold().strip()),
            ("text", item.title),
            ("text", item.affiliation),
        )
    if field == "locations":
        joined = " | ".join(x or "" for x in (item.facility, item.city, item.state, item.country))
        return None, joined, (
            ("text", item.facility), ("text", item.city), ("text", item.state), ("text", item.country),
            ("exact", item.status),
        )
    if field == "criteria":
        return item.criterion_type, item.text, ()
    raise KeyError(field)


def _attrs_ok(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    for (kind, x), (_, y) in zip(a, b):
        if kind == "text":
            if not _text_ok(x, y):
                return False
        elif x != y:
            return False
    return True


def match_items(field: str, truth: Sequence[Any], got: Sequence[Any]) -> list[tuple[int, int]]:
    """Pairs (truth index, extracted index) of items that agree: same kind, similar text, same attributes."""
    specs_t = [_item_spec(field, x) for x in truth]
    specs_g = [_item_spec(field, x) for x in got]
    used: set[int] = set()
    pairs: list[tuple[int, int]] = []
    pending: list[int] = []
    # Exact primary text first (cheap and unambiguous), then fuzzy for the rest.
    index: dict[tuple[Any, str], list[int]] = defaultdict(list)
    for j, (key, primary, _) in enumerate(specs_g):
        index[(key, norm_text(primary))].append(j)
    for i, (key, primary, attrs) in enumerate(specs_t):
        hit = None
        for j in index.get((key, norm_text(primary)), ()):
            if j not in used and _attrs_ok(attrs, specs_g[j][2]):
                hit = j
                break
        if hit is None:
            pending.append(i)
        else:
            used.add(hit)
            pairs.append((i, hit))
    for i in pending:
        key, primary, attrs = specs_t[i]
        best, best_sim = None, TEXT_OK
        for j, (gkey, gprimary, gattrs) in enumerate(specs_g):
            if j in used or gkey != key:
                continue
            sim = text_similarity(primary, gprimary)
            if sim >= best_sim and _attrs_ok(attrs, gattrs):
                best, best_sim = j, sim
        if best is not None:
            used.add(best)
            pairs.append((i, best))
    return pairs


# --------------------------------------------------------------------------- field catalogue

_EXACT = {
    "nct_id", "overall_status", "study_type", "enrollment", "enrollment_type", "sex", "healthy_volunteers",
    "primary_purpose", "allocation", "intervention_model", "masking", "start_date", "primary_completion_date",
    "completion_date", "first_submitted_date", "last_update_date", "phases",
}
_TEXT = {"brief_title", "official_title", "acronym", "lead_sponsor", "brief_summary", "detailed_description"}
_AGES = {"min_age", "max_age"}
_FLOATS = {"min_age_years", "max_age_years"}
_SETS = {"funder_types"}
_CTGOV_ID_TYPES = frozenset({"nct", "org_study_id", "secondary"})
_ITEMS = {"conditions", "keywords", "identifiers", "interventions", "arms", "contacts", "locations", "criteria"}

FIELD_ORDER: tuple[str, ...] = tuple(
    f.name for f in fields(TrialRecord)
) + ("criteria.nesting",)


def _kind(field: str) -> str:
    if field == "criteria.nesting":
        return "nesting"
    if field in _EXACT:
        return "exact"
    if field in _TEXT:
        return "text"
    if field in _AGES:
        return "age"
    if field in _FLOATS:
        return "float"
    if field in _SETS:
        return "set"
    if field in _ITEMS:
        return "items"
    raise KeyError(field)


class _Acc:
    """Counters for one (field, site) cell."""

    __slots__ = ("n", "correct", "sim", "tp", "n_truth", "n_got", "pages_exact")

    def __init__(self) -> None:
        self.n = self.correct = self.tp = self.n_truth = self.n_got = self.pages_exact = 0
        self.sim = 0.0

    def add(self, other: _Acc) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self, kind: str) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n}
        if kind == "items":
            p = self.tp / self.n_got if self.n_got else (1.0 if not self.n_truth else 0.0)
            r = self.tp / self.n_truth if self.n_truth else (1.0 if not self.n_got else 0.0)
            f1 = 2 * p * r / (p + r) if p + r else 0.0
            out.update(precision=p, recall=r, f1=f1, score=f1, items_truth=self.n_truth, items_extracted=self.n_got,
                       pages_exact=self.pages_exact / self.n if self.n else 1.0)
        else:
            out.update(score=self.correct / self.n if self.n else 1.0, correct=self.correct)
            if kind == "text":
                out["mean_similarity"] = self.sim / self.n if self.n else 1.0
        return out


def _show(value: Any) -> Any:
    if isinstance(value, (dt.date,)):
        return value.isoformat()
    if isinstance(value, (tuple, list)):
        return [_show(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _show(getattr(value, f.name)) for f in fields(value)}
    return value


def expected_record(page: EvalPage) -> TrialRecord:
    """What a perfect extractor returns for `page`: the truth as shown, must-be-empty fields empty."""
    expected = visible_truth(page.truth, page.shown)
    blank = {f: None for f in page.empty - page.shown if f in _TEXT | _EXACT | _AGES | _FLOATS}
    return replace(expected, **blank) if blank else expected


def score_page(page: EvalPage, got: TrialRecord | None) -> dict[str, tuple[_Acc, Any, Any]]:
    """Per-field counters for one page (plus expected/got values for failure examples)."""
    expected = expected_record(page)
    got = got or TrialRecord()
    out: dict[str, tuple[_Acc, Any, Any]] = {}
    for field in FIELD_ORDER:
        if field == "criteria.nesting":
            if "criteria.nesting" not in page.shown or "criteria" not in page.shown:
                continue
        elif field != "nct_id" and field not in page.shown and field not in page.empty:
            continue
        kind = _kind(field)
        acc = _Acc()
        if kind == "nesting":
            e_val, g_val = expected.criteria, got.criteria
            pairs = match_items("criteria", e_val, g_val)
            mapped = {(e_val[i].criterion_type, e_val[i].ordinal): (g_val[j].criterion_type, g_val[j].ordinal)
                      for i, j in pairs}
            bad = []
            for i, j in pairs:
                t, g = e_val[i], g_val[j]
                want = mapped.get((t.criterion_type, t.parent_ordinal)) if t.parent_ordinal else None
                have = (g.criterion_type, g.parent_ordinal) if g.parent_ordinal else None
                ok = (want is None and have is None) or (want is not None and want == have)
                acc.n += 1
                acc.correct += ok
                if not ok:
                    bad.append(t.text[:60])
            if not pairs:
                continue
            out[field] = (acc, "parents of matched items", bad[:5])
            continue
        e_val = getattr(expected, field)
        g_val = getattr(got, field)
        acc.n = 1
        if kind == "exact":
            acc.correct = int(e_val == g_val)
        elif kind == "text":
            sim = text_similarity(e_val, g_val)
            acc.sim = sim
            acc.correct = int(sim >= TEXT_OK)
        elif kind == "age":
            acc.correct = int(age_key(e_val) == age_key(g_val))
        elif kind == "float":
            acc.correct = int(_float_ok(e_val, g_val))
        elif kind == "set":
            acc.correct = int(set(e_val) == set(g_val))
        else:  # items
            if field == "identifiers":
                # A site's own ids ("veeva_slug", ...) are legitimate extras CT.gov has no truth for.
                g_val = tuple(i for i in g_val if i.id_type in _CTGOV_ID_TYPES)
            pairs = match_items(field, e_val, g_val)
            acc.tp, acc.n_truth, acc.n_got = len(pairs), len(e_val), len(g_val)
            acc.pages_exact = int(len(pairs) == len(e_val) == len(g_val))
            acc.correct = acc.pages_exact
            if not acc.pages_exact:
                hit_t = {i for i, _ in pairs}
                hit_g = {j for _, j in pairs}
                e_val = [x for i, x in enumerate(e_val) if i not in hit_t]  # unmatched only, for examples
                g_val = [x for j, x in enumerate(g_val) if j not in hit_g]
        out[field] = (acc, e_val, g_val)
    return out


# --------------------------------------------------------------------------- evaluation


def evaluate(
    pages: Iterable[EvalPage],
    extract: Extractor | None = None,
    *,
    examples: int = 3,
    by_variant: bool = False,
) -> dict[str, Any]:
    """Score `extract` (default: the real parser) on `pages`; returns a JSON-ready result dict.

    `extract` may return a TrialRecord, a ParsedPage or None (= nothing extracted).
    Result keys: pages, parse_status, fields (field -> kind + per-site and overall
    summaries with "score"), failing (fields below THRESHOLD), examples, seconds.
    """
    extract = extract or parser_extract
    started = time.perf_counter()
    extract_seconds = 0.0
    cells: dict[str, dict[str, _Acc]] = defaultdict(lambda: defaultdict(_Acc))
    status: dict[str, Counter[str]] = defaultdict(Counter)
    errors: Counter[str] = Counter()
    failures: dict[str, list[dict[str, Any]]] = defaultdict(list)
    n_pages: Counter[str] = Counter()
    empty_checks: set[str] = set()
    for page in pages:
        t0 = time.perf_counter()
        try:
            result = extract(page)
        except Exception as exc:  # an extractor crash is a result, not a reason to stop
            result = None
            status[page.site]["crashed"] += 1
            errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
        else:
            if isinstance(result, ParsedPage):
                status[page.site][result.parse_status] += 1
                if result.parse_error:
                    errors[result.parse_error[:120]] += 1
                result = result.record
            else:
                status[page.site]["ok" if result is not None else "rejected"] += 1
        extract_seconds += time.perf_counter() - t0
        n_pages[page.site] += 1
        empty_checks |= {f"{page.site}:{f}" for f in page.empty - page.shown}
        groups = [page.site] + ([f"{page.site}/v{page.variant}"] if by_variant else [])
        for field, (acc, e_val, g_val) in score_page(page, result).items():
            for g in groups:
                cells[field][g].add(acc)
            if acc.correct < acc.n and len(failures[field]) < examples:
                failures[field].append({"file": page.file, "url": page.url,
                                        "expected": _show(e_val), "got": _show(g_val)})

    fields_out: dict[str, Any] = {}
    failing: list[str] = []
    failing_cells: list[str] = []
    for field in FIELD_ORDER:
        if field not in cells:
            continue
        kind = _kind(field)
        per = {g: acc.summary(kind) for g, acc in sorted(cells[field].items())}
        total = _Acc()
        for g, acc in cells[field].items():
            if "/" not in g:
                total.add(acc)
        per["overall"] = total.summary(kind)
        fields_out[field] = {"kind": kind, **per}
        # A field must hold on each site, not just on average.
        low = [g for g, summ in per.items() if "/" not in g and summ.get("n") and summ["score"] < THRESHOLD]
        if low:
            failing.append(field)
            failing_cells += [f"{field} ({g})" for g in low]
    return {
        "pages": {**dict(n_pages), "overall": sum(n_pages.values())},
        "parse_status": {s: dict(c) for s, c in status.items()},
        "parse_errors": dict(errors.most_common(10)),
        "fields": fields_out,
        "failing": failing,
        "failing_cells": failing_cells,
        "must_be_empty": sorted(empty_checks),
        "threshold": THRESHOLD,
        "examples": dict(failures),
        "seconds": time.perf_counter() - started,
        "extract_seconds": extract_seconds,
    }


def _cell(summary: dict[str, Any] | None) -> str:
    if not summary or not summary.get("n"):
        return "-"
    return f"{summary['score'] * 100:6.1f}% (n={summary['n']})"


def format_report(result: dict[str, Any], *, examples: bool = True) -> str:
    groups = ["veeva", "clinconnect"]
    extra = sorted({g for f in result["fields"].values() for g in f if "/" in g})
    cols = groups + extra + ["overall"]
    width = max(len(c) for c in cols) + 2
    lines = [f"{'field':24} " + " ".join(f"{c:>{max(width, 18)}}" for c in cols)]
    for field, info in result["fields"].items():
        mark = f"  <-- below {result['threshold'] * 100:.0f}%" if field in result["failing"] else ""
        lines.append(f"{field:24} " + " ".join(f"{_cell(info.get(c)):>{max(width, 18)}}" for c in cols) + mark)
    if result.get("must_be_empty"):
        lines.append("scored as 'must stay empty' (the site shows only site-written look-alike text): "
                     + ", ".join(result["must_be_empty"]))
    lines.append("")
    lines.append("collections (overall): precision / recall / F1, pages exactly right")
    for field, info in result["fields"].items():
        o = info["overall"]
        if info["kind"] == "items" and o.get("n"):
            lines.append(f"  {field:22} P={o['precision'] * 100:5.1f}%  R={o['recall'] * 100:5.1f}%  "
                         f"F1={o['f1'] * 100:5.1f}%  exact pages={o['pages_exact'] * 100:5.1f}%  "
                         f"items truth/extracted={o['items_truth']}/{o['items_extracted']}")
    text_means = [f"{f}={i['overall']['mean_similarity'] * 100:.1f}%" for f, i in result["fields"].items()
                  if i["kind"] == "text" and i["overall"].get("n")]
    if text_means:
        lines.append("text mean similarity: " + ", ".join(text_means))
    lines.append("")
    pages = result["pages"]
    lines.append(f"pages: {pages.get('overall', 0)} (veeva {pages.get('veeva', 0)}, clinconnect {pages.get('clinconnect', 0)})"
                 f"  parse status: {json.dumps(result['parse_status'], sort_keys=True)}")
    if result.get("parse_errors"):
        lines.append("top parse errors: " + "; ".join(f"{k} x{v}" for k, v in result["parse_errors"].items()))
    scores = [i["overall"]["score"] for i in result["fields"].values() if i["overall"].get("n")]
    if scores:
        lines.append(f"fields scored: {len(scores)}  mean score: {sum(scores) / len(scores) * 100:.1f}%  "
                     f"min: {min(scores) * 100:.1f}%")
    lines.append(f"time: {result['seconds']:.1f}s total, {result['extract_seconds']:.1f}s in the extractor")
    if result["failing"]:
        lines.append(f"FAIL: {len(result['failing'])} field(s) below {result['threshold'] * 100:.0f}% on a site "
                     f"or overall: " + ", ".join(result.get("failing_cells") or result["failing"]))
    else:
        lines.append(f"OK: every scored field >= {result['threshold'] * 100:.0f}%")
    if examples and result["examples"]:
        lines.append("")
        lines.append("examples of misses (expected vs got; collections list unmatched items only):")
        for field, items in result["examples"].items():
            for ex in items:
                e = json.dumps(ex["expected"], ensure_ascii=False)[:300]
                g = json.dumps(ex["got"], ensure_ascii=False)[:300]
                lines.append(f"  [{field}] {ex['file']}\n      expected: {e}\n      got:      {g}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.devtools.eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="directory written by build_fixtures (default: render the dev corpus in memory)")
    ap.add_argument("--ctgov", default=str(CORPUS_DIR), help="CT.gov records for the in-memory dev corpus")
    ap.add_argument("--all", action="store_true", help="dev corpus: every page both with and without the NCT ID")
    ap.add_argument("--sites", nargs="+", choices=SITES, default=list(SITES))
    ap.add_argument("--limit", type=int, help="dev corpus: only the first N records")
    ap.add_argument("--examples", type=int, default=3, help="failure examples kept per field (0 = none)")
    ap.add_argument("--by-variant", action="store_true", help="also report per markup variant")
    ap.add_argument("--json", help="write the full result as JSON here")
    ap.add_argument("--no-fail", action="store_true", help="always exit 0")
    args = ap.parse_args(argv)

    if args.corpus:
        pages: Iterable[EvalPage] = [p for p in read_corpus(args.corpus) if p.site in args.sites]
    else:
        pages = dev_corpus(args.ctgov, exhaustive=args.all, sites=args.sites, limit=args.limit)
    result = evaluate(pages, examples=args.examples, by_variant=args.by_variant)
    print(format_report(result, examples=args.examples > 0))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return 0 if args.no_fail or not result["failing"] else 1


__all__ = [
    "EvalPage",
    "THRESHOLD",
    "dev_corpus",
    "evaluate",
    "expected_record",
    "format_report",
    "main",
    "match_items",
    "parser_extract",
    "read_corpus",
    "score_page",
    "text_similarity",
]

if __name__ == "__main__":
    sys.exit(main())
