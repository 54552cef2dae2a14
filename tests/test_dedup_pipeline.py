"""Deduplication inside the pipeline: incremental linking, stable trial ids, review decisions,
survivorship provenance (field_sources / field_conflicts), the CLI and the Dagster asset."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path

import duckdb
import pytest

import pipeline.parse
from pipeline import run
from pipeline.cli import main
from pipeline.db import checks
from pipeline.db.connection import open_warehouse
from pipeline.db.load import load_batch
from pipeline.dedup import DedupConfig
from pipeline.link import LinkPage, trial_id_for
from pipeline.models import Identifier, ParsedPage, RawPage, TrialRecord
from pipeline.relink import assign_ids, plan_relink
from tests.conftest import _fake_parse

T1 = 1_700_000_000
DAY = 86_400
TITLE = "CAR-NK Cell Therapy for Relapsed or Refractory Acute Myeloid Leukemia"
TYPO = "CAR-NK Cell Therapy for Relapsed or Refractory Acute Myeloid Leukaemia"


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def assert_checks_pass(path: Path) -> None:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        failed = [o.summary for o in checks.run_checks(conn) if not o.passed]
    finally:
        conn.close()
    assert failed == []


def _fake_parse_with_source(raw: RawPage) -> ParsedPage:
    """The conftest stand-in parser, plus a `source:` line naming the mirror."""
    parsed = _fake_parse(raw)
    for line in raw.content.decode().splitlines():
        if line.startswith("source:"):
            return dataclasses.replace(parsed, source=line.partition(":")[2].strip())
    return parsed


@pytest.fixture
def parser(monkeypatch):
    monkeypatch.setattr(pipeline.parse, "parse_page", _fake_parse_with_source)


def trial_of(path: Path, page_file: Path) -> str:
    ((tid,),) = query(path, "SELECT trial_id FROM pages WHERE url = ? ORDER BY fetched_at DESC LIMIT 1",
                      [page_file.resolve().as_uri()])
    return tid


# --- stable ids ---------------------------------------------------------------------------

def test_trial_ids_stay_put_across_reruns_refetches_and_new_pages(
    tmp_path, warehouse_path, parser, write_page, snapshot
):
    a = write_page(tmp_path / "r1", "a", mtime=T1, nct="NCT00000011", title=TITLE, sponsor="Acme")
    loose = write_page(tmp_path / "r1", "loose", mtime=T1, title="Anti-CD19 CAR-Engineered NK Cells "
                       "in B-cell Lymphoma", sponsor="Other Org", org="NK-19")
    run.ingest([tmp_path / "r1"], warehouse_path)
    before = {p: trial_of(warehouse_path, p) for p in (a, loose)}
    assert before[a] == trial_id_for("nct:NCT00000011")
    state = snapshot(warehouse_path)
    # the same pages again: nothing changes at all
    assert run.ingest([tmp_path / "r1"], warehouse_path).trials_loaded == 0
    assert snapshot(warehouse_path) == state
    # a re-fetched version of each page, and a new page of the first trial on another mirror
    write_page(tmp_path / "r1", "a", mtime=T1 + DAY, nct="NCT00000011", title=TITLE, sponsor="Acme",
               status="COMPLETED")
    write_page(tmp_path / "r1", "loose", mtime=T1 + DAY, title="Anti-CD19 CAR-Engineered NK Cells "
               "in B-cell Lymphoma", sponsor="Other Org", org="NK-19", status="RECRUITING")
    write_page(tmp_path / "r2", "b", mtime=T1 + DAY, source="clinconnect", title=TITLE.upper(),
               sponsor="ACME")
    run.ingest([tmp_path / "r1", tmp_path / "r2"], warehouse_path)
    assert {p: trial_of(warehouse_path, p) for p in (a, loose)} == before
    assert query(warehouse_path, "SELECT trial_id, page_count, overall_status FROM trials ORDER BY 1") == \
        sorted([(before[a], 3, "COMPLETED"), (before[loose], 2, "RECRUITING")])
    assert query(warehouse_path, "SELECT count(*) FROM trial_id_aliases") == [(0,)]
    assert_checks_pass(warehouse_path)


def test_trial_gaining_an_nct_id_merges_and_its_old_id_stays_resolvable(
    tmp_path, warehouse_path, parser, write_page
):
    # a Veeva page without NCT ID (sponsor's own id only) and a ClinConnect page with the NCT
    # ID under another title: nothing ties them, two trials
    veeva = write_page(tmp_path / "v", "study", mtime=T1, title="IL3 CAR-T Cells for CD123 AML",
                       sponsor="Zhejiang University", org="ZJU-CD123-01")
    write_page(tmp_path / "c", "nct", mtime=T1, source="clinconnect", nct="NCT04599543",
               title="Interleukin-3 Receptor Directed T Cells in Myeloid Disease", sponsor="ZJU")
    run.ingest([tmp_path / "v", tmp_path / "c"], warehouse_path)
    loose_id = trial_of(warehouse_path, veeva)
    nct_id = trial_id_for("nct:NCT04599543")
    assert query(warehouse_path, "SELECT trial_id FROM trials ORDER BY 1") == sorted(
        [(loose_id,), (nct_id,)])
    # the Veeva page is re-fetched and now shows the NCT ID: the trials merge
    write_page(tmp_path / "v", "study", mtime=T1 + DAY, nct="NCT 0459 9543",
               title="IL3 CAR-T Cells for CD123 AML", sponsor="Zhejiang University", org="ZJU-CD123-01")
    summary = run.ingest([tmp_path / "v"], warehouse_path)
    assert summary.trials_removed == 1
    assert query(warehouse_path, "SELECT trial_id, nct_id, page_count FROM trials") == [
        (nct_id, "NCT04599543", 3)]
    assert query(warehouse_path, "SELECT retired_id, trial_id FROM trial_id_aliases") == [
        (loose_id, nct_id)]
    assert query(warehouse_path, "SELECT trial_id FROM trial_id_lookup WHERE any_id = ?",
                 [loose_id]) == [(nct_id,)]
    # the old version joined through the sponsor's own id, the new one through the NCT ID
    methods = dict(query(warehouse_path, "SELECT p.fetched_at, l.method FROM record_links l "
                                         "JOIN pages p USING (page_id) WHERE p.url = ?",
                         [veeva.resolve().as_uri()]))
    assert sorted(methods.values()) == ["nct", "secondary_id"]
    assert_checks_pass(warehouse_path)


def test_conflicting_nct_ids_never_merge(tmp_path, warehouse_path, parser, write_page):
    write_page(tmp_path, "a", nct="NCT00000003", title=TITLE, sponsor="Acme", org="X-1")
    write_page(tmp_path, "b", nct="NCT00000004", title=TITLE, sponsor="Acme", org="X-1")
    run.ingest([tmp_path], warehouse_path)
    # a page sharing the sponsor id and title with both arrives later
    write_page(tmp_path / "later", "c", title=TITLE, sponsor="Acme", org="X-1")
    run.ingest([tmp_path / "later"], warehouse_path)
    assert query(warehouse_path, "SELECT nct_id, page_count FROM trials WHERE nct_id IS NOT NULL "
                                 "ORDER BY 1") in ([("NCT00000003", 2), ("NCT00000004", 1)],
                                                   [("NCT00000003", 1), ("NCT00000004", 2)])
    assert query(warehouse_path, "SELECT count(*) FROM trials") == [(2,)]
    assert_checks_pass(warehouse_path)


def test_assign_ids_prefers_the_trial_with_an_nct_id_then_the_bigger_one():
    rec = TrialRecord()
    pages = [LinkPage(p, "veeva", None, rec) for p in ("p1", "p2", "p3", "p4")]
    ids, anchors, retired = assign_ids(
        [pages[:3], pages[3:]], {"p1": "Tsmall", "p2": "Tbig", "p3": "Tbig"}, {"Tsmall": True},
        taken=set())
    assert ids[0] == "Tsmall" and retired == {"Tbig": "Tsmall"}
    assert ids[1] == trial_id_for("page:p4") and anchors[1] == "page:p4"
    # a fresh id already issued (say, retired earlier) is never handed out again
    ids, _, _ = assign_ids([pages[3:]], {}, {}, taken={trial_id_for("page:p4")})
    assert ids == [trial_id_for("page:p4#2")]


def test_a_split_trial_never_hands_its_id_to_both_parts():
    """A stored trial named after its first page splits; that page lands in the smaller part,
    whose fresh anchor hashes to the stored id.  Found by `make bench` at 10k pages (a
    duplicate-key error in the load)."""
    rec = TrialRecord()
    p1, p2, p3 = (LinkPage(p, "veeva", None, rec) for p in ("p1", "p2", "p3"))
    stored = trial_id_for("page:p1")
    ids, anchors, _ = assign_ids([[p2, p3], [p1]], dict.fromkeys(("p1", "p2", "p3"), stored), {},
                                 taken=set())
    assert ids[0] == stored and anchors[0] == "stored"
    assert ids[1] == trial_id_for("page:p1#2") and len(set(ids)) == 2


# --- the sample and the seeds -------------------------------------------------------------

def test_sample_loads_one_row_per_real_trial_and_keeps_hard_negatives_apart(
    sample_dir, warehouse_path
):
    run.ingest([sample_dir], warehouse_path)
    rows = query(warehouse_path, "SELECT t.trial_id, t.nct_id, list(p.url) FROM trials t "
                                 "JOIN pages p USING (trial_id) GROUP BY ALL")
    ncts = [n for _, n, _ in rows if n]
    assert len(ncts) == len(set(ncts))  # every NCT ID once
    # every HTML page names its NCT ID in its file name: each lands in that trial
    for _, nct, urls in rows:
        for url in urls:
            if "/html/" in url:
                assert url.endswith(f"-{nct}.html")
    seed_trial = {Path(u).name[:3]: tid for tid, _, urls in rows for u in urls if "/seeds/" in u}
    assert set(seed_trial) == {"000", "001", "002", "003", "004"}
    assert seed_trial["000"] != seed_trial["001"]  # CD123 CAR-NK vs CD123 IL3 CAR-T
    assert seed_trial["001"] != seed_trial["003"]  # two Zhejiang University AML trials
    assert len(set(seed_trial.values())) == 5
    html_trials = {nct for _, nct, urls in rows if any("/html/" in u for u in urls)}
    assert len(rows) == len(html_trials) + len(set(seed_trial.values()))
    # the trials shown on both mirrors: one row, both sources, linked by NCT ID
    both = query(warehouse_path, "SELECT count(*) FROM trials WHERE len(sources) = 2")
    assert both == [(3,)]
    assert query(warehouse_path, "SELECT DISTINCT method FROM record_links ORDER BY 1") == [
        ("nct",), ("new",)]
    assert_checks_pass(warehouse_path)


# --- survivorship provenance ---------------------------------------------------------------

def test_two_mirrors_with_different_statuses_are_a_recorded_conflict(
    tmp_path, warehouse_path, parser, write_page
):
    veeva = write_page(tmp_path, "v", mtime=T1, nct="NCT00000021", title=TITLE, sponsor="Acme",
                       status="RECRUITING", conditions="AML")
    cc = write_page(tmp_path, "c", mtime=T1 + DAY, source="clinconnect", nct="NCT00000021",
                    title=TITLE, sponsor="Acme Inc.", status="COMPLETED")
    run.ingest([tmp_path], warehouse_path)
    pid = dict(query(warehouse_path, "SELECT url, page_id FROM pages"))
    v, c = pid[veeva.resolve().as_uri()], pid[cc.resolve().as_uri()]
    ((tid, status),) = query(warehouse_path, "SELECT trial_id, overall_status FROM trials")
    assert status == "COMPLETED"  # the fresher page wins
    sources = dict(query(warehouse_path, "SELECT field, page_id FROM field_sources WHERE trial_id = ?",
                         [tid]))
    assert sources["overall_status"] == c
    assert sources["conditions"] == v  # only the Veeva page lists conditions
    assert sources["brief_title"] == c
    assert sources["nct_id"] == c
    assert query(warehouse_path, "SELECT field, value, page_id FROM field_conflicts ORDER BY 1, 2") == [
        ("lead_sponsor", "Acme", v), ("lead_sponsor", "Acme Inc.", c),
        ("overall_status", "COMPLETED", c), ("overall_status", "RECRUITING", v),
    ]


def test_old_versions_of_one_page_are_history_not_conflicts(tmp_path, warehouse_path, parser, write_page):
    write_page(tmp_path / "r1", "v", mtime=T1, nct="NCT00000022", title=TITLE, status="RECRUITING")
    run.ingest([tmp_path / "r1"], warehouse_path)
    write_page(tmp_path / "r1", "v", mtime=T1 + DAY, nct="NCT00000022", title=TITLE, status="COMPLETED")
    run.ingest([tmp_path / "r1"], warehouse_path)
    assert query(warehouse_path, "SELECT count(*) FROM field_conflicts") == [(0,)]
    assert query(warehouse_path, "SELECT field, old_value, new_value FROM trial_history") == [
        ("overall_status", "RECRUITING", "COMPLETED")]


# --- review -------------------------------------------------------------------------------

def _candidate_pair(tmp_path: Path, write_page) -> tuple[Path, Path]:
    # one letter apart in the title, same sponsor, nothing else shown: between the thresholds
    a = write_page(tmp_path / "r1", "a", mtime=T1, title=TITLE, sponsor="Acme")
    b = write_page(tmp_path / "r1", "b", mtime=T1, source="clinconnect", title=TYPO, sponsor="Acme")
    return a, b


def test_review_accept_merges_and_survives_reruns(tmp_path, warehouse_path, parser, write_page,
                                                  capsys, clean_env):
    a, b = _candidate_pair(tmp_path, write_page)
    run.ingest([tmp_path / "r1"], warehouse_path)
    ((pa, pb, score),) = query(warehouse_path, "SELECT page_a, page_b, score FROM link_candidates")
    assert 0 <= score < DedupConfig().accept_threshold
    assert query(warehouse_path, "SELECT count(*) FROM trials") == [(2,)]

    assert main(["review", "--warehouse", str(warehouse_path), "--format", "csv"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("score,probability,page_a,trial_a")
    assert len(listed) == 2 and pa in listed[1] and pb in listed[1]

    assert main(["review", "accept", pa[:8], pb, "--note", "same trial",
                 "--warehouse", str(warehouse_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"accepted: pages {pa} and {pb} (now one trial ")
    state = query(warehouse_path, "SELECT trial_id, page_count FROM trials")
    assert len(state) == 1 and state[0][1] == 2
    assert query(warehouse_path, "SELECT method FROM record_links ORDER BY page_id") == [
        ("manual",), ("manual",)]
    assert query(warehouse_path, "SELECT count(*) FROM link_candidates") == [(0,)]
    assert query(warehouse_path, "SELECT page_a, page_b, decision, note FROM link_decisions") == [
        (pa, pb, "accept", "same trial")]
    # later runs relink these pages (a re-fetch of one of them) and keep the decision
    write_page(tmp_path / "r1", "a", mtime=T1 + DAY, title=TITLE, sponsor="Acme", status="RECRUITING")
    run.ingest([tmp_path / "r1"], warehouse_path)
    assert query(warehouse_path, "SELECT trial_id, page_count FROM trials") == [(state[0][0], 3)]
    assert_checks_pass(warehouse_path)


def test_review_reject_keeps_pages_apart_even_above_the_threshold(
    tmp_path, warehouse_path, parser, write_page, capsys, clean_env
):
    _candidate_pair(tmp_path, write_page)
    run.ingest([tmp_path / "r1"], warehouse_path)
    ((pa, pb),) = query(warehouse_path, "SELECT page_a, page_b FROM link_candidates")
    assert main(["review", "reject", pa, pb, "--warehouse", str(warehouse_path)]) == 0
    assert "rejected" in capsys.readouterr().out
    assert query(warehouse_path, "SELECT count(*) FROM link_candidates") == [(0,)]
    # a new page of the pair arrives and a looser threshold would merge them: still apart
    write_page(tmp_path / "r2", "c", mtime=T1 + DAY, title=TITLE, sponsor="Acme", org="Z-9")
    assert main(["ingest", str(tmp_path / "r1"), str(tmp_path / "r2"), "--accept-threshold", "3",
                 "--warehouse", str(warehouse_path)]) == 0
    trials = dict(query(warehouse_path, "SELECT page_id, trial_id FROM pages"))
    assert trials[pa] != trials[pb]
    assert_checks_pass(warehouse_path)


def test_review_mistakes_are_one_line_errors(tmp_path, warehouse_path, parser, write_page, capsys,
                                             clean_env):
    write_page(tmp_path, "a", nct="NCT00000031", title=TITLE, sponsor="Acme")
    write_page(tmp_path, "b", nct="NCT00000032", title=TITLE, sponsor="Acme")
    run.ingest([tmp_path], warehouse_path)
    pa, pb = (p for (p,) in query(warehouse_path, "SELECT page_id FROM pages ORDER BY 1"))
    cases = [
        (["review", "accept", pa, pb], "cannot accept: the pages show two NCT IDs"),
        (["review", "accept", pa], "needs two page ids"),
        (["review", "reject", pa, "ffffffffffff"], "no linked page with id ffffffffffff"),
        (["review", "accept", pa, "abc"], "too short"),
        (["ingest", str(tmp_path), "--accept-threshold", "1", "--reject-threshold", "2"],
         "reject_threshold must not exceed accept_threshold"),
    ]
    for argv, message in cases:
        assert main([*argv, "--warehouse", str(warehouse_path)]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert query(warehouse_path, "SELECT count(*) FROM link_decisions") == [(0,)]


# --- incremental cost ----------------------------------------------------------------------

def _synthetic(i: int, nct: bool = True) -> TrialRecord:
    rng = random.Random(i)
    syllables = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze", "bo", "du"]
    words = ["".join(rng.choice(syllables) for _ in range(3)) for _ in range(4)]
    title = f"{' '.join(words).title()} therapy in solid tumours"
    return TrialRecord(nct_id=f"NCT{i:08d}" if nct else None, brief_title=title,
                       lead_sponsor=f"Sponsor {i % 97}",
                       identifiers=(Identifier("org_study_id", f"ORG-{i}"),))


def _parsed(pid: str, record: TrialRecord, at: dt.datetime) -> ParsedPage:
    return ParsedPage(page_id=pid, url=f"https://ctv.veeva.com/study/{pid}", source="veeva",
                      content_sha256="0" * 64, fetched_at=at, parse_status="ok", record=record)


def test_a_batch_reads_back_only_the_trials_it_touches(fresh_db):
    at = dt.datetime(2025, 1, 1)
    stored = [_parsed(f"s{i:05d}", _synthetic(i), at) for i in range(400)]
    plan = plan_relink(fresh_db, [LinkPage(p.page_id, p.source, at, p.record, p.url) for p in stored])
    load_batch(fresh_db, new_pages=stored, trials=plan.trials, page_trial_ids=plan.page_trial_ids,
               dedup=plan.dedup)
    assert fresh_db.execute("SELECT count(*) FROM trials").fetchall() == [(400,)]
    # two new pages: one of trial 7 without its NCT ID (the sponsor's id ties it), one new trial
    later = at + dt.timedelta(days=1)
    new = [_parsed("n1", dataclasses.replace(_synthetic(7), nct_id=None), later),
           _parsed("n2", _synthetic(9999), later)]
    plan = plan_relink(fresh_db, [LinkPage(p.page_id, p.source, later, p.record, p.url) for p in new])
    assert len(plan.trials) <= 5  # the new trial, trial 7, and at most a few fuzzy candidates
    assert plan.page_trial_ids["n1"] == plan.page_trial_ids["s00007"] == trial_id_for("nct:NCT00000007")
    load_batch(fresh_db, new_pages=new, trials=plan.trials, page_trial_ids=plan.page_trial_ids,
               dedup=plan.dedup)
    assert fresh_db.execute("SELECT count(*) FROM trials").fetchall() == [(401,)]
    assert fresh_db.execute("SELECT method FROM record_links WHERE page_id = 'n1'").fetchall() == [
        ("secondary_id",)]
    assert all(o.passed for o in checks.run_checks(fresh_db))


def test_a_warehouse_without_link_rows_is_backfilled_by_the_next_run(fresh_db):
    at = dt.datetime(2025, 1, 1)
    pages = [_parsed(f"s{i}", _synthetic(i), at) for i in range(3)]
    plan = plan_relink(fresh_db, [LinkPage(p.page_id, p.source, at, p.record, p.url) for p in pages])
    load_batch(fresh_db, new_pages=pages, trials=plan.trials, page_trial_ids=plan.page_trial_ids)
    assert fresh_db.execute("SELECT count(*) FROM record_links").fetchall() == [(0,)]
    assert not checks.pages_have_links(fresh_db).passed
    plan = plan_relink(fresh_db, [])
    load_batch(fresh_db, new_pages=[], trials=plan.trials, page_trial_ids=plan.page_trial_ids,
               dedup=plan.dedup)
    assert fresh_db.execute("SELECT count(*) FROM record_links").fetchall() == [(3,)]
    assert fresh_db.execute("SELECT count(DISTINCT page_id) FROM link_keys").fetchall() == [(3,)]
    assert all(o.passed for o in checks.run_checks(fresh_db))


# --- Dagster ------------------------------------------------------------------------------

def test_dagster_run_links_with_the_configured_thresholds(tmp_path, sample_dir, monkeypatch):
    from pipeline.defs.materialize import materialize_all

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    warehouse = tmp_path / "w.duckdb"
    outcome = materialize_all(warehouse, link_config={"accept_threshold": 8.0,
                                                      "reject_threshold": -2.0})
    assert outcome.failed_checks == ()
    conn = open_warehouse(warehouse, read_only=True)
    try:
        linked = conn.execute("SELECT count(*) FROM pages WHERE trial_id IS NOT NULL").fetchall()
        assert conn.execute("SELECT count(*) FROM record_links").fetchall() == linked
        assert conn.execute("SELECT count(DISTINCT trial_id) FROM field_sources").fetchall() == \
            conn.execute("SELECT count(*) FROM trials").fetchall()
    finally:
        conn.close()
    with pytest.raises(Exception):
        materialize_all(tmp_path / "x.duckdb", link_config={"accept_threshold": 1.0,
                                                             "reject_threshold": 2.0})
