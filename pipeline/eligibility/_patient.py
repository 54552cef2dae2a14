"""Age, performance status (ECOG, Karnofsky), life expectancy and antigen expression."""

from __future__ import annotations

import re

from pipeline.eligibility._common import METHOD_RE, Row, canonical_condition, method_name
from pipeline.eligibility._quantity import Qty, days, years
from pipeline.eligibility._text import NormText, clause_bounds
from pipeline.eligibility.antigens import ANTIGEN_PATTERN, canonical_antigen

# (compiled once: these run per bound)
_DURATION_BEFORE_RE = re.compile(r"(?:for|within|over|during|last|past|next|>|<|=)\s*$")
_RANGE_GAP_RE = re.compile(r"\s*(?:and|to|-)\s*")
_FOR_BEFORE_RE = re.compile(r"\bfor\s*$")
_DIGIT_RE = re.compile(r"\d")

# ---------------------------------------------------------------- age
_AGE_CUE_RE = re.compile(r"\b(?:age[sd]?|aged)\b(?:\s*range)?[^\d]{0,22}$")
_AGE_CMP_RE = re.compile(r"(?P<cmp><=|>=|<|>)\s*the\s+age\s+(?:of\s+)?$")
_NOT_AGE_RE = re.compile(r"gestation|age-(?:adjusted|matched|appropriate)|bone\s+age|normal\s+for\s+age|"
                         r"mental\s+age|age\s+at\s+(?:onset|diagnosis)")
# "for children aged 18 months or over", "in infants < 12 months": the age selects a subgroup.
_AGE_AS_CONDITION_RE = re.compile(
    r"\b(?:for|in|of|if|among)\s+(?:the\s+)?(?:infants?|children|child|adolescents?|individuals|"
    r"participants|patients|subjects|persons|people|women|men|males|females|those|girls|boys|"
    r"neonates|newborns)(?:\s+(?:aged|age[sd]?|who\s+are|between|from))?[^\d]{0,12}$"
)
_RELATIVES_RE = re.compile(r"relatives|family\s+history|death|sibling")
_LABEL_RE = re.compile(
    r"(?P<c>\b(?:phase|cohorts?|parts?|stage|arms?|group)\s*[\w.]+(?:\s*(?:-|to|and|,)\s*\w+)?)\s*:\s*(?:age\s*)?$"
)
_LEAD_LABEL_RE = re.compile(
    r"^\W*(?:[a-z]\)\s*)?(?P<c>(?:phase|cohorts?|parts?|stage|arms?|group)\s*[\w.]+(?:\s*(?:-|to|and|,)\s*\w+)?)\s*:"
)
_TRAIL_PHASE_RE = re.compile(
    r"\s*,?\s*(?:in|during|for)\s+(?:the\s+)?(?P<c>[\w\s\-]{0,40}?\b(?:phase|cohort|part|stage|arm))\b"
)
# "children under 3 years of age receiving anti-tuberculosis therapy should not be enrolled"
_TRAIL_PARTICIPLE_RE = re.compile(
    r"(?:\s*(?:years?|months?)?\s*(?:old|of\s+age))?\s+(?:who\s+are\s+)?(?P<c>(?:receiving|taking|on)\s+[^,;()]+?)"
    r"\s+(?:should|will|must|are|is|cannot|may)\b"
)
_TIME_OR_NONE = frozenset({"time", None})
_HOURS = frozenset({"h", "hr", "hrs", "hour", "hours"})
_AGE_INHERIT_GAP_RE = re.compile(r"^[\s,;]*(?:and|or|to)?[\s,;]*$")


def _label_condition(nt: NormText, before_start: int, before: str) -> tuple[str | None, str]:
    m = _LABEL_RE.search(before) if ":" in before else None  # (a substring test is much cheaper)
    if not m:
        return None, before
    return canonical_condition(nt.span(before_start + m.start("c"), before_start + m.end("c"))), before[:m.start()]


