"""Shared by the kill suite and the fault tests: a two-site "full run" as real subprocesses,
and a comparison of two warehouses that ignores only what legitimately differs.

A full run is `trials crawl veeva` then `trials crawl clinconnect` against two local
mirrors (generated pages; pages 3-5 show the same trials on both sites, so the second run
links pages across sites and rewrites golden records the first one made).  Each step is the
real CLI in its own process, so SIGKILL (pipeline/faults.py) is a real kill -9.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipeline.db.schema import RUN_TABLES

from pipeline.devtools.mirror import Mirror, MirrorServer, generate_pages
from pipeline.faults import FAIL_ENV, KILL_ENV

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("veeva", "clinconnect")

# What the comparison leaves out, and why (the README's "Reliability and security" points here):
# * `crawls`, `fetches`: the crawl log.  A restarted run is a second crawl (or a resumed one
#   that re-requests robots.txt, the sitemaps and its unflushed pages), so the log rightly has
#   more rows with other ids and times.  Compared instead: the set of page versions fetched,
#   no page URL finished twice within one crawl, and every crawl marked finished.
# * `schema_version.applied_at`: when the migration ran.
# * timestamps derived from the fetch time of a page (the time our request was made):
#   `pages.fetched_at`, `trial_history.observed_at`, `trials.first_seen_at / last_seen_at /
#   last_changed_at / removed_at`.  Everything else -- every other column of every table,
#   trial ids and page ids included -- must be identical, row for row, duplicates counted.
# * `runs`, `run_pages`, `run_changes`: the run log.  A killed run is a run of its own (marked
#   failed by the next one), so the restarted sequence logs more runs, and the changes are
#   split between them.  What is compared instead: no run is left `running`.
LOG_TABLES = frozenset({"crawls", "fetches", *RUN_TABLES})
EXCLUDED_COLUMNS: dict[str, frozenset[str]] = {
    "schema_version": frozenset({"applied_at"}),
    "pages": frozenset({"fetched_at"}),
    "trial_history": frozenset({"observed_at"}),
    "trials": frozenset({"first_seen_at", "last_seen_at", "last_changed_at", "removed_at"}),
}


@dataclass(frozen=True, slots=True)
class Site:
    source: str
    base_url: str


@contextmanager
def mirrors(n_pages: int = 6) -> Iterator[tuple[Site, ...]]:
    """Both mirrors on 127.0.0.1; clinconnect's pages 3..n+2 overlap veeva's 3..n-1."""
    veeva = MirrorServer(Mirror("veeva", generate_pages("veeva", n_pages)))
    clinconnect = MirrorServer(Mirror("clinconnect", generate_pages("clinconnect", n_pages, start=3)))
    with veeva, clinconnect:
        yield Site("veeva", veeva.base_url), Site("clinconnect", clinconnect.base_url)


@dataclass(frozen=True, slots=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def run_step(site: Site, workdir: Path, *, kill_at: str | None = None, fail_at: str | None = None,
             timeout: float = 90) -> Outcome:
    """`trials crawl SOURCE` into workdir/w.duckdb and workdir/raw, politeness off."""
    env = {k: v for k, v in os.environ.items() if k not in (KILL_ENV, FAIL_ENV)}
    if kill_at:
        env[KILL_ENV] = kill_at
    if fail_at:
        env[FAIL_ENV] = fail_at
    cmd = [sys.executable, "-m", "pipeline.cli", "crawl", site.source, "--base-url", site.base_url,
           "--warehouse", str(workdir / "w.duckdb"), "--raw-dir", str(workdir / "raw"),
           "--rate", "1000", "--concurrency", "2", "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


# --- comparing warehouses -------------------------------------------------------------------

def _tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    return [t for (t,) in conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema = 'main' ORDER BY 1").fetchall()]


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [c for (c,) in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "AND table_schema = 'main' ORDER BY ordinal_position", [table]).fetchall()]


def snapshot(warehouse: Path) -> dict[str, Any]:
    """Every table's rows minus the excluded columns (sorted, duplicates kept), plus the
    crawl-log facts that must not depend on kills."""
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        state: dict[str, Any] = {}
        for table in _tables(conn):
            if table in LOG_TABLES:
                continue
            cols = [c for c in _columns(conn, table) if c not in EXCLUDED_COLUMNS.get(table, ())]
            quoted = ", ".join(f'"{c}"' for c in cols)  # names from the catalog, not from input
            state[table] = (cols, conn.execute(f"SELECT {quoted} FROM {table} ORDER BY ALL").fetchall())
        state["fetches: page versions fetched"] = conn.execute(
            "SELECT DISTINCT source, url, final_url, content_sha256 FROM fetches "
            "WHERE kind = 'page' AND outcome = 'fetched' ORDER BY ALL").fetchall()
        return state
    finally:
        conn.close()


def integrity_problems(warehouse: Path) -> list[str]:
    """Duplicates and leftovers that no run, killed or not, may leave behind."""
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        checks = {
            "duplicate page_id": "SELECT count(*) - count(DISTINCT page_id) FROM pages",
            "duplicate page_records": "SELECT count(*) - count(DISTINCT page_id) FROM page_records",
            "duplicate trial_id": "SELECT count(*) - count(DISTINCT trial_id) FROM trials",
            "page fetched twice within one crawl": (
                "SELECT count(*) FROM (SELECT crawl_id, url FROM fetches WHERE kind = 'page' "
                "AND outcome IN ('fetched', 'unchanged', 'gone') GROUP BY ALL HAVING count(*) > 1)"),
            "crawl left unfinished": "SELECT count(*) FROM crawls WHERE status <> 'finished'",
            "run left running": "SELECT count(*) FROM runs WHERE outcome = 'running'",
            "page fetched but not loaded": (
                "SELECT count(*) FROM (SELECT DISTINCT coalesce(final_url, url) AS u, content_sha256 "
                "FROM fetches WHERE kind = 'page' AND outcome = 'fetched') f "
                "WHERE NOT EXISTS (SELECT 1 FROM pages p WHERE p.url = f.u "
                "AND p.content_sha256 = f.content_sha256)"),
        }
        problems = []
        for name, sql in checks.items():
            (n,) = conn.execute(sql).fetchone() or (0,)
            if n:
                problems.append(f"{name}: {n}")
        return problems
    finally:
        conn.close()


def raw_files(raw: Path) -> dict[str, str]:
    """Every file under raw/ (relative path -> sha256 of its decompressed bytes)."""
    out = {}
    for path in sorted(p for p in raw.rglob("*") if p.is_file()):
        rel = path.relative_to(raw).as_posix()
        try:
            out[rel] = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
        except (OSError, EOFError) as exc:
            out[rel] = f"unreadable: {exc}"
    return out


def raw_problems(raw: Path) -> list[str]:
    """Temp files, partial objects, or objects whose content does not match their name."""
    problems = []
    for rel, digest in raw_files(raw).items():
        name = rel.rsplit("/", 1)[-1]
        if not name.endswith(".html.gz") or name.startswith("."):
            problems.append(f"stray file {rel}")
        elif name[: -len(".html.gz")] != digest:
            problems.append(f"object {rel} holds {digest}")
    return problems


@dataclass(frozen=True, slots=True)
class Reference:
    sites: tuple[Site, ...]
    after_first: Path  # workdir (w.duckdb + raw/) as the clean run left it after its first step
    state: dict[str, Any]  # snapshot() of the finished clean run
    raw: dict[str, str]  # raw_files() of the finished clean run


def build_reference(root: Path, sites: tuple[Site, ...]) -> Reference:
    """The uninterrupted full run, and a copy of its state after the first step."""
    clean = root / "clean"
    first = run_step(sites[0], clean)
    assert first.returncode == 0, first.stderr
    after_first = root / "after-first"
    shutil.copytree(clean, after_first)
    second = run_step(sites[1], clean)
    assert second.returncode == 0, second.stderr
    return Reference(sites, after_first, snapshot(clean / "w.duckdb"), raw_files(clean / "raw"))


def start_from(ref: Reference, step: int, work: Path) -> Path:
    """A workdir holding the clean run's state before `step`."""
    if step == 1:
        shutil.copytree(ref.after_first, work)
    else:
        work.mkdir(parents=True)
    return work


def finish_and_compare(ref: Reference, work: Path, step: int) -> None:
    """Run the remaining steps without faults; the result must equal the clean run."""
    for site in ref.sites[step:]:
        resumed = run_step(site, work)
        assert resumed.returncode == 0, resumed.stderr
    assert raw_problems(work / "raw") == []
    assert raw_files(work / "raw") == ref.raw
    assert integrity_problems(work / "w.duckdb") == []
    actual = snapshot(work / "w.duckdb")
    assert actual.keys() == ref.state.keys()
    for table in ref.state:
        assert actual[table] == ref.state[table], f"table {table} differs"
