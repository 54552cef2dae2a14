"""Trial history and presence: re-fetched pages, idempotent re-runs, replay semantics, and
trials that disappear from a mirror (real crawls of the local test mirror)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipeline import run
from pipeline.cli import main
from pipeline.db import history
from pipeline.db.checks import run_checks
from pipeline.devtools.mirror import Faults, Mirror, MirrorServer, generate_pages
from pipeline.link import LinkPage, trial_id_for
from pipeline.models import TrialRecord

T1 = 1_735_689_600  # 2025-01-01 00:00 UTC
DAY = 86_400


def at(stamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).replace(tzinfo=None)


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def assert_checks_pass(path: Path) -> None:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        assert [o.summary for o in run_checks(conn) if not o.passed] == []
    finally:
        conn.close()


# --- replay, without a warehouse ---------------------------------------------------------

def page(pid: str, stamp: int, **fields) -> LinkPage:
    return LinkPage(pid, "veeva", at(stamp), TrialRecord(nct_id="NCT00000001", **fields))


def test_first_observation_writes_no_change():
    pages = [page("a", T1, overall_status="RECRUITING", enrollment=10)]
    timeline = history.replay("T1", pages, history.tracked_values(pages[0].record))
    assert timeline.changes == ()
    assert timeline.first_seen_at == at(T1) and timeline.last_changed_at == at(T1)


def test_each_fetch_time_is_one_observation_and_changes_name_their_page():
    pages = [
        page("a", T1, overall_status="NOT_YET_RECRUITING", phases=("PHASE1",)),
        page("b", T1 + DAY, overall_status="RECRUITING", phases=("PHASE1", "PHASE2"),
             start_date=dt.date(2025, 2, 1)),
        page("c", T1 + 2 * DAY, overall_status="RECRUITING", phases=("PHASE1", "PHASE2"),
             start_date=dt.date(2025, 2, 1)),
    ]
    final = history.tracked_values(pages[-1].record)
    timeline = history.replay("T1", list(reversed(pages)), final)  # input order is irrelevant
    assert [(c.field, c.old_value, c.new_value, c.observed_at, c.page_id) for c in timeline.changes] == [
        ("overall_status", "NOT_YET_RECRUITING", "RECRUITING", at(T1 + DAY), "b"),
        ("phases", "PHASE1", "PHASE1,PHASE2", at(T1 + DAY), "b"),
        ("start_date", None, "2025-02-01", at(T1 + DAY), "b"),
    ]
    assert timeline.last_changed_at == at(T1 + DAY)


def test_the_last_state_is_the_golden_record():
    pages = [page("a", T1, overall_status="RECRUITING"), page("b", T1 + DAY, overall_status="RECRUITING")]
    final = {**history.tracked_values(pages[-1].record), "overall_status": "COMPLETED"}
    (change,) = history.replay("T1", pages, final).changes
    assert (change.old_value, change.new_value, change.page_id) == ("RECRUITING", "COMPLETED", "b")


def test_value_text():
    assert [history.value_text(v) for v in (None, "", "  ", (), ("A", "B"), dt.date(2025, 1, 2), 40, "x")] == [
        None, None, None, None, "A,B", "2025-01-02", "40", "x"]


# --- through the pipeline, with the stand-in parser ---------------------------------------

def test_status_change_on_a_refetched_page_writes_one_history_row(
    tmp_path, warehouse_path, fake_parser, write_page, snapshot
):
    pages = tmp_path / "pages"
    write_page(pages, "p", mtime=T1, nct="NCT00000001", title="Study", sponsor="Acme",
               status="NOT_YET_RECRUITING")
    write_page(pages, "other", mtime=T1, nct="NCT00000002", title="Other", status="RECRUITING")
    first = run.ingest([pages], warehouse_path)
    assert first.rows_written["trial_history"] == 0  # first observations are not changes
    tid = trial_id_for("nct:NCT00000001")
    other = trial_id_for("nct:NCT00000002")
    before_other = query(warehouse_path, "SELECT * FROM trials WHERE trial_id = ?", [other])

    # the same URL fetched again a day later, now recruiting
    write_page(pages, "p", mtime=T1 + DAY, nct="NCT00000001", title="Study", sponsor="Acme",
               status="RECRUITING")
    second = run.ingest([pages], warehouse_path)
    assert (second.pages_new, second.trials_loaded, second.rows_written["trial_history"]) == (1, 1, 1)
    new_page = query(warehouse_path, "SELECT page_id FROM pages WHERE fetched_at = ?", [at(T1 + DAY)])
    assert query(warehouse_path, "SELECT * FROM trial_history") == [
        (tid, "overall_status", "NOT_YET_RECRUITING", "RECRUITING", at(T1 + DAY), new_page[0][0])]
    assert query(warehouse_path, "SELECT overall_status, first_seen_at, last_seen_at, last_changed_at, "
                                 "removed_from_source, removed_at, page_count FROM trials "
                                 "WHERE trial_id = ?", [tid]) == [
        ("RECRUITING", at(T1), at(T1 + DAY), at(T1 + DAY), False, None, 2)]
    # the other trial is untouched, row for row
    assert query(warehouse_path, "SELECT * FROM trials WHERE trial_id = ?", [other]) == before_other
    assert_checks_pass(warehouse_path)

    # nothing new: nothing changes, not even a timestamp
    before = snapshot(warehouse_path)
    third = run.ingest([pages], warehouse_path)
    assert snapshot(warehouse_path) == before
    assert third.pages_new == 0 and set(third.rows_written.values()) == {0}


def test_history_does_not_depend_on_batching_or_arrival_order(
    tmp_path, fake_parser, write_page, snapshot
):
    early, late = tmp_path / "early", tmp_path / "late"
    write_page(early, "a", mtime=T1, nct="NCT00000003", status="RECRUITING", title="T")
    write_page(late, "b", mtime=T1 + 3 * DAY, nct="NCT00000003", status="COMPLETED", title="T",
               updated="2025-01-04")
    together, backwards = tmp_path / "together.duckdb", tmp_path / "backwards.duckdb"
    run.ingest([early, late], together)
    run.ingest([late], backwards)  # the newer snapshot first, the older one arrives later
    run.ingest([early], backwards)
    assert snapshot(together) == snapshot(backwards)
    assert query(together, "SELECT field, old_value, new_value, observed_at FROM trial_history") == [
        ("overall_status", "RECRUITING", "COMPLETED", at(T1 + 3 * DAY))]
    assert query(together, "SELECT first_seen_at, last_changed_at FROM trials") == [
        (at(T1), at(T1 + 3 * DAY))]


def test_history_follows_pages_that_move_between_trials(tmp_path, warehouse_path, fake_parser,
                                                         write_page):
    # a page without NCT ID forms its own trial, then joins the NCT trial when that appears:
    # the absorbed trial's history goes with it, none is left dangling
    title = "CAR-NK Cells in Relapsed Acute Myeloid Leukemia"
    write_page(tmp_path / "r1", "loose", mtime=T1, title=title, sponsor="Acme", status="RECRUITING")
    run.ingest([tmp_path / "r1"], warehouse_path)
    ((tid,),) = query(warehouse_path, "SELECT trial_id FROM trials")
    write_page(tmp_path / "r2", "nct", mtime=T1 + DAY, nct="NCT00000004", title=title,
               sponsor="Acme", status="COMPLETED")
    summary = run.ingest([tmp_path / "r2"], warehouse_path)
    # the trial keeps the id it was first given; nothing is removed
    assert summary.trials_removed == 0
    assert query(warehouse_path, "SELECT trial_id, field, old_value, new_value FROM trial_history") == [
        (tid, "overall_status", "RECRUITING", "COMPLETED")]
    assert query(warehouse_path, "SELECT first_seen_at FROM trials") == [(at(T1),)]
    assert_checks_pass(warehouse_path)


# --- presence: real crawls of the local test mirror -------------------------------------

def crawl(base_url: str, warehouse: Path, raw: Path, urls: Path) -> None:
    assert main(["crawl", "clinconnect", "--base-url", base_url, "--warehouse", str(warehouse),
                 "--raw-dir", str(raw), "--rate", "500", "--quiet", "--urls", str(urls)]) == 0


def test_a_trial_whose_page_is_gone_is_kept_and_flagged(tmp_path, capsys, clean_env):
    pages = generate_pages("clinconnect", 3)
    paths = sorted(pages)
    mirror = Mirror("clinconnect", pages, faults=Faults())
    warehouse, raw, urls = tmp_path / "w.duckdb", tmp_path / "raw", tmp_path / "urls.txt"
    with MirrorServer(mirror) as server:
        urls.write_text("".join(f"{server.base_url}{p}\n" for p in paths))
        crawl(server.base_url, warehouse, raw, urls)
        trials_before = query(warehouse, "SELECT trial_id, nct_id, brief_title, overall_status "
                                         "FROM trials ORDER BY trial_id")
        assert len(trials_before) == 3
        first_seen = dict(query(warehouse, "SELECT p.url, t.last_seen_at FROM trials t "
                                           "JOIN pages p USING (trial_id)"))

        gone_url = f"{server.base_url}{paths[0]}"
        mirror.faults.gone.add(paths[0])
        del mirror.pages[paths[0]]
        crawl(server.base_url, warehouse, raw, urls)

        # the trial is still there, flagged, with when it was last seen and when it went
        assert query(warehouse, "SELECT trial_id, nct_id, brief_title, overall_status FROM trials "
                                "ORDER BY trial_id") == trials_before
        ((gone_at,),) = query(warehouse, "SELECT requested_at FROM fetches WHERE url = ? "
                                         "AND outcome = 'gone'", [gone_url])
        state = {url: rest for url, *rest in query(
            warehouse, "SELECT p.url, t.removed_from_source, t.removed_at, t.last_seen_at "
                       "FROM trials t JOIN pages p USING (trial_id)")}
        assert state[gone_url] == [True, gone_at, first_seen[gone_url]]
        for url, (removed, removed_at, last_seen) in state.items():
            if url != gone_url:  # confirmed unchanged (304): still there, seen again
                assert (removed, removed_at) == (False, None)
                assert last_seen > first_seen[url]
        assert query(warehouse, "SELECT field, old_value, new_value FROM recent_changes") == [
            ("removed_from_source", "false", "true")]
        assert query(warehouse, "SELECT count(*) FROM recruiting_trials r JOIN pages p "
                                "USING (trial_id) WHERE p.url = ?", [gone_url]) == [(0,)]
        assert_checks_pass(warehouse)

        # it comes back: no longer removed
        mirror.faults.gone.discard(paths[0])
        mirror.pages[paths[0]] = pages[paths[0]]
        crawl(server.base_url, warehouse, raw, urls)
        assert query(warehouse, "SELECT t.removed_from_source, t.removed_at FROM trials t "
                                "JOIN pages p USING (trial_id) WHERE p.url = ?", [gone_url]) == [
            (False, None)]
    capsys.readouterr()


def test_a_changed_page_on_recrawl_is_one_history_row(tmp_path, capsys, clean_env):
    pages = generate_pages("clinconnect", 2)
    paths = sorted(pages)
    mirror = Mirror("clinconnect", pages)
    warehouse, raw, urls = tmp_path / "w.duckdb", tmp_path / "raw", tmp_path / "urls.txt"
    with MirrorServer(mirror) as server:
        urls.write_text("".join(f"{server.base_url}{p}\n" for p in paths))
        crawl(server.base_url, warehouse, raw, urls)
        url = f"{server.base_url}{paths[1]}"
        ((status,),) = query(warehouse, "SELECT t.overall_status FROM trials t JOIN pages p "
                                        "USING (trial_id) WHERE p.url = ?", [url])
        assert status == "RECRUITING"
        body = pages[paths[1]].body.replace(b"Recruiting", b"Completed")
        assert body != pages[paths[1]].body
        mirror.set_page(paths[1], body)
        crawl(server.base_url, warehouse, raw, urls)
        ((fetched_at,),) = query(warehouse, "SELECT max(fetched_at) FROM pages WHERE url = ?", [url])
        assert query(warehouse, "SELECT h.field, h.old_value, h.new_value, h.observed_at "
                                "FROM trial_history h") == [
            ("overall_status", "RECRUITING", "COMPLETED", fetched_at)]
        assert query(warehouse, "SELECT t.overall_status, t.last_changed_at FROM trials t JOIN pages p "
                                "USING (trial_id) WHERE p.url = ? AND p.fetched_at = ?",
                     [url, fetched_at]) == [("COMPLETED", fetched_at)]
    capsys.readouterr()


def test_a_failed_fetch_proves_nothing(fresh_db, parsed_page):
    """Only 404/410 (outcome 'gone') removes; network failures leave presence alone."""
    from pipeline.db.load import load_batch
    from pipeline.link import link_pages

    p = parsed_page("a", TrialRecord(nct_id="NCT00000005"))
    trials = link_pages([LinkPage(p.page_id, p.source, p.fetched_at, p.record)])
    load_batch(fresh_db, new_pages=[p], trials=trials, page_trial_ids={p.page_id: trials[0].trial_id})
    fresh_db.execute(
        "INSERT INTO fetches (crawl_id, kind, url, source, requested_at, attempts, outcome) "
        "VALUES ('c1', 'page', ?, 'veeva', TIMESTAMP '2025-03-01', 3, 'failed')", [p.url])
    assert history.refresh_presence(fresh_db) == 0
    fresh_db.execute(
        "INSERT INTO fetches (crawl_id, kind, url, source, requested_at, attempts, outcome) "
        "VALUES ('c2', 'page', ?, 'veeva', TIMESTAMP '2025-03-02', 1, 'gone')", [p.url])
    assert history.refresh_presence(fresh_db) == 1
    assert fresh_db.execute("SELECT removed_from_source, removed_at FROM trials").fetchall() == [
        (True, dt.datetime(2025, 3, 2))]
