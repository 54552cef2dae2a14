"""ParsedPage -> DedupInput: the pages the matcher should see."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.dedup.types import DedupInput
from pipeline.models import ParsedPage


def inputs_from_parsed(pages: Iterable[ParsedPage]) -> list[DedupInput]:
    """Every ok/partial page with a record; rejected pages have nothing to match."""
    return [
        DedupInput(key=p.page_id, record=p.record, source=p.source, fetched_at=p.fetched_at, url=p.url)
        for p in pages
        if p.record is not None and p.parse_status != "rejected"
    ]
