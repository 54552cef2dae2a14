"""Section readers shared by the site adapters: one small function per kind of section."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rapidfuzz import fuzz

from pipeline.clean.outline import Line, Outline
from pipeline.clean.text import fold, normalize_space, repair_powers_of_ten
from pipeline.extract.fields import (
    find_nct_ids,
    is_email,
    is_phone,
    parse_contact_list,
    parse_intervention,
    parse_place,
    split_name_credentials,
)
from pipeline.extract.criteria import parse_criteria
from pipeline.models import Arm, Contact, Criterion, Identifier, Intervention, Location
from pipeline.sources.base import Section
from pipeline.vocab import phases_from_text, to_code

_DIGITS_ONLY = re.compile(r"^\d{1,5}$")  # a site count, not a phone number


def texts(lines: Iterable[Line]) -> list[str]:
    return [line.text for line in lines]


# Sections that may legitimately repeat (criteria come as one mixed block or split ones).
_REPEATABLE = frozenset({"criteria", "inclusion", "exclusion", "footer", "details", "design"})


def first_sections(sections: Sequence[Section], problems: list[str]) -> dict[str, Section]:
    """The first section of each kind, up to the site footer.

    A section shown twice with different content is a page defect (two values for one
    field): the first is kept and the conflict is reported in `problems`.
    """
    first: dict[str, Section] = {}
    for s in sections:
        if s.key == "footer":
            break
        kept = first.setdefault(s.key, s)
        if kept is not s and s.key not in _REPEATABLE and kept.texts() != s.texts():
            problems.append(f"conflicting values: section {s.label!r} shown twice with different content")
    return first


def section_texts(section: Section | None) -> list[str]:
    return section.texts() if section is not None else []


def first_text(section: Section | None) -> str | None:
    if section is None:
        return None
    for line in section.lines:
        if line.text.strip():
            return line.text
    return None


def paragraphs(section: Section | None) -> str | None:
    """A free-text field: its lines joined by newlines, powers of ten repaired."""
    if section is None or not section.lines:
        return None
    text = "\n".join(line.text for line in section.lines)
    return repair_powers_of_ten(text) or None


def dedupe(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for v in values:
        v = normalize_space(v)
        if v and v not in seen:
            seen[v] = None
    return tuple(seen)


_PHASE_WORD = re.compile(r"(?:early\s+)?phase\s*\d|not applicable", re.I)


_PHASE_CLAIM = re.compile(r"^\s*phase\s*[:\-]?\s*\w", re.I)


def status_and_phases(
    lines: Sequence[str], problems: list[str] | None = None,
) -> tuple[str | None, tuple[str, ...]]:
    """Status word and phases from the status block; "RecruitingPhase 1" (two pills, no space) too."""
    status: str | None = None
    phases: list[str] = []
    for text in lines:
        code = to_code("overall_status", text)
        if code is None:
            m = _PHASE_WORD.search(text)
            if m and m.start() > 0:
                code = to_code("overall_status", text[: m.start()])
                if code and status is None:
                    status = code
                    text = text[m.start():]
                    code = None
        if code and status is None:
            status = code
            continue
        found = phases_from_text(text)
        if not found and problems is not None and _PHASE_CLAIM.match(text):
            problems.append(f"unrecognized phase {text.strip()[:40]!r}")
        for phase in found:
            if phase not in phases:
                phases.append(phase)
    return status, tuple(phases)


_NCT_LIKE = re.compile(r"^\s*N\s?C\s?T\b|^\s*NCT\w", re.I)


def identifiers(lines: Sequence[str], problems: list[str] | None = None) -> tuple[str | None, tuple[Identifier, ...]]:
    """NCT ID, then the sponsor's own id, then any other registry ids, in page order."""
    nct: str | None = None
    ids: list[Identifier] = []
    for text in lines:
        if _NCT_LIKE.match(text) and not find_nct_ids(text) and problems is not None:
            problems.append(f"malformed NCT ID {text.strip()[:40]!r}")
            continue
        found = find_nct_ids(text)
        if found and len(text) <= 40:
            for value in found:
                if nct is None:
                    nct = value
                ids.append(Identifier("nct", value))
            continue
        value = normalize_space(text)
        if not value:
            continue
        kind = "org_study_id" if not any(i.id_type == "org_study_id" for i in ids) else "secondary"
        ids.append(Identifier(kind, value))
    return nct, tuple(dict.fromkeys(ids))


