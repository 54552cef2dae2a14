"""RawPage -> ParsedPage.  Never raises: every failure becomes a rejected page with a reason.

Steps: decode the bytes, build the visible outline (HTML or text capture),
pick the site adapter whose labels and signatures the page shows, extract the
record, then judge completeness: `ok` when the fields a page of that site
always shows are there, `partial` when some are missing (named in
parse_error), `rejected` when the page is not a readable trial page at all.
"""

from __future__ import annotations

import re

from pipeline.clean.decode import UndecodablePage, decode_page
from pipeline.clean.outline import Outline, html_outline, looks_like_html, text_outline
from pipeline.ingest import page_id_for
from pipeline.models import ParsedPage, RawPage, TrialRecord
from pipeline.sources import ADAPTERS
from pipeline.sources.base import SiteAdapter

# Bump when extraction output changes, so stored pages get re-parsed.
PARSER_VERSION = "3"

MAX_PAGE_BYTES = 20 * 2**20  # matches pipeline.ingest.DEFAULT_MAX_BYTES: bigger is not a trial page
MIN_SITE_SCORE = 4  # signatures (3 points) + at least one label, or the site's host
MIN_TRIAL_FIELDS = 3
_HTML_END = re.compile(r"</\s*(?:html|body)\s*>\s*$", re.I)
_HTML_START = re.compile(r"^\s*(?:<!doctype html|<html)", re.I)


def parse_page(raw: RawPage) -> ParsedPage:
    page_id = page_id_for(raw.url, raw.content_sha256)

    def result(source: str, status: str, error: str | None, record: TrialRecord | None = None,
               warnings: tuple[str, ...] = ()) -> ParsedPage:
        return ParsedPage(page_id=page_id, url=raw.url, source=source,  # type: ignore[arg-type]
                          content_sha256=raw.content_sha256, fetched_at=raw.fetched_at,
                          parse_status=status, parse_error=error, record=record,  # type: ignore[arg-type]
                          warnings=warnings)

    if len(raw.content) > MAX_PAGE_BYTES:
        return result(raw.source_hint or "unknown", "rejected",
                      f"page too large: over {MAX_PAGE_BYTES // 2**20} MB")
    try:
        decoded = decode_page(raw.content)
    except UndecodablePage as exc:
        return result(raw.source_hint or "unknown", "rejected", str(exc))
    text = decoded.text
    problems: list[str] = list(decoded.problems)

    try:
        outline = _outline(text)
    except _Truncated as exc:
        return result(raw.source_hint or "unknown", "rejected", str(exc))
    except Exception as exc:  # lxml failures on hostile markup must not stop a run
        return result(raw.source_hint or "unknown", "rejected", f"unparseable markup: {type(exc).__name__}: {exc}")

    if not outline.lines:
        return result(raw.source_hint or "unknown", "rejected", "no visible text on the page")

    adapter, score = _pick_adapter(outline, raw)
    source = adapter.name if score >= MIN_SITE_SCORE else "unknown"
    try:
        record = adapter.extract(outline, raw.url, problems)
    except Exception as exc:  # a bug on one odd page must not stop the run
        return result(source, "rejected", f"extraction failed: {type(exc).__name__}: {exc}")

    problems.extend(_implausible(record))
    shown = _fields_present(record)
    if len(shown) < MIN_TRIAL_FIELDS:
        return result(source, "rejected", "not a trial page: no trial fields found"
                      + (f" (only {', '.join(sorted(shown))})" if shown else ""))
    missing = [f for f in adapter.required if f not in shown]
    warnings = () if source != "unknown" else ("site not recognised; parsed with the closest layout",)
    # A trial page with a defect (missing fields, conflicting or unreadable values, a
    # guessed encoding) still loads, as `partial`, with every defect named.
    reasons = (["missing fields: " + ", ".join(missing)] if missing else []) + list(dict.fromkeys(problems))
    if reasons:
        return result(source, "partial", "; ".join(reasons), record, warnings)
    return result(source, "ok", None, record, warnings)


def _implausible(record: TrialRecord) -> list[str]:
    """Values each readable but impossible together; kept as shown, the page marked partial."""
    low, high = record.min_age_years, record.max_age_years
    if low is not None and high is not None and low > high:
        return [f"inverted age range: minimum {record.min_age} above maximum {record.max_age}"]
    return []


class _Truncated(ValueError):
    pass


def _outline(text: str) -> Outline:
    if looks_like_html(text):
        if _HTML_START.match(text) and not _HTML_END.search(text[-2000:]):
            raise _Truncated("truncated HTML: the document ends before </html>")
        return html_outline(text)
    return text_outline(text)


def _pick_adapter(outline: Outline, raw: RawPage) -> tuple[SiteAdapter, int]:
    if raw.source_hint and raw.source_hint in ADAPTERS:
        return ADAPTERS[raw.source_hint], MIN_SITE_SCORE
    scored = sorted(((a.score(outline, raw.url), a.name) for a in ADAPTERS.values()), reverse=True)
    best_score, best_name = scored[0]
    return ADAPTERS[best_name], best_score


_LIST_FIELDS = ("conditions", "interventions", "arms", "criteria", "contacts", "locations", "keywords")
_SCALAR_FIELDS = (
    "nct_id", "brief_title", "lead_sponsor", "overall_status", "study_type", "enrollment", "sex",
    "min_age", "max_age", "brief_summary", "detailed_description", "primary_purpose", "allocation",
    "intervention_model", "masking", "start_date", "completion_date", "first_submitted_date",
    "last_update_date", "healthy_volunteers",
)


def _fields_present(record: TrialRecord) -> set[str]:
    present = {f for f in _SCALAR_FIELDS if getattr(record, f) not in (None, "")}
    present |= {f for f in _LIST_FIELDS if getattr(record, f)}
    if record.phases:
        present.add("phases")
    return present
