"""Assign parsed pages to trials and merge each trial's pages into one golden TrialRecord.

Linking rules (the simple version; fuzzy deduplication comes later):

* Pages whose records carry the same NCT ID (normalized: `nct04599543`, `NCT 0459 9543`
  -> `NCT04599543`) are one trial.  Two different NCT IDs never end up in one trial.
* Pages without an NCT ID are grouped with each other when they share an exact key:
  (org_study_id + lead sponsor) or (normalized brief title + lead sponsor).  Such a group
  joins the NCT trial that has one of its keys when exactly one NCT trial does; when none
  or several do, the group is a trial of its own (several = ambiguous, so never merged).
* Everything else is a trial of its own.

Trial ids: `T` + 12 lowercase hex characters of SHA-256 over the trial's anchor key --
`nct:NCT04599543` for trials with an NCT ID, otherwise the first key of the earliest
fetched page (`org:...`, `title:...`, or `page:<page_id>` when the page has no key).
The id is an opaque, fixed-width token, not the NCT ID itself, so that the later
stable-ID work can keep handing out the *same* id when a trial's anchor changes (say an
NCT ID shows up for a trial first seen without one): it only needs a table mapping
anchors to already-issued ids, and the column format, the joins and every stored id stay
as they are.  48 bits make a collision unlikely below millions of trials.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.models import TrialRecord

_NCT = re.compile(r"NCT[\s_:-]*((?:\d[\s-]*){7}\d)(?!\d)", re.IGNORECASE)
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_SPACES = re.compile(r"\s+")

# Fields merged as a unit, so a count never pairs with another page's count type.
_FIELD_GROUPS: tuple[tuple[str, ...], ...] = (
    ("enrollment", "enrollment_type"),
    ("min_age", "min_age_years"),
    ("max_age", "max_age_years"),
)


@dataclass(frozen=True, slots=True)
class LinkPage:
    """One ok/partial page as the linker sees it."""

    page_id: str
    source: str
    fetched_at: dt.datetime | None
    record: TrialRecord


@dataclass(frozen=True, slots=True)
class LinkedTrial:
    trial_id: str
    anchor: str  # the key trial_id was derived from
    page_ids: tuple[str, ...]  # best (freshest) page first
    sources: tuple[str, ...]  # sorted, distinct
    record: TrialRecord  # the golden record


def normalize_nct(text: str | None) -> str | None:
    """`NCT` + 8 digits from text such as 'nct04599543' or 'NCT 0459 9543', else None."""
    if not text:
        return None
    match = _NCT.search(text)
    if not match:
        return None
    return "NCT" + re.sub(r"\D", "", match.group(1))


def trial_id_for(anchor: str) -> str:
    return "T" + hashlib.sha256(anchor.encode("utf-8")).hexdigest()[:12]


def record_nct(record: TrialRecord) -> str | None:
    """The record's NCT ID: its nct_id field, else an identifier of type 'nct'."""
    nct = normalize_nct(record.nct_id)
    if nct:
        return nct
    for ident in record.identifiers:
        if ident.id_type.lower() == "nct":
            nct = normalize_nct(ident.id_value)
            if nct:
                return nct
    return None


def _norm(text: str | None) -> str:
    if not text:
        return ""
    return _SPACES.sub(" ", _NON_ALNUM.sub(" ", text.casefold())).strip()


def record_keys(record: TrialRecord) -> tuple[str, ...]:
    """Exact-match keys of a record without NCT ID: org ids first, then the title key."""
    sponsor = _norm(record.lead_sponsor)
    if not sponsor:
        return ()
    keys: list[str] = []
    for ident in record.identifiers:
        if ident.id_type == "org_study_id":
            org_id = _SPACES.sub(" ", ident.id_value.casefold()).strip()
            if org_id and f"org:{sponsor}|{org_id}" not in keys:
                keys.append(f"org:{sponsor}|{org_id}")
    title = _norm(record.brief_title)
    if title:
        keys.append(f"title:{sponsor}|{title}")
    return tuple(keys)


def _fetch_order(page: LinkPage) -> tuple[bool, dt.datetime, str]:
    return (page.fetched_at is None, page.fetched_at or dt.datetime.min, page.page_id)