def extract_age(nt: NormText, qtys: list[Qty], bounds: list[int], consumed: set[int]) -> list[Row]:
    text = nt.text
    rows: list[Row] = []
    prev_end = 0
    prev_age: tuple[Qty, Row] | None = None
    lead = _LEAD_LABEL_RE.match(text)
    lead_cond = canonical_condition(nt.span(lead.start("c"), lead.end("c"))) if lead else None
    for qi, q in enumerate(qtys):
        if qi in consumed:
            prev_end = q.end
            continue
        kinds = q.kinds()
        if not kinds <= _TIME_OR_NONE:
            # not an age; a bound with a unit, so it separates ages before and after it
            # (what the general path below does for it, without the clause and window work)
            prev_end = q.end
            continue
        cs, ce = clause_bounds(bounds, q.start)
        win0 = max(cs, prev_end, q.start - 70)
        before = text[win0:q.start]
        prev_end_here = prev_end
        has_age = "age" in before  # _AGE_CUE_RE and _AGE_CMP_RE both need it: skip them cheaply
        if q.has_cmp or q.unit.kind is not None or (has_age and _AGE_CMP_RE.search(before)):
            prev_end = q.end  # bare numbers ("phase 1:") are labels, not separators
        if not kinds <= {"time", None}:
            continue
        lu, hu = q.lo_unit, q.hi_unit
        if (lu.kind == "time" and lu.detail in _HOURS) or (hu.kind == "time" and hu.detail in _HOURS):
            continue
        cond, before_cue = _label_condition(nt, win0, before)
        lo, lo_inc, hi, hi_inc = q.lo, q.lo_inc, q.hi, q.hi_inc
        cue = (has_age and bool(_AGE_CUE_RE.search(before_cue))) or q.age_cue
        cm = _AGE_CMP_RE.search(before) if has_age else None
        if cm and not q.has_cmp:
            cue = True
            lo, lo_inc, hi, hi_inc = (q.lo, cm.group("cmp") == ">=", None, None) if cm.group("cmp")[0] == ">" \
                else (None, None, q.hi, cm.group("cmp") == "<=")
        elif not q.has_cmp:
            continue
        inherited = False
        if not cue and prev_age is not None and prev_age[0].end == prev_end_here:
            gap = text[prev_age[0].end:q.start]
            gc, gap_rest = _label_condition(nt, prev_age[0].end, gap)
            if _AGE_INHERIT_GAP_RE.match(gap_rest):
                cue, inherited, cond = True, True, gc or (prev_age[1].condition if not gc else gc)
        if not cue and not rows and q.is_range and q.hi_unit.kind == "time" and q.hi_unit.detail in ("years", "year") \
                and not _DURATION_BEFORE_RE.search(before):
            cue = True
        if not cue and q.unit.kind is None and q.has_cmp and qi + 1 < len(qtys):
            nq = qtys[qi + 1]
            if (nq.age_cue or _AGE_CUE_RE.search(text[max(cs, q.start - 30):q.start])) \
                    and _RANGE_GAP_RE.fullmatch(text, q.end, nq.start) and nq.hi_unit.kind == "time":
                cue = True
                lo_y_unit = nq.hi_unit
                lo, lo_inc, hi, hi_inc = q.lo, q.lo_inc, q.hi, q.hi_inc
                q = Qty(q.start, q.end, q.lo, q.lo_inc, q.hi, q.hi_inc, lo_y_unit, lo_y_unit, True)
        if not cue:
            continue
        ctx = text[max(cs, q.start - 60):q.start]
        if _NOT_AGE_RE.search(text[max(cs, q.start - 25):min(ce, q.end + 15)]) and not q.age_cue:
            continue
        if _AGE_AS_CONDITION_RE.search(ctx) or _RELATIVES_RE.search(text[max(cs, q.start - 40):min(ce, q.end + 40)]) \
                or _FOR_BEFORE_RE.search(ctx):
            continue
        if q.unit.kind is None and q.hi_unit.kind is None and not (has_age and _AGE_CUE_RE.search(before_cue)) \
                and not cm and not inherited and not q.age_cue:
            continue
        lo_y = years(lo, q.lo_unit) if lo is not None else None
        hi_y = years(hi, q.hi_unit) if hi is not None else None
        if (lo is not None and lo_y is None) or (hi is not None and hi_y is None):
            continue
        if any(v is not None and not 0 <= v <= 120 for v in (lo_y, hi_y)):
            continue
        if cond is None:
            tm = _TRAIL_PHASE_RE.match(text, q.end, ce) or _TRAIL_PARTICIPLE_RE.match(text, q.end, ce)
            if tm:
                cond = canonical_condition(nt.span(tm.start("c"), tm.end("c")))
        row = Row("age", round(lo_y, 4) if lo_y is not None else None, lo_inc if lo_y is not None else None,
                  round(hi_y, 4) if hi_y is not None else None, hi_inc if hi_y is not None else None,
                  "years", q.start, q.end, condition=cond or lead_cond)
        cue_m = _AGE_CUE_RE.search(before_cue) if has_age else None
        if cue_m:
            row.start = win0 + cue_m.start()
        rows.append(row)
        consumed.add(qi)
        prev_age = (q, row)
    return rows


