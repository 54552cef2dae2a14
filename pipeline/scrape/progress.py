"""Progress events from a crawl, and a one-line terminal printer for them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TextIO

EventKind = Literal["discovered", "planned", "fetched", "unchanged", "gone", "failed", "deferred", "done"]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    kind: EventKind
    source: str
    url: str | None  # the page concerned (None for discovered/planned/done)
    discovered: int  # study URLs found so far
    planned: int  # pages this run will request
    completed: int  # pages finished this run (any outcome)
    fetched: int
    unchanged: int
    failed: int
    elapsed_s: float
    rate: float  # completed pages per second this run
    eta_s: float | None  # seconds left at the current rate; None before any rate is known
    message: str | None = None


ProgressCallback = Callable[[ProgressEvent], None]


class TerminalProgress:
    """Rewrites one status line on a TTY; prints nothing when output is not a terminal."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, ev: ProgressEvent) -> None:
        if not self.enabled:
            return
        eta = "?" if ev.eta_s is None else _fmt_s(ev.eta_s)
        line = (
            f"{ev.source}: {ev.completed}/{ev.planned} pages "
            f"(new {ev.fetched}, unchanged {ev.unchanged}, failed {ev.failed}) "
            f"{ev.rate:.2f}/s eta {eta}  [discovered {ev.discovered}]"
        )
        end = "\n" if ev.kind == "done" else ""
        self.stream.write("\r\x1b[2K" + line + end)
        self.stream.flush()


def _fmt_s(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
