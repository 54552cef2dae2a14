"""pipeline.run: read -> parse -> link -> load against a temporary warehouse."""

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import pipeline.db.load
import pipeline.ingest
import pipeline.parse
from pipeline import run
from pipeline.db.checks import run_checks
from pipeline.db.schema import ARROW_SCHEMAS
from pipeline.ingest import UnreadableFile
from pipeline.link import trial_id_for


def query(path: Path, sql: str):
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def assert_checks_pass(path: Path) -> None:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        failed = [o.summary for o in run_checks(conn) if not o.passed]
    finally:
        conn.close()
    assert failed == []


# --- the real page captures, real parser -------------------------------------------------

def test_seed_ingest_counts_pages_and_is_idempotent(seeds_dir, warehouse_path, snapshot):
    first = run.ingest([seeds_dir], warehouse_path)
    assert first.pages_read == 5 and first.pages_new == 5 and first.pages_skipped_known == 0
    assert sum(first.pages_by_status.values()) == 5
    assert query(warehouse_path, "SELECT count(*) FROM pages") == [(5,)]
    assert all(url.startswith("file://") for (url,) in query(warehouse_path, "SELECT url FROM pages"))
    # every page either belongs to a trial or was rejected with a reason
    assert query(warehouse_path, "SELECT count(*) FROM pages WHERE (trial_id IS NULL) <> "
                                 "(parse_status = 'rejected')") == [(0,)]
    assert query(warehouse_path, "SELECT count(*) FROM pages WHERE parse_status = 'rejected' "
                                 "AND parse_error IS NULL") == [(0,)]
    assert first.table_rows["pages"] == 5
    assert_checks_pass(warehouse_path)

    before = snapshot(warehouse_path)
    second = run.ingest([seeds_dir], warehouse_path)
    assert snapshot(warehouse_path) == before
    assert (second.pages_new, second.pages_skipped_known, second.trials_loaded) == (0, 5, 0)
    assert second.table_rows == first.table_rows


def test_seeds_yield_trials(seeds_dir, warehouse_path):
    # The 5 seeds are 5 different trials; two show their NCT ID on the page.
    summary = run.ingest([seeds_dir], warehouse_path)
    assert summary.trials_loaded == 5
    assert summary.pages_by_status == {"ok": 2, "partial": 3, "rejected": 0}
    ncts = {n for (n,) in query(warehouse_path, "SELECT nct_id FROM trials WHERE nct_id IS NOT NULL")}
    assert ncts == {"NCT04599543", "NCT05563545"}
    by_source = dict(query(warehouse_path, "SELECT source, count(*) FROM pages GROUP BY source"))
    assert by_source == {"veeva": 4, "clinconnect": 1}
    (sponsor, status, start), = query(
        warehouse_path,
        "SELECT t.lead_sponsor, t.overall_status, t.start_date FROM trials t JOIN pages p USING (trial_id) "
        "WHERE p.source = 'clinconnect'")
    assert (sponsor, status, str(start)) == ("Zhejiang University", "RECRUITING", "2024-04-11")
    assert query(warehouse_path, "SELECT count(*) FROM criteria") == [(32 + 25 + 17 + 23 + 7,)]  # per seed: 000, 001, 002, 003, 004


def test_ingesting_the_same_file_twice_in_one_run_counts_it_once(seeds_dir, warehouse_path):
    seed = next(seeds_dir.glob("000_*.txt"))
    summary = run.ingest([seed, seed, seeds_dir], warehouse_path)
    assert (summary.pages_read, summary.pages_new, summary.pages_skipped_known) == (7, 5, 2)


def test_whole_sample_ingests_every_page_file(sample_dir, sample_page_count, warehouse_path):
    summary = run.ingest([sample_dir], warehouse_path)
    assert summary.pages_read == summary.pages_new == sample_page_count
    assert_checks_pass(warehouse_path)


def test_missing_path_is_an_input_error(tmp_path, warehouse_path):
    with pytest.raises(run.InputError, match="no such file or directory"):
        run.ingest([tmp_path / "nope"], warehouse_path)
    assert not warehouse_path.exists()


