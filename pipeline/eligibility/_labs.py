"""Laboratory and organ-function bounds: "ALT and AST <= 3 x ULN", "platelets >50x109/L".

Each bound expression attaches to the analyte names written just before it (a list like
"AST (SGOT), ALT (SGPT), and total bilirubin" shares one bound).  A bound with no name of
its own continues the previous one -- "(for patients with liver invasion <= 5.0xULN)",
"and/or > 0.01% (by flow cytometry)" -- taking any subgroup or method it names as the
row's condition.  Names of analytes outside the vocabulary (ALP, PSA, CD4, QRS...) block
attachment so their numbers never leak onto a neighbour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.eligibility._common import METHOD_RE, Row, canonical_condition, method_name
from pipeline.eligibility._quantity import Qty, Unit
from pipeline.eligibility._text import NormText, clause_bounds, matches_at, occurrences, trie_pattern

# variable -> (cheap substrings that must occur, mention regex)
_SPECS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("creatinine_clearance", ("clearance", "crcl", "crc1", "ccr", "clcr", "cr cl"),
     r"creatinine\s+clearance|\bcr\s*cl\b|\bcrc[l1]\b|\bccr\b|\bclcr\b"),
    ("egfr", ("gfr", "glomerular"), r"\be?gfr\b|glomerular\s+filtration\s+rate"),
    ("creatinine", ("creatinine",), r"\bcreatinine\b(?!\s+clearance)"),
    ("total_bilirubin", ("bilirubin", "tbil"),
     r"(?<!direct\s)(?<!conjugated\s)\b(?:total\s+)?(?:serum\s+)?bilirubin\b|\btbil\b"),
    ("alt", ("alt", "sgpt", "alanine", "gpt"),
     r"\balt\b|\bsgpt\b|alanine\s+(?:amino\s*)?trans(?:aminase|ferase)|\bgpt\b"),
    ("ast", ("ast", "sgot", "aspartate", "got"),
     r"\bast\b|\bsgot\b|aspartate\s+(?:amino\s*)?trans(?:aminase|ferase)|\bgot\b(?=\s*(?:/|or|and)\s*gpt)"),
    ("alt+ast", ("transaminase",), r"\b(?:liver\s+)?transaminases\b"),
    ("wbc", ("white blood", "wbc", "leuko", "leuco"),
     r"white\s+blood\s+cells?(?:\s+count)?|\bwbc\b|\bleu[ck]ocytes?(?:\s+count)?"),
    ("neutrophils", ("neutrophil", "anc", "granulocyte"),
     r"(?:absolute\s+)?neutrophils?(?:\s+count)?|\banc\b|\bgranulocytes?"),
    ("lymphocytes", ("lymph",), r"\blymphocytes?(?!\s+infusion)(?:\s+counts?)?|\balc\b|\blymphopenia\b"),
    ("platelets", ("platelet", "plt", "thrombocyte"), r"\bplatelets?(?:\s+counts?)?|\bplt\b|\bthrombocytes\b"),
    ("hemoglobin", ("hemoglobin", "haemoglobin", "hgb", "hb"), r"\bha?emoglobin\b|\bhgb\b|\bhb\b"),
    ("inr", ("inr", "normali"), r"\binr\b|international\s+normali[sz]ed\s+ratio"),
    ("aptt", ("ptt", "thromboplastin"), r"\ba?ptt\b|(?:activated\s+)?partial\s+thromboplastin\s+time"),
    ("lvef", ("ejection", "eiection", "lvef"), r"\blvef\b|(?:left\s+ventricular\s+)?e[jiy]ection\s+fraction"),
    ("oxygen_saturation", ("spo2", "sp02", "sao2", "sa02", "saturation", "o2", "oxygen", "oximetry"),
     r"\bsp[o0]2\b|\bsa[o0]2\b|(?:blood\s+)?oxygen\s+saturation|saturation\s+of\s+oxygen|\bo2\s+saturation|"
     r"\bsat\s*o2\b|\bo2\s+sat\w*|\bo2\s+at\s+rest|pulse\s+oximetry"),
    ("qtc", ("qt", "otc"), r"\b[oq]tc[fb]?\b|corrected\s+qt(?:\s+interval)?|\bqt\s+interval"),
    ("bone_marrow_blasts", ("blast", "primordial"),
     r"\b(?:bone\s+marrow\s+)?blasts?(?:\s+cells?)?\b|primordial\s+cells"),
)
# Analytes and measures outside the vocabulary: their numbers must not attach elsewhere.
_BLOCKER_PHRASES = (
    "direct bilirubin", "conjugated bilirubin", "alkaline phosphatase", "γgt", "γ-gt", "c reactive",
    "ferritin", "erythropoietin", "glucose", "potassium", "sodium", "body mass", "weight", "hba1c",
    "troponin", "urea", "albumin", "pao2", "scvo2", "respiratory rate", "heart rate", "temperature",
    "pulse", "systolic", "diastolic", "blood pressure", "viral load", "gleason", "prostate", "lesion",
    "tumor", "tumour", "proteinuria", "protein", "calcium", "magnesium", "lipase", "amylase", "uric acid",
    "prothrombin", "fibrinogen", "d-dimer", "ammonia", "minimal residual", "score",
)
_BLOCKER_RE = re.compile(
    r"\b(?:" + trie_pattern(sorted(_BLOCKER_PHRASES))
    + r")|\b(?:alp|ggt|psa|cd4|cd8|crp|qrs|bmi|ldh|mfi|fio2|peep|cvp|ahi|ct|pt|mrd|sofa|curb|qids|hamd)\b"
)
_MENTION_RES = tuple((var, kws, re.compile(pat)) for var, kws, pat in _SPECS)
# Words every match of a variable's pattern starts with: the pattern is tried only where they
# occur (`matches_at`; a pattern scan costs tens of nanoseconds per character, str.find a
# fraction of one).  tests/test_eligibility_fastpaths.py checks the claim on the corpus.
_MENTION_STARTS: dict[str, tuple[str, ...]] = {
    "creatinine_clearance": ("cr", "ccr", "clcr"),
    "egfr": ("egfr", "gfr", "glomerular"),
    "creatinine": ("creatinine",),
    "total_bilirubin": ("total", "serum", "bilirubin", "tbil"),
    "alt": ("alt", "sgpt", "alanine", "gpt"),
    "ast": ("ast", "sgot", "aspartate", "got"),
    "alt+ast": ("liver", "transaminases"),
    "wbc": ("white", "wbc", "leu"),
    "neutrophils": ("absolute", "neutrophil", "anc", "granulocyte"),
    "lymphocytes": ("lymph", "alc"),
    "platelets": ("platelet", "plt", "thrombocytes"),
    "hemoglobin": ("hemoglobin", "haemoglobin", "hgb", "hb"),
    "inr": ("inr", "international"),
    "aptt": ("aptt", "ptt", "activated", "partial"),
    "lvef": ("lvef", "left", "ejection", "eiection", "eyection"),
    "oxygen_saturation": ("spo2", "sp02", "sao2", "sa02", "blood", "oxygen", "saturation", "o2", "sat", "pulse"),
    "qtc": ("otc", "qtc", "corrected", "qt"),
    "bone_marrow_blasts": ("bone", "blast", "primordial"),
}
assert set(_MENTION_STARTS) == {var for var, _, _ in _SPECS}
# One pass finds which keywords occur; only those variables' regexes run.  (A prefix trie
# finds the same keywords as the longest-first alternation, at a fraction of the cost.)
_KW_RE = re.compile(trie_pattern(sorted({k for _, kws, _ in _SPECS for k in kws}), literal_spaces=True))

# Units each variable accepts, as Unit.kind values (None = written without a unit).
_COUNT_VARS = {"wbc", "neutrophils", "lymphocytes", "platelets"}
_PCT_VARS = {"lvef", "oxygen_saturation", "bone_marrow_blasts"}

_CONNECTOR_RE = re.compile(r"^[\s,/&()\-]*(?:(?:and/or|and|or|&|the|serum|blood|total|plasma|level|levels)"
                           r"[\s,/&()\-]*)*$")


@dataclass(slots=True)
class Mention:
    variable: str | None  # None = blocker
    start: int
    end: int


# keywords present -> (variable, regex, start words) of the variables to look for; few
# combinations of keywords repeat.
_PLANS: dict[frozenset[str], tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...]] = {}


def _plan(present: frozenset[str]) -> tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...]:
    plan = tuple((var, rx, _MENTION_STARTS[var]) for var, kws, rx in _MENTION_RES if not present.isdisjoint(kws))
    if len(_PLANS) >= 10_000:
        _PLANS.clear()
    _PLANS[present] = plan
    return plan


def find_mentions(text: str) -> list[Mention]:
    found: list[Mention] = []
    present = frozenset(_KW_RE.findall(text))
    if not present:
        return []
    plan = _PLANS.get(present)
    if plan is None:
        plan = _plan(present)
    for var, rx, start_words in plan:
        starts = occurrences(text, start_words)
        if starts:  # (every match starts with one of the start words: tried only there)
            found.extend(Mention(var, m.start(), m.end()) for m in matches_at(rx, text, starts))
    if found:
        found.extend(Mention(None, m.start(), m.end()) for m in _BLOCKER_RE.finditer(text))
    found.sort(key=lambda m: (m.start, -(m.end - m.start)))
    out: list[Mention] = []
    for m in found:  # drop mentions nested inside an earlier, longer one
        if out and m.start < out[-1].end:
            continue
        out.append(m)
    return out


def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def convert(var: str, value: float, unit: Unit) -> tuple[float, str | None] | None:
    """value in the variable's canonical unit, or None when the unit does not fit."""
    k = unit.kind
    if k in ("time", "other"):
        return None
    if k == "uln":
        return (value, "xULN") if var in ("creatinine", "total_bilirubin", "alt", "ast", "inr", "aptt") else None
    if var in ("creatinine", "total_bilirubin"):
        factor = 88.42 if var == "creatinine" else 17.104
        if k == "mgdl" or (k is None and value <= 15):
            return value, "mg/dL"
        if k == "umol" or (k is None and value > 15):
            return _sig(value / factor), "mg/dL"
        return None
    if var in ("alt", "ast"):
        if k == "ul" or (k is None and value > 20):
            return value, "U/L"
        return (value, "xULN") if k is None else None
    if var in _COUNT_VARS:
        big = 1000 if var == "platelets" else 50
        if k == "pow":
            exp, _, den = (unit.detail or "9/l").partition("/")
            scale = {"9": 1.0, "12": 1000.0, "6": 0.001, "3": 1.0 if den != "l" else 1e-6}[exp]
            return _sig(value * scale, 6), "10^9/L"
        if k in ("kul",):
            return value, "10^9/L"
        if k == "gl":
            return value, "10^9/L"
        if k == "perul" or (k is None and value >= big):
            return _sig(value / 1000, 6), "10^9/L"
        if k is None:
            return value, "10^9/L"
        return None
    if var == "hemoglobin":
        if k == "gdl" or (k is None and value <= 25):
            return value, "g/dL"
        if k == "gl" or (k is None and value > 25):
            return _sig(value / 10, 4), "g/dL"
        return None
    if var == "inr":
        return (value, None) if k is None else None
    if var == "aptt":
        if k == "sec" or (k is None and value > 5):
            return value, "s"
        return (value, "xULN") if k is None else None
    if var in _PCT_VARS:
        return (value, "%") if k in ("pct", None) else None
    if var == "qtc":
        return (value, "ms") if k in ("ms", None) else None
    if var == "creatinine_clearance":
        return (value, "mL/min") if k in ("mlmin", None) else None
    if var == "egfr":
        return (value, "mL/min/1.73m2") if k in ("mlmin", None) else None
    return None


