"""The bundled sample's HTML pages are complete trial pages: each parses `ok`, with no defect
reported (site chrome such as ClinConnect's "About us" footer links is not a section)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest import read_pages
from pipeline.parse import parse_page

SAMPLE_HTML = sorted((Path(__file__).resolve().parents[1] / "raw" / "sample" / "html").glob("*.html"))


@pytest.mark.parametrize("path", SAMPLE_HTML, ids=lambda p: p.name)
def test_sample_page_parses_ok(path):
    (raw,) = read_pages([path])
    parsed = parse_page(raw)
    assert (parsed.parse_status, parsed.parse_error) == ("ok", None)
    assert parsed.record is not None and parsed.record.nct_id == path.stem.rsplit("-", 1)[1]
