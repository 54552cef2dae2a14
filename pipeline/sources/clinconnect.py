"""ClinConnect (clinconnect.io/trials/<NCT ID>): labels, chrome and field extraction."""

from __future__ import annotations

import re

from pipeline.clean.outline import Outline
from pipeline.clean.text import fold, normalize_space, sponsor_case
from pipeline.extract.fields import find_nct_ids, parse_age_range, parse_date, parse_enrollment
from pipeline.models import Contact, Identifier, TrialRecord
from pipeline.sources import common
from pipeline.sources.base import Layout, Section, SiteAdapter, split_sections
from pipeline.vocab import to_code

LABELS = {
    "trial information": "info",
    "keywords": "keywords",
    "clinconnect summary": "site_summary",
    "gender": "sex", "sex": "sex",
    "eligibility criteria": "criteria", "eligibility": "criteria",
    "inclusion criteria": "inclusion", "exclusion criteria": "exclusion",
    "contacts": "contacts", "contact": "contacts", "central contacts": "contacts",
    "locations": "locations", "location": "locations",
    "trial officials": "officials", "study officials": "officials",
    "timeline": "timeline",
    "conditions": "conditions", "condition": "conditions",
    "interventions": "treatments", "treatments": "treatments",
    "phase": "phase", "phases": "phase",
    "study type": "study_type", "enrollment": "enrollment", "ages": "ages", "age": "ages",
    "similar trials": "footer", "related trials": "footer",
}
_LAUNCHED = re.compile(r"^launched by\s+(?P<sponsor>.+?)(?:\s*[·•|–—]\s*(?P<date>.+))?$", re.I)
PATTERNS = (
    (_LAUNCHED, "launched"),
    (re.compile(r"^current as of\s+(?P<date>.+)$", re.I), "current"),
    # the site's own footer links ("About us Privacy Policy ...") end the trial content; without
    # this rule they read as a second "About <sponsor>" section
    (re.compile(r"^about us\b", re.I), "footer"),
    (re.compile(r"^about\s+(?P<sponsor>.{2,200})$", re.I), "about_sponsor"),
    (re.compile(r"^(?:nct id|nct number|clinicaltrials\.gov id|trial id)\s*:?\s*(?P<nct>nct\s?\d{8})$", re.I), "nct"),
)
CHROME = frozenset({
    "clinconnect", "menu", "loading", "patients applied", "apply", "apply now", "check eligibility",
    "share", "save", "sign in", "log in", "sign up", "back to search", "find trials", "skip to content",
})
INLINE = frozenset({"sex", "study_type", "enrollment", "ages", "phase"})
ORDER = {key: rank for rank, key in enumerate((
    "nct", "launched", "info", "current", "phase", "conditions", "treatments", "study_type", "enrollment",
    "ages", "keywords", "site_summary", "sex", "inclusion", "criteria", "exclusion", "about_sponsor",
    "contacts", "locations", "officials", "timeline", "footer"), 1)}
ORDER["criteria"] = ORDER["exclusion"]
STICKY = frozenset({"site_summary", "inclusion", "exclusion", "criteria", "about_sponsor"})
RUN_ON = {
    "sex": lambda v: to_code("sex", v) is not None,
    "study_type": lambda v: to_code("study_type", v) is not None,
    "enrollment": lambda v: parse_enrollment(v)[0] is not None,
    "ages": lambda v: parse_age_range(v)[0:2] != (None, None),
}
LAYOUT = Layout(labels=LABELS, patterns=PATTERNS, chrome=CHROME, inline_labels=INLINE, order=ORDER,
                sticky=STICKY, run_on=RUN_ON)
_STUDY = re.compile(r"^/trials/(NCT\d{8})/?$", re.I)

_TIMELINE = {
    "first submit": "first_submitted_date", "first submitted": "first_submitted_date",
    "trial launched": "start_date", "start date": "start_date", "study start": "start_date",
    "trial updated": "last_update_date", "last updated": "last_update_date",
    "estimated completion": "completion_date", "completion": "completion_date",
    "actual completion": "completion_date", "study completion": "completion_date",
    "primary completion": "primary_completion_date",
    "estimated primary completion": "primary_completion_date",
    "actual primary completion": "primary_completion_date",
}


