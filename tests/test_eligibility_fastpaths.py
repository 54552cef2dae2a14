"""The extractor's shortcuts give what the plain computation gives.

Each shortcut in `pipeline.eligibility` rests on a claim about a regex or a cache ("every
match of this pattern starts with one of these words", "a keyword occurs in a segment iff it
occurs in one of its a-z runs").  Here each claim is checked on every criterion item of the
hand-labelled set, the committed fixture pages and the sample (normalized as the extractor
sees them), plus hand-written cases, against the unshortened computation.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from pipeline.devtools.bench_profiles import fixture_pages
from pipeline.devtools.eval_eligibility import load_labels
from pipeline.eligibility import _gate, _labs, _quantity, _washout
from pipeline.eligibility._quantity import find_quantities
from pipeline.eligibility._text import NormText, boundaries, matches_at, occurrences
from pipeline.ingest import read_pages
from pipeline.models import RawPage
from pipeline.parse import parse_page

_flags = sys.modules["pipeline.eligibility.flags"]  # (the package's `flags` is the function)
SAMPLE = Path(__file__).resolve().parents[1] / "raw" / "sample"


@pytest.fixture(scope="module")
def normalized() -> list[str]:
    texts = [item.text for item in load_labels()]
    for raw in [*fixture_pages(), *read_pages([SAMPLE])]:
        record = parse_page(raw).record if isinstance(raw, RawPage) else None
        if record is not None:
            texts += [c.text for c in record.criteria]
    out = [NormText(t).text for t in texts if t]
    assert len(out) > 900
    return out


def _spans(matches) -> list[tuple[int, int]]:
    return [m.span() for m in matches]


def test_occurrences_and_matches_at_on_known_text():
    text = "alt/sgpt salt alt"
    assert sorted(occurrences(text, ("alt", "sgpt"))) == [0, 4, 10, 14]
    rx = re.compile(r"\balt\b|\bsgpt\b")
    # "salt" holds "alt" but no match: \b still sees the "s" before the start position
    assert _spans(matches_at(rx, text, occurrences(text, ("alt", "sgpt")))) == [(0, 3), (4, 8), (14, 17)]
    # overlapping candidates: the leftmost match wins and the next try starts after it
    assert _spans(matches_at(re.compile(r"aa"), "aaaa", [2, 0, 1, 3])) == [(0, 2), (2, 4)]
    assert matches_at(rx, text, []) == []


def test_mention_start_words_hold_on_the_corpus(normalized):
    patterns = [(rx, _labs._MENTION_STARTS[var]) for var, _, rx in _labs._MENTION_RES]
    patterns += [(rx, _flags._MENTION_STARTS[flag]) for flag, _, rx, _, _ in _flags._COMPILED]
    patterns.append((_quantity._CMP_ULN_RE, _quantity._CMP_ULN_STARTS))
    extra = ["history of leptomeningeal disease", "methylprednisolone", "β-hcg and beta hcg", "anti-hcv",
             "<= uln; within normal limits, wnl", "genetically engineered cells", "hiv-aids"]
    checked = 0
    for text in [*normalized, *extra]:
        for rx, starts in patterns:
            expected = _spans(rx.finditer(text))
            assert _spans(matches_at(rx, text, occurrences(text, starts))) == expected, (rx.pattern[:40], text)
            checked += len(expected)
    assert checked > 500  # the claims were tested on real matches, not only on absences


def test_washout_words_from_letter_runs(normalized):
    def brute(seg: str) -> frozenset[str]:
        return frozenset(w for w in _washout._ALL_WORDS if w in seg)

    cases = [*normalized, "immuno-therapy ORMORE chemotherapy", "radiothérapie and steroïds", "", "   "]
    for text in cases:
        assert _washout._words_in(text) == brute(text), text
    assert _washout._words_in("prior chemotherapy within 4 weeks") == frozenset({"chemo", "therap"})
    assert _washout._categories("no chemotherapy or radiotherapy") == [
        ("washout_chemotherapy", 3), ("washout_radiotherapy", 19)]


def test_one_piece_offsets_match_the_general_mapping():
    nt = NormText("Signed informed consent")  # nothing to rewrite: one unchanged piece
    general = NormText("Signed informed consent")
    general._one = -1  # force the bisect path
    n = len(nt.orig)
    for pos in range(-2, n + 3):
        assert nt.to_orig(pos) == general.to_orig(pos)
        assert nt.to_orig(pos, end=True) == general.to_orig(pos, end=True)
        assert nt.from_orig(pos) == general.from_orig(pos)
    assert nt.to_orig(100) == n and nt.from_orig(n) is None and nt.from_orig(3) == 3
    assert nt.span(7, 15) == "informed"
    empty = NormText("")
    assert empty.to_orig(0) == 0 and empty.from_orig(0) is None


def test_boundaries_without_punctuation():
    assert boundaries("ecog 0-1") == [0, 8]
    assert boundaries("a; b. c") == [0, 1, 4, 7]
    assert boundaries("e.g. x") == [0, 6]  # "e.g." ends no sentence


def test_quantity_kinds_are_computed_once():
    q = find_quantities("creatinine <= 1.5 mg/dl")[0]
    assert q.kinds() == frozenset({"mgdl"}) and q.kinds() is q.kinds()
    r = find_quantities("18-75 years")[0]
    assert r.kinds() == frozenset({"time"}) and r.lo == 18 and r.hi == 75
    # equal units are one shared object
    a, b = find_quantities("> 2 mg/dl and < 3 mg/dl")
    assert a.unit is b.unit and a.unit.kind == "mgdl"


def test_gate_plans_are_a_function_of_the_bits():
    texts = ["Signed informed consent", "ECOG 0-2 and creatinine <= 1.5 x ULN", "Known HIV infection",
             "AIDS-related illness", "Chemotherapy within 4 weeks", "CD19 positive", "18-75 years",
             "chemotherapy in the last 6 months", "Score refers to 3 points each"]
    first = [_gate.scan(t) for t in texts]
    _gate._PLANS.clear()
    assert [_gate.scan(t) for t in texts] == first
    assert first[0] == (0, False, _gate.NO_NUMBER_WORDS | _gate.NO_COMPARATOR_WORDS)
    assert first[3][1] is True and first[3][0] == 0  # "AIDS": a flag, no bound
    assert first[4][0] & _gate.WASHOUTS and first[5][0] & _gate.ANTIGENS and first[6][0] & _gate.AGE
    assert first[7][0] & _gate.WASHOUTS  # "in the last": the text check ran
    assert first[8][0] == 0  # "refers to ... points each": a definition


def test_gate_maps_characters_only_when_some_occur():
    """A non-ASCII item skips the character map when it holds none of its characters; an
    item that does still gets them mapped (the words then read as NormText's would)."""
    mapped = ["ANC ≥ 1.5 × 10^9/L", "Creatinine ≤ 1.5 mg/dL – or CrCl ≥ 60", "Hb ≥ 9 g/dL (µmol)"]
    plain = ["ANC ≥ 1.5 x 10^9/L", "Creatinine ≤ 1.5 mg/dL - or CrCl ≥ 60", "Hb ≥ 9 g/dL (umol)"]
    for a, b in zip(mapped, plain):
        assert _gate.scan(a) == _gate.scan(b)
    for text in ["Âge ≥ 18 ans", "ECOG ≤ 2", "Chemotherapy ≤ 4 weeks before"]:
        assert not any(ch in text.lower() for ch in _gate._CHAR_MAP)
        assert text.lower().translate(_gate._TRANS) == text.lower()
