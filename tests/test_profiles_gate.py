"""The extractor's fast path (pipeline/eligibility/_gate.py) never changes a result.

`analyze` skips normalizing an item, and skips extractors, when the item's words say they
cannot fire.  Here every criterion item available -- the real ClinicalTrials.gov records, the
hand-labelled set, the committed fixture pages and the sample -- is analyzed both ways and
must come out identical.  (Kept honest against future gates: the reference below runs every
extractor on every item that passed the extractor's original, regex-only gate.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.devtools.bench_profiles import BUDGET, bench, fixture_pages
from pipeline.devtools.ctgov import CORPUS_DIR, load_records
from pipeline.devtools.eval_eligibility import load_labels
from pipeline.eligibility import _gate, analyze, profile_criteria
from pipeline.eligibility.extract import _extract_rows, _to_constraints
from pipeline.eligibility.flags import item_flags
from pipeline.eligibility._text import NormText
from pipeline.ingest import read_pages
from pipeline.parse import parse_page

# The gate the extractor had before the fast path: any digit, ULN wording, "positive", "+",
# or a spelled number -- then every extractor ran.
_ORIGINAL_MAYBE_RE = re.compile(
    r"\d|uln|upper\s+limit|normal\s+(?:limit|range)|positive|express|\+|\b(?:one|two|three|four|five|six|seven|"
    r"eight|nine|ten|eleven|twelve|eighteen|twenty|thirty)\b",
    re.IGNORECASE,
)
_ORIGINAL_SKIP_RE = re.compile(r"\brefers?\s+to\b|\bpoints?\s+each\b", re.IGNORECASE)


def reference(criterion_type: str, text: str):
    if not text:
        return (), ()
    nt = NormText(text)
    fl = item_flags(criterion_type, nt.text)
    if not _ORIGINAL_MAYBE_RE.search(text) or _ORIGINAL_SKIP_RE.search(text):
        return (), fl
    return _to_constraints(criterion_type, nt, _extract_rows(criterion_type, nt, _gate.ALL)), fl


@pytest.fixture(scope="module")
def items(sample_dir_path) -> list[tuple[str, str]]:
    out = [(item.criterion_type, item.text) for item in load_labels()]
    if CORPUS_DIR.is_dir():  # the shared CT.gov corpus: ~2,000 more real items when present
        out += [(c.criterion_type, c.text) for rec in load_records() for c in rec.criteria]
    for raw in [*fixture_pages(), *read_pages([sample_dir_path])]:
        record = parse_page(raw).record
        if record is not None:
            out += [(c.criterion_type, c.text) for c in record.criteria]
    assert len(out) > 900
    return out


@pytest.fixture(scope="module")
def sample_dir_path() -> Path:
    return Path(__file__).resolve().parents[1] / "raw" / "sample"


def test_fast_path_gives_the_reference_result_on_every_item(items):
    differ = [(ct, t) for ct, t in items if analyze(ct, t) != reference(ct, t)]
    assert differ == []


def test_fast_path_survives_unusual_spellings(items):
    # upper case, non-breaking spaces, unicode comparators and markdown escapes
    variants = [(ct, t.upper()) for ct, t in items[:600]]
    variants += [(ct, t.replace(" ", "\u00a0", 3).replace(">=", "≥").replace("<", "\\<")) for ct, t in items[:600]]
    variants += [
        ("inclusion", "Aged between eighteen and seventy-five years"),
        ("inclusion", "between eighteen years and sixty years"),
        ("exclusion", "Chemotherapy within six weeks"),
        ("inclusion", "Patients 18 years of agent-naive cohorts"),
        ("exclusion", "AIDS-related illness"),
        ("exclusion", "Allogeneic stem cell transplantation"),
        ("exclusion", "Gene-modified T cell therapy"),
        ("inclusion", "１８歳以上 ECOG ≤ 1"),
        ("inclusion", "Creatinine clearance (CrCl) ≥ 60 mL/min"),
        ("inclusion", "Cr Cl >= 60 ml/min"),
        ("exclusion", "Active infection requiring systemic therapy"),
    ]
    assert [(ct, t) for ct, t in variants if analyze(ct, t) != reference(ct, t)] == []


def test_items_without_trigger_words_are_not_normalized():
    assert _gate.scan("Signed informed consent") == (0, False, _gate.NO_NUMBER_WORDS | _gate.NO_COMPARATOR_WORDS)
    parts, flags, _ = _gate.scan("ECOG 0-2 and creatinine <= 1.5 x ULN")
    assert parts & _gate.PERF and parts & _gate.LABS and not parts & _gate.WASHOUTS and not flags
    assert _gate.scan("Known HIV infection")[1]


def test_bench_measures_parse_and_extraction():
    result = bench(fixture_pages()[:3], repeat=1)
    assert result.pages == 3 and result.criteria_items > 0
    assert result.parse_s > 0 and result.constraints_s > 0 and result.therapy_s > 0
    assert 0 < BUDGET < 1
    # profile_criteria on a parsed page gives the same as analyzing its items one by one
    record = parse_page(fixture_pages()[0]).record
    assert record is not None
    assert sum(len(p.constraints) for p in profile_criteria(record.criteria)) > 0