# ---------------------------------------------------------------- performance status
_ECOG_RE = re.compile(
    r"(?:\becog\b|eastern\s+cooperative\s+oncology\s+group|\bzubrod\b|\bwho\s+performance\s+status|"
    r"(?P<generic>\bperformance\s+status))"
    r"(?:\s*(?:\(\s*(?:ecog|ps|who|zubrod)\s*\)|performance\s+status|performance\s+score|\bps\b|score|status|"
    r"grade|scale|\bof\b|\bis\b|must\s+be|:|\(appendix\s*\d+\)))*\s*"
    r"(?P<cmp><=|>=|<|>)?\s*(?P<a>[0-5])(?![\d%]|\.\d)"
    r"(?:\s*(?:-|to|~)\s*(?P<b>[0-5])(?![\d%]|\.\d)|(?P<list>(?:\s*,\s*[0-5])*\s*,?\s*(?:or|and)\s*[0-5])"
    r"(?![\d%]|\.\d))?"
)
_KPS_RE = re.compile(
    r"(?:karnofsky|lansky|\bkps\b)(?:\s*(?:\(\s*kps\s*\)|performance|status|score|scale|index|\bps\b|\bof\b|"
    r"\bis\b|:|must\s+be))*\s*(?P<cmp><=|>=|<|>)?\s*(?P<a>\d{2,3})\s*%?"
    r"(?:\s*(?:-|to)\s*(?P<b>\d{2,3})\s*%?)?(?P<post>\s*(?:ORMORE|ORLESS))?"
)


def extract_performance(nt: NormText) -> list[Row]:
    text = nt.text
    rows: list[Row] = []
    if "ecog" in text or "zubrod" in text or "performance" in text or "eastern" in text:
        for m in _ECOG_RE.finditer(text):
            if m.group("generic") and re.search(r"karnofsky|lansky|kps", text[max(0, m.start() - 25):m.start()]):
                continue  # "Karnofsky performance status 60"
            a = int(m.group("a"))
            cmp = m.group("cmp")
            if m.group("b") is not None:
                lo, hi = a, int(m.group("b"))
                row = Row("ecog", float(lo), True, float(hi), True, None, m.start(), m.end())
            elif m.group("list"):
                vals = [a, *map(int, re.findall(r"[0-5]", m.group("list")))]
                row = Row("ecog", float(min(vals)), True, float(max(vals)), True, None, m.start(), m.end())
            elif cmp in ("<=", "<"):
                row = Row("ecog", None, None, float(a), cmp == "<=", None, m.start(), m.end())
            elif cmp in (">=", ">"):
                row = Row("ecog", float(a), cmp == ">=", None, None, None, m.start(), m.end())
            else:
                row = Row("ecog", float(a), True, float(a), True, None, m.start(), m.end())
            rows.append(row)
    if "karnofsky" in text or "lansky" in text or "kps" in text:
        for m in _KPS_RE.finditer(text):
            a = float(m.group("a"))
            cmp = m.group("cmp")
            post = (m.group("post") or "").strip()
            if m.group("b") is not None:
                row = Row("karnofsky", a, True, float(m.group("b")), True, None, m.start(), m.end())
            elif cmp in ("<=", "<") or post == "ORLESS":
                row = Row("karnofsky", None, None, a, cmp != "<", None, m.start(), m.end())
            else:  # a bare "Karnofsky 60" is a minimum
                row = Row("karnofsky", a, cmp != ">", None, None, None, m.start(), m.end())
            if all(v is None or 0 <= v <= 100 for v in (row.lower, row.upper)):
                rows.append(row)
    return rows


# ---------------------------------------------------------------- life expectancy
_LE_RE = re.compile(
    r"life\s+expectancy|(?:expected|estimated|anticipated|predicted)\s+(?:survival|life\s*span)(?:\s+time)?|"
    r"survival\s+time|expected\s+to\s+(?:live|survive)|\bsurvival\s+(?:of|is)\b"
)
_LE_AFTER_RE = re.compile(r"\s*to\s+live\b")


