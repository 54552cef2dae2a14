"""Survivorship: one golden TrialRecord from a trial's pages, and where each value came from.

Rules, per field (or field group, or child list), among the pages that show a value:
  1. the freshest page: latest "last update" date shown on the page, then latest fetch time;
  2. among equally fresh pages, the most complete value (longest text, most list items,
     most members of a field group filled);
  3. then a fixed source order (SOURCE_ORDER: Veeva shows more registry fields than
     ClinConnect), then page_id.
A field no page shows stays empty.  `field_sources` names the page of every value kept;
`field_conflicts` lists, for every `trials` column, each current page's value when the
current pages (latest version of each URL) disagree -- older versions of one URL are
history (trial_history), not disagreement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz.utils import default_process

from pipeline.models import TrialRecord

SOURCE_ORDER: tuple[str, ...] = ("veeva", "clinconnect", "unknown")

# Fields merged as a unit, so a count never pairs with another page's count type.
FIELD_GROUPS: tuple[tuple[str, ...], ...] = (
    ("enrollment", "enrollment_type"),
    ("min_age", "min_age_years"),
    ("max_age", "max_age_years"),
)
# TrialRecord list fields stored as child tables: field_sources names them by table.
LIST_FIELDS: dict[str, str] = {
    "identifiers": "identifiers", "conditions": "conditions", "keywords": "keywords",
    "interventions": "interventions", "arms": "arms", "criteria": "criteria",
    "contacts": "contacts", "locations": "locations",
}
# Scalar (and small list) columns of `trials` checked for conflicts between pages.
CONFLICT_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(TrialRecord) if f.name not in LIST_FIELDS
)


@dataclass(frozen=True, slots=True)
class SourcePage:
    """One page version as survivorship sees it."""

    page_id: str
    source: str
    fetched_at: dt.datetime | None
    record: TrialRecord
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Golden:
    record: TrialRecord
    page_ids: tuple[str, ...]  # freshest first
    sources: Mapping[str, str]  # field -> page_id of the value kept
    conflicts: tuple[tuple[str, str, str], ...]  # (field, value text, page_id), sorted


def _source_rank(source: str) -> int:
    return SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER)


def freshness(page: SourcePage) -> tuple[dt.date, dt.datetime]:
    return (page.record.last_update_date or dt.date.min, page.fetched_at or dt.datetime.min)


def order_pages(pages: Iterable[SourcePage]) -> list[SourcePage]:
    """Freshest first; ties by source order, then page_id."""
    return sorted(
        pages,
        key=lambda p: (
            -freshness(p)[0].toordinal(),
            -(freshness(p)[1] - dt.datetime.min).total_seconds(),
            _source_rank(p.source),
            p.page_id,
        ),
    )


def is_missing(value: object) -> bool:
    return value is None or value == () or (isinstance(value, str) and not value.strip())


def completeness(value: object) -> int:
    if is_missing(value):
        return 0
    if isinstance(value, str):
        return len(value.strip())
    if isinstance(value, tuple):
        return len(value)
    return 1


def _tiers(ordered: Sequence[SourcePage]) -> list[list[SourcePage]]:
    """Pages grouped by equal freshness, freshest group first (order kept inside)."""
    tiers: list[list[SourcePage]] = []
    last: tuple[dt.date, dt.datetime] | None = None
    for page in ordered:
        fresh = freshness(page)
        if fresh != last:
            tiers.append([])
            last = fresh
        tiers[-1].append(page)
    return tiers


def _pick(tiers: Sequence[Sequence[SourcePage]], names: tuple[str, ...]) -> SourcePage | None:
    """The page whose value(s) of `names` survive: the first freshness tier that shows any,
    then the most complete value in that tier (tiers keep source order, then page_id)."""
    for tier in tiers:
        best: SourcePage | None = None
        best_score = 0
        for page in tier:
            if len(names) == 1:
                score = completeness(getattr(page.record, names[0]))
            else:
                score = sum(not is_missing(getattr(page.record, n)) for n in names)
            if score > best_score:
                best, best_score = page, score
                if len(tier) == 1:
                    break
        if best is not None:
            return best
    return None


def value_text(value: object) -> str | None:
    """A value as text (like trial_history): ISO dates, comma-joined lists, None for empty."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value if value.strip() else None
    return str(value)


