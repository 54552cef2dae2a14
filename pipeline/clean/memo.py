"""Memoization for pure functions of one short page string (labels, statuses, places).

Every page repeats the same few hundred short strings -- its site's labels and chrome,
status and phase words, country and city lines -- so caching them pays on real pages,
not only on a benchmark.  Long strings (paragraphs, criteria) are computed every time:
they rarely repeat and would fill the cache.  The cache stops growing at `max_entries`
instead of evicting, so a hit costs one dict lookup; results never depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

T = TypeVar("T")

SHORT = 80  # characters: longer strings are not cached
MAX_ENTRIES = 50_000  # per function; ~10 MB at most for short strings


def remember(cache: dict, key: object, text: str, value: object) -> None:
    """Store `value` under `key` when `text` is short and the cache not full: the one rule
    every short-string cache here follows (also those keyed by more than the text)."""
    if len(text) <= SHORT and len(cache) < MAX_ENTRIES:
        cache[key] = value


def short_text_memo(fn: Callable[[str], T]) -> Callable[[str], T]:
    """`fn(text)` cached for texts of at most SHORT characters."""
    cache: dict[str, T] = {}
    get = cache.get
    missing = object()

    @wraps(fn)
    def memo(text: str) -> T:
        hit = get(text, missing)
        if hit is not missing:
            return hit  # type: ignore[return-value]
        value = fn(text)
        remember(cache, text, text, value)
        return value

    memo.cache = cache  # type: ignore[attr-defined]  # for tests
    return memo
