"""ClinicalTrials.Veeva (ctv.veeva.com/study/<slug>): labels, chrome and field extraction."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pipeline.clean.outline import Outline
from pipeline.clean.text import fold, sponsor_case
from pipeline.extract.fields import find_nct_ids, parse_age_range, parse_enrollment
from pipeline.models import Contact, Identifier, TrialRecord
from pipeline.sources import common
from pipeline.sources.base import Layout, Section, SiteAdapter, split_sections
from pipeline.vocab import to_code

LABELS = {
    "status and phase": "status_phase", "status": "status_phase", "status and phases": "status_phase",
    "conditions": "conditions", "condition": "conditions",
    "treatments": "treatments", "interventions": "treatments",
    "study type": "study_type",
    "funder types": "funder_types", "funder type": "funder_types",
    "identifiers": "identifiers", "identifier": "identifiers",
    "details and patient eligibility": "details",
    "about": "about", "full description": "full_description",
    "enrollment": "enrollment", "sex": "sex", "gender": "sex", "ages": "ages", "age": "ages",
    "volunteers": "volunteers", "healthy volunteers": "volunteers",
    "inclusion criteria": "inclusion", "exclusion criteria": "exclusion",
    "inclusion and exclusion criteria": "criteria", "eligibility criteria": "criteria",
    "trial design": "design",
    "primary purpose": "primary_purpose", "allocation": "allocation",
    "interventional model": "intervention_model", "intervention model": "intervention_model",
    "observational model": "observational_model", "time perspective": "time_perspective",
    "masking": "masking",
    "trial contacts and locations": "sites", "contacts and locations": "sites", "locations": "sites",
    "central trial contact": "central_contact", "central trial contacts": "central_contact",
    "central contact": "central_contact",
    "trial officials": "officials", "study officials": "officials", "overall officials": "officials",
    "data sourced from clinicaltrials gov": "footer", "similar trials": "footer",
}
ORDER = {key: rank for rank, key in enumerate((
    "status_phase", "conditions", "treatments", "study_type", "funder_types", "identifiers", "details",
    "about", "full_description", "enrollment", "sex", "ages", "volunteers", "inclusion", "criteria",
    "exclusion", "design", "primary_purpose", "allocation", "intervention_model", "observational_model",
    "time_perspective", "masking", "arms", "sites", "central_contact", "officials", "footer"), 1)}
ORDER["criteria"] = ORDER["exclusion"]  # one mixed section holds both kinds
STICKY = frozenset({"about", "full_description", "inclusion", "exclusion", "criteria", "arms"})
PATTERNS = (
    (re.compile(r"^\d[\d,]*\s+participants?\s+in\s+\d+\s+(?:patient|participant)?\s*groups?\b", re.I), "arms"),
)
CHROME = frozenset({
    "clinicaltrials veeva", "menu", "loading", "search", "sign in", "log in", "find clinical trials",
    "trials by location", "find clinical trialstrials by location", "clinical trials", "research sites",
    "resources", "legal", "share", "save", "print", "back to search", "skip to content",
})
INLINE = frozenset({
    "study_type", "enrollment", "sex", "ages", "volunteers", "primary_purpose", "allocation",
    "intervention_model", "observational_model", "time_perspective", "masking", "status_phase",
})
RUN_ON = {
    "status_phase": lambda v: to_code("overall_status", v.split(" Phase")[0]) is not None,
    "study_type": lambda v: to_code("study_type", v) is not None,
    "enrollment": lambda v: parse_enrollment(v)[0] is not None,
    "sex": lambda v: to_code("sex", v) is not None,
    "ages": lambda v: parse_age_range(v)[0:2] != (None, None),
    "volunteers": lambda v: "healthy" in v.lower(),
    "primary_purpose": lambda v: to_code("primary_purpose", v) is not None,
    "allocation": lambda v: to_code("allocation", v) is not None,
    "intervention_model": lambda v: to_code("intervention_model", v) is not None,
    "masking": lambda v: to_code("masking", v) is not None,
}
LAYOUT = Layout(labels=LABELS, patterns=PATTERNS, chrome=CHROME, inline_labels=INLINE, order=ORDER,
                sticky=STICKY, run_on=RUN_ON)
_STUDY = re.compile(r"^/study/([^/?#]+)/?$")


def extract(outline: Outline, url: str, problems: list[str]) -> TrialRecord:
    preamble, sections = split_sections(outline.lines, LAYOUT)
    first = common.first_sections(sections, problems)

    def texts(key: str) -> list[str]:
        return common.section_texts(first.get(key))

    t_index, title = common.title_from_preamble(preamble, outline, CHROME)
    sponsor = logo = None
    if t_index >= 0:
        sponsor, logo = common.line_after(preamble, t_index, CHROME)
    sponsor = sponsor or logo

    status, phases = common.status_and_phases(texts("status_phase"), problems)
    nct, ids = common.identifiers(texts("identifiers"), problems)
    nct = nct or _nct_from_links(url, outline)
    if nct and not any(i.id_type == "nct" for i in ids):
        ids = (Identifier("nct", nct),) + ids
    slug = _slug(url) or _slug(outline.canonical or "")
    if slug:
        ids = ids + (Identifier("veeva_slug", slug),)

    shown_enrollment = common.first_text(first.get("enrollment"))
    enrollment, enrollment_type = parse_enrollment(shown_enrollment)
    if shown_enrollment and enrollment is None:
        problems.append(f"unparseable enrollment {shown_enrollment[:40]!r}")
    arms_section = first.get("arms")
    if enrollment is None and arms_section is not None:
        enrollment, _ = parse_enrollment(arms_section.label)
    shown_ages = common.first_text(first.get("ages"))
    min_age, max_age, min_years, max_years = parse_age_range(shown_ages)
    if shown_ages and (min_age, max_age) == (None, None):
        problems.append(f"unparseable ages {shown_ages[:40]!r}")

    contacts: list[Contact] = list(common.contacts_list(texts("central_contact"), "central_contact"))
    contacts += common.officials(texts("officials"))
    locations, site_contacts = common.locations(texts("sites"))
    contacts += site_contacts

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
        healthy_volunteers=common.healthy_volunteers(common.first_text(first.get("volunteers"))),
        brief_summary=common.paragraphs(first.get("about")),
        detailed_description=common.paragraphs(first.get("full_description")),
        primary_purpose=to_code("primary_purpose", common.first_text(first.get("primary_purpose"))),
        allocation=to_code("allocation", common.first_text(first.get("allocation"))),
        intervention_model=to_code("intervention_model", common.first_text(first.get("intervention_model"))),
        masking=to_code("masking", common.first_text(first.get("masking"))),
        funder_types=common.dedupe(c for c in map(_funder, texts("funder_types")) if c),
        conditions=common.dedupe(texts("conditions")),
        identifiers=ids,
        interventions=common.interventions(texts("treatments")),
        arms=common.arms(common.section_texts(arms_section)),
        criteria=common.criteria(sections),
        contacts=tuple(dict.fromkeys(contacts)),
        locations=locations,
    )


def _funder(text: str) -> str | None:
    return to_code("funder_type", text) or None


def _nct_from_links(url: str, outline: Outline) -> str | None:
    for candidate in (url, outline.canonical or ""):
        found = find_nct_ids(candidate)
        if found:
            return found[0]
    return None


def _slug(url: str) -> str | None:
    if not url or url.startswith("file:"):
        return None
    m = _STUDY.match(urlsplit(url).path)
    return m.group(1) if m else None


ADAPTER = SiteAdapter(
    name="veeva",
    hosts=("ctv.veeva.com",),
    study_url=_STUDY,
    signatures=(
        re.compile(r"ClinicalTrials\.Veeva|Veeva Systems", re.I),
        re.compile(r"^Status and phase$|^Details and patient eligibility$|^Trial contacts and locations$", re.I),
        re.compile(r"participants? in \d+ patient groups?", re.I),
    ),
    layout=LAYOUT,
    extract=extract,
)

_ = fold  # re-exported for adapters built on this one