def interventions(lines: Sequence[str]) -> tuple[Intervention, ...]:
    # No de-duplication: a trial may list the same intervention twice (two arms' versions).
    return tuple(i for i in map(parse_intervention, lines) if i is not None)


def healthy_volunteers(text: str | None) -> bool | None:
    if not text:
        return None
    low = fold(text)
    if low.startswith("no") or "not accept" in low or low in {"false"}:
        return False
    if "healthy" in low or low in {"yes", "true", "accepts"}:
        return True
    return None


_ARMS_HEADER = re.compile(r"^(\d[\d,]*)\s+participants?\s+in\s+(\d+)\s+(?:patient|participant)?\s*groups?\b", re.I)
_DESC = re.compile(r"^description\s*:\s*", re.I)
_TREAT = re.compile(r"^(?:treatments?|interventions?)\s*:\s*", re.I)


def arms(lines: Sequence[str]) -> tuple[Arm, ...]:
    """Arm blocks: label, 'Experimental group', optional 'Description:', optional 'Treatment:' lines."""
    out: list[Arm] = []
    label: str | None = None
    arm_type: str | None = None
    desc: list[str] = []
    treats: list[str] = []
    mode = ""

    def close() -> None:
        if label is not None:
            out.append(Arm(label, arm_type, repair_powers_of_ten("\n".join(desc)) or None, tuple(treats)))

    i = 0
    n = len(lines)
    while i < n:
        text = lines[i]
        nxt = lines[i + 1] if i + 1 < n else None
        is_label = not _DESC.match(text) and not _TREAT.match(text)
        if nxt is not None and is_label and _is_arm_type(nxt):
            close()
            label, arm_type, desc, treats, mode = text, to_code("arm_type", nxt), [], [], ""
            i += 2
            continue
        if nxt is not None and is_label and (_DESC.match(nxt) or (_TREAT.match(nxt) and mode != "desc")):
            close()  # an arm shown without a type line
            label, arm_type, desc, treats, mode = text, None, [], [], ""
            i += 1
            continue
        if label is not None:
            if _DESC.match(text):
                mode = "desc"
                text = _DESC.sub("", text)
            elif _TREAT.match(text):
                mode = "treat"
                text = _TREAT.sub("", text)
            if text:
                if mode == "treat":
                    treats.append(text)
                else:
                    desc.append(text)
        i += 1
    close()
    return tuple(out)


def _is_arm_type(text: str) -> bool:
    low = fold(text)
    return (low.endswith(" group") or low.endswith(" arm")) and to_code("arm_type", low.rsplit(" ", 1)[0]) is not None


def contacts_list(lines: Sequence[str], role: str) -> tuple[Contact, ...]:
    """'Name, Degree; Name2, Degree' lines, with phone/email lines attached to the contact before them."""
    people: list[Contact] = []
    for text in lines:
        email = is_email(text)
        phone = None if email else is_phone(text)
        if (email or phone) and people:
            last = people[-1]
            people[-1] = Contact(last.role, last.name, last.credentials, last.affiliation,
                                 last.phone or phone, last.email or email, last.title)
            continue
        people.extend(parse_contact_list(text, role))
    return tuple(people)


def named_contacts(lines: Sequence[str], role: str) -> tuple[Contact, ...]:
    """Name line, then affiliation line, then phone/email lines; repeated."""
    people: list[dict] = []
    for text in lines:
        email = is_email(text)
        phone = None if email else is_phone(text)
        if email or phone:
            if people:
                people[-1]["email" if email else "phone"] = email or phone
            continue
        cur = people[-1] if people else None
        if cur is None or cur.get("affiliation") or cur.get("email") or cur.get("phone"):
            name, creds = split_name_credentials(text)
            people.append({"name": name, "credentials": creds})
        else:
            cur["affiliation"] = text
    return tuple(
        Contact(role=role, name=p["name"], credentials=p.get("credentials"), affiliation=p.get("affiliation"),  # type: ignore[arg-type]
                phone=p.get("phone"), email=p.get("email"))
        for p in people
    )


_OFFICIAL_ROLES = {
    "principal investigator", "study chair", "study director", "sub investigator", "study principal investigator",
    "co principal investigator", "investigator",
}


