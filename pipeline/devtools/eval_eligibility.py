"""Score the eligibility extractor against hand-labelled criterion items.

    python -m pipeline.devtools.eval_eligibility [--labels PATH] [--show-errors]

Labels: tests/fixtures/eligibility_labels.jsonl, one item per line:
    {"id", "source", "criterion_type", "text", "constraints": [...], "flags": [...]}
Each labelled constraint has the `Constraint` fields (minus `text`) plus an optional `group`.
A predicted row matches a labelled one when variable, antigen, unit, negation and both bounds
with their inclusiveness agree (values within 0.5% relative), and the conditions agree
(both absent, or the same after case/punctuation folding, or one contains the other).
Groups are reported separately (they change how rows combine, not what a row says).

Prints precision/recall per variable and per flag; exits 1 when any variable or flag with at
least MIN_N labelled examples misses precision >= 0.97 or recall >= 0.92.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.eligibility import analyze
from pipeline.eligibility.model import Constraint

DEFAULT_LABELS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "eligibility_labels.jsonl"
MIN_N = 10
MIN_PRECISION = 0.97
MIN_RECALL = 0.92


@dataclass(frozen=True, slots=True)
class LabelItem:
    id: str
    criterion_type: str
    text: str
    constraints: tuple[Mapping[str, Any], ...]
    flags: tuple[str, ...]


def load_labels(path: Path = DEFAULT_LABELS) -> list[LabelItem]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            items.append(LabelItem(d["id"], d["criterion_type"], d["text"], tuple(d["constraints"]),
                                   tuple(d["flags"])))
    return items


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= max(1e-6, 0.005 * max(abs(a), abs(b)))


def _fold(s: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", " ", (s or "").lower()).strip()


def _cond_match(a: str | None, b: str | None) -> bool:
    fa, fb = _fold(a), _fold(b)
    if not fa or not fb:
        return fa == fb
    return fa == fb or fa in fb or fb in fa


def row_matches(pred: Constraint, gold: Mapping[str, Any]) -> bool:
    return (
        pred.variable == gold["variable"]
        and (pred.antigen or None) == (gold.get("antigen") or None)
        and pred.unit == gold.get("unit")
        and pred.negated == gold["negated"]
        and _close(pred.lower, gold.get("lower"))
        and _close(pred.upper, gold.get("upper"))
        and (pred.lower is None or pred.lower_inclusive == gold.get("lower_inclusive"))
        and (pred.upper is None or pred.upper_inclusive == gold.get("upper_inclusive"))
        and _cond_match(pred.condition, gold.get("condition"))
    )


@dataclass(slots=True)
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def n(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def passes(self) -> bool:
        return self.n < MIN_N or (self.precision >= MIN_PRECISION and self.recall >= MIN_RECALL)


@dataclass(slots=True)
class Report:
    variables: dict[str, Score]
    flags: dict[str, Score]
    errors: list[str]
    group_items: int
    group_agree: int
    items: int
    seconds_per_item: float

    def failing(self) -> list[str]:
        return [k for k, s in {**self.variables, **self.flags}.items() if not s.passes()]


def _group_partition(rows: Iterable[tuple[str, str | None, int | None]]) -> frozenset[frozenset[tuple[str, str | None]]]:
    by: dict[int, set[tuple[str, str | None]]] = {}
    for var, ant, g in rows:
        if g is not None:
            by.setdefault(g, set()).add((var, ant))
    return frozenset(frozenset(s) for s in by.values())


def evaluate(items: list[LabelItem]) -> Report:
    variables: dict[str, Score] = {}
    flag_scores: dict[str, Score] = {}
    errors: list[str] = []
    group_items = group_agree = 0
    t0 = time.perf_counter()
    predictions = [analyze(it.criterion_type, it.text) for it in items]
    elapsed = time.perf_counter() - t0
    for it, (pred, pred_flags) in zip(items, predictions):
        unmatched = list(it.constraints)
        for p in pred:
            hit = next((g for g in unmatched if row_matches(p, g)), None)
            s = variables.setdefault(p.variable, Score())
            if hit is not None:
                unmatched.remove(hit)
                s.tp += 1
            else:
                s.fp += 1
                errors.append(f"FP {it.id} [{it.criterion_type}] {p.variable} {p.lower}/{p.lower_inclusive}"
                              f"..{p.upper}/{p.upper_inclusive} {p.unit} neg={p.negated} cond={p.condition!r}"
                              f" ant={p.antigen} | {it.text[:140]}")
        for g in unmatched:
            variables.setdefault(g["variable"], Score()).fn += 1
            errors.append(f"FN {it.id} [{it.criterion_type}] {g['variable']} {g.get('lower')}/{g.get('lower_inclusive')}"
                          f"..{g.get('upper')}/{g.get('upper_inclusive')} {g.get('unit')} neg={g['negated']}"
                          f" cond={g.get('condition')!r} ant={g.get('antigen')} | {it.text[:140]}")
        gold_groups = _group_partition((g["variable"], g.get("antigen"), g.get("group")) for g in it.constraints)
        pred_groups = _group_partition((p.variable, p.antigen, p.group) for p in pred)
        if gold_groups or pred_groups:
            group_items += 1
            if gold_groups == pred_groups:
                group_agree += 1
            else:
                errors.append(f"GROUP {it.id} gold={sorted(map(sorted, gold_groups))} "
                              f"pred={sorted(map(sorted, pred_groups))}")
        gold_flags, got = set(it.flags), set(pred_flags)
        for f in gold_flags | got:
            s = flag_scores.setdefault(f, Score())
            if f in gold_flags and f in got:
                s.tp += 1
            elif f in got:
                s.fp += 1
                errors.append(f"FP-flag {it.id} [{it.criterion_type}] {f} | {it.text[:140]}")
            else:
                s.fn += 1
                errors.append(f"FN-flag {it.id} [{it.criterion_type}] {f} | {it.text[:140]}")
    return Report(variables, flag_scores, errors, group_items, group_agree, len(items),
                  elapsed / max(1, len(items)))


def format_report(rep: Report) -> str:
    lines = [f"{'name':<44} {'n':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'prec':>6} {'rec':>6}  gate"]

    def block(title: str, scores: dict[str, Score]) -> None:
        lines.append(f"-- {title}")
        for name in sorted(scores, key=lambda k: (-scores[k].n, k)):
            s = scores[name]
            gate = "-" if s.n < MIN_N else ("ok" if s.passes() else "FAIL")
            lines.append(f"{name:<44} {s.n:>4} {s.tp:>4} {s.fp:>4} {s.fn:>4} {s.precision:>6.3f} {s.recall:>6.3f}  {gate}")

    block("variables", rep.variables)
    block("flags", rep.flags)
    total = Score(sum(s.tp for s in rep.variables.values()), sum(s.fp for s in rep.variables.values()),
                  sum(s.fn for s in rep.variables.values()))
    lines.append(f"all constraints: n={total.n} precision={total.precision:.3f} recall={total.recall:.3f}")
    lines.append(f"alternative groups: {rep.group_agree}/{rep.group_items} items agree")
    lines.append(f"items={rep.items}  mean analyze time={rep.seconds_per_item * 1e3:.3f} ms/item "
                 f"(gate: n>={MIN_N} needs precision>={MIN_PRECISION}, recall>={MIN_RECALL})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    ap.add_argument("--show-errors", action="store_true", help="list every disagreement")
    args = ap.parse_args(argv)
    rep = evaluate(load_labels(args.labels))
    print(format_report(rep))
    if args.show_errors:
        print("\n".join(rep.errors))
    failing = rep.failing()
    if failing:
        print("FAILING: " + ", ".join(sorted(failing)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
