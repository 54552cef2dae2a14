"""`make bench` at tiny scale: every figure the issue asks for has its row (timings are not
asserted: speed is measured by the benchmark, not by tests)."""

import json

import pytest

from pipeline.devtools import bench

EXPECTED = (
    "bare lxml.html parse, pages/s per core",
    "parse+extract+staged record, pages/s per core",
    "... + eligibility constraints and therapy profiles (as a worker stages them), pages/s per core",
    "ratio bare lxml / pipeline",
    "constraint extraction / parse_page time",
    "1 worker, pages/s",
    "2 workers, pages/s",
    "speed-up 2 vs 1 worker",
    "full rebuild 20 pages -> 10 trials",
    "full rebuild 40 pages -> 20 trials",
    "stages: parse wait / read staged / link / load",
    "loader CPU, ms per page",
    "peak memory: loader + workers",
    "time per page, 40 vs 20 pages",
    "extrapolated rebuild of 1,100,000 pages",
    "incremental 10 changed pages on 40-page warehouse",
    "stages: parse / link / load",
    "warehouse file size",
    "load 31-col trials-like table: Arrow vs executemany",
    "load 5-col child table: Arrow vs executemany",
)


@pytest.mark.slow
def test_quick_bench_prints_every_figure_in_one_table(tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    assert bench.main(["--scale", "tiny", "--quiet", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    header, columns = text.splitlines()[:2]
    assert header.startswith("make bench -- scale tiny, ") and " cores, 2 workers" in header
    assert columns.split() == ["metric", "value", "target", "met"]
    for metric in EXPECTED:
        assert metric in text, metric
    rows = json.loads(out_json.read_text())
    table_rows = text.splitlines()[3:]
    assert len(rows) >= len(EXPECTED)
    for row in rows:
        assert row["value"], row  # every figure has a value ...
        assert any(line.startswith(row["metric"]) for line in table_rows), row  # ... in the table
