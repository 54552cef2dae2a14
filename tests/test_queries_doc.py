"""docs/queries.md stays true: every question's SQL runs on the sample warehouse and prints
exactly the rows the guide shows under "Expected"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.db.query import format_result, run_query
from pipeline.db.sample import build_sample_warehouse

DOC = Path(__file__).resolve().parents[1] / "docs" / "queries.md"


@dataclass(frozen=True)
class Question:
    title: str
    sql: str
    expected: str


def parse_guide(text: str) -> list[Question]:
    """Each `### ` heading is a question: its first ```sql block, then an `Expected:` line
    followed by a ```text block with `trials sql` output."""
    questions = []
    for chunk in re.split(r"^### ", text, flags=re.M)[1:]:
        title = chunk.splitlines()[0].strip()
        sql = re.search(r"^```sql\n(.*?)^```", chunk, re.S | re.M)
        expected = re.search(r"^Expected:\s*\n\n```text\n(.*?)^```", chunk, re.S | re.M)
        assert sql and expected, f"question {title!r} needs a ```sql block and an Expected block"
        questions.append(Question(title, sql.group(1), expected.group(1).rstrip("\n")))
    return questions


QUESTIONS = parse_guide(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("queries-doc")
    sample = Path(__file__).resolve().parents[1] / "raw" / "sample"
    return build_sample_warehouse(root / "sample.duckdb", sample, root).warehouse


def test_the_guide_has_at_least_ten_answered_questions():
    assert len(QUESTIONS) >= 10
    assert len({q.title for q in QUESTIONS}) == len(QUESTIONS)
    with_rows = [q for q in QUESTIONS if not q.expected.endswith("(0 rows)")]
    assert len(with_rows) >= 10


@pytest.mark.parametrize("question", QUESTIONS, ids=[q.title.split(".")[0] for q in QUESTIONS])
def test_question_returns_the_documented_rows(question, sample_warehouse):
    result = run_query(sample_warehouse, question.sql)
    assert format_result(result, "table") == question.expected, question.title


def test_the_sample_build_is_what_the_guide_describes(sample_warehouse):
    result = run_query(sample_warehouse, "SELECT min(fetched_at), max(fetched_at), count(*) FROM pages")
    (first, last, pages), = result.rows
    assert (str(first), str(last)) == ("2025-01-06 00:00:00", "2025-02-03 09:30:00")
    assert pages == 19  # 17 sample pages + 2 re-fetched versions
    refetched = run_query(
        sample_warehouse, "SELECT count(*) FROM pages WHERE fetched_at = TIMESTAMP '2025-02-03 09:30:00'")
    assert refetched.rows == ((2,),)
