"""Progress bars for the crawl, parse and load stages on a terminal (rich.progress).

`Bars.for_terminal(quiet)` is on only when neither --quiet was given nor stdout/stderr is
redirected: a cron job or a pipe gets the summary alone, never control characters.  The
stages report through `Bars.stage(name, total)` (parse: pages, load: steps) and, for the
crawl, through the crawler's own ProgressEvent callback (`Bars.crawl_callback`).  A disabled
Bars hands out no-op bars, so callers never branch on it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pipeline.scrape.progress import ProgressCallback, ProgressEvent


class Bar:
    """One stage's bar; a no-op when `progress` is None."""

    def __init__(self, progress: Progress | None, task: TaskID | None):
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def update(self, *, completed: int | None = None, total: int | None = None,
               note: str | None = None) -> None:
        if self._progress is None or self._task is None:
            return
        kwargs: dict[str, object] = {}
        if completed is not None:
            kwargs["completed"] = completed
        if total is not None:
            kwargs["total"] = total
        if note is not None:
            kwargs["note"] = note
        self._progress.update(self._task, **kwargs)  # type: ignore[arg-type]


class Bars:
    """Stage progress bars on `stream` (stderr), or nothing at all when disabled."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True):
        self.enabled = enabled
        self._progress: Progress | None = None
        if enabled:
            console = Console(file=stream or sys.stderr, force_terminal=True)
            self._progress = Progress(
                TextColumn("{task.description:<6}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"), console=console,
            )

    @classmethod
    def for_terminal(cls, quiet: bool = False) -> Bars:
        tty = all(getattr(s, "isatty", lambda: False)() for s in (sys.stdout, sys.stderr))
        return cls(enabled=tty and not quiet)

    @classmethod
    def off(cls) -> Bars:
        return cls(enabled=False)

    def __enter__(self) -> Bars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def stage(self, name: str, total: int | None, note: str = "") -> Iterator[Bar]:
        """A bar for one stage; it is shown complete when the block ends normally."""
        if self._progress is None:
            yield Bar(None, None)
            return
        task = self._progress.add_task(name, total=total, note=note)
        bar = Bar(self._progress, task)
        yield bar
        if total is None:  # open-ended: whatever was counted is the whole
            total = next(t.completed for t in self._progress.tasks if t.id == task)
        self._progress.update(task, completed=total, total=total)

    def crawl_callback(self) -> ProgressCallback | None:
        """The crawler's progress events drawn as the `crawl` bar (None when disabled, so the
        crawler skips building events)."""
        if self._progress is None:
            return None
        progress = self._progress
        task = progress.add_task("crawl", total=None, note="discovering")

        def on_event(ev: ProgressEvent) -> None:
            note = f"new {ev.fetched} unchanged {ev.unchanged} failed {ev.failed}"
            if ev.kind == "discovered":
                note = f"discovered {ev.discovered}"
            progress.update(task, completed=ev.completed, total=ev.planned or None, note=note)
            if ev.kind == "done":
                progress.update(task, total=max(ev.planned, ev.completed), completed=ev.completed)

        return on_event
