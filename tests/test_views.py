"""The analyst views on the sample warehouse (raw/sample plus two re-fetched pages)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipeline import run
from pipeline.db.sample import REFETCH, build_sample_warehouse


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    sample = Path(__file__).resolve().parents[1] / "raw" / "sample"
    path = build_sample_warehouse(root / "sample.duckdb", sample, root).warehouse
    connection = duckdb.connect(str(path), read_only=True)
    yield connection
    connection.close()


def test_trial_overview_has_one_line_per_trial_with_lists(conn):
    assert conn.execute("SELECT count(*), count(DISTINCT trial_id) FROM trial_overview").fetchall() == \
        conn.execute("SELECT count(*), count(*) FROM trials").fetchall()
    types = dict(conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'trial_overview'").fetchall())
    for name in ("other_ids", "phases", "conditions", "interventions", "countries", "sources"):
        assert types[name] == "VARCHAR[]", name
    assert types["start_date"] == "DATE" and types["min_age_years"] == "DOUBLE"
    row = conn.execute(
        "SELECT nct_id, other_ids, lead_sponsor, overall_status, phases, conditions, interventions[1:3], "
        "intervention_types, enrollment, min_age, max_age, countries[1:3], location_count, sources, "
        "first_seen_at, last_changed_at, removed_from_source "
        "FROM trial_overview WHERE nct_id = 'NCT03424005'").fetchall()
    assert row == [(
        "NCT03424005", [], "Hoffmann-La Roche", "RECRUITING",
        ["PHASE1", "PHASE2"], ["Triple Negative Breast Cancer"],
        ["Capecitabine", "Atezolizumab", "Ipatasertib"], ["DRUG"], 310, "18 Years", None,
        ["Australia", "France", "Germany"], 22, ["clinconnect", "veeva"],
        dt.datetime(2025, 1, 6), dt.datetime(2025, 1, 6), False,
    )]
    assert conn.execute("SELECT other_ids FROM trial_overview WHERE nct_id = 'NCT03494712'").fetchall() == [
        (["CL1-95010-001", "2017-004180-12",
          "safety-of-single-intravenous-administration-of-s95010-in-human-healthy-volunteers"],)]
    # trials without list items get empty lists, not NULL
    assert conn.execute("SELECT count(*) FROM trial_overview WHERE conditions IS NULL "
                        "OR interventions IS NULL OR countries IS NULL").fetchall() == [(0,)]


def test_recruiting_trials_are_recruiting_and_published(conn):
    rows = conn.execute("SELECT nct_id, brief_title FROM recruiting_trials ORDER BY nct_id, brief_title").fetchall()
    expected = conn.execute(
        "SELECT nct_id, brief_title FROM trials WHERE overall_status = 'RECRUITING' "
        "AND NOT removed_from_source ORDER BY nct_id, brief_title").fetchall()
    assert rows == expected and len(rows) == 6
    # NCT04599543 started recruiting with the re-fetch; its contact comes along
    assert conn.execute("SELECT contact_name IS NOT NULL, recruiting_countries FROM recruiting_trials "
                        "WHERE nct_id = 'NCT04599543'").fetchall() == [(True, [])]


def test_recent_changes_shows_the_refetch_with_context(conn):
    assert conn.execute("SELECT observed_at, nct_id, field, old_value, new_value, source "
                        "FROM recent_changes").fetchall() == [
        (REFETCH.replace(tzinfo=None), "NCT04599543", "enrollment", "36", "40", "veeva"),
        (REFETCH.replace(tzinfo=None), "NCT04599543", "overall_status", "NOT_YET_RECRUITING",
         "RECRUITING", "veeva"),
    ]


def test_recent_changes_covers_30_days_before_the_latest_observation(
    tmp_path, warehouse_path, fake_parser, write_page
):
    day, t0 = 86_400, 1_735_689_600  # 2025-01-01
    pages = tmp_path / "pages"
    write_page(pages, "p", mtime=t0, nct="NCT00000040", status="NOT_YET_RECRUITING", title="A")
    run.ingest([pages], warehouse_path)
    write_page(pages, "p", mtime=t0 + 10 * day, nct="NCT00000040", status="RECRUITING", title="A")
    run.ingest([pages], warehouse_path)
    write_page(pages, "p", mtime=t0 + 60 * day, nct="NCT00000040", status="RECRUITING", title="B")
    run.ingest([pages], warehouse_path)
    conn = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        assert conn.execute("SELECT field, old_value, new_value FROM trial_history ORDER BY observed_at"
                            ).fetchall() == [("overall_status", "NOT_YET_RECRUITING", "RECRUITING"),
                                             ("brief_title", "A", "B")]
        assert conn.execute("SELECT field, old_value, new_value FROM recent_changes").fetchall() == [
            ("brief_title", "A", "B")]
    finally:
        conn.close()
