"""Criterion text -> structured constraints and exclusion flags.

`extract_constraints` and `flags` work on one item; `profile_criteria` works on a page's
`Criterion` tuple and repairs what item splitting breaks (a bound whose exception spilled
into a nested item, "Age:" headings whose value is the next item).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pipeline.eligibility import _gate
from pipeline.eligibility._common import Row
from pipeline.eligibility._labs import extract_labs
from pipeline.eligibility._patient import extract_age, extract_antigens, extract_life_expectancy, extract_performance
from pipeline.eligibility._quantity import find_quantities
from pipeline.eligibility._text import NormText, boundaries
from pipeline.eligibility._washout import extract_washouts
from pipeline.eligibility.flags import item_flags
from pipeline.eligibility.model import Constraint, CriterionProfile
from pipeline.models import Criterion

_OR_RE = re.compile(r"\bor\b|\bOR\b")
_SENTENCE_END_RE = re.compile(r"\.\s")


def _merge_bounds(rows: list[Row]) -> list[Row]:
    """Join "> 18 ... and < 70 years" (two one-sided rows) into one interval."""
    out: list[Row] = []
    for r in rows:
        last = next((o for o in reversed(out) if o.variable == r.variable and o.antigen == r.antigen), None)
        if (last is not None and last.condition == r.condition and last.unit == r.unit
                and last.negated == r.negated and last.alt is None and r.alt is None):
            if last.upper is None and last.lower is not None and r.lower is None and r.upper is not None \
                    and last.lower < r.upper:
                last.upper, last.upper_inclusive, last.end = r.upper, r.upper_inclusive, max(last.end, r.end)
                continue
            if last.lower is None and last.upper is not None and r.upper is None and r.lower is not None \
                    and r.lower < last.upper:
                last.lower, last.lower_inclusive, last.end = r.lower, r.lower_inclusive, max(last.end, r.end)
                continue
        out.append(r)
    return out


def _key(r: Row) -> tuple[object, ...]:
    return (r.variable, r.lower, r.lower_inclusive, r.upper, r.upper_inclusive, r.unit, r.condition,
            r.antigen, r.negated)


def _extract_rows(criterion_type: str, nt: NormText, parts: int = _gate.ALL) -> list[Row]:
    """Rows of the extractors in `parts` (see `_gate.plan`; the others cannot fire)."""
    text = nt.text
    bounds = boundaries(text)
    qtys = find_quantities(text) if parts & _gate.NEEDS_QUANTITIES else []
    if parts & _gate.NEEDS_QUANTITIES:
        parts = _gate.refine(parts, qtys)
    if parts & _gate.WASHOUTS and not _gate.has_time_window(text):
        parts &= ~_gate.WASHOUTS
    if not parts:
        return []
    consumed: set[int] = set()
    rows: list[Row] = []

    def consume(spans: list[Row]) -> None:
        for i, q in enumerate(qtys):
            if any(r.start <= q.start < r.end or q.start <= r.start < q.end for r in spans):
                consumed.add(i)

    if parts & _gate.PERF:
        perf = extract_performance(nt)
        consume(perf)
        rows += perf
    if parts & _gate.ANTIGENS:
        antigens = extract_antigens(nt, bounds)
        consume([r for r in antigens if r.unit == "%"])
        rows += antigens
    if parts & _gate.LIFE_EXPECTANCY:
        rows += extract_life_expectancy(nt, qtys, bounds, consumed)
    if parts & _gate.AGE:
        rows += extract_age(nt, qtys, bounds, consumed)
    if parts & _gate.LABS:
        rows += extract_labs(nt, qtys, bounds, consumed)
    if parts & _gate.WASHOUTS:
        rows += extract_washouts(nt, bounds, criterion_type)
    if len(rows) <= 1:
        return rows  # (nothing to order, merge or deduplicate)
    rows.sort(key=lambda r: (r.start, r.end))
    rows = _merge_bounds(rows)
    seen: set[tuple[object, ...]] = set()
    unique: list[Row] = []
    for r in rows:
        k = _key(r)
        if k not in seen:
            seen.add(k)
            unique.append(r)
    return unique


def _groups(criterion_type: str, text: str, rows: list[Row]) -> list[int | None]:
    """Alternative-set numbers (1, 2, ...) for rows of an inclusion item; None = required."""
    groups: list[int | None] = [None] * len(rows)
    if criterion_type != "inclusion":
        return groups
    n = 0
    for i in range(1, len(rows)):
        a, b = rows[i - 1], rows[i]
        joined = a.alt is not None and a.alt == b.alt
        if not joined and a.end <= b.start and _OR_RE.search(text, a.end, b.start) \
                and not _SENTENCE_END_RE.search(text, a.end, b.start):
            gap = b.start - a.end
            joined = (a.condition is None and b.condition is None and a.variable != b.variable and gap <= 40) or (
                a.method and b.method and a.variable == b.variable and gap <= 80)
        if joined:
            if groups[i - 1] is None:
                n += 1
                groups[i - 1] = n
            groups[i] = groups[i - 1]
    return groups


def _to_constraints(criterion_type: str, nt: NormText, rows: list[Row]) -> tuple[Constraint, ...]:
    default_neg = criterion_type == "exclusion"
    groups = _groups(criterion_type, nt.text, rows)
    return tuple(
        Constraint(
            variable=r.variable, lower=r.lower, lower_inclusive=r.lower_inclusive, upper=r.upper,
            upper_inclusive=r.upper_inclusive, unit=r.unit,
            negated=default_neg if r.negated is None else r.negated,
            condition=r.condition, text=nt.span(r.start, r.end), antigen=r.antigen, group=g,
        )
        for r, g in zip(rows, groups)
    )


def extract_constraints(criterion_type: str, text: str) -> tuple[Constraint, ...]:
    """Structured bounds stated by one criterion item ("inclusion" or "exclusion")."""
    return analyze(criterion_type, text)[0]


def flags(criterion_type: str, text: str) -> tuple[str, ...]:
    """Exclusion flags raised by one criterion item (see `pipeline.eligibility.flags`)."""
    if not text:
        return ()
    _, want_flags, hints = _gate.scan(text)
    return item_flags(criterion_type, NormText(text, hints).text) if want_flags else ()


def analyze(criterion_type: str, text: str) -> tuple[tuple[Constraint, ...], tuple[str, ...]]:
    """Constraints and flags of one item, normalizing the text once -- and only when a cheap
    look at its words (`_gate.scan`) says some extractor could fire: most items state nothing."""
    if not text:
        return (), ()
    parts, want_flags, hints = _gate.scan(text)
    if not parts and not want_flags:
        return (), ()
    return _analyze_scanned(criterion_type, text, parts, want_flags, hints)


def _analyze_scanned(criterion_type: str, text: str, parts: int, want_flags: bool,
                     hints: int) -> tuple[tuple[Constraint, ...], tuple[str, ...]]:
    """`analyze` after the gate passed (`parts` or `want_flags`)."""
    nt = NormText(text, hints)
    fl = item_flags(criterion_type, nt.text) if want_flags else ()
    if not parts:
        return (), fl
    return _to_constraints(criterion_type, nt, _extract_rows(criterion_type, nt, parts)), fl


# ---------------------------------------------------------------- page level
_HEADING_RE = re.compile(
    r"^\s*(age|performance\s+status|life\s+expectancy|hematopoietic|hepatic|renal|cardiovascular|pulmonary)\s*:\s*$",
    re.IGNORECASE,
)
_CONTINUATION_RE = re.compile(r"^\s*(?:[<>≤≥=]|\d|\\[<>])")


def _item_texts(criteria: Sequence[Criterion]) -> list[tuple[Criterion, str | None]]:
    """Each criterion with the text to analyze (None = folded into its predecessor)."""
    out: list[tuple[Criterion, str | None]] = []
    heading: tuple[str, int] | None = None  # (heading text, ordinal), per criterion type
    i = 0
    while i < len(criteria):
        c = criteria[i]
        text = c.text
        # (= text.rstrip().endswith(":"), without copying every item)
        h = _HEADING_RE.match(text) if text.endswith(":") or (text[-1:].isspace() and text.rstrip().endswith(":")) \
            else None
        if h:
            heading = (h.group(1), c.ordinal)
            out.append((c, text))
            i += 1
            continue
        if heading is not None and (c.parent_ordinal == heading[1] or c.parent_ordinal is None):
            if text.rstrip().endswith(":") and len(text) < 60:
                heading = None
            else:
                text = f"{heading[0]}: {text}"
        # "ALT <= 3 x ULN (for patients with liver invasion" + nested item "5.0xULN);"
        if "(" in text and text.count("(") > text.count(")") and i + 1 < len(criteria):
            nxt = criteria[i + 1]
            if nxt.criterion_type == c.criterion_type and _CONTINUATION_RE.match(nxt.text) and ")" in nxt.text:
                out.append((c, f"{text} {nxt.text}"))
                out.append((nxt, None))
                i += 2
                continue
        out.append((c, text))
        i += 1
    return out


# Most items state nothing: their (immutable) empty profiles are shared, not rebuilt per item.
_EMPTY: dict[str, dict[int, CriterionProfile]] = {"inclusion": {}, "exclusion": {}}


def _empty(criterion_type: str, ordinal: int) -> CriterionProfile:
    cache = _EMPTY.get(criterion_type)
    p = cache.get(ordinal) if cache is not None else None
    if p is None:
        p = CriterionProfile(criterion_type, ordinal, (), ())
        if cache is not None and len(cache) < 5_000:
            cache[ordinal] = p
    return p


def profile_criteria(criteria: Iterable[Criterion]) -> tuple[CriterionProfile, ...]:
    """Constraints and flags for every criterion of one trial, in input order."""
    items = list(criteria)
    inclusions: list[Criterion] = []
    exclusions: list[Criterion] = []
    exclusion_first = other = False
    for c in items:
        t = c.criterion_type
        if t == "inclusion":
            inclusions.append(c)
            if exclusions:
                exclusion_first = True
        elif t == "exclusion":
            exclusions.append(c)
        else:
            other = True
    out: list[CriterionProfile] = []
    scan = _gate.scan
    for ctype, typed in (("inclusion", inclusions), ("exclusion", exclusions)):
        if not typed:
            continue
        empties = _EMPTY[ctype]
        for c, text in _item_texts(typed):
            if text:
                parts, want_flags, hints = scan(text)
                if parts or want_flags:
                    cons, fl = _analyze_scanned(ctype, text, parts, want_flags, hints)
                    if cons or fl:
                        out.append(CriterionProfile(ctype, c.ordinal, cons, fl))
                        continue
            p = empties.get(c.ordinal)
            out.append(p if p is not None else _empty(ctype, c.ordinal))
    # (the usual input lists inclusions first and is already in output order; with only the
    # two types, an exclusion before an inclusion means one right before an inclusion)
    if exclusion_first if not other else \
            any(a.criterion_type == "exclusion" and b.criterion_type == "inclusion" for a, b in zip(items, items[1:])):
        order = {(c.criterion_type, c.ordinal): i for i, c in enumerate(items)}
        out.sort(key=lambda p: order.get((p.criterion_type, p.ordinal), 0))
    return tuple(out)