def _group_before(mentions: list[Mention], text: str, lo: int, hi: int) -> list[Mention]:
    """The connected run of mentions ending closest before `hi` (and after `lo`)."""
    cands = [m for m in mentions if m.start >= lo and m.end <= hi]
    if not cands:
        return []
    group = [cands[-1]]
    # the last name must sit close to its bound (allow an abbreviation, "levels", "count of")
    if hi - cands[-1].end > 60:
        return []
    for m in reversed(cands[:-1]):
        gap = text[m.end:group[0].start]
        if len(gap) > 25 or not _CONNECTOR_RE.match(gap):
            break
        group.insert(0, m)
    return group


def _group_after(mentions: list[Mention], text: str, pos: int, limit: int) -> list[Mention]:
    group: list[Mention] = []
    for m in mentions:
        if m.start < pos:
            continue
        if m.start >= limit:
            break
        gap = text[(group[-1].end if group else pos):m.start]
        if len(gap) > 12 or not _CONNECTOR_RE.match(gap):
            break
        group.append(m)
    return group


def _vars(group: list[Mention]) -> list[str]:
    out: list[str] = []
    for m in group:
        if m.variable is None:
            continue
        for v in m.variable.split("+"):
            if v not in out:
                out.append(v)
    return out


_SUBGROUP_RE = re.compile(
    r"(?:\bfor|\bin)\s+(?:(?:patients|subjects|participants|those|individuals|cases|people)\s+)?"
    r"(?:with|who\s+have|having)\s+(?:documented\s+|known\s+|confirmed\s+|a\s+)?(?P<c>[^;()]+?)\s*(?:[),;]|$)"
    r"|\bunless\s+(?P<u>[^;()<>=]+?)\s+(?:are|is)\s+present"
    r"|(?:\b(?:for|in(?:\s+case\s+of)?)\s+|\b(?:patients|subjects|participants|those|individuals)\s+with\s+)(?P<k>(?:known\s+|documented\s+|confirmed\s+)?(?:gilbert|liver\s+(?:metasta|invol|invas)|"
    r"hepatic\s+(?:metasta|invol)|bone\s+(?:metasta|invol))[^;()]*?)\s*(?:[),;]|$)"
    r"|\(\s*(?P<p>(?:fe)?males?|women|men)\s*\)"
    r"|\bfor\s+(?P<s>(?:fe)?males|women|men|[a-z\-]+\s+administration|"
    r"(?:individuals|patients|subjects|participants|children|adults)\s+(?:aged\s+)?(?:[<>]=?|>=|<=)\s*\d[^;,()]*)"
)
# Every _SUBGROUP_RE / METHOD_RE match contains one of these words; testing for them first
# skips most searches (a regex search costs tens of times a substring test).
_SUBGROUP_WORDS = ("for", "with", "who", "having", "unless", "gilbert", "liver", "hepatic", "bone", "male", "men")
_METHOD_WORDS = ("flow", "fcm", "immunohistochem", "ihc", "morpholog")


