"""`trials export`: every warehouse table and analyst view as Parquet or CSV files.

One file per relation, `<name>.parquet` or `<name>.csv`, written through DuckDB's relation
API (`write_parquet` / `write_csv` take the path as an argument, so no SQL is ever built
from it).  Parquet keeps the column types: lists stay lists, dates stay dates, timestamps
stay timestamps; CSV writes lists as `[a, b]` text.  Each file is written under a temporary
name and renamed into place, so a reader never sees half a file and an interrupted export
leaves the previous file of that name intact.  The whole export reads one read-only
connection, so every file shows the same moment of the warehouse.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.db.connection import open_warehouse

ExportFormat = Literal["parquet", "csv"]
FORMATS: tuple[ExportFormat, ...] = ("parquet", "csv")

# Relation names come from the warehouse's own catalog; anything that is not a plain
# identifier (it could only have been created by hand) is not turned into a file name.
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ExportError(Exception):
    """The output directory is unusable; str() is one line."""


@dataclass(frozen=True, slots=True)
class ExportedFile:
    name: str
    kind: Literal["table", "view"]
    path: Path
    rows: int


@dataclass(frozen=True, slots=True)
class ExportResult:
    directory: Path
    format: ExportFormat
    files: tuple[ExportedFile, ...]
    skipped: tuple[str, ...]  # relations whose names are not plain identifiers


def output_dir(path: str | os.PathLike[str]) -> Path:
    """The validated output directory (created if missing)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ExportError(f"not a directory: {out}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {out}: {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK):
        raise ExportError(f"cannot write to {out}")
    return out


def export_warehouse(
    warehouse: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    fmt: ExportFormat = "parquet",
    *,
    wait: float = 0.0,
) -> ExportResult:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    conn = open_warehouse(warehouse, read_only=True, wait=wait)
    try:
        relations = conn.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_catalog = current_database() "
            "ORDER BY table_type, table_name"
        ).fetchall()
        out = output_dir(directory)
        files: list[ExportedFile] = []
        skipped: list[str] = []
        for name, table_type in relations:
            if not _PLAIN_NAME.fullmatch(name):
                skipped.append(name)
                continue
            relation = conn.table(name)
            target = out / f"{name}.{fmt}"
            temp = out / f".{name}.{fmt}.tmp"
            try:
                if fmt == "parquet":
                    relation.write_parquet(str(temp), compression="zstd")
                else:
                    relation.write_csv(str(temp), header=True)
                os.replace(temp, target)
            finally:
                temp.unlink(missing_ok=True)
            ((count,),) = relation.aggregate("count(*)").fetchall()
            kind: Literal["table", "view"] = "view" if table_type == "VIEW" else "table"
            files.append(ExportedFile(name, kind, target, int(count)))
    finally:
        conn.close()
    return ExportResult(out, fmt, tuple(files), tuple(skipped))


def format_export(result: ExportResult) -> str:
    width = max((len(f.name) for f in result.files), default=0)
    lines = [f"Exported {len(result.files)} relations as {result.format} to {result.directory}:"]
    for f in result.files:
        lines.append(f"  {f.name:<{width}}  {f.kind:<5}  {f.rows:>8} rows  {f.path.name}")
    for name in result.skipped:
        lines.append(f"  skipped {name!r}: not a plain identifier")
    return "\n".join(lines)
