"""The therapy profiler's modality shortcuts give what the plain regexes give.

`pipeline.therapy._MODALITY_BRANCHES` claims, per branch of a modality pattern, that every
match contains the branch's words and that, if it matches at all, a match starts at most
`back` characters before an occurrence of its start word; `_modality` tests the words with
`in` and matches only there.  Checked here on the texts of every committed fixture page, the
sample, the bench corpus's generated pages and hand-written cases, against the unshortened
loop over the patterns.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import therapy
from pipeline.devtools.bench_corpus import iter_pages
from pipeline.devtools.bench_profiles import fixture_pages
from pipeline.ingest import read_pages
from pipeline.models import RawPage
from pipeline.parse import parse_page

SAMPLE = Path(__file__).resolve().parents[1] / "raw" / "sample"

HAND_WRITTEN = [
    "anti-cd19 car-t cells", "car t", "cart19", "ucart123", "ccar-nk", "nk-car", "car-nk-92",
    "chimeric antigen receptor modified t cells", "chimeric antigen receptor nk cells",
    "axicabtagene ciloleucel", "tcr-t", "tcr engineered t cells", "t cell receptor-engineered",
    "t-cell receptor t", "tils", "tumour infiltrating lymphocytes", "lifileucel", "nk cells",
    "natural killer cell infusion", "nk-92", "the nk cell subtypes were observed", "care", "carcinoma",
    "until", "think", "link", "receptor", "natural history", "", "cyclophosphamide", "fludarabine",
    "ccar-t", "xcar-t", "scar tissue", "ucart", "ucart19 cells", "car\nt cells", "oscar t", "abcabtagene",
    "cabtagene", "x cabtagene", "tisa cabtagene", "tcrt", "atcr-t", "tiltil", "stil", "til-based", "nk92",
    "dnk", "nk car", "ank car", "nk-car-t",
]


def _plain(text: str, *, context: bool = False) -> str:
    for name, rx in therapy._MODALITY_RES:
        if rx.search(text):
            if name == "NK" and context and not therapy._NK_PRODUCT_RE.search(text):
                continue
            return name
    return "other"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    out = list(HAND_WRITTEN)
    for raw in [*fixture_pages(), *read_pages([SAMPLE]), *iter_pages(40, bases=40)]:
        record = parse_page(raw).record if isinstance(raw, RawPage) else None
        if record is None:
            continue
        for iv in record.interventions:
            out.append(" \n ".join(p for p in (iv.name, iv.description) if p).lower())
        for text in (record.brief_title, record.official_title, record.brief_summary, record.detailed_description):
            if text:
                out.append(text.lower())
    assert len(out) > 300
    return out


def test_branches_are_the_patterns():
    for (name, rx), (bname, branches) in zip(therapy._MODALITY_RES, therapy._MODALITY_BRANCHES):
        assert name == bname and rx.pattern == "|".join(b[3].pattern for b in branches)


def test_branch_words_are_in_every_match(texts):
    for text in texts:
        for _, branches in therapy._MODALITY_BRANCHES:
            for words, _, _, rx in branches:
                for m in rx.finditer(text):
                    assert all(w in m.group() for w in words), (rx.pattern, m.group())


def test_found_equals_search(texts):
    """The start-word claim: matching only near occurrences of `start` finds a match exactly
    when searching the whole text does."""
def test_found_equals_search(texts):
    hits = 0
    for text in texts:
        for (_, rx), (_, branches) in zip(therapy._MODALITY_RES, therapy._MODALITY_BRANCHES):
            found = any(therapy._found(text, b) for b in branches)
            assert found == (rx.search(text) is not None), (rx.pattern, text[:200])
            hits += found
    assert hits > 20


def test_gated_modality_equals_plain(texts):
    found = set()
    for text in texts:
        for context in (False, True):
            got = therapy._modality(text, context=context)
            assert got == _plain(text, context=context), text[:200]
            found.add(got)
    assert {"CAR-T", "CAR-NK", "TCR-T", "TIL", "NK", "other"} <= found  # every pattern was exercised