def _search_subgroup(text: str, pos: int = 0, endpos: int | None = None) -> re.Match[str] | None:
    end = len(text) if endpos is None else endpos
    if any(text.find(w, pos, end) >= 0 for w in _SUBGROUP_WORDS):
        return _SUBGROUP_RE.search(text, pos, end)
    return None


def _search_method(text: str, pos: int = 0, endpos: int | None = None) -> re.Match[str] | None:
    end = len(text) if endpos is None else endpos
    if any(text.find(w, pos, end) >= 0 for w in _METHOD_WORDS):
        return METHOD_RE.search(text, pos, end)
    return None


_IF_RE = re.compile(r"\W*(?:if|when)\s+(?P<c>[^;,]+)")
_LAST_CONNECTOR_RE = re.compile(r".*(?:,|\band/or\b|\band\b|\bor\b)", re.S)


_RESTATED = "\x00"  # marker: the phrase names a variable, so it restates an alternative


def _condition_in(nt: NormText, start: int, end: int, mentions: list[Mention], *,
                  allow_unless: bool = True) -> str | None:
    seg = nt.text[start:end]
    m = _search_subgroup(seg)
    if m and m.group("u") and not allow_unless:
        m = None  # "unless X" introduces the *next* bound, never qualifies the previous one
    if m:
        g = next(k for k in ("c", "u", "k", "s", "p") if m.group(k))
        c0, c1 = start + m.start(g), start + m.end(g)
        if any(c0 <= mm.start < c1 and mm.variable for mm in mentions):
            return _RESTATED  # "for patients with serum creatinine above ULN" is not a subgroup
        return canonical_condition(nt.span(c0, c1))
    mm = _search_method(seg)
    if mm:
        return method_name(mm.group())
    return None


