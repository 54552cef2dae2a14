"""The hand-labelled criterion set and the eval that scores the extractor against it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from pipeline.devtools.eval_eligibility import DEFAULT_LABELS, MIN_N, evaluate, load_labels, main
from pipeline.eligibility import FLAGS, VARIABLES

KEYS = {"variable", "lower", "lower_inclusive", "upper", "upper_inclusive", "unit", "negated", "condition",
        "antigen", "group"}


def test_label_file_is_well_formed() -> None:
    raw = [json.loads(line) for line in DEFAULT_LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len({d["id"] for d in raw}) == len(raw)
    for d in raw:
        assert d["criterion_type"] in ("inclusion", "exclusion")
        assert d["text"].strip()
        assert set(d["flags"]) <= set(FLAGS)
        for c in d["constraints"]:
            assert set(c) == KEYS, d["id"]
            assert c["variable"] in VARIABLES
            assert (c["lower"] is None) == (c["lower_inclusive"] is None)
            assert (c["upper"] is None) == (c["upper_inclusive"] is None)
    corpus = [d for d in raw if d["source"].startswith("ctgov:")]
    assert len(corpus) >= 300
    assert {d["source"] for d in raw if d["source"].startswith("seed:")} == {f"seed:{i:03d}" for i in range(5)}
    negatives = sum(1 for d in raw if not d["constraints"] and not d["flags"])
    assert negatives >= 100  # a good share of items state no bound at all


def test_every_gated_variable_meets_the_targets() -> None:
    rep = evaluate(load_labels())
    assert rep.failing() == []
    gated = {k for k, s in {**rep.variables, **rep.flags}.items() if s.n >= MIN_N}
    # the gate really applies to the common variables and flags
    assert {"age", "ecog", "alt", "ast", "total_bilirubin", "washout_vaccine",
            "pregnancy_or_breastfeeding", "hiv"} <= gated
    for name in gated:
        s = {**rep.variables, **rep.flags}[name]
        assert s.precision >= 0.97 and s.recall >= 0.92, name


def test_cli_prints_the_table_and_exits_zero(capsys) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "age" in out and "prec" in out and "pregnancy_or_breastfeeding" in out


def test_cli_fails_when_a_variable_misses_the_target(tmp_path: Path, capsys) -> None:
    wrong = [
        {"id": f"x{i}", "source": "test", "criterion_type": "inclusion", "text": f"ECOG 0-{i % 3 + 1}",
         "constraints": [{"variable": "ecog", "lower": 0.0, "lower_inclusive": True, "upper": 4.0,
                          "upper_inclusive": True, "unit": None, "negated": False, "condition": None,
                          "antigen": None, "group": None}],
         "flags": []}
        for i in range(MIN_N)
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in wrong), encoding="utf-8")
    assert main(["--labels", str(path)]) == 1
    assert "ecog" in capsys.readouterr().err


def test_label_counts_per_variable_are_reported() -> None:
    rep = evaluate(load_labels())
    counts = Counter()
    for item in load_labels():
        counts.update(c["variable"] for c in item.constraints)
    for var, n in counts.items():
        assert rep.variables[var].n == n
