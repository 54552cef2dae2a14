"""Washout windows: "steroids within 2 weeks prior", "at least 4 weeks since prior chemotherapy".

A window is a time phrase; the exposure it bounds is named earlier in the same clause (or
right after "since"/"from").  Each `washout_*` variable is the number of days since the last
exposure, so "within 14 days" is an upper bound of 14 days and "at least 4 weeks since" a
lower bound of 28.  Several exposures can share one window ("allogeneic cell therapy, major
surgery, and live vaccine ... within 4 weeks").
"""

from __future__ import annotations

import re

from pipeline.eligibility._common import Row
from pipeline.eligibility._quantity import NUM, TIME_TO_DAYS
from pipeline.eligibility._text import NormText, clause_bounds

# (compiled once: these run per bound)
_FORWARD_RE = re.compile(r"\s*(?:after|following)\b")

_UNITS = r"(?:years?|yrs?|months?|mos?|weeks?|wks?|days?|hours?|hrs?|wk)\b"
_UNIT = r"(?P<u>years?|yrs?|months?|mos?|weeks?|wks?|days?|hours?|hrs?|wk)\b"
_WINDOW_RE = re.compile(
    # Every match starts with "w"/"i" (within, in the), a comparator or a number: the leading
    # lookahead lets every other position fail at once (it halves the scan).
    r"(?=[wi<>\d.])(?:"
    # "within (the last) 4 weeks", "in the past 6 months", "during the previous 3 years"
    r"(?P<within>\bwithin\s+(?:<=\s*|<\s*)?(?:the\s+)?(?:(?:last|past|previous|prior|preceding)\s+)?"
    r"|\bin\s+the\s+(?:(?:last|past|previous|prior|preceding)\s+)?(?=" + NUM + r"\s*" + _UNITS + r"\s*"
    r"(?:prior|before|preceding|\())|\bin\s+the\s+(?:last|past|previous|preceding)\s+)"
    r"(?P<n1>" + NUM + r")\s*" + _UNIT + r"(?:\s*\(\s*" + NUM + r"\s*\w+\s*\))?"
    r"(?:\s*(?:prior|before|preceding)(?:\s+to)?)?"
    # "at least 4 weeks since/from/ago/prior", "> 6 months prior", "< 42 days since"
    r"|(?P<cmp><=|>=|<|>)\s*(?P<n2>" + NUM + r")\s*(?P<u2>years?|yrs?|months?|mos?|weeks?|wks?|days?|hours?|hrs?|wk)\b"
    r"(?:\s*\(\s*" + NUM + r"\s*\w+\s*\))?\s*(?P<rel>since|from|ago|prior|before|preceding|have\s+elapsed\s+since)\b"
    # "30 days before inclusion", "2 weeks prior to screening"
    # (the lookahead lets every other position fail before the costlier lookbehinds run)
    r"|(?=[\d.])(?<![<>=\d.,]\s)(?<![<>=\d.,])(?P<n3>" + NUM + r")\s*(?P<u3>years?|yrs?|months?|mos?|weeks?|wks?|days?|hours?|hrs?)\b"
    r"\s*(?:prior|before|preceding)\b)"
)

