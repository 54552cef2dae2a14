"""Numbers with comparators and units, found in normalized text (see `_text`).

A `Qty` is one bound expression: "> 1.0x109/l", "18-70 years", "between 18 and 75 years",
"<= 3.0xuln", "18 years ORMORE_AGE".  It knows its raw numbers and unit *kind*; turning a
kind into a variable's canonical unit is the caller's job, because "g/l" means 10^9/L for
platelets but grams per litre for hemoglobin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.eligibility._text import matches_at, occurrences

NUM = r"(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+(?:[.,]\d+)?|\.\d+)"

ULN_WORDS = (
    r"(?:uln\b|upper\s+limits?\s+of\s*(?:the\s+)?(?:institutional\s+|local\s+)?normal(?:\s+range)?"
    r"(?:\s*\(\s*uln\s*\))?|(?:the\s+)?normal\s+upper\s+limit|upper\s+normal\s+limit|"
    r"normal\s+(?:amounts?|values?|range|limits?)\b)"
)
ULN_UNIT = (
    # "x ULN", "times the upper limit of normal", "-fold ULN", and the bare "1.5 ULN"
    r"(?:(?:x|times?|-?\s*fold)\s*(?:(?:of|>|the|institutional|institution'?s?|local)\s+)*)?" + ULN_WORDS
)
_TIME = r"(?P<tu>years?|yrs?|months?|mos?|weeks?|wks?|days?|hours?|hrs?|wk|mo|y|d|h)\b"

UNIT = (
    r"(?P<uln>" + ULN_UNIT + r")"
    r"|(?P<pow>(?:x|\*)?\s*10\s*(?:\^|\*|e)?\s*(?P<exp>9|3|6|12)\s*(?:cells\s*)?/\s*"
    r"(?P<den>l|ul|mcl|mm\s*\^?\s*3|cumm)\b)"
    r"|(?P<kul>k\s*/\s*ul\b)"
    r"|(?P<perul>(?:cells?\s*)?/\s*(?:ul|mcl|mm\s*\^?\s*3|cu\.?\s*mm|cumm|m3)\b)"
    r"|(?P<umol>umol\s*/\s*l\b)"
    r"|(?P<mgdl>mg\s*/\s*dl\b)"
    r"|(?P<gdl>g\s*/\s*dl\b)"
    r"|(?P<gl>g\s*/\s*l\b)"
    r"|(?P<mlmin>ml\s*/\s*min(?:ute)?(?:\s*/\s*1[.,]73\s*(?:m\s*\^?\s*2|m2|sq\.?\s*m))?)"
    r"|(?P<pct>%|percent\b|per\s+cent\b)"
    r"|(?P<ms>ms(?:ec)?\b|milliseconds?\b)"
    r"|(?P<sec>sec(?:onds?)?\b|s\b(?!\s+grade))"
    r"|(?P<ul>(?:iu|u)\s*/\s*l\b)"
    r"|(?P<time>" + _TIME + r"(?P<old>\s*old\b|\s*of\s+age\b)?)"  # not "of agent"
    r"|(?P<other>(?:ng|pg|mg|ug|mu|miu|iu|u)\s*/\s*ml\b|mmol\s*/\s*l\b|mg\s*/\s*(?:l|kg)\b|"
    r"kg\s*/\s*m\s*\^?\s*2|l\s*/\s*min|mm\s*hg|mmhg|cmh2o|°\s*[cf]?|degrees?\b|"
    r"(?:mg|ug|kg|g|cm|mm|ml|cc|m2|cm2)\b|bpm|beats|breaths|/\s*min\b|copies|points?\b|units?\b|"
    r"cigarettes|packs?\b|half[\s-]lives|cycles?\b|doses?\b|lesions?\b|episodes?\b|times\b|x\b|"
    r"tu\b|mm\b|ratio\b|grade\b)"
)

# A bound is scanned in steps -- number, unit, range tail, postfix -- rather than by one
# regex holding four copies of UNIT, which was the slowest part of extraction.
_START_RE = re.compile(
    r"(?=[<>=\d.bf])(?P<between>between\s+)?(?:from\s+)?(?:(?P<cmp><=|>=|<|>|=)\s*)?(?<![a-z])(?<![a-z]-)(?P<n>" + NUM + r")(?!\s*\d)"
)
_UNIT_RE = re.compile(r"\s*(?:" + UNIT + r")")
_RANGE_RE = re.compile(r"\s*(?P<sep>-|to|~|and)\s*(?:(?P<cmp2><=|<)\s*)?(?<![a-z])(?P<n2>" + NUM + r")(?!\s*\d)")
_POST_RE = re.compile(r"\s*(?P<post>ORMORE_AGE|ORLESS_AGE|ORMORE|ORLESS)")

# "<= ULN", "> the upper limit of normal", "within normal limits": a ULN multiple of 1.
_CMP_ULN_RE = re.compile(
    r"(?=[<>w])(?P<cmp><=|>=|<|>)\s*(?:(?:the|institutional|local|1\s*x)\s+)*" + ULN_WORDS
    + r"|(?P<wnl>within\s+(?:the\s+)?(?:institutional\s+|local\s+)?normal\s+(?:institutional\s+)?"
    r"(?:limits?|range)|\bwnl\b)"
)

_CMP_ULN_STARTS = ("<", ">", "within", "wnl")

TIME_TO_DAYS = {
    "y": 365.25, "year": 365.25, "years": 365.25, "yr": 365.25, "yrs": 365.25,
    "mo": 30.4375, "mos": 30.4375, "month": 30.4375, "months": 30.4375,
    "w": 7.0, "wk": 7.0, "wks": 7.0, "week": 7.0, "weeks": 7.0,
    "d": 1.0, "day": 1.0, "days": 1.0, "h": 1 / 24, "hr": 1 / 24, "hrs": 1 / 24,
    "hour": 1 / 24, "hours": 1 / 24,
}


@dataclass(slots=True)
class Unit:
    kind: str | None  # uln, pow, kul, perul, umol, mgdl, gdl, gl, mlmin, pct, ms, sec, ul, time, other
    detail: str | None = None  # time unit word; pow exponent/denominator
    age_cue: bool = False  # "years old", "of age"


@dataclass(slots=True)
class Qty:
    start: int
    end: int
    lo: float | None
    lo_inc: bool | None
    hi: float | None
    hi_inc: bool | None
    lo_unit: Unit
    hi_unit: Unit
    has_cmp: bool  # any explicit comparator, range or postfix; False = a bare number
    age_cue: bool = False
    is_range: bool = False
    _kinds: frozenset[str | None] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def unit(self) -> Unit:
        return self.lo_unit if self.lo is not None else self.hi_unit

    def kinds(self) -> frozenset[str | None]:
        """Unit kinds of the stated bounds (computed once: bounds and units never change)."""
        k = self._kinds
        if k is None:
            k = self._kinds = frozenset(
                u.kind for v, u in ((self.lo, self.lo_unit), (self.hi, self.hi_unit)) if v is not None)
        return k


def _num(s: str) -> float:
    if "," in s:
        head, _, tail = s.partition(",")
        s = s.replace(",", "") if len(tail) == 3 and "," not in tail else head + "." + tail
    return float(s)


_UNIT_KINDS = ("uln", "pow", "kul", "perul", "umol", "mgdl", "gdl", "gl", "mlmin", "pct", "ms", "sec", "ul",
               "time", "other")


_UNIT_KIND_SET = frozenset(_UNIT_KINDS)


# Units are never changed once made, so equal ones are shared rather than rebuilt per bound.
_UNITS: dict[tuple[str, str | None, bool], Unit] = {}


def _shared_unit(kind: str, detail: str | None = None, age_cue: bool = False) -> Unit:
    key = (kind, detail, age_cue)
    u = _UNITS.get(key)
    if u is None:
        u = Unit(kind, detail, age_cue=age_cue)
        if len(_UNITS) < 10_000:
            _UNITS[key] = u
    return u


def _unit(m: re.Match[str]) -> Unit:
    kind = m.lastgroup
    if kind not in _UNIT_KIND_SET:  # lastgroup is an inner group: find the outer one
        kind = next(k for k in _UNIT_KINDS if m.group(k) is not None)
    if kind == "time":
        return _shared_unit("time", m.group("tu"), bool(m.group("old")))
    if kind == "pow":
        den = re.sub(r"\s|\^", "", m.group("den"))
        return _shared_unit("pow", f"{m.group('exp')}/{den}")
    if kind == "mlmin":
        return _shared_unit("mlmin", "bsa" if "1" in m.group("mlmin")[6:] else None)
    if kind == "uln":
        return _shared_unit("uln", "above" if ">" in m.group("uln") else None)
    return _shared_unit(kind)


_NO_UNIT = Unit(None)


_DIGIT_RE = re.compile(r"\d")


def _earliest_start(text: str, digit: int) -> int:
    """A position no `_START_RE` match starts before, given the first digit's position: every
    match is a number (its first digit, or a "." before it) after an optional "between",
    "from", comparator and whitespace, walked back over here (too far back is harmless)."""
    p = digit - 1 if digit > 0 else 0
    while p > 0 and (text[p - 1].isspace() or text[p - 1] in "<>="):
        p -= 1
    if text.endswith("from", 0, p):
        p -= 4
        while p > 0 and text[p - 1].isspace():
            p -= 1
    if text.endswith("between", 0, p):
        p -= 7
    return p


def find_quantities(text: str) -> list[Qty]:
    """All bound expressions in normalized text, left to right."""
    out: list[Qty] = []
    last_end = 0
    has_postfix = "OR" in text  # ORMORE/ORLESS tokens (upper case: only the normalizer writes them)
    first_digit = _DIGIT_RE.search(text)
    # (text before the first number holds no bound: skip it with one character-class search;
    # the lookbehinds still see what precedes the start position)
    starts = _START_RE.finditer(text, _earliest_start(text, first_digit.start())) if first_digit else ()
    for m in starts:
        if m.start() < last_end:
            continue
        start = m.start()
        cmp1 = m.group("cmp")
        v1 = _num(m.group("n"))
        p = m.end()
        um = _UNIT_RE.match(text, p)
        u1 = _unit(um) if um else _NO_UNIT
        if um:
            p = um.end()
        rm = _RANGE_RE.match(text, p)
        between = m.group("between") is not None
        if rm and (rm.group("sep") == "and") != between:
            rm = None  # "18 and over" is no range; "between 18 and 75" is
        if rm and cmp1 in ("<", "<="):
            rm = None
        post = ""
        if rm:
            v2 = _num(rm.group("n2"))
            p = rm.end()
            um2 = _UNIT_RE.match(text, p)
            u2 = _unit(um2) if um2 else _NO_UNIT
            if um2:
                p = um2.end()
            if u1.kind is None:
                u1 = u2
            elif u2.kind is None:
                u2 = u1
            q = Qty(start, p, v1, cmp1 != ">", v2, rm.group("cmp2") != "<", u1, u2, True, is_range=True)
        else:
            pm = _POST_RE.match(text, p) if has_postfix else None
            if pm:
                post = pm.group("post")
                p = pm.end()
            if post.startswith("ORMORE"):
                q = Qty(start, p, v1, True, None, None, u1, u1, True)
            elif post.startswith("ORLESS"):
                q = Qty(start, p, None, None, v1, True, u1, u1, True)
            elif cmp1 in (">", ">="):
                q = Qty(start, p, v1, cmp1 == ">=", None, None, u1, u1, True)
            elif cmp1 in ("<", "<="):
                q = Qty(start, p, None, None, v1, cmp1 == "<=", u1, u1, True)
            elif u1.kind == "uln" and u1.detail == "above":  # "3 times above the normal upper limit"
                q = Qty(start, p, v1, False, None, None, u1, u1, True)
            else:
                q = Qty(start, p, v1, True, v1, True, u1, u1, False)
        q.age_cue = q.lo_unit.age_cue or q.hi_unit.age_cue or post.endswith("_AGE")
        last_end = p
        out.append(q)
    # "<= ULN", "within normal limits": every form names ULN or "normal" (or is "wnl").
    # (every match starts with a comparator, "within" or "wnl": tried only there)
    uln_forms = matches_at(_CMP_ULN_RE, text, occurrences(text, _CMP_ULN_STARTS)) \
        if ("uln" in text or "normal" in text or "wnl" in text) else ()
    for m in uln_forms:
        if m.group("wnl"):
            q = Qty(m.start(), m.end(), None, None, 1.0, True, Unit("uln"), Unit("uln"), True)
        else:
            cmp = m.group("cmp")
            if cmp.startswith(">"):
                q = Qty(m.start(), m.end(), 1.0, cmp == ">=", None, None, Unit("uln"), Unit("uln"), True)
            else:
                q = Qty(m.start(), m.end(), None, None, 1.0, cmp == "<=", Unit("uln"), Unit("uln"), True)
        if not any(o.start <= q.start < o.end for o in out):
            out.append(q)
    out.sort(key=lambda q: q.start)
    return out


def days(value: float, unit: Unit) -> float | None:
    """A duration in days, or None if the unit is not a time unit."""
    if unit.kind != "time" or unit.detail is None:
        return None
    return value * TIME_TO_DAYS[unit.detail]


def years(value: float, unit: Unit) -> float | None:
    """An age in years; a missing unit means years (the way ages are written)."""
    if unit.kind is None:
        return value
    d = days(value, unit)
    if d is None:
        return None
    if unit.detail in ("y", "year", "years", "yr", "yrs"):
        return value
    if unit.detail in ("mo", "mos", "month", "months"):
        return value / 12
    return d / 365.25