_LEAD_SUBGROUP_RE = re.compile(
    r"(?:patients|subjects|participants|individuals)\s+with\s+(?P<c>[^,;()]+?)\s+and\s*$"
)


def _is_candidate(q: Qty) -> bool:
    """Could this bound belong to a lab?  (Durations and foreign units cannot.)"""
    kinds = q.kinds()
    return "time" not in kinds and "other" not in kinds


def _is_marker(q: Qty) -> bool:
    """A bare unit-less number ("phase 1", "cohort 5", "8.") -- never a bound, never a separator."""
    return not q.has_cmp and q.unit.kind is None


def extract_labs(nt: NormText, qtys: list[Qty], bounds: list[int], consumed: set[int]) -> list[Row]:
    text = nt.text
    mentions = find_mentions(text)
    if not any(m.variable for m in mentions):
        return []
    rows: list[Row] = []
    last_in_clause: dict[tuple[int, int], tuple[int, list[Row]]] = {}
    prev: tuple[Qty, list[str], list[Row], tuple[int, int]] | None = None
    prev_end = 0
    for qi, q in enumerate(qtys):
        if qi in consumed:
            prev_end = q.end
            continue
        if _is_marker(q):
            continue
        if not _is_candidate(q):
            prev_end = q.end
            continue
        cs, ce = clause_bounds(bounds, q.start)
        group = _group_before(mentions, text, max(cs, prev_end), q.start)
        prev_end = q.end
        # Candidate readings, most likely first; the first whose units fit wins.
        cands: list[tuple[list[str], int, str | None, bool]] = []  # (variables, evidence start, condition, inherited)
        trail: str | None = None
        if group:
            lead_cond: str | None = None
            lm = _LEAD_SUBGROUP_RE.search(text, cs, group[0].start)
            if lm:  # "patients with active bleeding AND hemoglobin < 7 g/dL"
                lead_cond = canonical_condition(nt.span(lm.start("c"), lm.end("c")))
            elif prev is not None and prev[3] == (cs, ce):
                # "..., except for subjects with Gilbert syndrome who must have total bilirubin < 3 mg/dL"
                lc = _condition_in(nt, prev[0].end, group[0].start, mentions)
                if lc in _KNOWN_SUBGROUPS:
                    lead_cond = lc
            cands.append((_vars(group), group[0].start, lead_cond, False))
        else:
            after = _group_after(mentions, text, q.end, ce)
            inherit = None
            if prev is not None and prev[3] == (cs, ce) and q.start - prev[0].end <= 90:
                inherit, trail = _continuation(nt, prev[0].end, q, ce, mentions)
            if inherit not in (None, _ASIDE, _NO_COND):
                cands.append((prev[1], q.start, inherit, True))  # type: ignore[index]
            if after:  # "> 3x ULN SGOT / SGPT", ">= 5% blasts"
                cands.append((_vars(after), q.start, None, False))
            if inherit == _NO_COND:  # "and/or > 0.01%": same analyte, no subgroup
                cands.append((prev[1], q.start, None, True))  # type: ignore[index]
        made: list[Row] = []
        for variables, ev_start, lead_cond, inherited in cands:
            made = _make_rows(q, variables, ev_start, lead_cond, inherited, prev)
            if made:
                if inherited and trail and prev is not None:
                    for r in prev[2]:
                        if r.condition is None:
                            r.condition = trail
                            r.method = trail in _METHOD_NAMES
                break
        if not made:
            continue
        rows.extend(made)
        last_in_clause[(cs, ce)] = (q.end, made)
        prev = (q, [r.variable for r in made], made, (cs, ce))
        if _trailing(nt, qtys, qi, q, ce, mentions, made, consumed):
            prev = None
    # The last bound of a clause takes a subgroup stated after an aside
    # ("bilirubin <= 3.0 x ULN with direct bilirubin within normal range in patients with Gilbert's").
    for (cs, ce), (end, made) in last_in_clause.items():
        if any(r.condition for r in made):
            continue
        m2 = _search_subgroup(text, end, ce)
        if m2 and (m2.group("c") or m2.group("k")) and not _EXCEPT_RE.search(text, max(end, m2.start() - 14),
                                                                               m2.start()):
            cond = _condition_in(nt, m2.start(), ce, mentions)
            if cond and cond != _RESTATED:
                for r in made:
                    r.condition = cond
    return rows


