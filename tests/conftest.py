"""Shared fixtures: temporary warehouses, table snapshots, a lock-holding process, and a tiny
stand-in parser so warehouse/link/CLI tests do not depend on extraction quality."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from pipeline.db.migrate import migrate
from pipeline.db.schema import ALL_TABLES
from pipeline.ingest import page_id_for
from pipeline.models import Identifier, ParsedPage, RawPage, TrialRecord

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture
def sample_dir() -> Path:
    """The bundled sample `trials run` ingests by default (other sessions add pages to it)."""
    return PROJECT_ROOT / "raw" / "sample"


@pytest.fixture
def seeds_dir() -> Path:
    """The five real page captures: a small input whose size does not change."""
    return PROJECT_ROOT / "raw" / "sample" / "seeds"


@pytest.fixture
def sample_page_count(sample_dir: Path) -> int:
    """How many page files the bundled sample holds right now."""
    from pipeline.ingest import iter_page_files

    return sum(1 for _ in iter_page_files([sample_dir]))


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    """Where a test's warehouse goes (not created yet)."""
    return tmp_path / "warehouse" / "trials.duckdb"


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A migrated, empty warehouse in tmp_path."""
    conn = duckdb.connect(str(tmp_path / "fresh.duckdb"))
    migrate(conn)
    yield conn
    conn.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRIALS_WAREHOUSE / DAGSTER_HOME from the developer's shell leaks into a test."""
    monkeypatch.delenv("TRIALS_WAREHOUSE", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def _snapshot(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        for table in ALL_TABLES
    }


@pytest.fixture
def snapshot() -> Callable[[duckdb.DuckDBPyConnection | Path], dict[str, list[tuple[object, ...]]]]:
    """Every warehouse table's rows (sorted), for comparing a warehouse before and after."""

    def take(target: duckdb.DuckDBPyConnection | Path) -> dict[str, list[tuple[object, ...]]]:
        if isinstance(target, duckdb.DuckDBPyConnection):
            return _snapshot(target)
        conn = duckdb.connect(str(target), read_only=True)
        try:
            return _snapshot(conn)
        finally:
            conn.close()

    return take


@pytest.fixture
def locked_warehouse(warehouse_path: Path) -> Iterator[Path]:
    """A warehouse file held open for writing by another process for the test's duration."""
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('SELECT 1').fetchall();"
         " print('ready', flush=True); sys.stdin.read()",
         str(warehouse_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        yield warehouse_path
    finally:
        holder.kill()
        holder.wait(timeout=10)


# --- hand-built pages --------------------------------------------------------------------

def make_parsed(
    name: str,
    record: TrialRecord | None,
    *,
    status: str = "ok",
    source: str = "veeva",
    fetched_at: dt.datetime = dt.datetime(2025, 1, 1, 12, 0),
    error: str | None = None,
) -> ParsedPage:
    """A ParsedPage for a made-up URL; same name + same record = same page_id."""
    url = f"https://example.test/{name}"
    sha = f"sha-{name}"
    return ParsedPage(
        page_id=page_id_for(url, sha), url=url, source=source,  # type: ignore[arg-type]
        content_sha256=sha, fetched_at=fetched_at, parse_status=status,  # type: ignore[arg-type]
        parse_error=error, record=record,
    )


@pytest.fixture
def parsed_page() -> Callable[..., ParsedPage]:
    return make_parsed


# --- a stand-in parser -------------------------------------------------------------------

def _fake_parse(raw: RawPage) -> ParsedPage:
    """Parse 'key: value' lines (nct, title, sponsor, org, status, updated, conditions)."""
    fields: dict[str, str] = {}
    for line in raw.content.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    page_id = page_id_for(raw.url, raw.content_sha256)
    base = dict(page_id=page_id, url=raw.url, source="veeva", content_sha256=raw.content_sha256,
                fetched_at=raw.fetched_at)
    if "crash" in fields:
        raise RuntimeError(fields["crash"])
    if not fields:
        return ParsedPage(**base, parse_status="rejected", parse_error="no fields")  # type: ignore[arg-type]
    idents = []
    if fields.get("nct"):
        idents.append(Identifier("nct", fields["nct"]))
    if fields.get("org"):
        idents.append(Identifier("org_study_id", fields["org"]))
    record = TrialRecord(
        nct_id=fields.get("nct") or None,
        brief_title=fields.get("title"),
        lead_sponsor=fields.get("sponsor"),
        overall_status=fields.get("status"),
        last_update_date=dt.date.fromisoformat(fields["updated"]) if "updated" in fields else None,
        conditions=tuple(c.strip() for c in fields.get("conditions", "").split(",") if c.strip()),
        identifiers=tuple(idents),
    )
    status = "ok" if record.nct_id else "partial"
    return ParsedPage(**base, parse_status=status, record=record,  # type: ignore[arg-type]
                      parse_error=None if record.nct_id else "missing fields: nct_id")


@pytest.fixture
def fake_parser(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ParsedPage]:
    """Replace pipeline.parse.parse_page with the 'key: value' stand-in for this test."""
    import pipeline.parse

    monkeypatch.setattr(pipeline.parse, "parse_page", _fake_parse)
    return _fake_parse


@pytest.fixture
def write_page() -> Callable[..., Path]:
    """write_page(folder, name, nct=..., title=..., ...) -> a page file for the fake parser."""

    def write(folder: Path, name: str, mtime: int | None = None, **fields: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.txt"
        path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()), encoding="utf-8")
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    return write
