"""`trials report`: one static, self-contained HTML file with charts of the warehouse.

Charts (plotly): trials by overall status, phase, target antigen (therapy profiles) and lead
sponsor; trial starts per year; trials added / changed / removed per run (the run log), with
a table of what the latest run changed.  plotly.js is embedded in the file, so it opens
offline (CI browsers have no internet) and shows the same thing years later.

The page is a pure function of the warehouse contents: no wall-clock time, fixed element
ids, rows sorted with ties broken by name.  Everything shown from the data is escaped --
plotly JSON-encodes (and escapes `</`) the chart data; the tables go through html.escape.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from pipeline.db.connection import open_warehouse

TOP_N = 15  # sponsors and antigens: the N largest, the rest summed as "other"
RUNS_SHOWN = 20
REPORT_NAME = "report.html"


class ReportError(Exception):
    """The report cannot be written; str() is one line."""


@dataclass(frozen=True, slots=True)
class Chart:
    key: str  # element id suffix, stable
    title: str
    labels: tuple[str, ...]
    values: tuple[int, ...]
    x_title: str = ""
    series: tuple[tuple[str, tuple[int, ...]], ...] = ()  # stacked bars: (name, values)


@dataclass(frozen=True, slots=True)
class ChangeRow:
    nct_id: str | None
    trial_id: str
    change: str
    fields: tuple[str, ...]
    brief_title: str | None


@dataclass(frozen=True, slots=True)
class ReportData:
    trials: int
    pages: int
    as_of: str  # latest page or fetch time in the warehouse, or 'empty'
    charts: tuple[Chart, ...]
    last_run: str | None  # "<run_id[:8]> <command> <started> <outcome>"
    last_changes: tuple[ChangeRow, ...]


@dataclass(frozen=True, slots=True)
class ReportResult:
    path: Path
    bytes: int
    trials: int
    charts: tuple[Chart, ...]
    markdown: str  # a short preview (Dagster metadata)


def default_report_path(warehouse: str | os.PathLike[str]) -> Path:
    """report.html in the warehouse's folder (warehouse/report.html by default)."""
    return Path(warehouse).parent / REPORT_NAME


