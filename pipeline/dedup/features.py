"""Records -> one columnar table of comparison-ready values (one Python pass, then numpy).

Text fields are normalized once here (`keys.process`: lower case, punctuation as
space), lists are turned into sorted, de-duplicated word strings so token-set scorers
see the same thing whatever order a page listed them in, and dates become day numbers.
Empty strings and NaN mean "the page does not show this".
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.dedup.config import DedupConfig
from pipeline.dedup.keys import normalize_sponsor, org_ids, process, record_keys, record_ncts
from pipeline.dedup.types import DedupInput

MAX_ROMAN = 4
_PHASE_BITS = {"EARLY_PHASE1": 1, "PHASE1": 2, "PHASE2": 4, "PHASE3": 8, "PHASE4": 16, "NA": 32}
_ROMAN = frozenset("ii iii iv vi vii viii ix".split())
_DIGIT = re.compile(r"\d")
_ROMAN_RE = re.compile(r"\b(?:ii|iii|iv|vi|vii|viii|ix)\b")
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def stable_hash(text: str) -> int:
    """A run-independent non-zero 33-bit code (Python's hash() is salted per process)."""
    return zlib.crc32(text.encode("utf-8")) | (1 << 32)


@dataclass(slots=True)
class Features:
    keys: list[str]  # input keys, sorted: row i is keys[i]
    nct: list[str | None]
    aliases: list[tuple[str, ...]]
    exact: list[list[tuple[str, str]]]  # (method, key) besides NCT IDs
    title: np.ndarray  # object: processed title
    title_len: np.ndarray  # int32
    title_compact: np.ndarray  # object: processed title without spaces
    title_digits: np.ndarray  # bool: the title has a digit
    title_roman: np.ndarray  # int64 (n, MAX_ROMAN): codes of roman numerals II..IX, 0 = none
    sponsor: np.ndarray  # object: normalized sponsor
    org: np.ndarray  # int64: code of the first org_study_id, 0 = none
    phases: np.ndarray  # int16 bit set, 0 = none
    enrollment: np.ndarray  # float64, NaN = none
    start_date: np.ndarray  # float64 day numbers, NaN = none
    first_submitted: np.ndarray
    completion_date: np.ndarray
    conditions: np.ndarray  # object: sorted unique processed items joined by " "
    interventions: np.ndarray
    keywords: np.ndarray
    officials: np.ndarray
    locations: np.ndarray
    criteria: np.ndarray  # object: processed start of the criteria text
    shown: dict[str, np.ndarray]  # text field -> bool per record: non-empty

    @property
    def n(self) -> int:
        return len(self.keys)


def _days(value: dt.date | None) -> float:
    return float(value.toordinal() - _EPOCH_ORDINAL) if value else np.nan


def _joined(items: Iterable[str | None], limit: int) -> str:
    """Processed, de-duplicated, sorted, at most `limit` items: the order a page lists them
    in does not matter."""
    seen = {process(i) for i in items if i}
    seen.discard("")
    return " ".join(sorted(seen)[:limit])


def _prefix_words(texts: Iterable[str], limit: int) -> str:
    """The processed start of the joined texts, about `limit` characters, whole words."""
    parts: list[str] = []
    size = 0
    for text in texts:
        parts.append(text)
        size += len(text) + 1
        if size >= limit + 40:  # processing only shrinks text; a margin for cut words
            break
    out = process(" ".join(parts))
    if len(out) <= limit:
        return out
    cut = out.rfind(" ", 0, limit + 1)
    return out[: cut if cut > 0 else limit]


def _roman(title: str) -> list[int]:
    found = sorted({w for w in title.split() if w in _ROMAN})
    return [stable_hash(w) for w in found[:MAX_ROMAN]]


def build_features(inputs: Sequence[DedupInput], config: DedupConfig) -> Features:
    """`inputs` must already be sorted by key and unique."""
    n = len(inputs)
    limit = config.max_list_items
    crit_chars = config.criteria_prefix_chars
    nct: list[str | None] = []
    aliases: list[tuple[str, ...]] = []
    exact: list[list[tuple[str, str]]] = []
    title: list[str] = []
    sponsor: list[str] = []
    roman_rows: list[tuple[int, list[int]]] = []
    org: list[int] = []
    phases: list[int] = []
    enrollment: list[float] = []
    start: list[float] = []
    submitted: list[float] = []
    completion: list[float] = []
    conditions: list[str] = []
    interventions: list[str] = []
    keywords: list[str] = []
    officials: list[str] = []
    locations: list[str] = []
    criteria: list[str] = []
    # Pages of one trial repeat the same values: normalize each distinct one once.
    list_cache: dict[tuple[str, ...], str] = {}
    sponsor_cache: dict[str | None, str] = {}
    nan = np.nan

    def joined(items: tuple[str, ...]) -> str:
        out = list_cache.get(items)
        if out is None:
            out = list_cache[items] = _joined(items, limit)
        return out

    for item in inputs:
        rec = item.record
        primary, alias = record_ncts(rec, item.url)
        nct.append(primary)
        aliases.append(alias)
        spons = sponsor_cache.get(rec.lead_sponsor)
        if spons is None:
            spons = sponsor_cache[rec.lead_sponsor] = normalize_sponsor(rec.lead_sponsor)
        sponsor.append(spons)
        t = process(rec.brief_title or rec.official_title or rec.acronym)
        title.append(t)
        if _ROMAN_RE.search(t):
            roman_rows.append((len(title) - 1, _roman(t)))
        if rec.identifiers:
            exact.append(record_keys(rec, spons))
            orgs = org_ids(rec)
            org.append(stable_hash(orgs[0]) if orgs else 0)
        else:
            exact.append([])
            org.append(0)
        bits = 0
        for p in rec.phases:
            bits |= _PHASE_BITS.get(p, 64)
        phases.append(bits)
        enrollment.append(nan if rec.enrollment is None else rec.enrollment)
        start.append(_days(rec.start_date))
        submitted.append(_days(rec.first_submitted_date))
        completion.append(_days(rec.completion_date))
        conditions.append(joined(rec.conditions) if rec.conditions else "")
        keywords.append(joined(rec.keywords) if rec.keywords else "")
        interventions.append(
            joined(tuple(iv.name for iv in rec.interventions)) if rec.interventions else "")
        officials.append(joined(tuple(c.name for c in rec.contacts)) if rec.contacts else "")
        locations.append(
            joined(tuple(loc.facility or loc.city or "" for loc in rec.locations[: limit * 4]))
            if rec.locations else "")
        criteria.append(
            _prefix_words([c.text for c in rec.criteria[:12]], crit_chars) if rec.criteria else "")

    roman = np.zeros((n, MAX_ROMAN), dtype=np.int64)
    for row, codes in roman_rows:
        roman[row, : len(codes)] = codes
    texts = {
        "conditions": conditions, "interventions": interventions, "keywords": keywords,
        "officials": officials, "locations": locations, "criteria": criteria,
    }
    arrays = {name: _objects(values) for name, values in texts.items()}
    shown = {name: np.fromiter((bool(v) for v in values), dtype=bool, count=n)
             for name, values in [("sponsor", sponsor), *texts.items()]}
    return Features(
        keys=[item.key for item in inputs], nct=nct, aliases=aliases, exact=exact,
        title=_objects(title),
        title_len=np.fromiter((len(t) for t in title), dtype=np.int32, count=n),
        title_compact=_objects([t.replace(" ", "") for t in title]),
        title_digits=np.fromiter((bool(_DIGIT.search(t)) for t in title), dtype=bool, count=n),
        title_roman=roman, sponsor=_objects(sponsor), org=np.array(org, dtype=np.int64),
        phases=np.array(phases, dtype=np.int16), enrollment=np.array(enrollment, dtype=np.float64),
        start_date=np.array(start), first_submitted=np.array(submitted),
        completion_date=np.array(completion), shown=shown, **arrays,
    )


def _objects(values: list[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