def freshest_first(pages: Iterable[LinkPage]) -> list[LinkPage]:
    """Best page first: latest last_update_date shown, then latest fetched_at, then page_id."""
    by_id = sorted(pages, key=lambda p: p.page_id)
    return sorted(
        by_id,
        key=lambda p: (
            p.record.last_update_date or dt.date.min,
            p.fetched_at or dt.datetime.min,
        ),
        reverse=True,  # Python's sort stays stable under reverse, so ties keep page_id order
    )


def _is_missing(value: object) -> bool:
    return value is None or value == () or (isinstance(value, str) and not value.strip())


def merge_records(records: Sequence[TrialRecord]) -> TrialRecord:
    """One record from several, best first: each field (or field group, or list) comes from
    the first record that has it."""
    if not records:
        raise ValueError("merge_records needs at least one record")
    grouped = {name for group in _FIELD_GROUPS for name in group}
    merged: dict[str, object] = {}
    for group in _FIELD_GROUPS:
        source = next((r for r in records if not _is_missing(getattr(r, group[0]))), None)
        source = source or next(
            (r for r in records if any(not _is_missing(getattr(r, n)) for n in group)),
            records[0],
        )
        for name in group:
            merged[name] = getattr(source, name)
    for field in dataclasses.fields(TrialRecord):
        if field.name in grouped:
            continue
        value = next(
            (getattr(r, field.name) for r in records if not _is_missing(getattr(r, field.name))),
            getattr(records[0], field.name),
        )
        merged[field.name] = value
    return TrialRecord(**merged)  # type: ignore[arg-type]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # smaller id wins so the result does not depend on input order
            self.parent[max(ra, rb)] = min(ra, rb)


def _make_trial(anchor: str, pages: Sequence[LinkPage], nct: str | None) -> LinkedTrial:
    ordered = freshest_first(pages)
    record = merge_records([p.record for p in ordered])
    if nct:
        record = dataclasses.replace(record, nct_id=nct)
    return LinkedTrial(
        trial_id=trial_id_for(anchor),
        anchor=anchor,
        page_ids=tuple(p.page_id for p in ordered),
        sources=tuple(sorted({p.source for p in pages})),
        record=record,
    )


def link_pages(pages: Iterable[LinkPage]) -> tuple[LinkedTrial, ...]:
    """Group pages into trials and merge each group; result sorted by trial_id."""
    unique = {p.page_id: p for p in pages}  # the same page twice is still one page
    by_nct: dict[str, list[LinkPage]] = defaultdict(list)
    loose: list[LinkPage] = []
    for page in unique.values():
        nct = record_nct(page.record)
        if nct:
            by_nct[nct].append(page)
        else:
            loose.append(page)

    key_to_ncts: dict[str, set[str]] = defaultdict(set)
    for nct, group in by_nct.items():
        for page in group:
            for key in record_keys(page.record):
                key_to_ncts[key].add(nct)

    groups = _UnionFind()
    key_owner: dict[str, str] = {}
    for page in sorted(loose, key=lambda p: p.page_id):
        groups.find(page.page_id)
        for key in record_keys(page.record):
            if key in key_owner:
                groups.union(page.page_id, key_owner[key])
            else:
                key_owner[key] = page.page_id
    clusters: dict[str, list[LinkPage]] = defaultdict(list)
    for page in loose:
        clusters[groups.find(page.page_id)].append(page)

    standalone: list[list[LinkPage]] = []
    joins: dict[str, list[LinkPage]] = defaultdict(list)
    for cluster in clusters.values():
        matched = {nct for p in cluster for k in record_keys(p.record) for nct in key_to_ncts[k]}
        if len(matched) == 1:
            joins[matched.pop()].extend(cluster)
        else:
            standalone.append(cluster)

    trials = [
        _make_trial(f"nct:{nct}", group + joins.get(nct, []), nct)
        for nct, group in by_nct.items()
    ]
    for cluster in standalone:
        first = min(cluster, key=_fetch_order)
        keys = record_keys(first.record)
        anchor = keys[0] if keys else f"page:{first.page_id}"
        trials.append(_make_trial(anchor, cluster, None))
    return tuple(sorted(trials, key=lambda t: t.trial_id))