def _pairs(conn: duckdb.DuckDBPyConnection, sql: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    rows = conn.execute(sql).fetchall()
    return tuple(str(k) for k, _ in rows), tuple(int(n) for _, n in rows)


def _top(labels: tuple[str, ...], values: tuple[int, ...], n: int = TOP_N) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if len(labels) <= n:
        return labels, values
    rest = sum(values[n:])
    return (*labels[:n], f"other ({len(labels) - n})"), (*values[:n], rest)


def read_report_data(conn: duckdb.DuckDBPyConnection) -> ReportData:
    """Everything the report shows, from one (read-only) connection."""
    trials = int(conn.execute("SELECT count(*) FROM trials").fetchall()[0][0])
    pages = int(conn.execute("SELECT count(*) FROM pages").fetchall()[0][0])
    as_of = conn.execute(
        "SELECT CAST(greatest((SELECT max(fetched_at) FROM pages), "
        "(SELECT max(requested_at) FROM fetches)) AS VARCHAR)"
    ).fetchall()[0][0] or "empty"
    charts: list[Chart] = []
    labels, values = _pairs(conn, (
        "SELECT coalesce(overall_status, 'not stated'), count(*) AS n FROM trials "
        "GROUP BY 1 ORDER BY n DESC, 1"))
    charts.append(Chart("status", "Trials by overall status", labels, values, "trials"))
    labels, values = _pairs(conn, (
        "SELECT phase, count(DISTINCT trial_id) AS n FROM (SELECT trial_id, "
        "unnest(CASE WHEN len(coalesce(phases, [])) = 0 THEN ['not stated'] ELSE phases END) AS phase "
        "FROM trials) GROUP BY 1 ORDER BY 1"))
    charts.append(Chart("phase", "Trials by phase (a trial may have two)", labels, values, "trials"))
    labels, values = _pairs(conn, (
        "SELECT target, count(DISTINCT trial_id) AS n FROM (SELECT trial_id, unnest(targets) AS target "
        "FROM therapies) GROUP BY 1 ORDER BY n DESC, 1"))
    labels, values = _top(labels, values)
    charts.append(Chart("antigen", "Trials by target antigen (cell-therapy profiles)", labels, values, "trials"))
    labels, values = _pairs(conn, (
        "SELECT coalesce(lead_sponsor, 'not stated'), count(*) AS n FROM trials "
        "GROUP BY 1 ORDER BY n DESC, 1"))
    labels, values = _top(labels, values)
    charts.append(Chart("sponsor", f"Trials by lead sponsor (top {TOP_N})", labels, values, "trials"))
    labels, values = _pairs(conn, (
        "SELECT CAST(year(start_date) AS VARCHAR), count(*) FROM trials "
        "WHERE start_date IS NOT NULL GROUP BY 1 ORDER BY 1"))
    charts.append(Chart("starts", "Trial starts per year", labels, values, "year"))
    runs = conn.execute(
        "SELECT run_id, command, started_at, outcome, coalesce(trials_added, 0), "
        "coalesce(trials_changed, 0), coalesce(trials_removed, 0) FROM runs "
        "ORDER BY started_at DESC, run_id LIMIT ?", [RUNS_SHOWN],
    ).fetchall()[::-1]
    run_labels = tuple(f"{r[2]:%m-%d %H:%M} {r[1]} {r[0][:6]}" for r in runs)
    charts.append(Chart(
        "changes", "Trials added / changed / removed per run", run_labels,
        tuple(r[4] + r[5] + r[6] for r in runs), "run",
        series=(("added", tuple(r[4] for r in runs)), ("changed", tuple(r[5] for r in runs)),
                ("removed", tuple(r[6] for r in runs))),
    ))
    last = next((r for r in reversed(runs) if r[3] == "succeeded"), None)
    changes: tuple[ChangeRow, ...] = ()
    if last is not None:
        changes = tuple(ChangeRow(nct, tid, change, tuple(fields), title) for nct, tid, change, fields, title in conn.execute(
            "SELECT c.nct_id, c.trial_id, c.change, c.fields, t.brief_title FROM run_changes c "
            "LEFT JOIN trials t USING (trial_id) WHERE c.run_id = ? "
            "ORDER BY c.change, c.nct_id NULLS LAST, c.trial_id", [last[0]],
        ).fetchall())
    last_run = None if last is None else f"{last[0][:8]} {last[1]} {last[2]:%Y-%m-%d %H:%M:%S} UTC {last[3]}"
    return ReportData(trials, pages, str(as_of), tuple(charts), last_run, changes)


def _figure(chart: Chart) -> go.Figure:
    if chart.series:
        fig = go.Figure([go.Bar(name=name, x=list(chart.labels), y=list(vals)) for name, vals in chart.series])
        fig.update_layout(barmode="stack", xaxis_title=chart.x_title, yaxis_title="trials")
    elif chart.key == "starts":
        fig = go.Figure(go.Bar(x=list(chart.labels), y=list(chart.values)))
        fig.update_layout(xaxis_title="year", yaxis_title="trials", xaxis_type="category")
    else:  # categories: horizontal bars, largest on top
        fig = go.Figure(go.Bar(x=list(chart.values[::-1]), y=list(chart.labels[::-1]), orientation="h"))
        fig.update_layout(xaxis_title=chart.x_title, yaxis_type="category")
    if not chart.labels:
        fig.add_annotation(text="no data", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(
        title=chart.title, template="plotly_white", height=max(320, 28 * len(chart.labels) + 140),
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )
    fig.update_yaxes(automargin=True)
    return fig


def _changes_table(data: ReportData) -> str:
    if data.last_run is None:
        return "<p>No finished run recorded yet.</p>"
    head = f"<p>Latest finished run: <code>{html.escape(data.last_run)}</code>.</p>"
    if not data.last_changes:
        return head + "<p>It changed no trial.</p>"
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in (
            c.change, c.nct_id or c.trial_id, c.brief_title or "", ", ".join(c.fields))) + "</tr>"
        for c in data.last_changes
    )
    return (head + '<table id="last-changes"><thead><tr><th>change</th><th>trial</th><th>title</th>'
            f"<th>fields changed</th></tr></thead><tbody>{rows}</tbody></table>")


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
.chart { margin: 1.5rem 0; border-top: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9rem; }
td, th { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
"""


def render_html(data: ReportData) -> str:
    """The whole page, plotly.js embedded once (no CDN)."""
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>Trial warehouse report</title>",
        f"<style>{_STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        "<h1>Trial warehouse report</h1>",
        f"<p>{data.trials} trials from {data.pages} page versions; data as of "
        f"{html.escape(data.as_of)} (UTC).</p>",
    ]
    for chart in data.charts:
        div = _figure(chart).to_html(
            full_html=False, include_plotlyjs=False, div_id=f"chart-{chart.key}",
            config={"displaylogo": False, "responsive": True},
        )
        parts.append(f'<section class="chart" data-chart="{chart.key}">{div}</section>')
        if chart.key == "changes":
            parts.append(f'<section id="changes">{_changes_table(data)}</section>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def markdown_preview(data: ReportData, path: Path) -> str:
    lines = [f"**{data.trials} trials**, data as of {data.as_of} -- `{path}`", ""]
    for chart in data.charts:
        if chart.key == "changes":
            continue
        top = ", ".join(f"{label} {n}" for label, n in list(zip(chart.labels, chart.values))[:5])
        lines.append(f"- {chart.title}: {top or 'no data'}")
    if data.last_run:
        counts = {k: sum(c.change == k for c in data.last_changes) for k in ("added", "changed", "removed")}
        lines.append(f"- Latest run {data.last_run}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    return "\n".join(lines)


def write_report(
    warehouse: str | os.PathLike[str], out: str | os.PathLike[str], *, wait: float = 0.0
) -> ReportResult:
    """Read the warehouse (read-only) and write the report to `out` atomically."""
    conn = open_warehouse(warehouse, read_only=True, wait=wait)
    try:
        data = read_report_data(conn)
    finally:
        conn.close()
    return save_report(data, out)


def save_report(data: ReportData, out: str | os.PathLike[str]) -> ReportResult:
    path = Path(out)
    if path.is_dir():
        raise ReportError(f"is a directory: {path} (give a file name, e.g. {path / REPORT_NAME})")
    text = render_html(data).encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(text)
        os.replace(tmp, path)  # a reader never sees half a report
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return ReportResult(path, len(text), data.trials, data.charts, markdown_preview(data, path))