_METHOD_NAMES = ("flow cytometry", "immunohistochemistry", "morphology")
_ASIDE = "\x01"  # the bound after an earlier one is an aside: "(range 90-93%)"
_NO_COND = "\x02"  # the bound continues the earlier one with no condition of its own
_EXCEPT_RE = re.compile(r"\b(?:except|excluding|other\s+than|apart\s+from)\b")
_UNLESS_RE = re.compile(r"\bunless\s+(?P<u>[^;()<>=]+?)\s+(?:are|is)\s+present")


def _continuation(nt: NormText, gap_start: int, q: Qty, ce: int,
                  mentions: list[Mention]) -> tuple[str | None, str | None]:
    """How a bound with no analyte name of its own relates to the previous bound.

    Returns (lead, trail): lead is the condition of this bound (a subgroup or method), _NO_COND
    when it simply continues ("and/or > 0.01%"), _ASIDE when it is no bound at all; trail is a
    condition the gap assigns to the previous bound ("> 470 ms for females and > 450 ms")."""
    text = nt.text
    cm = _LAST_CONNECTOR_RE.match(text, gap_start, q.start)
    split = cm.end() if cm else gap_start
    um = _UNLESS_RE.search(text, gap_start, q.start)
    if um:  # "... unless liver metastases are present, then <= 5 x ULN"
        return canonical_condition(nt.span(um.start("u"), um.end("u"))), None
    lead = _condition_in(nt, split, q.start, mentions, allow_unless=False)
    if lead is None and cm is None:
        # "(<= 5 x ULN in patients with liver metastases)", "(<= 5 x ULN if liver metastases)"
        sg = _search_subgroup(text, q.end, ce)
        if sg and sg.start() - q.end <= 3 and not sg.group("u"):
            lead = _condition_in(nt, sg.start(), ce, mentions)
        else:
            im = _IF_RE.match(text, q.end, ce)
            if im and im.start("c") - q.end <= 6:
                lead = canonical_condition(nt.span(im.start("c"), im.end("c")))
    if lead == _RESTATED or (lead is None and cm is None):
        return _ASIDE, None
    trail = _condition_in(nt, gap_start, split, mentions, allow_unless=False) if split > gap_start else None
    if trail == _RESTATED:
        trail = None
    return (lead if lead is not None else _NO_COND), trail