def _same_key(text: str) -> str:
    # Mirrors differ in case, punctuation and spacing of one value; that is no disagreement.
    return " ".join(default_process(text).split()) or text


def current_versions(pages: Sequence[SourcePage]) -> list[SourcePage]:
    """The latest fetched version of each URL (pages without a URL count on their own)."""
    latest: dict[str, SourcePage] = {}
    for page in pages:
        url = page.url or page.page_id
        old = latest.get(url)
        if old is None or (page.fetched_at or dt.datetime.min, page.page_id) > (
                old.fetched_at or dt.datetime.min, old.page_id):
            latest[url] = page
    return sorted(latest.values(), key=lambda p: p.page_id)


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrialRecord))
_GROUPED = frozenset(name for group in FIELD_GROUPS for name in group)


def survive(pages: Sequence[SourcePage], nct_id: str | None = None, *, conflicts: bool = True) -> Golden:
    """The golden record of one trial's pages (see the module docstring).

    `conflicts=False` skips listing disagreements (`Golden.conflicts` is then empty): the
    history replay asks for a golden record at every fetch instant of a trial and only
    needs its values, and the listing is what made that quadratic in a trial's pages.
    """
    if not pages:
        raise ValueError("survive needs at least one page")
    if len(pages) == 1:  # the common case, and a fast one: every value is the page's own
        return _single(pages[0], nct_id)
    ordered = order_pages(pages)
    tiers = _tiers(ordered)
    merged: dict[str, object] = {}
    sources: dict[str, str] = {}
    for group in FIELD_GROUPS:
        page = _pick(tiers, group)
        for name in group:
            merged[name] = getattr(page.record, name) if page else getattr(ordered[0].record, name)
            if page and not is_missing(merged[name]):
                sources[name] = page.page_id
    for name in _FIELD_NAMES:
        if name in _GROUPED:
            continue
        page = _pick(tiers, (name,))
        merged[name] = getattr((page or ordered[0]).record, name)
        if page:
            sources[LIST_FIELDS.get(name, name)] = page.page_id
    if nct_id:
        merged["nct_id"] = nct_id
        sources.setdefault("nct_id", ordered[0].page_id)
    record = TrialRecord(**merged)  # type: ignore[arg-type]
    return Golden(record, tuple(p.page_id for p in ordered), sources, _conflicts(pages) if conflicts else ())


def _single(page: SourcePage, nct_id: str | None) -> Golden:
    record = page.record
    if nct_id and record.nct_id != nct_id:
        record = dataclasses.replace(record, nct_id=nct_id)
    sources = {LIST_FIELDS.get(n, n): page.page_id for n in _FIELD_NAMES
               if not is_missing(getattr(record, n))}
    return Golden(record, (page.page_id,), sources, ())


def _conflicts(pages: Sequence[SourcePage]) -> tuple[tuple[str, str, str], ...]:
    current = current_versions(pages)
    if len(current) < 2:
        return ()
    out: list[tuple[str, str, str]] = []
    for name in CONFLICT_FIELDS:
        raw = [getattr(p.record, name) for p in current]
        present = [v for v in raw if not is_missing(v)]
        if len(present) < 2 or all(v == present[0] for v in present):
            continue
        shown = [(value_text(v), p.page_id) for v, p in zip(raw, current)]
        shown = [(v, pid) for v, pid in shown if v is not None]
        if len({_same_key(v) for v in {v for v, _ in shown}}) > 1:  # (each distinct text once)
            out.extend((name, v, pid) for v, pid in shown)
    return tuple(sorted(out))


__all__ = [
    "CONFLICT_FIELDS", "FIELD_GROUPS", "Golden", "LIST_FIELDS", "SOURCE_ORDER", "SourcePage",
    "current_versions", "order_pages", "survive", "value_text",
]
