"""The kill suite: a full run killed with SIGKILL at named points across every stage, then
restarted, ends with the same warehouse as an uninterrupted run, no duplicate row and no
partial file in raw/.

Each case starts from the state before the step it kills (nothing, or the warehouse and raw
store the uninterrupted run had after its first step), runs that step with
TRIALS_KILL_AT=<point> (pipeline/faults.py: the process SIGKILLs itself when it gets there),
checks it really died there, then runs the rest of the full run without faults and compares.
What the comparison leaves out (crawl-log rows, fetch times) is listed in tests/faultkit.py.

Run alone:  .venv/bin/python -m pytest tests/test_kill_suite.py -n 2 -q
"""

from __future__ import annotations

import shutil
import signal

import pytest

from pipeline.faults import POINTS
from tests.faultkit import (
    Site,
    build_reference,
    integrity_problems,
    mirrors,
    raw_files,
    raw_problems,
    run_step,
    snapshot,
)

pytestmark = pytest.mark.slow

# (step killed: 0 = veeva crawl, 1 = clinconnect crawl, point[:nth passage])
KILLS: tuple[tuple[int, str], ...] = (
    # discovery and fetching
    (0, "crawl.started"),
    (0, "fetches.before_commit:1"),  # robots/sitemap log rows not committed
    (0, "fetches.committed:1"),
    (0, "crawl.discovered"),
    (0, "crawl.fetched:3"),  # third body in memory, not stored
    # raw store: before and after the rename
    (0, "rawstore.temp_written:1"),
    (0, "rawstore.temp_written:4"),
    (0, "rawstore.renamed:2"),
    (1, "rawstore.renamed:6"),  # last page of the second site
    # fetch log
    (0, "fetches.before_commit:2"),  # page rows inserted, not committed
    (1, "fetches.committed:2"),
    (0, "crawl.finished"),
    # parse and link
    (0, "ingest.pending_read"),
    (0, "ingest.parsed"),
    (1, "ingest.linked"),  # cross-site links planned, nothing written
    # inside the load transaction
    (1, "load.begun"),
    (1, "load.pages_written"),
    (1, "load.golden_written"),
    (1, "load.before_commit"),
    (0, "load.committed"),
    # profile refresh, and after everything
    (1, "profiles.begun"),
    (1, "profiles.before_commit"),
    (1, "profiles.committed"),
    (1, "ingest.done"),
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted full run, and the state it had after its first step."""
    with mirrors() as sites:
        ref = build_reference(tmp_path_factory.mktemp("kill-reference"), sites)
        yield ref.sites, ref.after_first, ref.state, ref.raw


def test_every_kill_point_exists():
    assert len(KILLS) >= 20
    assert {point.split(":")[0] for _, point in KILLS} <= set(POINTS)
    assert len({point for _, point in KILLS}) == len(KILLS)


def test_the_reference_run_is_meaningful(reference):
    _, _, state, raw = reference
    _, trials = state["trials"]
    assert len(trials) == 9  # 6 + 6 pages, 3 trials shown on both sites
    _, pages = state["pages"]
    assert len(pages) == 12
    assert len(raw) == 12
    _, history = state["trial_history"]
    assert history  # the second site changed the linked trials


@pytest.mark.parametrize("step,point", KILLS, ids=[f"{s}-{p}" for s, p in KILLS])
def test_killed_run_restarts_to_the_same_warehouse(reference, tmp_path, step, point):
    sites, after_first, expected, expected_raw = reference
    work = tmp_path / "run"
    if step == 1:
        shutil.copytree(after_first, work)
    else:
        work.mkdir()

    killed = run_step(sites[step], work, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, (
        f"not killed at {point}: rc={killed.returncode}\n{killed.stderr[-2000:]}")

    for site in sites[step:]:
        resumed = run_step(site, work)
        assert resumed.returncode == 0, resumed.stderr

    assert raw_problems(work / "raw") == []
    assert raw_files(work / "raw") == expected_raw
    assert integrity_problems(work / "w.duckdb") == []
    actual = snapshot(work / "w.duckdb")
    assert actual.keys() == expected.keys()
    for table in expected:
        assert actual[table] == expected[table], f"table {table} differs after a kill at {point}"


def _site(sites: tuple[Site, ...], source: str) -> Site:
    return next(s for s in sites if s.source == source)


def test_killed_twice_in_a_row_still_converges(reference, tmp_path):
    """A restart that is itself killed (in another stage) changes nothing either."""
    sites, _, expected, expected_raw = reference
    work = tmp_path / "run"
    work.mkdir()
    assert run_step(sites[0], work, kill_at="rawstore.renamed:3").returncode == -signal.SIGKILL
    assert run_step(sites[0], work, kill_at="load.before_commit").returncode == -signal.SIGKILL
    assert run_step(sites[0], work).returncode == 0
    assert run_step(sites[1], work, kill_at="profiles.before_commit").returncode == -signal.SIGKILL
    assert run_step(_site(sites, "clinconnect"), work).returncode == 0
    assert raw_problems(work / "raw") == []
    assert raw_files(work / "raw") == expected_raw
    assert integrity_problems(work / "w.duckdb") == []
    assert snapshot(work / "w.duckdb") == expected


def test_the_comparison_sees_a_run_that_was_not_restarted(reference, tmp_path):
    """Guard against a comparison that cannot fail: a kill inside the load, not followed by
    a restart, leaves fetched pages unloaded and a different warehouse."""
    sites, _, expected, _ = reference
    work = tmp_path / "run"
    work.mkdir()
    assert run_step(sites[0], work).returncode == 0
    assert run_step(sites[1], work, kill_at="load.before_commit").returncode == -signal.SIGKILL
    assert "page fetched but not loaded: 6" in integrity_problems(work / "w.duckdb")
    assert snapshot(work / "w.duckdb") != expected
