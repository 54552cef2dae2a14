"""Micro-benchmark: average cost of `analyze` (constraints + flags) per criterion item."""

from __future__ import annotations

import time
from collections.abc import Sequence


def benchmark(items: Sequence[tuple[str, str]], *, repeat: int = 5) -> float:
    """Best-of-`repeat` mean seconds per item for analyze(criterion_type, text) over `items`."""
    from pipeline.eligibility.extract import analyze

    if not items:
        return 0.0
    for ctype, text in items:  # warm caches and lazily compiled regexes
        analyze(ctype, text)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for ctype, text in items:
            analyze(ctype, text)
        best = min(best, time.perf_counter() - t0)
    return best / len(items)
