"""The parser's shortcuts give what the plain computation gives.

`repair_powers_of_ten` runs its two digit-led patterns only when their operator can occur,
and `strip_marker` skips the marker regex where no marker can start.  Each is compared here
with the unshortened code on every criterion, summary, description and arm text of the
committed fixture pages, the sample and the bench corpus's generated pages (as the parser
sees them, before repair), plus hand-written cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.clean import text as cleantext
from pipeline.devtools.bench_corpus import iter_pages
from pipeline.devtools.bench_profiles import fixture_pages
from pipeline.extract import criteria as crit
from pipeline.ingest import read_pages
from pipeline.models import RawPage
from pipeline.parse import parse_page

SAMPLE = Path(__file__).resolve().parents[1] / "raw" / "sample"

POWERS = [
    "1×107 CAR-positive cells/kg", "white blood cells >1.0×109/L", "1.0 × 107 CAR positive NK cells/kg",
    "5x106 cells/kg", "5 X 106 cells / kg", "2*108 CAR", "3 x\u00a0107 cells", "3 x\n107 cells", "10⁷ cells",
    "1×10^7 cells", "2 × 100 mg", "take 3 x 10 tablets", "2 x 105 days", "1 ✕ 108 cells", "2⨯109/L",
    "x10", "10", "x 10", "*10 per kg", "1x1010 cells", "1.5,x106 cells", "1,5×107 cells", "10x106 cells per kg",
]
MARKERS = [
    "• Age ≥ 18", "• 1. Blood creatinine", "1. Signed consent", "(1) Signed", "a) Adult", "(b) Adult", "iv. Male",
    "IV) Male", "Age 18.", "Adults (18+)", "- ", "•", "", "  • Age", "ii) (a) nested", "x. ten", "Iv. mixed",
    "(i) first", "Patients who are 18) or older", "• • double bullet", "* star item", "– dash item",
]


def _plain_repair(text: str) -> str:
    """repair_powers_of_ten before its shortcuts."""
    if "10" not in text:
        return text
    text = cleantext._UNICODE_POWER.sub(lambda m: "10^" + m.group(1).translate(cleantext._SUPERSCRIPT_DIGITS), text)
    text = cleantext._LOST_SUPERSCRIPT.sub(cleantext._lost_power, text)
    return cleantext._LOST_SUPERSCRIPT_X.sub(cleantext._lost_power, text)


def _plain_strip_marker(text: str) -> tuple[str, str | None, int | None]:
    """strip_marker before its shortcuts (every text goes through the regex)."""
    style: str | None = None
    value: int | None = None
    for _ in range(3):
        m = crit._MARKER.match(text)
        if not m or m.end() == 0 or (m.group("roman") == "" and not (m["bullet"] or m["num"] or m["alpha"])):
            break
        rest = text[m.end():]
        if not rest.strip():
            break
        if m["bullet"]:
            style, value = "bullet:" + m["bullet"], None
        elif m["num"]:
            style, value = ("(num)" if text.lstrip().startswith("(") else "num"), int(m["num"])
        elif m["alpha"]:
            ch = m["alpha"]
            style, value = ("alpha" if ch.islower() else "ALPHA"), ord(ch.lower()) - 96
        elif m["roman"]:
            style, value = "roman", crit._roman(m["roman"])
        text = rest
    return text.strip(), style, value


@pytest.fixture(scope="module")
def page_texts() -> tuple[list[str], list[str]]:
    """(free texts as the parser repairs them, criteria lines as strip_marker sees them)."""
    free: list[str] = []
    lines: list[str] = []
    seen: list[list[str]] = []
    real = crit.strip_marker

    def spy(text: str) -> tuple[str, str | None, int | None]:
        seen[-1].append(text)
        return real(text)

    raws = [r for r in [*fixture_pages(), *read_pages([SAMPLE]), *iter_pages(40, bases=40)] if isinstance(r, RawPage)]
    crit.strip_marker = spy
    try:
        for raw in raws:
            seen.append([])
            record = parse_page(raw).record
            lines += seen[-1]
            if record is None:
                continue
            free += [t for t in (record.brief_summary, record.detailed_description) if t]
            free += [a.description for a in record.arms if a.description]
            free += [c.text for c in record.criteria]
    finally:
        crit.strip_marker = real
    assert len(free) > 1000 and len(lines) > 1000
    return free, lines


def test_repair_shortcuts_equal_plain(page_texts):
    free, _ = page_texts
    changed = 0
    for text in [*POWERS, *free, *(t.replace("^", "") for t in free if "10^" in t)]:
        got = cleantext.repair_powers_of_ten(text)
        assert got == _plain_repair(text), text[:200]
        changed += got != text
    assert changed >= 10  # the patterns did fire


def test_strip_marker_shortcuts_equal_plain(page_texts):
    _, lines = page_texts
    styles = set()
    for text in [*MARKERS, *lines]:
        got = crit.strip_marker(text)
        assert got == _plain_strip_marker(text), text[:200]
        styles.add((got[1] or "").split(":")[0])
    assert {"", "bullet", "num"} <= styles
