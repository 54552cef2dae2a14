"""Parsers for single field values as pages word them.  Pure functions, no site knowledge."""

from __future__ import annotations

import datetime as dt
import re

from pipeline.clean.memo import short_text_memo
from pipeline.clean.text import normalize_space
from pipeline.extract.countries import country_suffix
from pipeline.models import Contact, Intervention, Location
from pipeline.vocab import to_code

# ---- identifiers -----------------------------------------------------------

_NCT = re.compile(r"(?<![A-Za-z0-9])N\s?C\s?T[\s_:#-]{0,2}((?:\d[\s-]?){7}\d)(?!\d)", re.I)


def find_nct_ids(text: str) -> list[str]:
    """Every NCT ID in `text`, normalized: `NCT 0459 9543`, `nct04599543` -> `NCT04599543`."""
    out: list[str] = []
    for m in _NCT.finditer(text or ""):
        nct = "NCT" + re.sub(r"\D", "", m.group(1))
        if nct not in out:
            out.append(nct)
    return out


def normalize_nct(text: str | None) -> str | None:
    found = find_nct_ids(text or "")
    return found[0] if found else None


# ---- dates -----------------------------------------------------------------

_MONTHS = {
    m: i
    for i, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for m in names
}
_MON = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_DATE_PATTERNS = (
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), "ymd"),
    (re.compile(_MON + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I), "mdy"),
    (re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+" + _MON + r",?\s+(\d{4})\b", re.I), "dmy"),
    (re.compile(r"\b(\d{4})-(\d{1,2})\b(?!-)"), "ym"),
    (re.compile(_MON + r",?\s+(\d{4})\b", re.I), "my"),
    (re.compile(r"\b(\d{4})/(\d{1,2})/(\d{1,2})\b"), "ymd"),
)


def parse_date(text: str | None) -> dt.date | None:
    """First date in `text`; a month-only date is the first of that month."""
    if not text:
        return None
    for pattern, kind in _DATE_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        try:
            if kind == "ymd":
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            if kind == "mdy":
                return dt.date(int(m[3]), _MONTHS[m[1].lower().rstrip(".")], int(m[2]))
            if kind == "dmy":
                return dt.date(int(m[3]), _MONTHS[m[2].lower().rstrip(".")], int(m[1]))
            if kind == "ym":
                return dt.date(int(m[1]), int(m[2]), 1)
            if kind == "my":
                return dt.date(int(m[2]), _MONTHS[m[1].lower().rstrip(".")], 1)
        except (ValueError, KeyError):
            continue
    return None


# ---- enrollment ------------------------------------------------------------

# A count: plain digits, or groups of three after a thousands separator (`1,200`, the
# European `1.200`, `1 200`).  A decimal such as `12.5` is not a count and matches nothing.
_ENROLLMENT = re.compile(
    r"^\s*(\d{1,3}(?:[,.\u00a0\u202f' ]\d{3})+(?!\d)|\d+)(?![.,]\d)"
    r"\s*(estimated|anticipated|actual)?\s*(patients?|participants?|subjects?|people|enrolled)?\b",
    re.I,
)


def parse_enrollment(text: str | None) -> tuple[int | None, str | None]:
    """`30 estimated patients` -> (30, ESTIMATED); `2 patients` -> (2, ACTUAL)."""
    if not text:
        return None, None
    m = _ENROLLMENT.match(text)
    if not m or not re.search(r"\d", m.group(1)):
        return None, None
    digits = re.sub(r"[^\d]", "", m.group(1))
    if not digits:
        return None, None
    low = text.lower()
    if "estimated" in low or "anticipated" in low:
        kind = "ESTIMATED"
    elif m.group(3) or "actual" in low:
        kind = "ACTUAL"
    else:
        kind = None
    return int(digits), kind


# ---- ages ------------------------------------------------------------------

_UNIT_YEARS = {"year": 1.0, "month": 1 / 12, "week": 7 / 365.25, "day": 1 / 365.25, "hour": 1 / 8766, "minute": 1 / 525960}
_AGE_PART = r"(\d+(?:\.\d+)?)\s*(years?|months?|weeks?|days?|hours?|minutes?)?"
_AGE_RANGE = re.compile(r"^\s*" + _AGE_PART + r"\s*(?:to|-|–|—)\s*" + _AGE_PART, re.I)
_AGE_MIN = re.compile(r"^\s*" + _AGE_PART + r"\s*(?:\+|or older|and older|and over|or more)", re.I)
_AGE_MAX = re.compile(r"^\s*(?:up to|under|below|<=?|≤)\s*" + _AGE_PART, re.I)


def _age(value: str, unit: str | None, default_unit: str | None) -> tuple[str, float]:
    unit = (unit or default_unit or "years").lower().rstrip("s")
    number = float(value)
    shown = value if "." in value else str(int(number))
    plural = "" if number == 1 else "s"
    return f"{shown} {unit.title()}{plural}", number * _UNIT_YEARS[unit]


def parse_age_range(text: str | None) -> tuple[str | None, str | None, float | None, float | None]:
    """`18 to 75 years old` -> ("18 years", "75 years", 18.0, 75.0); `3+ years old`; `up to 65 years old`."""
    if not text:
        return None, None, None, None
    m = _AGE_RANGE.match(text)
    if m:
        (lo, lo_years), (hi, hi_years) = _age(m[1], m[2], m[4]), _age(m[3], m[4], None)
        return lo, hi, lo_years, hi_years
    m = _AGE_MIN.match(text)
    if m:
        lo, lo_years = _age(m[1], m[2], None)
        return lo, None, lo_years, None
    m = _AGE_MAX.match(text)
    if m:
        hi, hi_years = _age(m[1], m[2], None)
        return None, hi, None, hi_years
    return None, None, None, None