_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("washout_cell_therapy",
     r"\bcar[\s-]?(?:t|nk)\b|chimeric\s+antigen|cell(?:ular)?\s+therap|cell\s+product|"
     r"donor\s+l\w{0,3}mphocyte|\bdli\b|genetically[\s-]+modified|gene[\s-]+modified|\btcr[\s-]?t\b"),
    ("washout_transplant", r"transplant|\bhsct\b|\bsct\b|\bbmt\b"),
    ("washout_vaccine", r"vaccin|immuni[sz]ation|inoculat"),
    ("washout_steroids",
     r"steroid|glucocortic|prednis|dexamethason|methylprednis|hydrocortison"),
    ("washout_immunosuppressants", r"immuno-?suppress"),
    ("washout_immunotherapy", r"immuno-?therap|checkpoint\s+inhibitor|\banti-?pd-?l?1\b|\banti-?ctla"),
    ("washout_antibody", r"monoclonal\s+antibod|antibody\s+therap"),
    ("washout_chemotherapy", r"\bchemo(?:therap\w*)?\b|cytotoxic"),
    ("washout_radiotherapy", r"radio-?therap|radiation|irradiation|\bradiat"),
    ("washout_hormone_therapy", r"hormon(?:al|e)\s+(?:therap|treatment)|endocrine\s+therap"),
    ("washout_antibiotics", r"antibiotic"),
    ("washout_surgery", r"\bsurg(?:ery|eries|ical)\b|\bsuraical\b|\boperation\b"),
    ("washout_investigational",
     r"investigational|experimental\s+(?:drug|treatment|therap|agent|product)|"
     r"(?:clinical|interventional|drug|vaccine)\s+(?:trials?|stud(?:y|ies)|research)"),
    ("washout_antitumor",
     r"anti-?\s?tumou?r|anti-?\s?cancer|anti-?neoplastic|cancer\s+(?:treatment|therap)|"
     r"treatment\s+for\s+cancer|systemic\s+(?:treatment|therapy)\s+for\s+cancer|targeted\s+therap"),
)
_GATE_RE = re.compile(r"(?=[wipbsa])\b(?:within|in\s+the|prior|before|preceding|since|ago)\b")  # (first letters)
# Substrings every match of a category's pattern contains: a category whose words are all
# absent is skipped without running its regex (most segments name one or two categories).
_CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "washout_cell_therapy": ("car", "chimeric", "cell", "donor", "dli", "gene", "tcr"),
    "washout_transplant": ("transplant", "sct", "bmt"),
    "washout_vaccine": ("vaccin", "immuni", "inoculat"),
    "washout_steroids": ("steroid", "glucocortic", "prednis", "dexamethason", "hydrocortison"),
    "washout_immunosuppressants": ("suppress",),
    "washout_immunotherapy": ("therap", "checkpoint", "anti"),
    "washout_antibody": ("antibod",),
    "washout_chemotherapy": ("chemo", "cytotoxic"),
    "washout_radiotherapy": ("radi",),
    "washout_hormone_therapy": ("hormon", "endocrine"),
    "washout_antibiotics": ("antibiotic",),
    "washout_surgery": ("surg", "suraical", "operation"),
    "washout_investigational": ("investigational", "experimental", "trial", "stud", "research"),
    "washout_antitumor": ("tumo", "cancer", "neoplastic", "targeted"),
}
_CAT_RES = tuple((var, re.compile(p), _CATEGORY_WORDS[var]) for var, p in _CATEGORIES)
_KEYWORDS = ("car", "cell", "mphocyte", "donor", "dli", "gene", "transplant", "hsct", "sct", "bmt", "vaccin",
             "immuni", "inocul", "steroid", "cortic", "predni", "dexameth", "immuno", "checkpoint", "pd",
             "ctla", "antibod", "chemo", "cytotox", "radi", "hormon", "endocrine", "antibiotic", "surg",
             "suraic", "operation", "investigational", "experimental", "trial", "stud", "research",
             "tumo", "cancer", "neoplastic", "targeted")
# Statements that permit or merely describe timing, and chronic-use qualifiers that a single
# washout bound would overstate ("steroids for more than 28 days during the 6 months prior").
_PERMIT_RE = re.compile(
    r"\b(?:is|are|will\s+be|be)\s+(?:acceptable|allowed|permitted|eligible)|\ballowed\b|\bpermitted\b|"
    r"\bpriority\b"
)
_CHRONIC_RE = re.compile(
    r">\s*\d+\s*(?:days?|weeks?)\s+(?:cumulative|of)|for\s+>\s*\d+\s*(?:days?|weeks?)|"
    r"\(\s*(?:>|longer\s+than)\s*\d+\s*(?:days?|weeks?)\s*\)|\blonger\s+than\s+\d+\s*(?:days?|weeks?)"
)
_PERMIT_WORDS = ("acceptable", "allowed", "permitted", "eligible", "priority")
_NEG_RE = re.compile(r"^\W*(?:no|not|without|none|never)\b|\b(?:no|not|without)\s+(?:\w+\s+){0,3}$")
_PARENS_RE = re.compile(r"\([^()]*\)")
# Run-on registry text ("...transplant Prior multiple transfusions ... within 30 days") has no
# punctuation between items; a capitalized word right after a lower-case one starts a new one.
_SPACE_RE = re.compile(r"(?<=[a-z0-9)\]]) (?=[a-z]{2})")
_LIST_CUT_RE = re.compile(r"\(?\s*\b(?:including|such\s+as|e\.g\.?|i\.e\.?|like)\b")
_LIST_CUT_WORDS = ("including", "such", "e.g", "i.e", "like")
_CLAUSE_CUT_RE = re.compile(r"\b(?:and|or)\s+(?:had|has|have|was|were|is|are)\b|:")


