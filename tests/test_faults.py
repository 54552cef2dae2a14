"""Disk full, a locked warehouse, an unreadable raw store and corrupt raw pages.

Each fault is met by the real `trials crawl` in a subprocess (see tests/faultkit.py): it
must fail with one clear line (or quarantine the one bad page), leave no half-written file
and no half-written batch, and the next run must finish with the warehouse an
uninterrupted run makes.
"""

from __future__ import annotations

import errno
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline import faults
from pipeline.faults import POINTS, checkpoint, describe_os_error
from pipeline.rawstore import RawStore, RawStoreWriteError
from tests.faultkit import (
    REPO,
    LOG_TABLES,
    build_reference,
    finish_and_compare,
    mirrors,
    raw_files,
    raw_problems,
    run_step,
    snapshot,
    start_from,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    with mirrors() as sites:
        yield build_reference(tmp_path_factory.mktemp("faults-reference"), sites)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("trials: error: "), lines[0]
    return lines[0]


def golden(warehouse: Path) -> dict:
    """Every non-log table (what a failed load must leave exactly as it was)."""
    return {t: rows for t, rows in snapshot(warehouse).items() if t not in LOG_TABLES and ":" not in t}


# --- the hook itself ---------------------------------------------------------------------------

def test_checkpoints_do_nothing_unless_asked(monkeypatch):
    monkeypatch.delenv(faults.KILL_ENV, raising=False)
    monkeypatch.delenv(faults.FAIL_ENV, raising=False)
    faults.reload_from_env()
    for name in POINTS:
        checkpoint(name)  # no kill, no error


def test_fail_at_raises_the_nth_time_with_the_errno(monkeypatch):
    monkeypatch.setenv(faults.FAIL_ENV, "load.before_commit:2=EACCES")
    faults.reload_from_env()
    try:
        checkpoint("load.before_commit")
        checkpoint("load.begun")
        with pytest.raises(PermissionError) as info:
            checkpoint("load.before_commit", "/w.duckdb")
        assert info.value.errno == errno.EACCES and info.value.filename == "/w.duckdb"
        checkpoint("load.before_commit")  # only the nth passage fails
    finally:
        monkeypatch.delenv(faults.FAIL_ENV)
        faults.reload_from_env()


def test_every_checkpoint_in_the_code_is_listed():
    used = set()
    for path in (REPO / "pipeline").rglob("*.py"):
        if path.name == "faults.py":
            continue
        text = path.read_text(encoding="utf-8")
        used |= {part.split('"')[1] for part in text.split("checkpoint(")[1:] if part.startswith('"')}
    assert used == set(POINTS)


def test_os_errors_read_as_one_line():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/raw/x.gz")
    assert describe_os_error(full) == "disk full while writing /data/raw/x.gz (No space left on device)"
    denied = OSError(errno.EACCES, "Permission denied", "/data/w.duckdb")
    assert describe_os_error(denied) == "permission denied on /data/w.duckdb (Permission denied)"


def test_raw_store_write_error_leaves_no_temp_file(tmp_path, monkeypatch):
    monkeypatch.setenv(faults.FAIL_ENV, "rawstore.temp_written")
    faults.reload_from_env()
    try:
        with pytest.raises(RawStoreWriteError, match=r"^disk full while writing raw store object .*\.html\.gz"):
            RawStore(tmp_path).put("veeva", b"<html>page</html>")
    finally:
        monkeypatch.delenv(faults.FAIL_ENV)
        faults.reload_from_env()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


# --- disk full ---------------------------------------------------------------------------------

DISK_FULL_CASES = (
    # (step, point, what the message must name)
    (0, "rawstore.temp_written:3", "disk full while writing raw store object"),
    (1, "rawstore.renamed:1", "disk full while writing raw store object"),
    (1, "fetches.before_commit:2", "disk full while writing the warehouse"),
    (1, "load.before_commit", "disk full while writing the warehouse"),
    (1, "profiles.before_commit", "disk full while writing the warehouse"),
)


@pytest.mark.parametrize("step,point,message", DISK_FULL_CASES, ids=[c[1] for c in DISK_FULL_CASES])
def test_disk_full_fails_cleanly_and_the_next_run_resumes(ref, tmp_path, step, point, message):
    work = start_from(ref, step, tmp_path / "run")
    before = golden(work / "w.duckdb") if step == 1 else None

    failed = run_step(ref.sites[step], work, fail_at=point)
    assert failed.returncode == 1
    line = one_error_line(failed.stderr)
    assert message in line and "No space left on device" in line
    assert raw_problems(work / "raw") == []  # no temp file, no partial object
    if point.startswith(("load.", "rawstore.", "fetches.")) and before is not None:
        assert golden(work / "w.duckdb") == before  # nothing of the batch landed

    finish_and_compare(ref, work, step)


def test_disk_full_in_the_warehouse_changes_no_table(ref, tmp_path):
    """The load's transaction is rolled back whole: not one page row of the batch lands."""
    work = start_from(ref, 1, tmp_path / "run")
    before = snapshot(work / "w.duckdb")
    failed = run_step(ref.sites[1], work, fail_at="load.golden_written")
    assert failed.returncode == 1
    one_error_line(failed.stderr)
    after = snapshot(work / "w.duckdb")
    for table in before:
        if table not in LOG_TABLES and ":" not in table:
            assert after[table] == before[table], table
    # The crawl itself finished and logged its pages: the next run loads them without refetching.
    assert after["fetches: page versions fetched"] != before["fetches: page versions fetched"]
    finish_and_compare(ref, work, 1)


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unprivileged user+mount namespaces (unshare -rm)")
def test_real_full_filesystem_under_the_raw_store(ref, tmp_path):
    """A real 12 KiB tmpfs (private mount namespace, no root needed) holds raw/: the kernel's
    ENOSPC stops the crawl with one line and no temp file; the run resumes on a roomy disk."""
    work = start_from(ref, 0, tmp_path / "run")
    (work / "raw").mkdir()
    saved = tmp_path / "saved-raw"
    site = ref.sites[0]
    script = (
        'mount -t tmpfs -o size=12k tmpfs "$1/raw" || exit 99; shift; '
        '"$@"; rc=$?; cp -a "$RAW/." "$SAVE/"; exit $rc'
    )
    cmd = ["unshare", "-rm", "sh", "-c", script, "sh", str(work),
           sys.executable, "-m", "pipeline.cli", "crawl", site.source, "--base-url", site.base_url,
           "--warehouse", str(work / "w.duckdb"), "--raw-dir", str(work / "raw"), "--rate", "1000", "--quiet"]
    saved.mkdir()
    env = {**os.environ, "RAW": str(work / "raw"), "SAVE": str(saved)}
    env.pop(faults.KILL_ENV, None)
    env.pop(faults.FAIL_ENV, None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc.stderr)
    assert "disk full while writing raw store object" in line and "No space left on device" in line
    stored = raw_files(saved)
    assert 0 < len(stored) < 6  # some pages fitted, then the disk was full
    assert raw_problems(saved) == []  # and nothing partial was left behind
    shutil.copytree(saved, work / "raw", dirs_exist_ok=True)
    finish_and_compare(ref, work, 0)


@pytest.mark.skipif(not _unshare_works(), reason="needs unprivileged user+mount namespaces (unshare -rm)")
def test_real_full_filesystem_under_the_warehouse(ref, tmp_path):
    """The warehouse on a real tmpfs with no room to grow: the load fails with one line and the
    file, copied back out, still holds exactly its previous content; the next run completes."""
    work = start_from(ref, 1, tmp_path / "run")
    before = golden(work / "w.duckdb")
    size_kib = -(-(work / "w.duckdb").stat().st_size // 4096) * 4 + 8  # the file + two pages
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    site = ref.sites[1]
    script = (
        'mount -t tmpfs -o size=' + str(size_kib) + 'k tmpfs "$DB" || exit 99; cp "$SRC" "$DB/w.duckdb"; '
        '"$@"; rc=$?; cp "$DB/w.duckdb" "$SRC.after"; ls -a "$DB" > "$SRC.listing"; exit $rc'
    )
    cmd = ["unshare", "-rm", "sh", "-c", script, "sh",
           sys.executable, "-m", "pipeline.cli", "crawl", site.source, "--base-url", site.base_url,
           "--warehouse", str(db_dir / "w.duckdb"), "--raw-dir", str(work / "raw"), "--rate", "1000", "--quiet"]
    env = {**os.environ, "DB": str(db_dir), "SRC": str(work / "w.duckdb")}
    env.pop(faults.KILL_ENV, None)
    env.pop(faults.FAIL_ENV, None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = one_error_line(proc.stderr)
    assert "disk full while writing the warehouse" in line, line
    assert raw_problems(work / "raw") == []
    shutil.move(work / "w.duckdb.after", work / "w.duckdb")
    assert golden(work / "w.duckdb") == before
    finish_and_compare(ref, work, 1)


# --- locked warehouse ----------------------------------------------------------------------------

def test_crawl_on_a_locked_warehouse_fails_at_once_and_loses_nothing(ref, tmp_path):
    work = start_from(ref, 1, tmp_path / "run")
    before = snapshot(work / "w.duckdb")
    raw_before = raw_files(work / "raw")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('SELECT 1').fetchall();"
         " print('ready', flush=True); sys.stdin.read()", str(work / "w.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        blocked = run_step(ref.sites[1], work)
        assert blocked.returncode == 1
        line = one_error_line(blocked.stderr)
        assert "is locked by another process" in line and f"(process {holder.pid})" in line
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert raw_files(work / "raw") == raw_before  # nothing fetched while locked
    assert snapshot(work / "w.duckdb") == before
    finish_and_compare(ref, work, 1)


# --- unreadable raw store, corrupt pages ---------------------------------------------------------

def _fetched_not_loaded(ref, tmp_path) -> Path:
    """The second site's pages fetched and logged, the process killed before loading them."""
    work = start_from(ref, 1, tmp_path / "run")
    assert run_step(ref.sites[1], work, kill_at="crawl.finished").returncode < 0
    return work


def _objects(work: Path, source: str) -> list[Path]:
    return sorted((work / "raw" / source / "objects").rglob("*.html.gz"))


def _pages(warehouse: Path) -> list[tuple]:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return conn.execute("SELECT url, parse_status, parse_error FROM pages "
                            "WHERE source IN ('clinconnect', 'unknown') ORDER BY url, parse_status").fetchall()
    finally:
        conn.close()


def test_corrupt_raw_page_is_quarantined_and_the_rest_loads(ref, tmp_path):
    work = _fetched_not_loaded(ref, tmp_path)
    victim = _objects(work, "clinconnect")[0]
    original = victim.read_bytes()
    victim.write_bytes(original[:10] + b"\x00garbage\xff" * 8)  # gzip header, then noise

    resumed = run_step(ref.sites[1], work)
    assert resumed.returncode == 0, resumed.stderr
    assert "Pages quarantined: 1" in resumed.stdout
    pages = _pages(work / "w.duckdb")
    rejected = [p for p in pages if p[1] == "rejected"]
    assert len(rejected) == 1
    assert "raw store" in rejected[0][2] and "not valid gzip" in rejected[0][2] and victim.name in rejected[0][2]
    assert sum(p[1] in ("ok", "partial") for p in pages) == 5  # the other pages of the run loaded
    (kept,) = (work / "raw" / "clinconnect" / "quarantine").iterdir()  # kept as found, never deleted
    assert kept.read_bytes() == original[:10] + b"\x00garbage\xff" * 8
    assert str(kept) in rejected[0][2] and not victim.exists()

    healed = run_step(ref.sites[1], work)  # the name is free again: the page is fetched anew
    assert healed.returncode == 0, healed.stderr
    assert victim.read_bytes() == original
    loaded = {url for url, status, _ in _pages(work / "w.duckdb") if status in ("ok", "partial")}
    assert len(loaded) == 6


def test_unreadable_raw_object_is_quarantined_then_loads_once_readable(ref, tmp_path):
    """Unreadable = a directory where the object file should be (chmod does not deny root)."""
    work = _fetched_not_loaded(ref, tmp_path)
    victim = _objects(work, "clinconnect")[1]
    aside = tmp_path / "aside.gz"
    shutil.move(victim, aside)
    victim.mkdir()

    resumed = run_step(ref.sites[1], work)
    assert resumed.returncode == 0, resumed.stderr
    rejected = [p for p in _pages(work / "w.duckdb") if p[1] == "rejected"]
    assert len(rejected) == 1 and "is unreadable" in rejected[0][2]

    victim.rmdir()  # the operator fixes the store: nothing was lost, the page loads next run
    shutil.move(aside, victim)
    again = run_step(ref.sites[1], work)
    assert again.returncode == 0, again.stderr
    loaded = {url for url, status, _ in _pages(work / "w.duckdb") if status in ("ok", "partial")}
    assert len(loaded) == 6


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_raw_object_without_read_permission(ref, tmp_path):
    work = _fetched_not_loaded(ref, tmp_path)
    victim = _objects(work, "clinconnect")[2]
    victim.chmod(0)
    try:
        resumed = run_step(ref.sites[1], work)
    finally:
        victim.chmod(0o644)
    assert resumed.returncode == 0, resumed.stderr
    rejected = [p for p in _pages(work / "w.duckdb") if p[1] == "rejected"]
    assert len(rejected) == 1 and "Permission denied" in rejected[0][2]


def test_unwritable_raw_store_stops_the_crawl_with_one_line(ref, tmp_path):
    """raw/<source> is a file, so no object can be written: one line, nothing half-written."""
    work = start_from(ref, 0, tmp_path / "run")
    (work / "raw").mkdir()
    (work / "raw" / "veeva").write_bytes(b"not a directory")
    failed = run_step(ref.sites[0], work)
    assert failed.returncode == 1
    line = one_error_line(failed.stderr)
    assert "raw store object" in line and "Not a directory" in line
    (work / "raw" / "veeva").unlink()
    finish_and_compare(ref, work, 0)


def test_a_gzip_stream_cut_short_is_named_truncated(tmp_path):
    store = RawStore(tmp_path)
    obj = store.put("veeva", b"<html>" + b"x" * 5000 + b"</html>")
    data = Path(obj.path).read_bytes()
    Path(obj.path).write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match="truncated gzip stream|not valid gzip"):
        store.get("veeva", obj.sha256)
    assert gzip.decompress(data)  # the untouched bytes were fine
