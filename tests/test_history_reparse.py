"""A parser version change reaches every stored page without fetching anything: `trials
reparse` reads the bytes back from the raw store (crawled pages) or the file (ingested pages),
and history is rewritten as if the new parser had read the pages all along."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import duckdb

import pipeline.parse
from pipeline import run
from pipeline.cli import main
from pipeline.devtools.mirror import Mirror, MirrorServer, generate_pages
from pipeline.models import ParsedPage, RawPage

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


def test_reparse_reads_ingested_files_again_and_corrects_history(
    tmp_path, warehouse_path, fake_parser, write_page, monkeypatch, capsys, clean_env
):
    def blind_to_status(raw: RawPage) -> ParsedPage:  # the "old parser": misses the status
        parsed = fake_parser(raw)
        if parsed.record is None:
            return parsed
        return replace(parsed, record=replace(parsed.record, overall_status=None))

    monkeypatch.setattr(pipeline.parse, "parse_page", blind_to_status)
    monkeypatch.setattr(pipeline.parse, "PARSER_VERSION", "old")
    v1, v2 = tmp_path / "day1", tmp_path / "day2"
    write_page(v1, "p", mtime=T1, nct="NCT00000030", title="T", status="RECRUITING")
    write_page(v2, "p", mtime=T1 + DAY, nct="NCT00000030", title="T v2", status="RECRUITING")
    write_page(v2, "edited", mtime=T1, nct="NCT00000031", title="E", status="COMPLETED")
    run.ingest([v1, v2], warehouse_path)
    assert query(warehouse_path, "SELECT field FROM trial_history") == [("brief_title",)]
    (v2 / "edited.txt").write_text("nct: NCT00000031\nstatus: WITHDRAWN\n")  # bytes no longer match

    monkeypatch.setattr(pipeline.parse, "parse_page", fake_parser)
    monkeypatch.setattr(pipeline.parse, "PARSER_VERSION", "new")
    assert main(["reparse", "--warehouse", str(warehouse_path), "--raw-dir", str(tmp_path / "raw")]) == 0
    out = capsys.readouterr().out
    assert "Pages from other parser versions: 3 (re-parsed 2, bytes unavailable 1)" in out
    assert f"kept old parse: {(v2 / 'edited.txt').resolve().as_uri()}: " in out and "changed since it was loaded" in out

    # the status was RECRUITING all along: no change is reported for it
    assert query(warehouse_path, "SELECT field, old_value, new_value, observed_at FROM trial_history") == [
        ("brief_title", "T", "T v2", at(T1 + DAY))]
    assert query(warehouse_path, "SELECT nct_id, overall_status FROM trials ORDER BY 1") == [
        ("NCT00000030", "RECRUITING"), ("NCT00000031", None)]
    assert query(warehouse_path, "SELECT parser_version, count(*) FROM pages GROUP BY 1 ORDER BY 1") == [
        ("new", 2), ("old", 1)]
    # nothing left to do for this parser version, except the page whose bytes are gone
    assert main(["reparse", "--warehouse", str(warehouse_path)]) == 0
    assert "Pages from other parser versions: 1 (re-parsed 0, bytes unavailable 1)" in capsys.readouterr().out


def test_reparse_of_crawled_pages_uses_the_raw_store_and_fetches_nothing(
    tmp_path, monkeypatch, capsys, clean_env, snapshot
):
    pages = generate_pages("veeva", 4)
    warehouse, raw = tmp_path / "w.duckdb", tmp_path / "raw"
    with MirrorServer(Mirror("veeva", pages)) as server:
        assert main(["crawl", "veeva", "--base-url", server.base_url, "--warehouse", str(warehouse),
                     "--raw-dir", str(raw), "--rate", "500", "--quiet"]) == 0
    # the mirror is gone now: whatever happens next cannot fetch
    capsys.readouterr()
    before = snapshot(warehouse)
    ((fetches,),) = query(warehouse, "SELECT count(*) FROM fetches")
    old_version = query(warehouse, "SELECT DISTINCT parser_version FROM pages")
    assert old_version == [(pipeline.parse.PARSER_VERSION,)]
    missing = next(raw.rglob("*.html.gz"))
    missing_sha = missing.name.split(".")[0]
    missing.unlink()

    monkeypatch.setattr(pipeline.parse, "PARSER_VERSION", "next")
    assert main(["reparse", "--warehouse", str(warehouse), "--raw-dir", str(raw)]) == 0
    out = capsys.readouterr().out
    assert "Pages from other parser versions: 4 (re-parsed 3, bytes unavailable 1)" in out
    assert "raw store:" in out
    after = snapshot(warehouse)
    assert dict(query(warehouse, "SELECT parser_version, count(*) FROM pages GROUP BY 1")) == {
        "next": 3, old_version[0][0]: 1}
    assert query(warehouse, "SELECT content_sha256 FROM pages WHERE parser_version <> 'next'") == [
        (missing_sha,)]
    # same parser code, same bytes: every value is as before, only the version changed
    strip = lambda rows: sorted(r[:-1] for r in rows)  # noqa: E731 - pages' last column is the version
    assert strip(after["pages"]) == strip(before["pages"])
    for table in ("trials", "criteria", "trial_history", "page_records"):
        assert after[table] == before[table], table
    assert query(warehouse, "SELECT count(*) FROM fetches") == [(fetches,)]  # nothing requested
