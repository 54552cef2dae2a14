"""The link index of pages: exact keys and blocking keys as rows, for the warehouse.

The warehouse keeps these rows for every linkable stored page (tables link_keys and
block_keys), so that a new batch finds the trials it may belong to with a few SQL joins
instead of re-reading every stored record.  Keys are computed with the engine's own
feature code, so they mean what the in-memory matcher means.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from pipeline.dedup.blocking import _CRITERIA_WORDS, STOP_WORDS
from pipeline.dedup.config import DedupConfig
from pipeline.dedup.features import Features, build_features
from pipeline.dedup.types import DedupInput

# record_links method for each exact-key kind of the engine (the sponsor's own study id is
# an identifier the sponsor registered, stored as a secondary id link).
LINK_METHODS: dict[str, str] = {
    "nct": "nct", "secondary_id": "secondary_id", "org_id": "secondary_id", "url": "url",
    "manual": "manual", "fuzzy": "fuzzy", "new": "new",
}


def features_of(inputs: Sequence[DedupInput], config: DedupConfig) -> Features:
    """Features of `inputs` (sorted by key and made unique here, as the engine needs)."""
    unique = {i.key: i for i in inputs}
    return build_features([unique[k] for k in sorted(unique)], config)


def key_rows(feats: Features) -> pa.Table:
    """(page_id, kind, key) for every exact key: NCT IDs, alias NCT IDs, registry ids, the
    sponsor's own ids, site ids."""
    pages: list[str] = []
    kinds: list[str] = []
    keys: list[str] = []
    for i, page_id in enumerate(feats.keys):
        seen: set[tuple[str, str]] = set()
        rows: list[tuple[str, str]] = []
        if feats.nct[i]:
            rows.append(("nct", feats.nct[i]))  # type: ignore[arg-type]
        rows.extend(("nct_alias", a) for a in feats.aliases[i])
        rows.extend(feats.exact[i])
        for row in rows:
            if row not in seen:
                seen.add(row)
                pages.append(page_id)
                kinds.append(row[0])
                keys.append(row[1])
    return pa.table({
        "page_id": pa.array(pages, pa.string()), "kind": pa.array(kinds, pa.string()),
        "key": pa.array(keys, pa.string()),
    })


def block_rows(feats: Features, config: DedupConfig) -> pa.Table:
    """(page_id, pass, key): each distinct title word (pass title_word; rarity is counted
    when the keys are used), the title's first and last letters, the criteria's first words
    alone and with the sponsor -- the same keys as pipeline.dedup.blocking."""
    chars = config.title_prefix_chars
    pages: list[str] = []
    passes: list[str] = []
    keys: list[str] = []

    def add(page_id: str, name: str, key: str) -> None:
        pages.append(page_id)
        passes.append(name)
        keys.append(key)

    for i, page_id in enumerate(feats.keys):
        title = feats.title[i]
        for word in sorted({w for w in title.split() if len(w) >= 2 and w not in STOP_WORDS}):
            add(page_id, "title_word", word)
        compact = feats.title_compact[i]
        if len(compact) >= chars // 2 and compact:
            add(page_id, "title_prefix", compact[:chars])
        if len(compact) > chars * 2:
            add(page_id, "title_suffix", compact[-chars:])
        crit = feats.criteria[i]
        if crit:
            words = " ".join(crit.split(" ", _CRITERIA_WORDS)[:_CRITERIA_WORDS])
            add(page_id, "criteria", words)
            if feats.sponsor[i]:
                add(page_id, "sponsor_criteria", f"{feats.sponsor[i]}|{words}")
    return pa.table({
        "page_id": pa.array(pages, pa.string()), "pass": pa.array(passes, pa.string()),
        "key": pa.array(keys, pa.string()),
    })


__all__ = ["LINK_METHODS", "block_rows", "features_of", "key_rows"]