# Which of the keywords and category words occur in a segment.  Every word is lower-case
# ASCII letters, so it occurs in a segment exactly when it occurs inside one of the
# segment's maximal runs of a-z; the runs come from one bytes translation and split, and
# each distinct run's words are worked out once (`_RUN_WORDS`, like the gate's word cache).
_ALL_WORDS = sorted({*_KEYWORDS, *(w for ws in _CATEGORY_WORDS.values() for w in ws)})
assert all(w.isascii() and w.isalpha() and w.islower() for w in _ALL_WORDS)
_KEYWORD_SET = frozenset(_KEYWORDS)
_LETTER_RUNS = bytes(c if 97 <= c <= 122 else 32 for c in range(256))  # a-z kept, all else separates
_RUN_WORDS: dict[bytes, frozenset[str]] = {}
_NO_WORDS: frozenset[str] = frozenset()


def _run_words(run: bytes) -> frozenset[str]:
    r = run.decode()
    found = frozenset(w for w in _ALL_WORDS if w in r)
    if len(_RUN_WORDS) >= 200_000:
        _RUN_WORDS.clear()
    _RUN_WORDS[run] = found
    return found


def _words_in(seg: str) -> frozenset[str]:
    """The words of `_ALL_WORDS` that are substrings of `seg`."""
    runs = seg.encode("utf-8", "surrogatepass").translate(_LETTER_RUNS).split()
    try:  # after warm-up every run is cached: C-level lookups and union
        return _NO_WORDS.union(*map(_RUN_WORDS.__getitem__, runs))
    except KeyError:
        return _NO_WORDS.union(*(_RUN_WORDS.get(r) or _run_words(r) for r in runs))


# words present -> the categories whose regexes may match (none without a keyword); segments
# repeat few combinations of words.
_CAT_PLANS: dict[frozenset[str], tuple[tuple[str, re.Pattern[str]], ...]] = {}