def extract_life_expectancy(nt: NormText, qtys: list[Qty], bounds: list[int], consumed: set[int]) -> list[Row]:
    text = nt.text
    if not any(k in text for k in ("expectan", "survival", "surviv", "to live")):
        return []
    mentions = [(m.start(), m.end()) for m in _LE_RE.finditer(text)]
    rows: list[Row] = []
    for qi, q in enumerate(qtys):
        if qi in consumed or q.unit.kind != "time":
            continue
        cs, ce = clause_bounds(bounds, q.start)
        ev = next((s for s, e in reversed(mentions)
                   if cs <= s and e <= q.start and q.start - e <= 45 and not _DIGIT_RE.search(text, e, q.start)),
                  None)
        if ev is None:
            if not _LE_AFTER_RE.match(text, q.end):
                continue
            ev = q.start
        lo = days(q.lo, q.lo_unit) if q.lo is not None else None
        hi = days(q.hi, q.hi_unit) if q.hi is not None else None
        if q.has_cmp:
            row = Row("life_expectancy", None if lo is None else round(lo, 4), q.lo_inc if lo is not None else None,
                      None if hi is None else round(hi, 4), q.hi_inc if hi is not None else None,
                      "days", ev, q.end)
        else:  # "life expectancy of 3 months": a minimum
            row = Row("life_expectancy", round(lo or 0.0, 4), True, None, None, "days", ev, q.end)
        rows.append(row)
        consumed.add(qi)
    return rows


# ---------------------------------------------------------------- antigen expression
_ANT = ANTIGEN_PATTERN
_POS_AFTER_RE = re.compile(
    r"(?P<ags>" + _ANT + r"(?:\s*(?:,|and/or|or|and|/)\s*" + _ANT + r")*)\s*-?\s*"
    r"(?:(?:expression|antigen)\s+(?:is|was|are)\s+|\(\s*)?(?:positive\b|pos\b|ORMORE|\+|"
    r"expression\s+(?:\w+\s+)?(?:confirmed|detected|documented|demonstrated))"
)
_POS_BEFORE_RE = re.compile(r"positive\s+(?:expression\s+)?(?:of\s+|for\s+)?(?P<ag>" + _ANT + r")")
_ANT_NUM_RE = re.compile(
    r"(?P<ag>" + _ANT + r")(?:[\s-]+(?:expression|expressed|expressing|positive|positivity|by|of|in|on|"
    r"rate|level|is|was|cells?))*\s*(?P<cmp><=|>=|<|>)\s*(?P<n>\d+(?:\.\d+)?)\s*%"
)
_ANT_ONLY_RE = re.compile(_ANT)


def _method_near(nt: NormText, lo: int, hi: int, after_end: int) -> str | None:
    found = list(METHOD_RE.finditer(nt.text, lo, hi))
    if found:
        return method_name(found[-1].group())
    after = {method_name(m.group()) for m in METHOD_RE.finditer(nt.text, hi, after_end)}
    return after.pop() if len(after) == 1 else None  # "by IHC or flow cytometry": either method


def extract_antigens(nt: NormText, bounds: list[int]) -> list[Row]:
    text = nt.text
    if not _ANT_ONLY_RE.search(text):
        return []
    rows: list[Row] = []
    numeric: set[str] = set()
    prev_end = 0
    for m in _ANT_NUM_RE.finditer(text):
        cs, ce = clause_bounds(bounds, m.start())
        ag = canonical_antigen(m.group("ag"))
        v = float(m.group("n"))
        cmp = m.group("cmp")
        lo, lo_inc, hi, hi_inc = (v, cmp == ">=", None, None) if cmp[0] == ">" else (None, None, v, cmp == "<=")
        method = _method_near(nt, max(cs, prev_end), m.start(), ce)
        rows.append(Row("antigen_expression", lo, lo_inc, hi, hi_inc, "%", m.start(), m.end(),
                        condition=method, antigen=ag, method=method is not None))
        numeric.add(ag)
        prev_end = m.end()
    seen: set[str] = set()
    alt = 0
    for rx in (_POS_AFTER_RE, _POS_BEFORE_RE):
        for m in rx.finditer(text):
            names = [canonical_antigen(a.group()) for a in _ANT_ONLY_RE.finditer(m.group(0))]
            names = [n for n in dict.fromkeys(names) if n not in numeric and n not in seen]
            if not names:
                continue
            cs, ce = clause_bounds(bounds, m.start())
            method = _method_near(nt, m.end(), m.end(), ce)
            alt += 1
            joined = len(names) > 1 and re.search(r"\bor\b|/", m.group(0)) is not None
            for n in names:
                seen.add(n)
                rows.append(Row("antigen_expression", None, None, None, None, "positive", m.start(), m.end(),
                                condition=method, antigen=n, method=method is not None,
                                alt=alt if joined else None))
    return rows
