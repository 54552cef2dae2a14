"""The README's "Eligibility matching" examples are the real output of their commands on
the bundled sample, so the section never goes stale."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.run import ingest

ROOT = Path(__file__).resolve().parents[1]


def examples() -> list[tuple[list[str], str]]:
    """(argv after `trials`, expected stdout) of each console block in the section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Eligibility matching", 1)[1].split("\n## ", 1)[0]
    found = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        command, _, output = block.partition("\n")
        assert command.startswith("$ trials ")
        found.append((shlex.split(command[len("$ trials "):]), output))
    return found


def _ids_masked(text: str) -> str:
    return re.sub(r"\bT[0-9a-f]{12}\b", "T" + "x" * 12, text)


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("readme") / "trials.duckdb"
    ingest([ROOT / "raw" / "sample"], path)
    return path


def test_readme_shows_both_questions():
    commands = [argv[0] for argv, _ in examples()]
    assert commands == ["match", "sql"]


@pytest.mark.parametrize("index", [0, 1])
def test_readme_example_is_the_real_output(index, sample_warehouse, capsys, clean_env):
    argv, expected = examples()[index]
    capsys.readouterr()
    assert main([*argv, "--warehouse", str(sample_warehouse)]) == 0
    # A trial without an NCT ID is named after its first page, whose id hashes the file's
    # location: the same sample in another checkout gets other (equally opaque) trial ids.
    assert _ids_masked(capsys.readouterr().out) == _ids_masked(expected)
    if argv[0] == "match":  # the explanations name the excluding criterion and the patient's value
        assert "inclusion 2: ecog 0–1 (patient 2)" in expected
        assert "page age: age 18–45 years (patient 72)" in expected
