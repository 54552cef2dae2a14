"""Fault injection at named points, for the kill suite and the disk-full tests.

The pipeline calls ``checkpoint("stage.point")`` at the places where a crash or a failing
write matters (before/after a rename, inside a transaction, between stages...).  Unless a
test sets one of two environment variables, a checkpoint is one dict lookup and returns:

* ``TRIALS_KILL_AT=name[:nth]`` -- the process SIGKILLs itself the nth time (default 1st)
  it reaches `name`: a real kill -9, no cleanup handler, no flushed buffer, no rollback.
* ``TRIALS_FAIL_AT=name[:nth][=errno]`` -- the nth passage through `name` raises
  ``OSError`` with that errno (default ``ENOSPC``, "No space left on device"), as the
  write at that point would on a full disk (``EACCES``, ``EIO`` ... are accepted too).

The variables are read once per process (the CLI is the unit a test starts and kills), so
the cost in production is a module-level ``None`` check.  Names are plain strings listed in
`POINTS` so tests can check every point they target exists.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

KILL_ENV = "TRIALS_KILL_AT"
FAIL_ENV = "TRIALS_FAIL_AT"
# The "file name" of an injected failure at a warehouse write (the CLI names the real file).
WAREHOUSE = "the warehouse"
_WAREHOUSE_STAGES = ("fetches.", "load.", "profiles.")

# Every checkpoint the code calls, in pipeline order.  A name used in code but missing here
# is a test failure (tests/test_faults.py), so the kill suite cannot silently target a typo.
POINTS: tuple[str, ...] = (
    "crawl.started",  # crawl row written, nothing fetched
    "crawl.discovered",  # robots + sitemaps read and logged
    "crawl.fetched",  # a page body is in memory, not yet stored
    "rawstore.temp_written",  # temp file written + fsynced, not yet renamed
    "rawstore.renamed",  # object in place, directory not yet fsynced
    "fetches.before_commit",  # fetch-log batch inserted, transaction open
    "fetches.committed",  # fetch-log batch committed
    "crawl.finished",  # crawl row marked finished
    "ingest.pending_read",  # raw pages to load read back from the store
    "ingest.parsed",  # pages parsed, nothing linked
    "ingest.linked",  # link plan made, nothing written
    "load.begun",  # load transaction open, nothing written in it
    "load.pages_written",  # page rows inserted, golden rows not yet
    "load.golden_written",  # golden + history rows written, checks not yet run
    "load.before_commit",  # everything written and checked, not committed
    "load.committed",  # load committed, profiles not refreshed
    "profiles.begun",  # profile refresh transaction open
    "profiles.before_commit",  # profile rows written, not committed
    "profiles.committed",  # profile refresh committed
    "ingest.done",  # whole run done, summary not printed
)


@dataclass(frozen=True, slots=True)
class _Trigger:
    name: str
    nth: int
    err: int = errno.ENOSPC


def _parse(text: str | None, with_errno: bool) -> _Trigger | None:
    if not text:
        return None
    err = errno.ENOSPC
    if with_errno and "=" in text:
        text, code = text.split("=", 1)
        err = int(code) if code.isdigit() else getattr(errno, code.upper())
    name, _, nth = text.partition(":")
    return _Trigger(name, int(nth) if nth else 1, err)


_KILL = _parse(os.environ.get(KILL_ENV), False)
_FAIL = _parse(os.environ.get(FAIL_ENV), True)
_counts: dict[str, int] = {}
_lock = threading.Lock()


def _hit(trigger: _Trigger, name: str) -> bool:
    with _lock:  # crawler workers call checkpoints from several threads
        _counts[trigger.name] = n = _counts.get(trigger.name, 0) + 1
    return n == trigger.nth


def checkpoint(name: str, path: str | os.PathLike[str] | None = None) -> None:
    """Die here (TRIALS_KILL_AT) or fail the write at `path` here (TRIALS_FAIL_AT)."""
    if _KILL is None and _FAIL is None:
        return
    if _KILL is not None and _KILL.name == name and _hit(_KILL, name):
        os.kill(os.getpid(), signal.SIGKILL)
    if _FAIL is not None and _FAIL.name == name and _hit(_FAIL, name):
        if path is None and name.startswith(_WAREHOUSE_STAGES):
            path = WAREHOUSE
        raise OSError(_FAIL.err, f"{os.strerror(_FAIL.err)} (injected at {name})",
                      os.fspath(path) if path is not None else None)


def reload_from_env() -> None:
    """Re-read the variables (tests that run the pipeline in-process set them first)."""
    global _KILL, _FAIL
    _KILL = _parse(os.environ.get(KILL_ENV), False)
    _FAIL = _parse(os.environ.get(FAIL_ENV), True)
    _counts.clear()


# --- describing real failures -------------------------------------------------------------

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
DENIED = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def describe_os_error(exc: OSError, what: str | None = None) -> str:
    """One line for a failed read or write: "disk full while writing X (...)" and the like."""
    target = what or (os.fspath(exc.filename) if exc.filename is not None else "a file")
    reason = exc.strerror or str(exc)
    if exc.errno in DISK_FULL:
        return f"disk full while writing {target} ({reason})"
    if exc.errno in DENIED:
        return f"permission denied on {target} ({reason})"
    return f"cannot access {target} ({reason})"


def rollback_quietly(conn: Any) -> None:
    """Roll back after a failure without hiding it: when the failure was the commit itself
    (a full disk), DuckDB has already ended the transaction and ROLLBACK would raise
    "no transaction is active" in place of the real error."""
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - the original exception is the one to report
        pass