def officials(lines: Sequence[str]) -> tuple[Contact, ...]:
    """Repeated (name, role, affiliation) lines; the role line anchors each official."""
    out: list[Contact] = []
    n = len(lines)
    roles = [fold(t) in _OFFICIAL_ROLES for t in lines]
    for r in range(n):
        if not roles[r] or r == 0 or roles[r - 1]:
            continue
        name, creds = split_name_credentials(lines[r - 1])
        aff = None
        if r + 1 < n and not roles[r + 1] and not (r + 2 < n and roles[r + 2]):
            aff = lines[r + 1]
        out.append(Contact("overall_official", name, creds, aff, title=lines[r]))
    return tuple(out)


def locations(lines: Sequence[str]) -> tuple[tuple[Location, ...], tuple[Contact, ...]]:
    """Site blocks: [facility], 'City, State, Country', [status], [site contact lines]."""
    # The section opens with the number of sites ("1"); later digit-only lines are facilities.
    if lines and _DIGITS_ONLY.match(lines[0]):
        lines = lines[1:]
    places = [parse_place(t) for t in lines]
    sites: list[Location] = []
    site_contacts: list[Contact] = []
    used: set[int] = set()
    for i, place in enumerate(places):
        if place is None:
            continue
        facility = None
        j = i - 1
        if j >= 0 and places[j] is None and j not in used \
                and to_code("location_status", lines[j]) is None and not is_email(lines[j]) and not is_phone(lines[j]):
            facility = lines[j]
            used.add(j)
        status = None
        if i + 1 < len(lines) and places[i + 1] is None:
            status = to_code("location_status", lines[i + 1])
            if status:
                used.add(i + 1)
        used.add(i)
        sites.append(Location(facility, *place, status=status))
    # Whatever remains between sites (not counts, not chrome) are site contacts.
    leftovers = [t for k, t in enumerate(lines) if k not in used]
    if sites and leftovers:
        site_contacts.extend(contacts_list(leftovers, "site_contact"))
    return tuple(dict.fromkeys(sites)), tuple(site_contacts)


def title_from_preamble(preamble: Sequence[Line], outline: Outline, chrome: frozenset[str]) -> tuple[int, str | None]:
    """Index and text of the page title among the lines before the first label."""
    if not preamble:
        return -1, None
    for i, line in enumerate(preamble):
        if line.heading == 1 and not _is_chrome(line.text, chrome):
            return i, line.text
    if outline.title:
        # "<title> | Site name": compare lines with the title with and without its last segment.
        full = fold(outline.title)
        head = fold(re.sub(r"\s+[|–—-]\s+[^|–—]*$", "", outline.title))
        best, best_i = 0.0, -1
        for i, line in enumerate(preamble):
            score = max(fuzz.ratio(line.key, head), fuzz.ratio(line.key, full))
            if score > best:
                best, best_i = score, i
        if best >= 90:
            return best_i, preamble[best_i].text
    for i, line in enumerate(preamble):
        if not _is_chrome(line.text, chrome):
            return i, line.text
    return -1, None


def _is_chrome(text: str, chrome: frozenset[str]) -> bool:
    low = fold(text)
    return (not low or low in chrome or len(low) <= 1 or low.endswith(" logo") or "cookie" in low)


def line_after(preamble: Sequence[Line], index: int, chrome: frozenset[str]) -> tuple[str | None, str | None]:
    """The first meaningful line after `index`, and a '<name> logo' line seen on the way."""
    logo = None
    for line in preamble[index + 1:]:
        low = fold(line.text)
        if low.endswith(" logo"):
            logo = normalize_space(line.text[: -len(" logo")])
            continue
        if _is_chrome(line.text, chrome):
            continue
        return line.text, logo
    return None, logo


_CRITERIA_KEYS = {"criteria": "inclusion", "inclusion": "inclusion", "exclusion": "exclusion"}


def criteria(sections: Sequence[Section]) -> tuple[Criterion, ...]:
    """Every criteria section in page order -> one numbered item list per type.

    A page may show one mixed section, separate inclusion/exclusion sections, or
    (in some markups) a mixed heading followed by split ones; all are read in
    order and numbered densely per type.
    """
    lines: list[Line] = []
    for section in sections:
        default = _CRITERIA_KEYS.get(section.key)
        if default is None:
            continue
        # A synthetic header line carries the section's type into the shared parser.
        lines.append(Line(f"{default.title()} Criteria:"))
        lines.extend(section.lines)
    return parse_criteria(lines, "inclusion") if lines else ()