def test_summary_text_lists_counts_and_quarantine(tmp_path, warehouse_path, fake_parser, write_page):
    folder = tmp_path / "pages"
    write_page(folder, "good", nct="NCT00000001", title="A trial")
    (folder / "empty.txt").write_text("")
    text = run.format_summary(run.ingest([folder], warehouse_path))
    assert "Pages read: 2 (new 2, re-parsed 0, already known 0)" in text
    assert "Parsed pages by status: ok 1, partial 0, rejected 1" in text
    assert "Trials loaded: 1" in text
    assert "Pages quarantined: 1" in text and "empty.txt: no fields" in text
    assert any(line.split()[:2] == ["trials", "1"] for line in text.splitlines())


# --- the stand-in parser: linking across runs --------------------------------------------

def test_page_without_nct_joins_existing_trial_in_a_later_run(
    tmp_path, warehouse_path, fake_parser, write_page
):
    write_page(tmp_path / "run1", "veeva", nct="NCT00000001", title="Study", sponsor="Acme",
               org="ORG-1", status="RECRUITING", mtime=1_700_000_000)
    run.ingest([tmp_path / "run1"], warehouse_path)
    write_page(tmp_path / "run2", "clinconnect", title="Other words", sponsor="ACME", org="org-1",
               updated="2025-06-14", status="COMPLETED", conditions="AML, MDS")
    summary = run.ingest([tmp_path / "run2"], warehouse_path)

    tid = trial_id_for("nct:NCT00000001")
    assert summary.trials_loaded == 1
    assert query(warehouse_path, "SELECT trial_id, nct_id, overall_status, page_count, "
                                 "brief_title FROM trials") == [
        (tid, "NCT00000001", "COMPLETED", 2, "Other words")]  # the dated page is freshest
    assert query(warehouse_path, "SELECT name FROM conditions ORDER BY position") == [
        ("AML",), ("MDS",)]
    assert query(warehouse_path, "SELECT DISTINCT trial_id FROM pages") == [(tid,)]
    assert_checks_pass(warehouse_path)


def test_loose_trial_is_absorbed_when_its_nct_page_arrives(
    tmp_path, warehouse_path, fake_parser, write_page
):
    write_page(tmp_path / "run1", "loose", title="CAR-NK cells in relapsed AML", sponsor="Acme")
    run.ingest([tmp_path / "run1"], warehouse_path)
    ((old_id, page_id),) = query(warehouse_path, "SELECT trial_id, best_page_id FROM trials")
    assert old_id == trial_id_for(f"page:{page_id}")

    write_page(tmp_path / "run2", "nct", nct="NCT00000002", title="CAR-NK Cells in Relapsed AML",
               sponsor="Acme")
    summary = run.ingest([tmp_path / "run2"], warehouse_path)
    # the trial keeps its id when it gains an NCT ID
    assert summary.trials_removed == 0
    assert query(warehouse_path, "SELECT trial_id, nct_id, page_count FROM trials") == [
        (old_id, "NCT00000002", 2)]
    # linked by score (no shared id); each page names the other as its match
    assert query(warehouse_path, "SELECT method, score > 6 FROM record_links") == [
        ("fuzzy", True), ("fuzzy", True)]
    assert_checks_pass(warehouse_path)


def test_two_nct_ids_stay_two_trials(tmp_path, warehouse_path, fake_parser, write_page):
    write_page(tmp_path, "a", nct="nct00000003", title="Same", sponsor="Acme", org="X")
    write_page(tmp_path, "b", nct="NCT 0000 0004", title="Same", sponsor="Acme", org="X")
    run.ingest([tmp_path], warehouse_path)
    assert query(warehouse_path, "SELECT nct_id FROM trials ORDER BY 1") == [
        ("NCT00000003",), ("NCT00000004",)]


def test_ingest_result_does_not_depend_on_batching(tmp_path, fake_parser, write_page, snapshot):
    pages = tmp_path / "pages"
    write_page(pages / "x", "1", nct="NCT00000005", title="T", sponsor="S", mtime=1_700_000_000)
    write_page(pages / "y", "2", title="T", sponsor="S", conditions="C1", mtime=1_700_000_100)
    write_page(pages / "y", "3", title="Lonely", sponsor="S", mtime=1_700_000_200)
    together, apart = tmp_path / "together.duckdb", tmp_path / "apart.duckdb"
    run.ingest([pages], together)
    run.ingest([pages / "y"], apart)
    run.ingest([pages / "x"], apart)
    assert snapshot(together) == snapshot(apart)


