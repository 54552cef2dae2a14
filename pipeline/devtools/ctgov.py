"""Real ClinicalTrials.gov records (legacy XML, API v1 JSON, API v2 JSON) -> TrialRecord ground truth.

The shared corpus holds the same kind of study in three shapes CT.gov served over the
years.  Every shape is mapped onto one `TrialRecord` normalized the way the extractor
must normalize pages: API v2 codes via `pipeline.vocab`, dates as `datetime.date`
(month-only dates = first of the month), ages as display text plus years, degrees
split off person names, and the eligibility text block split into `Criterion` items.

Rendering needs a few facts a TrialRecord has no field for (who is masked, the
observational model, how each criterion was marked in the source, which site each
site contact belongs to); those travel next to the record in `Study.extras` and never
reach the truth files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from pipeline.models import (
    Arm,
    Contact,
    Criterion,
    Identifier,
    Intervention,
    Location,
    TrialRecord,
)
from pipeline.vocab import DISPLAY, phases_from_text, to_code

CORPUS_DIR = Path(os.environ.get("CTGOV_CORPUS", "/work/shared/corpus/ctgov"))

SourceFormat = Literal["xml", "v1", "v2"]
# When one trial is in several files the richer, newer shape wins.
_FORMAT_RANK: dict[str, int] = {"v2": 0, "v1": 1, "xml": 2}


@dataclass(frozen=True, slots=True)
class Study:
    """One study as loaded: the ground-truth record plus rendering-only facts."""

    record: TrialRecord
    source_format: SourceFormat
    path: str  # relative to the corpus root
    extras: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- text helpers

_WS = re.compile(r"\s+")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>^~|=])")


def _clean(text: Any) -> str | None:
    """One-line text: whitespace collapsed; None for empty."""
    if text is None:
        return None
    out = _WS.sub(" ", str(text)).strip()
    return out or None


def _place(text: Any) -> str | None:
    """City/state/country: also drop stray separators ("Rio de Janeiro," -> "Rio de Janeiro")."""
    out = _clean(text)
    return out.strip(" ,;") or None if out else None


def unescape_markdown(text: str) -> str:
    """API v2 escapes Markdown punctuation (`\\>`, `\\<=`, `\\[`): show it as a reader would."""
    return _MD_ESCAPE.sub(r"\1", text)


def _paragraphs(text: Any, *, wrapped: bool, markdown: bool = False) -> str | None:
    """Multi-paragraph text: paragraphs joined by a blank line.

    Legacy XML hard-wraps lines, so lines of one paragraph are joined; API JSON keeps one
    line per sentence/bullet, so single newlines stay as line breaks.
    """
    if text is None:
        return None
    raw = str(text).replace("\r\n", "\n").replace("\r", "\n")
    if markdown:
        raw = unescape_markdown(raw)
    paras: list[str] = []
    for block in re.split(r"\n[ \t]*\n", raw):
        lines = [_WS.sub(" ", ln).strip() for ln in block.split("\n")]
        lines = [ln for ln in lines if ln]
        if not lines:
            continue
        paras.append(" ".join(lines) if wrapped else "\n".join(lines))
    return "\n\n".join(paras) or None


# --------------------------------------------------------------------------- dates and ages

_MONTHS: dict[str, int] = {}
for _i, (_full, _abbr) in enumerate(
    zip(
        "january february march april may june july august september october november december".split(),
        "jan feb mar apr may jun jul aug sep oct nov dec".split(),
    ),
    start=1,
):
    _MONTHS[_full] = _i
    _MONTHS[_abbr] = _i
_MONTHS["sept"] = 9

_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?$")
_LONG_DATE = re.compile(r"^([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})$")
_MONTH_YEAR = re.compile(r"^([A-Za-z]+)\.?,?\s+(\d{4})$")


def parse_ctgov_date(text: str | None) -> dt.date | None:
    """CT.gov dates in any of its shapes; month-only dates become the first of the month.

    "2017-11-28", "2017-02", "July 3, 2021", "March 2007"; anything else -> None.
    """
    t = _clean(text)
    if not t:
        return None
    try:
        if m := _ISO_DATE.match(t):
            return dt.date(int(m[1]), int(m[2]), int(m[3] or 1))
        if m := _LONG_DATE.match(t):
            month = _MONTHS.get(m[1].lower())
            return dt.date(int(m[3]), month, int(m[2])) if month else None
        if m := _MONTH_YEAR.match(t):
            month = _MONTHS.get(m[1].lower())
            return dt.date(int(m[2]), month, 1) if month else None
    except ValueError:
        return None
    return None


_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(year|month|week|day|hour|minute)s?$", re.I)
_UNIT_YEARS = {
    "year": 1.0,
    "month": 12.0,
    "week": 52.1775,
    "day": 365.25,
    "hour": 365.25 * 24,
    "minute": 365.25 * 24 * 60,
}


def parse_age(text: str | None) -> tuple[str | None, float | None]:
    """"18 Years" -> ("18 Years", 18.0); "6 Months" -> ("6 Months", 0.5); "N/A" -> (None, None)."""
    t = _clean(text)
    if not t:
        return None, None
    m = _AGE.match(t)
    if not m:
        return None, None
    number = float(m[1])
    unit = m[2].lower()
    return t, number / _UNIT_YEARS[unit]


# --------------------------------------------------------------------------- names

def split_degrees(raw: str | None) -> tuple[str | None, str | None]:
    """"Amal A Elkholy, PhD" -> ("Amal A Elkholy", "PhD"); "Wei Jia" -> ("Wei Jia", None).

    CT.gov writes people as "Given Family, Degree[, Degree]": everything after the first
    comma is the credentials.
    """
    text = _clean(raw)
    if not text:
        return None, None
    if "," in text:
        name, rest = text.split(",", 1)
        name, rest = name.strip(), rest.strip(" ,")
        if name and rest:
            return name, rest
        return name or rest or None, None
    return text, None


def _role_display(role: str | None) -> str | None:
    """"PRINCIPAL_INVESTIGATOR" / "Principal Investigator" -> "Principal Investigator"."""
    r = _clean(role)
    if not r:
        return None
    if r.isupper() or "_" in r:
        small = {"of", "and", "or"}
        words = r.replace("_", " ").lower().split()
        return " ".join(w if w in small else w.capitalize() for w in words)
    return r


def _code_display(code: str | None) -> str | None:
    """API v2 style code "CASE_CONTROL" -> "Case-Control"-ish display; words pass through."""
    c = _clean(code)
    if not c:
        return None
    if c.isupper():
        return " ".join(w.capitalize() for w in c.split("_"))
    return c


# --------------------------------------------------------------------------- funders

def funder_code(agency_class: str | None) -> str | None:
    """Sponsor class -> the funder types a mirror can show: NIH, FED, INDUSTRY or OTHER."""
    c = _clean(agency_class)
    if not c:
        return None
    key = re.sub(r"[^a-z]", "", c.lower())
    if key == "nih":
        return "NIH"
    if key in ("fed", "usfed"):
        return "FED"
    if key == "industry":
        return "INDUSTRY"
    return "OTHER"  # OTHER, OTHER_GOV, INDIV, NETWORK, AMBIG, UNKNOWN all read as "Other"


def _funders(classes: Iterable[str | None]) -> tuple[str, ...]:
    out: list[str] = []
    for cls in classes:
        code = funder_code(cls)
        if code and code not in out:
            out.append(code)
    return tuple(out)


def _masking_code(text: str | None) -> str | None:
    code = to_code("masking", text)
    if code is None and text and re.match(r"\s*no\s+mask", text, re.I):
        return "NONE"  # legacy XML "No masking"
    return code


def _who_masked_from_text(text: str | None) -> tuple[str, ...]:
    """"Double (Participant, Investigator)" -> ("Participant", "Investigator")."""
    if not text:
        return ()
    m = re.search(r"\(([^)]*)\)", text)
    if not m:
        return ()
    return tuple(p.strip() for p in m[1].split(",") if p.strip())


# --------------------------------------------------------------------------- criteria

# A list marker at the start of an item: bullets, numbers, letters, roman numerals, each
# optionally parenthesised.  A marker must be followed by whitespace so "1.5 mg" and
# "-5 degrees" stay text.
_BULLET = r"[*\-•·◦▪‣●○■□►➢o–]"
_ROMAN = r"(?:i{1,3}|iv|vi{0,3}|ix|x|I{1,3}|IV|VI{0,3}|IX|X)"
_MARKER = re.compile(
    rf"^(?:(?P<bullet>{_BULLET})|\(?(?P<roman>{_ROMAN})[.)]|\((?P<roman2>{_ROMAN})\)"
    r"|\(?(?P<num>\d{1,2})[.)]|\((?P<num2>\d{1,2})\)"
    r"|\(?(?P<letter>[A-Za-z])[.)]|\((?P<letter2>[A-Za-z])\))\s+(?=\S)"
)
_HEADER = re.compile(
    r"^(?:key\s+|main\s+|major\s+|general\s+)?(?P<kind>inclusion|exclusion)\s+criteria\s*[:.\-–]?\s*$", re.I
)
_HEADER_PREFIX = re.compile(
    r"^(?:key\s+|main\s+|major\s+|general\s+)?(?P<kind>inclusion|exclusion)\s+criteria\s*:\s*(?P<rest>\S.*)$", re.I
)
_HEADER_LIKE = re.compile(r"^(?:key\s+)?(?P<kind>inclusion|exclusion)\s+criteria\b", re.I)
_GENERIC_HEADER = re.compile(
    r"^(?:eligibility(?:\s+criteria)?|inclusion\s+(?:and|&|/)\s+exclusion\s+criteria|criteria)\s*:?\s*$", re.I
)


def _marker_style(m: re.Match[str]) -> str:
    if m["bullet"]:
        return "bullet"
    if m["num"] or m["num2"]:
        return "number"
    if m["roman"] or m["roman2"]:
        # A lone "i." / "v." / "x." is as likely a letter; both read as sub-numbering.
        return "roman"
    return "letter"


def strip_markers(text: str) -> tuple[str, str | None]:
    """Leading list markers off an item ("* a) Cohort 1" -> "Cohort 1"); returns (text, style)."""
    style: str | None = None
    for _ in range(3):
        m = _MARKER.match(text)
        if not m:
            break
        style = style or _marker_style(m)
        text = text[m.end():]
    return text, style


@dataclass(slots=True)
class _RawItem:
    indent: int
    style: str | None  # None = plain paragraph
    lines: list[str]
    text_col: int  # column where the item's text starts (hard-wrapped continuation lines align here)


def _raw_items(text: str, *, wrapped: bool) -> list[_RawItem]:
    items: list[_RawItem] = []
    current: _RawItem | None = None
    for raw_line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw_line.expandtabs(4).rstrip()
        body = line.strip()
        if not body:
            current = None  # blank line ends the item
            continue
        indent = len(line) - len(line.lstrip())
        m = _MARKER.match(body)
        if current is not None:
            if wrapped and (m is None or indent == current.text_col):
                current.lines.append(body)  # hard-wrapped continuation
                continue
            if not wrapped and m is None and indent > current.indent and current.style:
                current.lines.append(body)  # lazy Markdown continuation of a bullet
                continue
        style = _marker_style(m) if m else None
        text_col = indent + (m.end() if m else 0)
        current = _RawItem(indent, style, [body], text_col)
        items.append(current)
    return items


def split_criteria_styled(
    text: str | None, *, wrapped: bool = False, markdown: bool = False
) -> tuple[tuple[Criterion, ...], tuple[str, ...]]:
    """Eligibility text block -> (criteria, marker style per criterion).

    Lines under "Inclusion Criteria:" are inclusion, under "Exclusion Criteria:" exclusion,
    anything before the first header inclusion.  Every bullet/numbered line or plain
    paragraph is one item; markers are stripped; nesting follows marker indentation
    (plain paragraphs never open a level).  `wrapped` = legacy XML hard-wrapping (join
    continuation lines); `markdown` = API v2 (undo backslash escapes).
    Styles are "bullet", "number", "letter", "roman" or "para".
    """
    if not text or not text.strip():
        return (), ()
    kind = "inclusion"
    ordinals = {"inclusion": 0, "exclusion": 0}
    stack: list[tuple[int, int]] = []  # (marker indent, ordinal) of open marked items
    criteria: list[Criterion] = []
    styles: list[str] = []

    def emit(body: str, indent: int, style: str | None, opens: bool = True) -> None:
        nonlocal stack
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else None
        ordinals[kind] += 1
        ordinal = ordinals[kind]
        criteria.append(Criterion(kind, ordinal, parent, body))  # type: ignore[arg-type]
        styles.append(style or "para")
        if style and opens:
            stack.append((indent, ordinal))

    for item in _raw_items(text, wrapped=wrapped):
        body = " ".join(item.lines)
        if item.style:
            body = _MARKER.sub("", body, count=1)
        if markdown:
            body = unescape_markdown(body)
        body = _WS.sub(" ", body).strip()
        inner, extra_style = strip_markers(body)  # "* a) Cohort 1" carries two markers
        style = item.style or extra_style
        inner = inner.strip()
        if not any(ch.isalnum() for ch in inner):
            continue  # a stray "-" line carries nothing
        if m := _HEADER.match(inner):
            kind = m["kind"].lower()
            stack = []
            continue
        if _GENERIC_HEADER.match(inner):
            continue
        if m := _HEADER_PREFIX.match(inner):
            # "Exclusion Criteria: 1. Age less than 40 ..." -> header, then an item.
            kind = m["kind"].lower()
            stack = []
            rest, rest_style = strip_markers(m["rest"].strip())
            if rest.strip():  # sits on the header line: a paragraph, never a parent
                emit(rest.strip(), item.indent, rest_style, opens=False)
            continue
        if (m := _HEADER_LIKE.match(inner)) and len(inner) <= 80 and not inner.endswith("."):
            # "Inclusion Criteria Stage 1": switches the section but carries information.
            kind = m["kind"].lower()
            stack = []
        emit(inner, item.indent, style)
    return tuple(criteria), tuple(styles)


def split_criteria(text: str | None, *, wrapped: bool = False, markdown: bool = False) -> tuple[Criterion, ...]:
    """See `split_criteria_styled`; just the criteria."""
    return split_criteria_styled(text, wrapped=wrapped, markdown=markdown)[0]


# --------------------------------------------------------------------------- shared assembly

def _phone(phone: Any, ext: Any) -> str | None:
    p = _clean(phone)
    e = _clean(ext)
    if p and e:
        return f"{p} ext {e}"
    return p


def _contact(role: str, name: Any, *, phone: str | None = None, email: Any = None,
             title: Any = None, affiliation: Any = None) -> Contact | None:
    person, creds = split_degrees(name)
    if not person:
        return None
    return Contact(
        role=role,  # type: ignore[arg-type]
        name=person,
        credentials=creds,
        affiliation=_clean(affiliation),
        phone=phone,
        email=_clean(email),
        title=_role_display(title) if title else None,
    )


def _intervention_label(type_code: str | None, name: str) -> str:
    word = DISPLAY["intervention_type"].get(type_code or "", None)
    return f"{word}: {name}" if word else name


# --------------------------------------------------------------------------- legacy XML

def _x(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path)
    if found is None:
        return None
    return "".join(found.itertext())


def _xall(el: etree._Element, path: str) -> list[str]:
    return ["".join(e.itertext()) for e in el.findall(path)]


def _from_xml(root: etree._Element, rel: str) -> Study:
    nct = _clean(_x(root, "id_info/nct_id"))
    identifiers = [Identifier("nct", nct)] if nct else []
    if org := _clean(_x(root, "id_info/org_study_id")):
        identifiers.append(Identifier("org_study_id", org))
    identifiers += [Identifier("secondary", s) for s in map(_clean, _xall(root, "id_info/secondary_id")) if s]

    classes = [_x(root, "sponsors/lead_sponsor/agency_class")] + _xall(root, "sponsors/collaborator/agency_class")

    enrollment_el = root.find("enrollment")
    enrollment = enrollment_type = None
    if enrollment_el is not None and _clean(enrollment_el.text):
        try:
            enrollment = int(float(enrollment_el.text))  # type: ignore[arg-type]
        except ValueError:
            enrollment = None
        enrollment_type = to_code("enrollment_type", enrollment_el.get("type"))

    min_age, min_years = parse_age(_x(root, "eligibility/minimum_age"))
    max_age, max_years = parse_age(_x(root, "eligibility/maximum_age"))
    hv = _clean(_x(root, "eligibility/healthy_volunteers"))
    healthy = None if hv is None else not hv.lower().startswith("no")

    masking_text = _clean(_x(root, "study_design_info/masking"))

    interventions: list[Intervention] = []
    arm_treatments: dict[str, list[str]] = {}
    for iv in root.findall("intervention"):
        name = _clean(_x(iv, "intervention_name"))
        if not name:
            continue
        code = to_code("intervention_type", _x(iv, "intervention_type"))
        interventions.append(Intervention(code, name, _paragraphs(_x(iv, "description"), wrapped=True)))
        for label in _xall(iv, "arm_group_label"):
            arm_treatments.setdefault(_clean(label) or "", []).append(_intervention_label(code, name))
    arms = []
    for ag in root.findall("arm_group"):
        label = _clean(_x(ag, "arm_group_label"))
        if not label:
            continue
        arms.append(Arm(
            label=label,
            arm_type=to_code("arm_type", _x(ag, "arm_group_type")),
            description=_paragraphs(_x(ag, "description"), wrapped=True),
            interventions=tuple(arm_treatments.get(label, ())),
        ))

    contacts: list[Contact] = []
    for tag in ("overall_contact", "overall_contact_backup"):
        for el in root.findall(tag):
            c = _contact("central_contact", _x(el, "last_name"),
                         phone=_phone(_x(el, "phone"), _x(el, "phone_ext")), email=_x(el, "email"))
            if c:
                contacts.append(c)
    for el in root.findall("overall_official"):
        c = _contact("overall_official", _x(el, "last_name"), title=_x(el, "role"),
                     affiliation=_x(el, "affiliation"))
        if c:
            contacts.append(c)
    locations: list[Location] = []
    site_of_contact: list[int] = []  # location index of each site contact, for rendering
    for loc in root.findall("location"):
        locations.append(Location(
            facility=_clean(_x(loc, "facility/name")),
            city=_place(_x(loc, "facility/address/city")),
            state=_place(_x(loc, "facility/address/state")),
            country=_place(_x(loc, "facility/address/country")),
            status=to_code("location_status", _x(loc, "status")),
        ))
        for tag in ("contact", "contact_backup"):
            for el in loc.findall(tag):
                c = _contact("site_contact", _x(el, "last_name"),
                             phone=_phone(_x(el, "phone"), _x(el, "phone_ext")), email=_x(el, "email"))
                if c:
                    contacts.append(c)
                    site_of_contact.append(len(locations) - 1)

    criteria, styles = split_criteria_styled(_x(root, "eligibility/criteria/textblock"), wrapped=True)
    completion = root.find("completion_date")

    record = TrialRecord(
        nct_id=nct,
        brief_title=_clean(_x(root, "brief_title")),
        official_title=_clean(_x(root, "official_title")),
        acronym=_clean(_x(root, "acronym")),
        lead_sponsor=_clean(_x(root, "sponsors/lead_sponsor/agency")),
        overall_status=to_code("overall_status", _x(root, "overall_status")),
        phases=phases_from_text(_x(root, "phase")),
        study_type=to_code("study_type", _x(root, "study_type")),
        enrollment=enrollment,
        enrollment_type=enrollment_type,
        sex=to_code("sex", _x(root, "eligibility/gender")),
        min_age=min_age,
        max_age=max_age,
        min_age_years=min_years,
        max_age_years=max_years,
        healthy_volunteers=healthy,
        brief_summary=_paragraphs(_x(root, "brief_summary/textblock"), wrapped=True),
        detailed_description=_paragraphs(_x(root, "detailed_description/textblock"), wrapped=True),
        primary_purpose=to_code("primary_purpose", _x(root, "study_design_info/primary_purpose")),
        allocation=to_code("allocation", _x(root, "study_design_info/allocation")),
        intervention_model=to_code("intervention_model", _x(root, "study_design_info/intervention_model")),
        masking=_masking_code(masking_text),
        start_date=parse_ctgov_date(_x(root, "start_date")),
        primary_completion_date=parse_ctgov_date(_x(root, "primary_completion_date")),
        completion_date=parse_ctgov_date(_x(root, "completion_date")),
        first_submitted_date=parse_ctgov_date(_x(root, "study_first_submitted") or _x(root, "firstreceived_date")),
        last_update_date=parse_ctgov_date(
            _x(root, "last_update_posted") or _x(root, "last_update_submitted") or _x(root, "lastchanged_date")
        ),
        funder_types=_funders(classes),
        conditions=tuple(c for c in map(_clean, _xall(root, "condition")) if c),
        keywords=tuple(k for k in map(_clean, _xall(root, "keyword")) if k),
        identifiers=tuple(identifiers),
        interventions=tuple(interventions),
        arms=tuple(arms),
        criteria=criteria,
        contacts=tuple(contacts),
        locations=tuple(locations),
    )
    extras = {
        "who_masked": _who_masked_from_text(masking_text),
        "observational_model": _clean(_x(root, "study_design_info/observational_model")),
        "time_perspective": _clean(_x(root, "study_design_info/time_perspective")),
        "completion_type": to_code("enrollment_type", completion.get("type")) if completion is not None else None,
        "criteria_styles": styles,
        "site_contact_sites": tuple(site_of_contact),
    }
    return Study(record, "xml", rel, extras)


# --------------------------------------------------------------------------- API v1 JSON

def _g(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _gl(obj: Any, *path: str) -> list[Any]:
    val = _g(obj, *path)
    return val if isinstance(val, list) else []


def _from_v1(study: Mapping[str, Any], rel: str) -> Study:
    ps = study.get("ProtocolSection", {})
    ident = ps.get("IdentificationModule", {})
    status = ps.get("StatusModule", {})
    sponsors = ps.get("SponsorCollaboratorsModule", {})
    design = ps.get("DesignModule", {})
    elig = ps.get("EligibilityModule", {})
    arms_mod = ps.get("ArmsInterventionsModule", {})
    cl = ps.get("ContactsLocationsModule", {})

    nct = _clean(ident.get("NCTId"))
    identifiers = [Identifier("nct", nct)] if nct else []
    if org := _clean(_g(ident, "OrgStudyIdInfo", "OrgStudyId")):
        identifiers.append(Identifier("org_study_id", org))
    for sec in _gl(ident, "SecondaryIdInfoList", "SecondaryIdInfo"):
        if s := _clean(sec.get("SecondaryId")):
            identifiers.append(Identifier("secondary", s))

    classes = [_g(sponsors, "LeadSponsor", "LeadSponsorClass")] + [
        c.get("CollaboratorClass") for c in _gl(sponsors, "CollaboratorList", "Collaborator")
    ]
    count = _g(design, "EnrollmentInfo", "EnrollmentCount")
    try:
        enrollment = int(count) if count not in (None, "") else None
    except ValueError:
        enrollment = None
    phases: list[str] = []
    for p in _gl(design, "PhaseList", "Phase"):
        for code in phases_from_text(p):
            if code not in phases:
                phases.append(code)
    min_age, min_years = parse_age(elig.get("MinimumAge"))
    max_age, max_years = parse_age(elig.get("MaximumAge"))
    hv = _clean(elig.get("HealthyVolunteers"))
    info = design.get("DesignInfo", {})

    interventions = []
    for iv in _gl(arms_mod, "InterventionList", "Intervention"):
        if name := _clean(iv.get("InterventionName")):
            interventions.append(Intervention(
                to_code("intervention_type", iv.get("InterventionType")), name,
                _paragraphs(iv.get("InterventionDescription"), wrapped=False),
            ))
    arms = []
    for ag in _gl(arms_mod, "ArmGroupList", "ArmGroup"):
        if label := _clean(ag.get("ArmGroupLabel")):
            arms.append(Arm(
                label=label,
                arm_type=to_code("arm_type", ag.get("ArmGroupType")),
                description=_paragraphs(ag.get("ArmGroupDescription"), wrapped=False),
                interventions=tuple(
                    n for n in map(_clean, _gl(ag, "ArmGroupInterventionList", "ArmGroupInterventionName")) if n
                ),
            ))

    contacts: list[Contact] = []
    for c in _gl(cl, "CentralContactList", "CentralContact"):
        if ct := _contact("central_contact", c.get("CentralContactName"),
                          phone=_phone(c.get("CentralContactPhone"), c.get("CentralContactPhoneExt")),
                          email=c.get("CentralContactEMail")):
            contacts.append(ct)
    for o in _gl(cl, "OverallOfficialList", "OverallOfficial"):
        if ct := _contact("overall_official", o.get("OverallOfficialName"), title=o.get("OverallOfficialRole"),
                          affiliation=o.get("OverallOfficialAffiliation")):
            contacts.append(ct)
    locations = []
    site_of_contact: list[int] = []
    for loc in _gl(cl, "LocationList", "Location"):
        locations.append(Location(
            facility=_clean(loc.get("LocationFacility")),
            city=_place(loc.get("LocationCity")),
            state=_place(loc.get("LocationState")),
            country=_place(loc.get("LocationCountry")),
            status=to_code("location_status", loc.get("LocationStatus")),
        ))
        for c in _gl(loc, "LocationContactList", "LocationContact"):
            if (_clean(c.get("LocationContactRole")) or "Contact").lower() not in ("contact", "backup"):
                continue  # investigators are not contact persons
            if ct := _contact("site_contact", c.get("LocationContactName"),
                              phone=_phone(c.get("LocationContactPhone"), c.get("LocationContactPhoneExt")),
                              email=c.get("LocationContactEMail")):
                contacts.append(ct)
                site_of_contact.append(len(locations) - 1)

    criteria, styles = split_criteria_styled(elig.get("EligibilityCriteria"))
    masking_text = _g(info, "DesignMaskingInfo", "DesignMasking")
    record = TrialRecord(
        nct_id=nct,
        brief_title=_clean(ident.get("BriefTitle")),
        official_title=_clean(ident.get("OfficialTitle")),
        acronym=_clean(ident.get("Acronym")),
        lead_sponsor=_clean(_g(sponsors, "LeadSponsor", "LeadSponsorName")),
        overall_status=to_code("overall_status", status.get("OverallStatus")),
        phases=tuple(phases),
        study_type=to_code("study_type", design.get("StudyType")),
        enrollment=enrollment,
        enrollment_type=to_code("enrollment_type", _g(design, "EnrollmentInfo", "EnrollmentType")),
        sex=to_code("sex", elig.get("Gender")),
        min_age=min_age,
        max_age=max_age,
        min_age_years=min_years,
        max_age_years=max_years,
        healthy_volunteers=None if hv is None else not hv.lower().startswith("no"),
        brief_summary=_paragraphs(_g(ps, "DescriptionModule", "BriefSummary"), wrapped=False),
        detailed_description=_paragraphs(_g(ps, "DescriptionModule", "DetailedDescription"), wrapped=False),
        primary_purpose=to_code("primary_purpose", info.get("DesignPrimaryPurpose")),
        allocation=to_code("allocation", info.get("DesignAllocation")),
        intervention_model=to_code("intervention_model", info.get("DesignInterventionModel")),
        masking=_masking_code(masking_text),
        start_date=parse_ctgov_date(_g(status, "StartDateStruct", "StartDate")),
        primary_completion_date=parse_ctgov_date(_g(status, "PrimaryCompletionDateStruct", "PrimaryCompletionDate")),
        completion_date=parse_ctgov_date(_g(status, "CompletionDateStruct", "CompletionDate")),
        first_submitted_date=parse_ctgov_date(status.get("StudyFirstSubmitDate")),
        last_update_date=parse_ctgov_date(
            _g(status, "LastUpdatePostDateStruct", "LastUpdatePostDate") or status.get("LastUpdateSubmitDate")
        ),
        funder_types=_funders(classes),
        conditions=tuple(c for c in map(_clean, _gl(ps, "ConditionsModule", "ConditionList", "Condition")) if c),
        keywords=tuple(k for k in map(_clean, _gl(ps, "ConditionsModule", "KeywordList", "Keyword")) if k),
        identifiers=tuple(identifiers),
        interventions=tuple(interventions),
        arms=tuple(arms),
        criteria=criteria,
        contacts=tuple(contacts),
        locations=tuple(locations),
    )
    extras = {
        "who_masked": tuple(_gl(info, "DesignMaskingInfo", "DesignWhoMaskedList", "DesignWhoMasked")),
        "observational_model": _clean(", ".join(_gl(info, "DesignObservationalModelList", "DesignObservationalModel"))),
        "time_perspective": _clean(", ".join(_gl(info, "DesignTimePerspectiveList", "DesignTimePerspective"))),
        "completion_type": to_code("enrollment_type", _g(status, "CompletionDateStruct", "CompletionDateType")),
        "criteria_styles": styles,
        "site_contact_sites": tuple(site_of_contact),
    }
    return Study(record, "v1", rel, extras)


# --------------------------------------------------------------------------- API v2 JSON

def _from_v2(doc: Mapping[str, Any], rel: str) -> Study:
    ps = doc.get("protocolSection", {})
    ident = ps.get("identificationModule", {})
    status = ps.get("statusModule", {})
    sponsors = ps.get("sponsorCollaboratorsModule", {})
    design = ps.get("designModule", {})
    elig = ps.get("eligibilityModule", {})
    arms_mod = ps.get("armsInterventionsModule", {})
    cl = ps.get("contactsLocationsModule", {})
    desc = ps.get("descriptionModule", {})
    cond = ps.get("conditionsModule", {})
    info = design.get("designInfo", {})

    nct = _clean(ident.get("nctId"))
    identifiers = [Identifier("nct", nct)] if nct else []
    if org := _clean(_g(ident, "orgStudyIdInfo", "id")):
        identifiers.append(Identifier("org_study_id", org))
    for sec in _gl(ident, "secondaryIdInfos"):
        if s := _clean(sec.get("id")):
            identifiers.append(Identifier("secondary", s))

    classes = [_g(sponsors, "leadSponsor", "class")] + [c.get("class") for c in _gl(sponsors, "collaborators")]
    count = _g(design, "enrollmentInfo", "count")
    min_age, min_years = parse_age(elig.get("minimumAge"))
    max_age, max_years = parse_age(elig.get("maximumAge"))
    hv = elig.get("healthyVolunteers")

    interventions = []
    for iv in _gl(arms_mod, "interventions"):
        if name := _clean(iv.get("name")):
            interventions.append(Intervention(
                to_code("intervention_type", iv.get("type")), name,
                _paragraphs(iv.get("description"), wrapped=False, markdown=True),
            ))
    arms = []
    for ag in _gl(arms_mod, "armGroups"):
        if label := _clean(ag.get("label")):
            arms.append(Arm(
                label=label,
                arm_type=to_code("arm_type", ag.get("type")),
                description=_paragraphs(ag.get("description"), wrapped=False, markdown=True),
                interventions=tuple(n for n in map(_clean, _gl(ag, "interventionNames")) if n),
            ))

    contacts: list[Contact] = []
    for c in _gl(cl, "centralContacts"):
        if ct := _contact("central_contact", c.get("name"), phone=_phone(c.get("phone"), c.get("phoneExt")),
                          email=c.get("email")):
            contacts.append(ct)
    for o in _gl(cl, "overallOfficials"):
        if ct := _contact("overall_official", o.get("name"), title=o.get("role"), affiliation=o.get("affiliation")):
            contacts.append(ct)
    locations = []
    site_of_contact: list[int] = []
    for loc in _gl(cl, "locations"):
        locations.append(Location(
            facility=_clean(loc.get("facility")),
            city=_place(loc.get("city")),
            state=_place(loc.get("state")),
            country=_place(loc.get("country")),
            status=to_code("location_status", loc.get("status")),
        ))
        for c in _gl(loc, "contacts"):
            if (_clean(c.get("role")) or "CONTACT").upper() not in ("CONTACT", "BACKUP"):
                continue
            if ct := _contact("site_contact", c.get("name"), phone=_phone(c.get("phone"), c.get("phoneExt")),
                              email=c.get("email")):
                contacts.append(ct)
                site_of_contact.append(len(locations) - 1)

    criteria, styles = split_criteria_styled(elig.get("eligibilityCriteria"), markdown=True)
    phases: list[str] = []
    for p in _gl(design, "phases"):
        code = to_code("phase", p)
        if code and code not in phases:
            phases.append(code)
    record = TrialRecord(
        nct_id=nct,
        brief_title=_clean(ident.get("briefTitle")),
        official_title=_clean(ident.get("officialTitle")),
        acronym=_clean(ident.get("acronym")),
        lead_sponsor=_clean(_g(sponsors, "leadSponsor", "name")),
        overall_status=to_code("overall_status", status.get("overallStatus")),
        phases=tuple(phases),
        study_type=to_code("study_type", design.get("studyType")),
        enrollment=int(count) if isinstance(count, (int, float)) else None,
        enrollment_type=to_code("enrollment_type", _g(design, "enrollmentInfo", "type")),
        sex=to_code("sex", elig.get("sex")),
        min_age=min_age,
        max_age=max_age,
        min_age_years=min_years,
        max_age_years=max_years,
        healthy_volunteers=hv if isinstance(hv, bool) else None,
        brief_summary=_paragraphs(desc.get("briefSummary"), wrapped=False, markdown=True),
        detailed_description=_paragraphs(desc.get("detailedDescription"), wrapped=False, markdown=True),
        primary_purpose=to_code("primary_purpose", info.get("primaryPurpose")),
        allocation=to_code("allocation", info.get("allocation")),
        intervention_model=to_code("intervention_model", info.get("interventionModel")),
        masking=_masking_code(_g(info, "maskingInfo", "masking")),
        start_date=parse_ctgov_date(_g(status, "startDateStruct", "date")),
        primary_completion_date=parse_ctgov_date(_g(status, "primaryCompletionDateStruct", "date")),
        completion_date=parse_ctgov_date(_g(status, "completionDateStruct", "date")),
        first_submitted_date=parse_ctgov_date(status.get("studyFirstSubmitDate")),
        last_update_date=parse_ctgov_date(
            _g(status, "lastUpdatePostDateStruct", "date") or status.get("lastUpdateSubmitDate")
        ),
        funder_types=_funders(classes),
        conditions=tuple(c for c in map(_clean, _gl(cond, "conditions")) if c),
        keywords=tuple(k for k in map(_clean, _gl(cond, "keywords")) if k),
        identifiers=tuple(identifiers),
        interventions=tuple(interventions),
        arms=tuple(arms),
        criteria=criteria,
        contacts=tuple(contacts),
        locations=tuple(locations),
    )
    extras = {
        "who_masked": tuple(_code_display(w) or "" for w in _gl(info, "maskingInfo", "whoMasked")),
        "observational_model": _code_display(info.get("observationalModel")),
        "time_perspective": _code_display(info.get("timePerspective")),
        "completion_type": to_code("enrollment_type", _g(status, "completionDateStruct", "type")),
        "criteria_styles": styles,
        "site_contact_sites": tuple(site_of_contact),
    }
    return Study(record, "v2", rel, extras)


# --------------------------------------------------------------------------- files and corpus

def load_file(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> list[Study]:
    """Every study in one corpus file; [] for files that are not a known CT.gov shape."""
    p = Path(path)
    rel = str(p.relative_to(root)) if root is not None else p.name
    if p.suffix.lower() == ".xml":
        try:
            tree = etree.parse(str(p), etree.XMLParser(no_network=True, resolve_entities=False))
        except etree.XMLSyntaxError:
            return []
        root_el = tree.getroot()
        if root_el.tag != "clinical_study" or root_el.find("id_info/nct_id") is None:
            return []
        return [_from_xml(root_el, rel)]
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(doc, dict):
            return []
        if "FullStudiesResponse" in doc:
            return [
                _from_v1(fs["Study"], rel)
                for fs in _gl(doc, "FullStudiesResponse", "FullStudies")
                if _g(fs, "Study", "ProtocolSection", "IdentificationModule", "NCTId")
            ]
        if "Study" in doc and _g(doc, "Study", "ProtocolSection", "IdentificationModule", "NCTId"):
            return [_from_v1(doc["Study"], rel)]
        if _g(doc, "protocolSection", "identificationModule", "nctId"):
            return [_from_v2(doc, rel)]
    return []


def iter_corpus(root: str | os.PathLike[str] = CORPUS_DIR) -> Iterator[Study]:
    """All studies in all files (duplicates across files included), in file-name order."""
    base = Path(root)
    for path in sorted(base.rglob("*")):
        if path.is_file() and path.suffix.lower() in (".xml", ".json"):
            yield from load_file(path, base)


def load_studies(root: str | os.PathLike[str] = CORPUS_DIR) -> list[Study]:
    """One study per NCT ID (v2 > v1 > XML when a trial is in several files), sorted by NCT ID."""
    best: dict[str, Study] = {}
    for study in iter_corpus(root):
        nct = study.record.nct_id
        if not nct:
            continue
        have = best.get(nct)
        if have is None or _FORMAT_RANK[study.source_format] < _FORMAT_RANK[have.source_format]:
            best[nct] = study
    return [best[k] for k in sorted(best)]


def load_records(root: str | os.PathLike[str] = CORPUS_DIR) -> list[TrialRecord]:
    """The ground-truth records, one per trial, sorted by NCT ID."""
    return [s.record for s in load_studies(root)]


# --------------------------------------------------------------------------- (de)serialization

_NESTED: dict[str, type] = {
    "identifiers": Identifier,
    "interventions": Intervention,
    "arms": Arm,
    "criteria": Criterion,
    "contacts": Contact,
    "locations": Location,
}


def record_to_dict(record: TrialRecord) -> dict[str, Any]:
    """JSON-ready dict: dates ISO, nested records as dicts, tuples as lists."""
    out: dict[str, Any] = {}
    for f in fields(record):
        val = getattr(record, f.name)
        if isinstance(val, dt.date):
            val = val.isoformat()
        elif f.name in _NESTED:
            val = [
                {nf.name: (list(v) if isinstance(v := getattr(item, nf.name), tuple) else v) for nf in fields(item)}
                for item in val
            ]
        elif isinstance(val, tuple):
            val = list(val)
        out[f.name] = val
    return out


def record_from_dict(data: Mapping[str, Any]) -> TrialRecord:
    """Inverse of `record_to_dict` (unknown keys ignored)."""
    kwargs: dict[str, Any] = {}
    names = {f.name for f in fields(TrialRecord)}
    for key, val in data.items():
        if key not in names:
            continue
        if key in _NESTED:
            cls = _NESTED[key]
            items = []
            for item in val or ():
                item = dict(item)
                if cls is Arm:
                    item["interventions"] = tuple(item.get("interventions") or ())
                items.append(cls(**item))
            val = tuple(items)
        elif key.endswith("_date") and isinstance(val, str):
            val = dt.date.fromisoformat(val)
        elif isinstance(val, list):
            val = tuple(val)
        kwargs[key] = val
    return TrialRecord(**kwargs)


def record_to_json(record: TrialRecord) -> str:
    return json.dumps(record_to_dict(record), ensure_ascii=False, sort_keys=True)


__all__ = [
    "CORPUS_DIR",
    "Study",
    "funder_code",
    "iter_corpus",
    "load_file",
    "load_records",
    "load_studies",
    "parse_age",
    "parse_ctgov_date",
    "record_from_dict",
    "record_to_dict",
    "record_to_json",
    "split_criteria",
    "split_criteria_styled",
    "split_degrees",
    "strip_markers",
    "unescape_markdown",
]