def _make_rows(q: Qty, variables: list[str], ev_start: int, lead_cond: str | None, inherited: bool,
               prev: tuple[Qty, list[str], list[Row], tuple[int, int]] | None) -> list[Row]:
    lo, lo_inc, hi, hi_inc = q.lo, q.lo_inc, q.hi, q.hi_inc
    if not q.has_cmp:
        # a bare number only continues an exception: "(for patients with liver invasion 5.0xULN)"
        if not (inherited and prev is not None and lead_cond is not None):
            return []
        pq = prev[0]
        if pq.lo is not None and pq.hi is None:
            lo, lo_inc, hi, hi_inc = q.lo, pq.lo_inc, None, None
        elif pq.hi is not None and pq.lo is None:
            lo, lo_inc, hi, hi_inc = None, None, q.hi, pq.hi_inc
        else:
            return []
    made: list[Row] = []
    for var in variables:
        lo_c = convert(var, lo, q.lo_unit) if lo is not None else None
        hi_c = convert(var, hi, q.hi_unit) if hi is not None else None
        if (lo is not None and lo_c is None) or (hi is not None and hi_c is None):
            continue
        unit = (lo_c or hi_c)[1]  # type: ignore[index]
        made.append(Row(var, lo_c[0] if lo_c else None, lo_inc if lo_c else None,
                        hi_c[0] if hi_c else None, hi_inc if hi_c else None, unit,
                        ev_start, q.end, condition=lead_cond, method=lead_cond in _METHOD_NAMES))
    return made
