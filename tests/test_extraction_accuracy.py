"""The extractor against ground truth: the committed fixture pages, and the whole dev corpus.

`make eval` prints the same figures as a table; these tests keep the 98% target from
silently eroding.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.devtools.eval import CORPUS_DIR, dev_corpus, evaluate, read_corpus

FIXTURES = Path(__file__).parent / "fixtures" / "pages"


def test_committed_fixture_pages_meet_the_target():
    result = evaluate(read_corpus(FIXTURES), examples=0)
    assert result["pages"]["overall"] == 24
    assert result["failing"] == []
    assert result["parse_status"]["veeva"].get("rejected", 0) == 0
    assert result["parse_status"]["clinconnect"].get("rejected", 0) == 0


@pytest.mark.skipif(not Path(CORPUS_DIR).exists(), reason="needs the CT.gov corpus beside the repo")
def test_every_field_is_at_least_98_percent_on_the_dev_corpus():
    result = evaluate(dev_corpus(), examples=0)
    assert result["pages"]["overall"] == 870
    assert result["failing"] == [], result["failing_cells"]
    scores = {f: v["overall"]["score"] for f, v in result["fields"].items() if v["overall"]}
    assert min(scores.values()) >= 0.98
    assert scores["criteria"] >= 0.99 and scores["brief_title"] == 1.0
