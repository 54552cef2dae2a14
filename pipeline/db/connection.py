"""Open the warehouse file, turning DuckDB's errors into one-line messages for people."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from pipeline.db.migrate import migrate

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


def describe_duckdb_error(path: str | os.PathLike[str], exc: BaseException) -> str:
    """One line explaining `exc`, raised while opening or using the warehouse at `path`."""
    text = str(exc)
    if is_lock_error(exc):
        holder = re.search(r"\(PID (\d+)\)", text)
        who = f" (process {holder.group(1)})" if holder else ""
        return f"warehouse {path} is locked by another process{who}; close it and retry"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first


def open_warehouse(
    path: str | os.PathLike[str], *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Connect to the warehouse; writable connections create the file and apply migrations.

    Read-only connections never create or upgrade anything: a missing file is an error.
    """
    target = Path(path)
    if read_only and not target.is_file():
        raise WarehouseError(f"warehouse not found: {target} (run `trials ingest` first)")
    if not read_only and str(target) != ":memory:":
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = duckdb.connect(str(target), read_only=read_only)
    except duckdb.Error as exc:
        reason = describe_duckdb_error(target, exc)
        raise WarehouseError(reason if is_lock_error(exc) else f"cannot open {target}: {reason}") from exc
    if not read_only:
        try:
            migrate(conn)
        except Exception:
            conn.close()
            raise
    return conn
