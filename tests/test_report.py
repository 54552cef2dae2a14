"""`trials report`: the HTML file's contents, its rendering in headless Chromium, and the
warehouse_report Dagster asset."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from lxml import html as lxml_html

from pipeline import run
from pipeline.cli import main
from pipeline.defs.report import warehouse_report
from pipeline.report import write_report

CHARTS = ("status", "phase", "antigen", "sponsor", "starts", "changes")
CHROMIUM = "/usr/bin/chromium"
SKIP_ENV = "TRIALS_SKIP_BROWSER"


def query(path: Path, sql: str) -> list[tuple]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "trials.duckdb"
    sample = Path(__file__).resolve().parents[1] / "raw" / "sample"
    run.ingest([sample / "seeds"], path)
    run.ingest([sample], path)  # a second run, so the changes chart has two bars
    return path


@pytest.fixture(scope="module")
def report_file(sample_warehouse: Path) -> Path:
    return write_report(sample_warehouse, sample_warehouse.parent / "out" / "report.html").path


def test_report_is_one_self_contained_file_with_every_chart(sample_warehouse, report_file):
    text = report_file.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]+src=", text)  # nothing to fetch: plotly.js is inline
    assert "plotly.js v" in text and len(text) > 3_000_000
    # no remote resource in the page itself (plotly.js's own source mentions URLs in strings)
    start = text.index('<script type="text/javascript">')
    page = text[:start] + text[text.index("</script>", start):]
    assert len(page) < 500_000 and "plotly.js v" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert re.findall(r'<div id="chart-(\w+)"', text) == list(CHARTS)
    statuses = [s for (s,) in query(sample_warehouse, "SELECT DISTINCT overall_status FROM trials "
                                                      "WHERE overall_status IS NOT NULL")]
    assert statuses and all(f'"{s}"' in text for s in statuses)
    assert '"CD123"' in text and '"CLEC12A"' in text  # target antigens from therapies.targets
    (n_trials,), = query(sample_warehouse, "SELECT count(*) FROM trials")
    assert f"<p>{n_trials} trials from" in text
    # the latest run's changes: the sample run added the trials the seeds did not have
    added = query(sample_warehouse, "SELECT count(*) FROM run_changes c JOIN runs r USING (run_id) "
                                    "WHERE r.command = 'ingest' AND c.change = 'added' "
                                    "AND r.started_at = (SELECT max(started_at) FROM runs)")[0][0]
    table = text[text.index('<table id="last-changes">'):]
    assert table.count("<td>added</td>") == added > 0


def test_report_is_deterministic_and_escapes_page_text(
    tmp_path, warehouse_path, fake_parser, write_page, sample_warehouse, report_file, clean_env
):
    again = write_report(sample_warehouse, tmp_path / "again.html").path
    assert again.read_bytes() == report_file.read_bytes()
    write_page(tmp_path / "pages", "evil", nct="NCT09999999", title="<b>x</b>", status="RECRUITING",
               sponsor="</script><script>alert(1)</script>")
    run.ingest([tmp_path / "pages"], warehouse_path)
    text = write_report(warehouse_path, tmp_path / "evil.html").path.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in text and "<b>x</b>" not in text
    assert "&lt;b&gt;x&lt;/b&gt;" in text  # the changes table shows the title as text


def test_cli_writes_beside_the_warehouse_by_default(tmp_path, seeds_dir, capsys, clean_env):
    warehouse = tmp_path / "wh" / "trials.duckdb"
    run.ingest([seeds_dir], warehouse)
    assert main(["report", "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Report: {tmp_path / 'wh' / 'report.html'} (6 charts, ")
    assert (tmp_path / "wh" / "report.html").stat().st_size > 3_000_000
    assert main(["report", "--warehouse", str(warehouse), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"trials: error: is a directory: {tmp_path} (give a file name, e.g. {tmp_path / 'report.html'})"]
    assert main(["report", "--warehouse", str(tmp_path / "nope.duckdb")]) == 1
    assert capsys.readouterr().err.startswith("trials: error: warehouse not found")


def _chromium() -> str:
    found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if found:
        return found
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"chromium not installed and {SKIP_ENV}=1 (install Debian's chromium package)")
    pytest.fail(f"chromium not found at {CHROMIUM}: install Debian's chromium package "
                f"(.ci/run does), or set {SKIP_ENV}=1 to skip locally")


def test_charts_render_in_headless_chromium(tmp_path, report_file, sample_warehouse):
    browser = _chromium()
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", report_file.as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    dom = lxml_html.fromstring(proc.stdout)
    for key in CHARTS:
        (div,) = dom.xpath(f'//div[@id="chart-{key}"]')
        svgs = div.xpath('.//svg[contains(@class, "main-svg")]')
        assert svgs, f"chart {key} has no rendered SVG"
        bars = [p.get("d") for p in div.xpath('.//g[contains(@class, "point")]/path')]
        drawn = [d for d in bars if d and d not in ("M0,0Z",)]
        assert drawn, f"chart {key} drew no data points"
    # one bar per overall status, as many as the warehouse has
    statuses = query(sample_warehouse, "SELECT count(DISTINCT coalesce(overall_status, '-')) FROM trials")[0][0]
    (status_div,) = dom.xpath('//div[@id="chart-status"]')
    assert len(status_div.xpath('.//g[contains(@class, "point")]/path')) == statuses
    # the changes chart stacks added/changed/removed for each of the two runs
    (changes_div,) = dom.xpath('//div[@id="chart-changes"]')
    assert len(changes_div.xpath('.//g[contains(@class, "trace") and contains(@class, "bars")]')) == 3


def test_warehouse_report_asset_materializes_with_path_and_preview(tmp_path, sample_warehouse, clean_env):
    out = tmp_path / "asset" / "report.html"
    result = dg.materialize(
        [warehouse_report],
        resources={"warehouse": DuckDBResource(database=str(sample_warehouse))},
        run_config={"ops": {"warehouse_report": {"config": {"out": str(out)}}}},
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("warehouse_report")
    meta = materialization.metadata
    assert meta["path"].value == str(out.resolve())
    assert meta["charts"].value == 6
    assert meta["trials"].value == query(sample_warehouse, "SELECT count(*) FROM trials")[0][0]
    assert "Trials by overall status:" in meta["preview"].value
    assert out.read_text(encoding="utf-8").count('class="plotly-graph-div"') == 6


def test_missing_chromium_fails_unless_skipping_is_asked_for(monkeypatch):
    me = sys.modules[__name__]  # this module, whose _chromium() the browser test uses

    monkeypatch.setattr(me.shutil, "which", lambda name: None)
    monkeypatch.setattr(me.os.path, "exists", lambda path: False)
    monkeypatch.delenv(SKIP_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match="chromium not found"):
        me._chromium()
    monkeypatch.setenv(SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception, match=f"{SKIP_ENV}=1"):
        me._chromium()
