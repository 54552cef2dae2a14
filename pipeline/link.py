"""Pages -> trials and golden records, in memory (no warehouse).

Grouping is the deduplication engine's (`pipeline.dedup.link_records`: exact keys first,
then blocked fuzzy scoring at the thresholds of a DedupConfig); the golden record of each
group follows the survivorship rules of `pipeline.golden`.  The pipeline itself links
incrementally against the warehouse (`pipeline.relink`); `link_pages` is the same thing
for a set of pages held in memory (tests, tools).

Trial ids: `T` + 12 lowercase hex characters of SHA-256 over an anchor key --
`nct:NCT04599543` for a trial first seen with an NCT ID, otherwise `page:<page_id>` of its
first page (smallest page_id).  The id is an opaque token, not the NCT ID: once issued, the
warehouse keeps it for the trial (pipeline.relink), also when the trial later gains an NCT
ID or merges with another one (the retired id goes to `trial_id_aliases`).  48 bits make a
collision unlikely below millions of trials; relink checks anyway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.dedup import DEFAULT_CONFIG, DedupConfig, DedupInput, link_records
from pipeline.dedup.keys import record_ncts
from pipeline.golden import Golden, SourcePage, order_pages, survive
from pipeline.models import TrialRecord

_NCT = re.compile(r"NCT[\s_:-]*((?:\d[\s-]*){7}\d)(?!\d)", re.IGNORECASE)


# One ok/partial page as the linker sees it: the same fields survivorship needs.
LinkPage = SourcePage


@dataclass(frozen=True, slots=True)
class LinkedTrial:
    trial_id: str
    anchor: str  # the key trial_id was derived from (or "stored" for a kept id)
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


def freshest_first(pages: Iterable[LinkPage]) -> list[LinkPage]:
    """Best page first: latest last_update_date shown, then latest fetched_at, then source
    order, then page_id (pipeline.golden)."""
    return order_pages({p.page_id: p for p in pages}.values())


def golden_of(pages: Sequence[LinkPage], nct_id: str | None = None, *, conflicts: bool = True) -> Golden:
    return survive(list(pages), nct_id, conflicts=conflicts)


def merge_records(records: Sequence[TrialRecord]) -> TrialRecord:
    """One record from several given best first (same fetch time assumed): survivorship
    over their order.  The pipeline uses `golden_of`, which knows fetch times and sources."""
    if not records:
        raise ValueError("merge_records needs at least one record")
    start = dt.datetime(2000, 1, 1)
    pages = [
        SourcePage(f"{i:09d}", "unknown", start - dt.timedelta(seconds=i), r)
        for i, r in enumerate(records)
    ]
    return survive(pages).record


def cluster_nct(pages: Iterable[LinkPage]) -> str | None:
    """The NCT ID of a linked group: the one no other page lists as an alias (the engine
    never puts two unrelated NCT IDs in one group)."""
    primaries: set[str] = set()
    aliases: set[str] = set()
    for page in pages:
        primary, alias = record_ncts(page.record, page.url)
        if primary:
            primaries.add(primary)
        aliases.update(alias)
    kept = sorted(primaries - aliases) or sorted(primaries)
    return kept[0] if kept else None


def make_trial(trial_id: str, anchor: str, pages: Sequence[LinkPage]) -> tuple[LinkedTrial, Golden]:
    golden = golden_of(pages, cluster_nct(pages))
    trial = LinkedTrial(
        trial_id=trial_id, anchor=anchor, page_ids=golden.page_ids,
        sources=tuple(sorted({p.source for p in pages})), record=golden.record,
    )
    return trial, golden


def anchor_for(pages: Sequence[LinkPage]) -> str:
    nct = cluster_nct(pages)
    return f"nct:{nct}" if nct else f"page:{min(p.page_id for p in pages)}"


def link_pages(
    pages: Iterable[LinkPage], config: DedupConfig | None = None,
) -> tuple[LinkedTrial, ...]:
    """Group pages into trials (dedup engine) and merge each group; sorted by trial_id."""
    unique = {p.page_id: p for p in pages}  # the same page twice is still one page
    result = link_records(
        [DedupInput(p.page_id, p.record, p.source, p.fetched_at, p.url) for p in unique.values()],
        config or DEFAULT_CONFIG,
    )
    trials = []
    for cluster in result.clusters:
        members = [unique[k] for k in cluster]
        anchor = anchor_for(members)
        trials.append(make_trial(trial_id_for(anchor), anchor, members)[0])
    return tuple(sorted(trials, key=lambda t: t.trial_id))
