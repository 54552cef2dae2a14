"""Run an analyst's SQL on a read-only warehouse connection and render the result."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import duckdb

from pipeline.db.connection import WarehouseError, describe_duckdb_error, open_warehouse

OutputFormat = Literal["table", "csv", "json"]
FORMATS: tuple[OutputFormat, ...] = ("table", "csv", "json")


class QueryError(Exception):
    """The SQL itself failed (syntax, unknown table, write on a read-only warehouse...)."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def execute(conn: duckdb.DuckDBPyConnection, sql: str, label: str | os.PathLike[str] = "") -> QueryResult:
    """Run `sql` on an open connection; QueryError (one line) when the SQL fails."""
    try:
        cursor = conn.execute(sql)
        columns = tuple(d[0] for d in cursor.description or ())
        rows = tuple(tuple(r) for r in cursor.fetchall()) if columns else ()
    except duckdb.Error as exc:
        raise QueryError(_refusal(exc) or describe_duckdb_error(label, exc)) from exc
    return QueryResult(columns, rows)


def _refusal(exc: duckdb.Error) -> str | None:
    """A clearer line when the sandbox, not the SQL, stopped the query."""
    text = " ".join(str(exc).split())
    if isinstance(exc, duckdb.PermissionException) or "disabled by configuration" in text:
        return f"refused: queries may not read or write files, attach databases or load extensions ({text})"
    if "the configuration has been locked" in text:
        return f"refused: settings cannot be changed in a query ({text})"
    if "read-only mode" in text:
        return f"refused: the warehouse is read-only here ({text})"
    return None


# Statement kinds an analyst's query may contain.  A first, readable refusal; the sandboxed
# connection (read-only, no external access, locked settings) is what actually holds.
ALLOWED_STATEMENTS = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL"})


def check_statements(conn: duckdb.DuckDBPyConnection, sql: str, label: str | os.PathLike[str] = "") -> None:
    """QueryError unless every statement in `sql` is a read query (SELECT, EXPLAIN, ...)."""
    try:
        kinds = [statement.type.name for statement in conn.extract_statements(sql)]
    except duckdb.Error as exc:
        raise QueryError(describe_duckdb_error(label, exc)) from exc
    refused = sorted({kind for kind in kinds if kind not in ALLOWED_STATEMENTS})
    if refused:
        raise QueryError(
            f"refused: only read queries ({', '.join(sorted(ALLOWED_STATEMENTS))}) may run here, "
            f"not {', '.join(refused)}; the warehouse is opened read-only"
        )


def run_query(warehouse: str | os.PathLike[str], sql: str, *, wait: float = 0.0) -> QueryResult:
    """Execute `sql` read-only and sandboxed (no file or network access, settings locked: see
    SANDBOX_SETTINGS); WarehouseError for file problems (including a lock held for longer than
    `wait` seconds by a run writing the warehouse), QueryError for SQL ones."""
    conn = open_warehouse(warehouse, read_only=True, wait=wait, sandboxed=True)
    try:
        check_statements(conn, sql, warehouse)
        return execute(conn, sql, warehouse)
    finally:
        conn.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (uuid.UUID, dt.timedelta)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _text(value: Any, null: str) -> str:
    if value is None:
        return null
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(_jsonable(value), ensure_ascii=False)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


def format_result(result: QueryResult, fmt: OutputFormat = "table") -> str:
    """The result as an aligned text table, CSV with a header, or a JSON array of objects."""
    if fmt == "json":
        return json.dumps(
            [dict(zip(result.columns, map(_jsonable, row))) for row in result.rows],
            ensure_ascii=False, indent=2,
        )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([_text(v, "") for v in row] for row in result.rows)
        return buf.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    cells = [[_text(v, "NULL").replace("\n", " ") for v in row] for row in result.rows]
    widths = [len(c) for c in result.columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row)]
    numeric = [
        all(isinstance(r[i], (int, float, decimal.Decimal)) and not isinstance(r[i], bool)
            for r in result.rows if r[i] is not None) and any(r[i] is not None for r in result.rows)
        for i in range(len(result.columns))
    ]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(list(result.columns)), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in cells)
    n = len(result.rows)
    out.append(f"({n} row{'s' if n != 1 else ''})")
    return "\n".join(out)


__all__ = [
    "FORMATS", "OutputFormat", "QueryError", "QueryResult", "WarehouseError",
    "execute", "format_result", "run_query",
]
