"""Small helpers turning stage outputs into Dagster metadata (markdown previews)."""

from __future__ import annotations

from collections.abc import Sequence

PREVIEW_ROWS = 10


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table of the first PREVIEW_ROWS rows (and a note of how many were cut)."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| " + " | ".join(_cell(v) for v in row) + " |\n" for row in rows[:PREVIEW_ROWS]
    )
    more = f"\n... and {len(rows) - PREVIEW_ROWS} more rows" if len(rows) > PREVIEW_ROWS else ""
    return head + body + more