def _cat_plan(present: frozenset[str]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    plan = () if present.isdisjoint(_KEYWORD_SET) else \
        tuple((var, rx) for var, rx, words in _CAT_RES if not present.isdisjoint(words))
    if len(_CAT_PLANS) >= 10_000:
        _CAT_PLANS.clear()
    _CAT_PLANS[present] = plan
    return plan


def _plan_of(seg: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The category regexes that could match in `seg` -- or in any part of it."""
    present = _words_in(seg)
    plan = _CAT_PLANS.get(present)
    return _cat_plan(present) if plan is None else plan


def _categories(seg: str) -> list[tuple[str, int]]:
    """Categories named in `seg` with their positions, broader ones first when a list follows."""
    plan = _plan_of(seg)
    if not plan:
        return []
    found: dict[str, int] = {}
    for var, rx in plan:
        m = rx.search(seg)
        if m:
            found[var] = m.start()
    return sorted(found.items(), key=lambda kv: kv[1])


def _select(seg: str, seg_start: int) -> list[tuple[str, int]]:
    cats = _categories(seg)
    if not cats:
        return []
    # (every _LIST_CUT_RE match holds one of its words: most segments skip the regex)
    cut = _LIST_CUT_RE.search(seg) if any(w in seg for w in _LIST_CUT_WORDS) else None
    if cut:  # "anti-tumor therapies, including chemotherapy, ...": keep the head category
        head = [c for c in cats if c[1] < cut.start()]
        if head:
            cats = head
    return [(v, seg_start + p) for v, p in cats]


_CAPITALIZED_RE = re.compile(r"[A-Z](?=[a-z])")
_SPACE_BEFORE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789)]")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")


def _run_on_start(nt: NormText, start: int, end: int) -> int:
    """Start of the last run-on item inside normalized [start, end): the last `_SPACE_RE`
    match there whose next character is, in the original, a capital followed by a lower-case
    letter."""
    best = start
    orig = nt.orig
    o0, o1 = nt.to_orig(start), nt.to_orig(end) + 2
    seg = orig[o0:o1]
    if not seg.isascii():
        if not any(c.isupper() for c in seg):
            return best
        for m in _SPACE_RE.finditer(nt.text, start, end):
            o = nt.to_orig(m.end())
            if o + 1 < len(orig) and orig[o].isupper() and orig[o + 1].islower():
                best = m.end()
        return best
    # ASCII: start from the (few) capitalized positions of the original instead of every
    # space of the normalized text, and check the same conditions the other way round.
    text = nt.text
    for cm in _CAPITALIZED_RE.finditer(orig, o0, o1):
        n = nt.from_orig(cm.start())
        if n is None or n - 1 < start or n + 2 > end:
            continue
        if text[n - 1] == " " and n >= 2 and text[n - 2] in _SPACE_BEFORE and text[n] in _LOWER \
                and text[n + 1] in _LOWER and nt.to_orig(n) == cm.start():
            best = max(best, n)
    return best


def extract_washouts(nt: NormText, bounds: list[int], criterion_type: str) -> list[Row]:
    text = nt.text
    if not _GATE_RE.search(text):
        return []
    rows: list[Row] = []
    prev_end = 0
    for m in _WINDOW_RE.finditer(text):
        cs, ce = clause_bounds(bounds, m.start())
        seg_start = max(cs, prev_end)
        prev_end = m.end()
        if m.group("n1") is not None:
            n, unit, lower, rel = m.group("n1"), m.group("u"), False, None
            inclusive = True
        elif m.group("n2") is not None:
            n, unit, rel = m.group("n2"), m.group("u2"), m.group("rel")
            cmp = m.group("cmp")
            lower = cmp[0] == ">"
            inclusive = cmp.endswith("=")
        else:
            n, unit, lower, rel, inclusive = m.group("n3"), m.group("u3"), False, None, True
        if not (rel and rel.startswith(("since", "from", "have"))) and not _plan_of(text[seg_start:m.start()]):
            # The exposure is named before the window, in a part of this text: with no category
            # word there, no category can be found ("severe infection within 4 weeks").
            continue
        if _FORWARD_RE.match(text[m.end():m.end() + 12]):
            continue  # "within 1 year after infusion" looks forward, not back
        clause = text[cs:ce]
        # (every _PERMIT_RE match names one of the _PERMIT_WORDS: most clauses skip the regex)
        if any(w in clause for w in _PERMIT_WORDS) and _PERMIT_RE.search(_PARENS_RE.sub(" ", clause)):
            continue  # permissions ("... is acceptable") and preferences state no washout
        seg_start = _run_on_start(nt, seg_start, m.start())
        before = text[seg_start:m.start()]
        if (">" in before or "longer" in before) and _CHRONIC_RE.search(before):  # (every match has one)
            continue  # "steroids for more than 28 days during the 6 months prior": not any use
        value = float(n.replace(",", "")) * TIME_TO_DAYS[unit.rstrip("s") if unit.rstrip("s") in TIME_TO_DAYS
                                                            else unit]
        cats: list[tuple[str, int]] = []
        if rel and rel.startswith(("since", "from", "have")):
            cats = _select(text[m.end():min(ce, m.end() + 60)], m.end())
        if not cats:
            seg = text[seg_start:m.start()]
            cut = None
            for cm in _CLAUSE_CUT_RE.finditer(seg):
                cut = cm
            if cut and _categories(seg[cut.end():]):
                seg_start, seg = seg_start + cut.end(), seg[cut.end():]
            cats = _select(seg, seg_start)
        if not cats:
            continue
        negated = None
        if criterion_type == "inclusion" and _NEG_RE.search(text[cs:cats[0][1]]):
            negated = True
        for var, pos in cats:
            if lower:
                rows.append(Row(var, round(value, 4), inclusive, None, None, "days", pos, m.end(), negated=negated))
            else:
                rows.append(Row(var, None, None, round(value, 4), inclusive, "days", pos, m.end(), negated=negated))
    return rows