_KNOWN_SUBGROUPS = ("liver involvement", "Gilbert's syndrome", "bone involvement")


def _trailing(nt: NormText, qtys: list[Qty], qi: int, q: Qty, ce: int, mentions: list[Mention],
              made: list[Row], consumed: set[int]) -> bool:
    """Context written after a bound: "(by morphology)", "for females", "if QRS > 120".

    Returns True when the following numbers were consumed as part of an "if" condition."""
    text = nt.text
    nxt = next((o.start for j, o in enumerate(qtys[qi + 1:], qi + 1)
                if o.start < ce and j not in consumed and _is_candidate(o) and not _is_marker(o)), ce)
    nm = next((m.start for m in mentions if q.end <= m.start < nxt), None)
    if nm is not None:
        zone_end = nm  # the next bound has a name of its own
    elif nxt < ce:  # the next bound continues this one: only text before the connector trails
        cm = _LAST_CONNECTOR_RE.match(text, q.end, nxt)
        zone_end = cm.end() if cm else q.end
    else:
        zone_end = ce
    ifm = _IF_RE.match(text, q.end, ce)
    if ifm:  # "QTc > 510 if QRS > 120": the numbers after "if" describe the condition
        cond = canonical_condition(nt.span(ifm.start("c"), ifm.end("c")))
        for r in made:
            r.condition = r.condition or cond
        took = False
        for j in range(qi + 1, len(qtys)):
            if qtys[j].start < ifm.end():
                consumed.add(j)
                took = True
        return took
    sg = _search_subgroup(text, q.end, ce)
    if sg and (sg.group("u") or _EXCEPT_RE.search(text, max(q.end, sg.start() - 14), sg.start())):
        sg = None  # "unless X ..." introduces the next bound; "except in X" excludes X from this one
    if sg and sg.start() < zone_end:  # a subgroup phrase that starts in this bound's zone
        g = next(k for k in ("c", "u", "k", "s", "p") if sg.group(k))
        c0, c1 = sg.start(g), sg.end(g)
        own = {r.variable for r in made}
        inside = {v for mm in mentions if c0 <= mm.start < c1 and mm.variable for v in mm.variable.split("+")}
        if inside and not inside & own:
            # "or CrCl >= 60 for patients with serum creatinine above ULN" restates the alternative
            for j in range(qi + 1, len(qtys)):
                if sg.start() <= qtys[j].start < sg.end():
                    consumed.add(j)
            return False
        if inside:
            return False  # "except for subjects with X who must have <same analyte> ...": the next bound's
        cond = canonical_condition(nt.span(c0, c1))
        for r in made:
            if r.condition is None:
                r.condition = cond
                r.method = False
        return False
    if zone_end > q.end:
        mm = _search_method(text, q.end, zone_end)
        if mm:
            for r in made:
                if r.condition is None:
                    r.condition = method_name(mm.group())
                    r.method = True
    return False