# ---- interventions ---------------------------------------------------------

_TYPED = re.compile(r"^\s*([A-Za-z][A-Za-z /]{1,30}?)\s*:\s*(.+)$")


def parse_intervention(text: str) -> Intervention | None:
    """`Drug: Anti-CD123 CAR NK cells` -> Intervention(DRUG, 'Anti-CD123 CAR NK cells')."""
    text = normalize_space(text)
    if not text:
        return None
    m = _TYPED.match(text)
    if m:
        code = to_code("intervention_type", m.group(1))
        if code:
            return Intervention(intervention_type=code, name=m.group(2).strip())
    return Intervention(intervention_type=None, name=text)


# ---- people ----------------------------------------------------------------

_DEGREE_WORDS = (
    r"M\.?D\.?|Ph\.?\s?D\.?|D\.?O\.?|M\.?B\.?B\.?S\.?|M\.?Sc?\.?|B\.?Sc?\.?|M\.?P\.?H\.?|R\.?N\.?|B\.?S\.?N\.?|"
    r"M\.?S\.?N\.?|Pharm\.?\s?D\.?|D\.?Phil\.?|F\.?R\.?C\.?P\.?|MRCP|FRCPC|FACS|FACP|PA-C|NP|CRNP|DNP|DDS|DMD|"
    r"MBA|MA|BA|MPH|MSc|BSc|MBChB|MBBCh|Dr\.?\s?med\.?|Prof\.?|Professor|Doctor|Master|Bachelor|"
    r"Associate Professor|Assistant Professor|Chief Physician|Attending Physician|Investigator|MD PhD"
)
_DEGREE_ONLY = re.compile(rf"^(?:{_DEGREE_WORDS})(?:[\s,/&]+(?:{_DEGREE_WORDS}))*\.?$", re.I)
_NAME_SUFFIX = re.compile(r"^(?:Jr|Sr|II|III|IV)\.?$", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"^(?:phone|tel|telephone)?\s*:?\s*(\+?[\d\s()./-]{6,}\d)(?:\s*(?:ext\.?|extension|x)\s*[\w+-]+)?$", re.I)


def split_name_credentials(text: str) -> tuple[str, str | None]:
    """`Yongxian Hu, PhD` -> ("Yongxian Hu", "PhD"); `Wei Jia, Professor` -> ("Wei Jia", "Professor")."""
    text = normalize_space(text).strip(" ;")
    name, _, rest = text.partition(",")
    rest = rest.strip()
    while rest:
        head, _, tail = rest.partition(",")
        if not _NAME_SUFFIX.match(head.strip()):  # "Smith, Jr." is still the name
            break
        name, rest = f"{name}, {head.strip()}", tail.strip()
    # ClinicalTrials.gov writes "Name, Degrees": whatever follows the first comma
    # is credentials, degree-like or not ("operator MD", "MBBS,MSc,PhD"), kept as written.
    creds = rest
    name_parts = [name.strip()]
    return ", ".join(name_parts), (creds or None)


def is_email(text: str) -> str | None:
    """The address(es) on an email line; several are kept as the page lists them ("a@x, b@y")."""
    if "@" not in text:  # every address has one: most lines are turned away without the regex
        return None
    found = _EMAIL.findall(text)
    return ", ".join(found) if found else None


_PHONE_START = re.compile(r"^(?:phone|tel|telephone|mobile|int|intl)?\.?\s*:?\s*\+?\s*[\d(][\d\s().-]{6,}")


def is_phone(text: str) -> str | None:
    """A phone line: "+86 571 8723 6702", "Phone: 800-411-1222 ext TTY...", "888-662-6728 (U.S. and Canada)"."""
    text = text.strip()
    m = _PHONE.match(text) or _PHONE_START.match(text)
    if not m or sum(ch.isdigit() for ch in m.group(0)) < 7 or "@" in text:
        return None
    return normalize_space(re.sub(r"^(?:phone|tel|telephone|mobile)\s*:?\s*", "", text, flags=re.I))


def parse_contact_list(text: str, role: str) -> list[Contact]:
    """`Yongxian Hu, PhD; He Huang, PhD` -> two Contacts."""
    out = []
    for chunk in re.split(r"\s*;\s*", text):
        if chunk.strip():
            name, creds = split_name_credentials(chunk)
            out.append(Contact(role=role, name=name, credentials=creds))  # type: ignore[arg-type]
    return out


# ---- locations -------------------------------------------------------------


@short_text_memo
def parse_place(text: str) -> tuple[str | None, str | None, str | None] | None:
    """`Hangzhou, Zhejiang, China` -> (city, state, country); None if no country ends the line."""
    country = country_suffix(text)
    if not country:
        return None
    head = text.rstrip(" .")[: len(text.rstrip(" .")) - len(country)].rstrip(" ,")
    parts = [p.strip() for p in head.split(",") if p.strip()]
    if not parts:
        return None, None, country
    city = parts[0]
    state = ", ".join(parts[1:]) or None
    # "City, State 12345" — postal codes are not part of the state
    if state:
        state = re.sub(r"\s+\d[\d-]{3,}$", "", state) or None
    return city, state, country


def location(facility: str | None, place: tuple[str | None, str | None, str | None], status: str | None) -> Location:
    city, state, country = place
    return Location(facility=facility, city=city, state=state, country=country, status=status)
