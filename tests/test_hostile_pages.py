"""Bad and hostile pages never crash a run, each gets its outcome, good pages still load."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline import run
from tests.hostile.corpus import CASES, SAMPLE, build


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    cases = build(root / "bad")
    shutil.copytree(SAMPLE / "seeds", root / "good")
    warehouse = root / "w.duckdb"
    summary = run.ingest([root / "bad", root / "good"], warehouse)
    conn = duckdb.connect(str(warehouse), read_only=True)
    pages = {
        Path(url).name: (status, error)
        for url, status, error in conn.execute("SELECT url, parse_status, parse_error FROM pages").fetchall()
    }
    yield cases, pages, summary, conn
    conn.close()


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 40
    assert sum(c.status != "ok" for c in CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_bad_page_gets_its_outcome(loaded, case):
    _, pages, _, _ = loaded
    status, error = pages[case.name]
    assert status == case.status, error
    if case.reason:
        assert case.reason in (error or "")
    else:
        assert error is None


def test_good_pages_in_the_same_run_still_load(loaded):
    _, pages, summary, conn = loaded
    assert summary.pages_read == len(CASES) + 5
    good = conn.execute(
        "SELECT count(*) FROM pages WHERE url LIKE '%/good/%' AND parse_status IN ('ok', 'partial')").fetchone()
    assert good == (5,)
    assert conn.execute("SELECT count(*) FROM trials WHERE nct_id = 'NCT04599543'").fetchone() == (1,)


def test_text_is_stored_as_text_never_executed(loaded):
    _, _, _, conn = loaded
    titles = [t for (t,) in conn.execute("SELECT brief_title FROM trials WHERE brief_title IS NOT NULL").fetchall()]
    assert "Robert'); DROP TABLE trials;-- \" OR 1=1" in titles
    assert "Study of <b>bold</b> & <script>alert(1)</script> claims" in titles
    assert conn.execute("SELECT count(*) FROM conditions WHERE name LIKE '%DROP TABLE%'").fetchone() == (1,)
    statuses = {s for (s,) in conn.execute(
        "SELECT overall_status FROM trials t JOIN pages p USING (trial_id) "
        "WHERE p.url LIKE '%scripts-and-handlers%' OR p.url LIKE '%hidden-decoys%'").fetchall()}
    assert statuses == {"RECRUITING"}  # the script's and the hidden decoys' "Completed"/"Terminated" are ignored


def test_entities_are_never_expanded_or_resolved(loaded):
    """A billion-laughs DTD and an external entity naming /etc/passwd stay inert text."""
    _, _, _, conn = loaded
    titles = {t for (t,) in conn.execute("SELECT brief_title FROM trials").fetchall()}
    assert "Laughs &lol9; stay text" in titles
    assert "External entity study" in titles
    dump = conn.execute("SELECT string_agg(record, '') FROM page_records").fetchone()[0]
    assert "root:x:0:0" not in dump and "lollollol" not in dump
    statuses = {s for (s,) in conn.execute(
        "SELECT overall_status FROM trials t JOIN pages p USING (trial_id) WHERE p.url LIKE '%svg-and-srcdoc%' "
        "OR p.url LIKE '%css-hidden-decoy%' OR p.url LIKE '%meta-refresh%'").fetchall()}
    assert statuses == {"RECRUITING"}


def test_encodings_decode_to_the_right_text(loaded):
    _, _, _, conn = loaded
    titles = {t for (t,) in conn.execute("SELECT brief_title FROM trials").fetchall()}
    assert {"自然杀伤细胞治疗急性髓系白血病", "自然殺傷細胞治療急性骨髓性白血病", "Étude de thérapie cellulaire",
            "Study with a byte-order mark", "Study in UTF-16"} <= titles
    sponsors = {s for (s,) in conn.execute("SELECT lead_sponsor FROM trials").fetchall()}
    assert "Hôpital Européen" in sponsors  # mojibake repaired, then re-cased