# --- bad input never crashes a run -------------------------------------------------------

def test_unreadable_file_is_recorded_as_rejected(tmp_path, warehouse_path, monkeypatch, write_page,
                                                  fake_parser):
    good = write_page(tmp_path, "good", nct="NCT00000006")
    bad = write_page(tmp_path, "bad", nct="NCT00000007")
    real_read = pipeline.ingest.read_page_file

    def flaky(path, max_bytes=pipeline.ingest.DEFAULT_MAX_BYTES):
        if path.name == bad.name:
            return UnreadableFile(url=path.resolve().as_uri(), error="cannot read file: I/O error")
        return real_read(path, max_bytes)

    monkeypatch.setattr(pipeline.ingest, "read_page_file", flaky)
    summary = run.ingest([tmp_path], warehouse_path)
    assert summary.quarantined == (run.Quarantined(bad.resolve().as_uri(), "cannot read file: I/O error"),)
    assert query(warehouse_path, "SELECT url, content_sha256, parse_status, parse_error, trial_id "
                                 "FROM pages WHERE parse_status = 'rejected'") == [
        (bad.resolve().as_uri(), run.EMPTY_SHA256, "rejected", "cannot read file: I/O error", None)]
    assert query(warehouse_path, "SELECT count(*) FROM trials") == [(1,)]
    # still unreadable next time: known, not duplicated
    again = run.ingest([tmp_path], warehouse_path)
    assert again.pages_new == 0
    assert good.exists()


def test_parser_crash_becomes_a_rejected_page(tmp_path, warehouse_path, fake_parser, write_page):
    write_page(tmp_path, "boom", crash="kaboom")
    summary = run.ingest([tmp_path], warehouse_path)
    assert summary.pages_by_status["rejected"] == 1
    assert "parser crashed: RuntimeError: kaboom" in summary.quarantined[0].reason


def test_invalid_codes_quarantine_the_page(tmp_path, warehouse_path, fake_parser, write_page):
    write_page(tmp_path, "odd", nct="NCT00000008", status="Sometimes recruiting")
    summary = run.ingest([tmp_path], warehouse_path)
    assert summary.quarantined[0].reason == "invalid codes: overall_status='Sometimes recruiting'"
    assert query(warehouse_path, "SELECT count(*) FROM trials") == [(0,)]


def test_a_failing_load_leaves_the_warehouse_as_it_was(
    tmp_path, warehouse_path, fake_parser, write_page, snapshot, monkeypatch
):
    write_page(tmp_path / "a", "one", nct="NCT00000010", title="One")
    run.ingest([tmp_path / "a"], warehouse_path)
    before = snapshot(warehouse_path)
    real_golden_rows = pipeline.db.load.golden_rows

    def golden_rows_with_a_bad_last_table(trials):
        # locations are inserted last: pages, records, trials, ... are already written
        bad = pa.Table.from_pylist([{"trial_id": "T0", "position": None}],
                                   schema=ARROW_SCHEMAS["locations"])
        return {**real_golden_rows(trials), "locations": bad}

    monkeypatch.setattr(pipeline.db.load, "golden_rows", golden_rows_with_a_bad_last_table)
    write_page(tmp_path / "b", "two", nct="NCT00000011", title="Two")
    with pytest.raises(duckdb.ConstraintException):
        run.ingest([tmp_path / "b"], warehouse_path)
    assert snapshot(warehouse_path) == before


def test_parser_version_bump_reparses_known_pages(
    tmp_path, warehouse_path, fake_parser, write_page, monkeypatch
):
    write_page(tmp_path, "p", nct="NCT00000012", title="Old")
    run.ingest([tmp_path], warehouse_path)
    monkeypatch.setattr(pipeline.parse, "PARSER_VERSION", "test-next")
    summary = run.ingest([tmp_path], warehouse_path)
    assert (summary.pages_reparsed, summary.pages_skipped_known) == (1, 0)
    assert query(warehouse_path, "SELECT parser_version FROM pages") == [("test-next",)]
    assert query(warehouse_path, "SELECT count(*) FROM trials") == [(1,)]
    again = run.ingest([tmp_path], warehouse_path)
    assert (again.pages_new, again.pages_skipped_known) == (0, 1)