def extract(outline: Outline, url: str, problems: list[str]) -> TrialRecord:
    preamble, sections = split_sections(outline.lines, LAYOUT)
    first = common.first_sections(sections, problems)

    def texts(key: str) -> list[str]:
        return common.section_texts(first.get(key))

    launched = first.get("launched")
    title = _title(preamble, outline, launched is not None)

    sponsor = None
    start = None
    if launched is not None and launched.match is not None:
        sponsor = normalize_space(launched.match.group("sponsor"))
        shown = launched.match.group("date")
        start = parse_date(shown)
        if shown and start is None:
            problems.append(f"unparseable date {shown.strip()[:40]!r} after 'Launched by'")
    about = first.get("about_sponsor")
    if sponsor and about is not None and about.match is not None:
        shown = normalize_space(about.match.group("sponsor"))
        if fold(shown) == fold(sponsor):
            sponsor = shown  # the blurb heading keeps the sponsor's own casing
    current = first.get("current")
    last_update = parse_date(current.match.group("date")) if current and current.match else None

    status_lines = common.section_texts(current) + texts("info") + texts("phase")
    status, phases = common.status_and_phases(status_lines, problems)

    dates = _timeline(texts("timeline"), problems)
    nct = _nct(url, outline, preamble, first)
    ids: tuple[Identifier, ...] = (Identifier("nct", nct),) if nct else ()

    contacts: list[Contact] = list(common.named_contacts(texts("contacts"), "central_contact"))
    contacts += common.officials(texts("officials"))
    locations, site_contacts = common.locations(texts("locations"))
    contacts += site_contacts
    min_age, max_age, min_years, max_years = parse_age_range(common.first_text(first.get("ages")))
    enrollment, enrollment_type = parse_enrollment(common.first_text(first.get("enrollment")))

    return TrialRecord(
        nct_id=nct,
        brief_title=title,
        lead_sponsor=sponsor_case(sponsor) if sponsor else None,
        overall_status=status,
        phases=phases,
        study_type=to_code("study_type", common.first_text(first.get("study_type"))),
        enrollment=enrollment,
        enrollment_type=enrollment_type,
        sex=to_code("sex", common.first_text(first.get("sex"))),
        min_age=min_age,
        max_age=max_age,
        min_age_years=min_years,
        max_age_years=max_years,
        start_date=dates.get("start_date") or start,
        primary_completion_date=dates.get("primary_completion_date"),
        completion_date=dates.get("completion_date"),
        first_submitted_date=dates.get("first_submitted_date"),
        last_update_date=dates.get("last_update_date") or last_update,
        conditions=common.dedupe(texts("conditions")),
        keywords=common.dedupe(texts("keywords")),
        identifiers=ids,
        interventions=common.interventions(texts("treatments")),
        criteria=common.criteria(sections),
        contacts=tuple(dict.fromkeys(contacts)),
        locations=locations,
    )


def _title(preamble, outline: Outline, has_byline: bool) -> str | None:
    """The <h1>, else the last meaningful line right above the 'Launched by' byline."""
    if any(line.heading == 1 for line in preamble) or not has_byline:
        return common.title_from_preamble(preamble, outline, CHROME)[1]
    for line in reversed(preamble):
        if fold(line.text) not in CHROME and len(fold(line.text)) > 1:
            return line.text
    return None


def _timeline(lines: list[str], problems: list[str]) -> dict:
    out: dict = {}
    key = None
    for text in lines:
        head, sep, rest = text.partition(":")
        label = _TIMELINE.get(fold(text)) or (_TIMELINE.get(fold(head)) if sep else None)
        if label:
            key = label
            if sep and rest.strip():
                out.setdefault(key, parse_date(rest))
                key = None
            continue
        if key:
            value = parse_date(text)
            if value is None and any(ch.isdigit() for ch in text):
                problems.append(f"unparseable date {text.strip()[:40]!r} in Timeline")
            out.setdefault(key, value)
            key = None
    return out


def _nct(url: str, outline: Outline, preamble, first: dict[str, Section]) -> str | None:
    sec = first.get("nct")
    if sec is not None and sec.match is not None:
        return find_nct_ids(sec.match.group("nct"))[0]
    for line in preamble:
        found = find_nct_ids(line.text)
        if found and len(line.text) <= 40:
            return found[0]
    for candidate in (url, outline.canonical or ""):
        found = find_nct_ids(candidate)
        if found:
            return found[0]
    return None


ADAPTER = SiteAdapter(
    name="clinconnect",
    hosts=("clinconnect.io",),
    study_url=_STUDY,
    signatures=(
        re.compile(r"ClinConnect", re.I),
        re.compile(r"^Launched by .+", re.I | re.M),
        re.compile(r"^Current as of ", re.I | re.M),
        re.compile(r"^Trial Officials$|^Patients applied$", re.I),
    ),
    layout=LAYOUT,
    extract=extract,
)
