"""Open the warehouse file, turning DuckDB's errors into one-line messages for people.

DuckDB lets one process write a file and nobody else open it meanwhile (not even read-only),
so a second run, or `trials sql` during a load, finds it locked.  open_warehouse either
fails at once with a one-line message naming the holder, or, given `wait`, retries until
the lock is free or the time is up.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import duckdb

from pipeline.db.migrate import migrate, pending_migrations

DEFAULT_WAREHOUSE = "warehouse/trials.duckdb"
WAREHOUSE_ENV = "TRIALS_WAREHOUSE"


class WarehouseError(Exception):
    """A problem with the warehouse file that the user can fix; str() is one line."""


def resolve_warehouse(path: str | os.PathLike[str] | None = None) -> Path:
    """An explicit path, else $TRIALS_WAREHOUSE, else warehouse/trials.duckdb (relative to CWD)."""
    if path:
        return Path(path)
    return Path(os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE)


def is_lock_error(exc: BaseException) -> bool:
    return "Could not set lock" in str(exc)


def describe_duckdb_error(
    path: str | os.PathLike[str], exc: BaseException, *, read_only: bool = False,
    waited: float = 0.0,
) -> str:
    """One line explaining `exc`, raised while opening or using the warehouse at `path`."""
    text = str(exc)
    if is_lock_error(exc):
        holder = re.search(r"\(PID (\d+)\)", text)
        who = f" (process {holder.group(1)})" if holder else ""
        after = f" after waiting {waited:g}s" if waited else ""
        if read_only:
            return (f"warehouse {path} is locked by another process{who}{after}: DuckDB allows "
                    "no readers while a run writes it; retry when it finishes, or pass --wait SECONDS")
        return (f"warehouse {path} is locked by another process{who}{after}; close it and retry, "
                "or pass --wait SECONDS")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return f"disk full while writing the warehouse {path} ({first}); nothing of the failed batch was committed"
    return first


# For running SQL typed by a person (`trials sql`): the warehouse attached READ_ONLY to a
# private in-memory instance, then no file or network access at all (no ATTACH, COPY ... TO,
# EXPORT, read_csv/read_parquet/read_text/glob, INSTALL or LOAD of downloaded extensions,
# persistent secrets) and the configuration locked so the query cannot SET any of it back.
# A private instance rather than duckdb.connect(path, read_only=True, config=...): DuckDB
# shares one instance per file within a process and refuses a second configuration, so the
# sandbox would fail whenever the same process (a test, a notebook) has the file open.
SANDBOX_ALIAS = "warehouse"
SANDBOX_INSTANCE_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
SANDBOX_SETTINGS = ("SET enable_external_access = false", "SET lock_configuration = true")


def _sandboxed(target: Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(":memory:", config=dict(SANDBOX_INSTANCE_CONFIG))
    try:
        conn.execute(f"ATTACH ? AS {SANDBOX_ALIAS} (READ_ONLY)", [str(target)])
        conn.execute(f"USE {SANDBOX_ALIAS}")
        for statement in SANDBOX_SETTINGS:  # last: ATTACH above needs file access
            conn.execute(statement)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect(target: Path, read_only: bool, wait: float, sandboxed: bool = False) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, retrying while another process holds the lock, for up to `wait` s."""
    deadline = time.monotonic() + max(0.0, wait)
    delay = 0.05
    while True:
        try:
            if sandboxed:
                return _sandboxed(target)
            return duckdb.connect(str(target), read_only=read_only)
        except duckdb.Error as exc:
            left = deadline - time.monotonic()
            if is_lock_error(exc) and left > 0:
                time.sleep(min(delay, left))
                delay = min(delay * 2, 1.0)
                continue
            reason = describe_duckdb_error(
                target, exc, read_only=read_only, waited=wait if is_lock_error(exc) else 0.0
            )
            raise WarehouseError(
                reason if is_lock_error(exc) else f"cannot open {target}: {reason}"
            ) from exc


def open_warehouse(
    path: str | os.PathLike[str], *, read_only: bool = False, wait: float = 0.0, sandboxed: bool = False,
) -> duckdb.DuckDBPyConnection:
    """Connect to the warehouse; writable connections create the file and apply migrations.

    Read-only connections never create or upgrade anything: a missing file, or one whose
    schema is older than this code, is an error saying what to run.  `wait`: seconds to keep
    retrying while another process holds the file's lock (0 = fail at once).  `sandboxed`
    (read-only only): see SANDBOX_SETTINGS, for SQL we did not write.
    """
    if sandboxed and not read_only:
        raise ValueError("a sandboxed connection must be read-only")
    target = Path(path)
    if read_only and not target.is_file():
        raise WarehouseError(f"warehouse not found: {target} (run `trials ingest` first)")
    if not read_only and str(target) != ":memory:":
        target.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(target, read_only, wait, sandboxed)
    if read_only:
        try:
            pending = pending_migrations(conn)
        except duckdb.Error as exc:
            conn.close()
            raise WarehouseError(f"cannot open {target}: {describe_duckdb_error(target, exc)}") from exc
        if pending:
            conn.close()
            raise WarehouseError(
                f"warehouse {target} has an older schema (missing {', '.join(m.name for m in pending)}); "
                "run `trials migrate` (or any loading command) to upgrade it in place"
            )
    else:
        try:
            migrate(conn)
        except Exception:
            conn.close()
            raise
    return conn
