"""Which extractors can possibly fire on an item, decided before normalizing it.

Most criterion items state no bound at all ("Signed informed consent"), and most of those
that do involve one or two variables.  Normalizing every item (`NormText`) and running every
extractor's regexes over it cost several times the budget (constraint extraction may add
at most 20 % to the time to parse a page), and so did scanning each item for trigger words
with regexes: Python's `re` spends tens of nanoseconds on every character for a pattern
that does not start with a literal.  So the gate works on *words* instead:

* `gate_text` approximates `NormText(text).text` cheaply: lower-cased, the single
  characters `NormText` maps mapped the same way, backslashes dropped, whitespace collapsed.
* `triggers` splits it into words (maximal runs of regex word characters) and ORs the
  trigger bits of each distinct word, looked up in a cache: the vocabulary of criteria is
  small, so after warm-up an item costs a split and a few dictionary lookups.
* `plan` turns the bits into the extractors to run, with a sharper regex check for the few
  extractors whose trigger words are common (antigen names, ranges in years).

Every gate is a *necessary* condition of the extractor it guards: a keyword the extractor
itself requires, tested as a substring of a word (keywords never contain word separators,
multi-word phrases are represented by one of their words) or, where the extractor's own
pattern starts at a word boundary, as a word prefix.  Skipping an extractor therefore never
changes the result; a gate may pass needlessly, which only costs time.
tests/test_profiles_gate.py checks the equivalence on every criterion of the corpus.
"""

from __future__ import annotations

import re
from functools import reduce
from operator import or_

from pipeline.eligibility._quantity import Qty
from pipeline.eligibility._text import (
    _CHAR_MAP, _CMP_ANCHORS, _WORD_NUMBERS, HAS_COMPARATOR_WORDS, HAS_NUMBER_WORDS, NO_COMPARATOR_WORDS, NO_NUMBER_WORDS,
)
from pipeline.eligibility._washout import _KEYWORDS as _WASHOUT_KEYWORDS
from pipeline.eligibility.antigens import ANTIGEN_RE

# Extractors (the bits `plan` returns).
PERF = 1
ANTIGENS = 2
LIFE_EXPECTANCY = 4
AGE = 8
LABS = 16
WASHOUTS = 32
ALL = PERF | ANTIGENS | LIFE_EXPECTANCY | AGE | LABS | WASHOUTS
NEEDS_QUANTITIES = LIFE_EXPECTANCY | AGE | LABS

# Word kinds that are not extractors.
_BOUND_WORD = 1 << 8  # a ULN word, "positive", a spelled number: a bound without digits
_SKIP = 1 << 9  # "refers to", "points each": definitions and risk scores
_FLAG = 1 << 10  # an exclusion-flag keyword
_WINDOW = 1 << 11  # "within", "prior", ... (a washout also needs an exposure word)
_EXPOSURE = 1 << 12  # "chemo", "vaccin", ...
_YEAR = 1 << 13
_IN = 1 << 14  # "in" and "the": the window "in the last 6 months"
_THE = 1 << 15
_ANTIGEN_CORE = 1 << 16

# keyword -> bits; a word containing the keyword anywhere gets the bits.
_INFIX: dict[str, int] = {}
# keyword -> bits; a word starting with the keyword gets the bits (the extractor's pattern
# starts at a word boundary).
_PREFIX: dict[str, int] = {}
# word -> bits; only the exact word.
_EXACT: dict[str, int] = {}


def _add(table: dict[str, int], bits: int, *words: str) -> None:
    for w in words:
        table[w] = table.get(w, 0) | bits


# A bound needs a digit or "+" (tested on the text), a ULN phrase ("<= ULN", "x upper limit
# of normal", "within normal limits"), a qualitative "positive"/"express", or a spelled
# number before a time unit ("six months").
_add(_INFIX, _BOUND_WORD, "uln", "upper", "normal", "positive", "express")
_add(_EXACT, _BOUND_WORD, "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
     "eleven", "twelve", "eighteen", "twenty", "thirty")
_add(_EXACT, _SKIP, "refer", "refers", "point", "points")
_add(_INFIX, PERF, "ecog", "zubrod", "performance", "eastern", "karnofsky", "lansky", "kps")
# Antigens: the word each ANTIGEN_PATTERN branch starts with ("c" for "c-met"); confirmed
# by the pattern itself in `plan`.
_add(_PREFIX, _ANTIGEN_CORE, "cd", "cll", "clec12a", "bcma", "gpc", "her", "erbb2", "nkg2d", "mesothelin",
     "msln", "gd2", "psma", "claudin", "cldn18", "ror1", "gprc5d", "dll3", "b7", "egfrviii", "muc1",
     "slamf7", "cs1", "epcam", "cea", "psca", "il", "ny", "mage", "afp", "trop", "cmet", "fap", "kappa")
_add(_EXACT, _ANTIGEN_CORE, "c")
_add(_INFIX, LIFE_EXPECTANCY, "expectan", "surviv")
_add(_PREFIX, LIFE_EXPECTANCY, "live")  # "expected to live", "... months to live"
# Age: "age(s/d)", "of age", "(years) old", "or older", "younger than" (-> "age <"), or a
# range in years ("18-75 years", "6 months to 17 years").
_add(_EXACT, AGE, "age", "ages", "aged", "old", "older", "young", "younger")
_add(_INFIX, _YEAR, "year")
# Labs: the analyte names as extract_labs's patterns write them; most patterns start at a
# word boundary, which keeps "at least", "cancer" and "health" from waking it up.
_add(_PREFIX, LABS, "crcl", "crc1", "ccr", "clcr", "gfr", "egfr", "creatinine", "bilirubin", "tbil", "alt",
     "sgpt", "gpt", "ast", "sgot", "got", "transaminases", "wbc", "leukocyte", "leucocyte", "anc",
     "granulocyte", "lymphocyte", "alc", "lymphopenia", "platelet", "plt", "thrombocytes", "hemoglobin",
     "haemoglobin", "hgb", "hb", "inr", "ptt", "aptt", "lvef", "spo2", "sp02", "sao2", "sa02", "o2", "sat",
     "otc", "qtc", "qt", "blast")
_add(_EXACT, LABS, "cr")  # "cr cl"
_add(_INFIX, LABS, "creatinine", "glomerular", "alanine", "aspartate", "white", "neutrophil", "international",
     "partial", "fraction", "oxygen", "saturation", "oximetry", "corrected", "primordial")
# Washouts: the extractor's own gate words, and its exposure keywords.
_add(_EXACT, _WINDOW, "within", "prior", "before", "preceding", "since", "ago")
_add(_EXACT, _IN, "in")
_add(_EXACT, _THE, "the")
_add(_INFIX, _EXPOSURE, *_WASHOUT_KEYWORDS)
# Flags: the words each flag's mention pattern (flags._FLAG_SPECS) needs -- sharper than its
# cheap keywords, which also match "care", "general", "allowed" and "systemic".  Patterns
# that need two words get two bits, both required (see `scan`).
_ALLO = 1 << 17
_ALLO_PART = 1 << 18
_GENE = 1 << 19
_MODIFIED = 1 << 20
_INFECTION = 1 << 21
_INFECTION_QUALIFIER = 1 << 22
_NUMBER_WORD = 1 << 23  # NormText hints: a spelled number / a word of a comparator phrase
_COMPARATOR_WORD = 1 << 24
_DIGIT = 1 << 25  # the word holds an ASCII digit
_add(_INFIX, _FLAG, "pregnan", "breast", "lactat", "puerper", "hcg")  # pregnancy_or_breastfeeding
_add(_EXACT, _FLAG, "nursing")
_add(_EXACT, _FLAG, "hiv", "hlv", "h1v")  # hiv ("AIDS" is tested on the text)
_add(_INFIX, _FLAG, "deficiency")  # "human immuno(-)deficiency virus"
_add(_INFIX, _FLAG, "hepatitis", "hcv")  # hepatitis B and C
_add(_PREFIX, _FLAG, "hbv", "hbs", "hbc")
_add(_PREFIX, _FLAG, "cns")  # active_cns_involvement
_add(_INFIX, _FLAG, "nervous", "brain", "meningeal", "intracranial")
# prior_allogeneic_transplant: "... transplant", "HSCT", or "allo(geneic)" with stem cells,
# marrow, SCT or BMT
_add(_INFIX, _FLAG, "transplant")
_add(_EXACT, _FLAG, "hsct")
_add(_INFIX, _ALLO, "allo")
_add(_INFIX, _ALLO_PART, "stem", "marrow", "sct", "bmt")
# prior_car_t_or_gene_modified_cell_therapy: "CAR(-)T/NK", "chimeric antigen receptor",
# "genetically/gene modified/engineered", "TCR-T"
_add(_EXACT, _FLAG, "car", "cart", "carnk")
_add(_INFIX, _FLAG, "chimeric")
_add(_INFIX, _GENE, "gene")
_add(_INFIX, _MODIFIED, "modified", "engineered")
_add(_PREFIX, _FLAG, "tcr")
# uncontrolled_infection: a qualifier word, then "infection(s)"
_add(_INFIX, _INFECTION, "infection")
_add(_EXACT, _INFECTION_QUALIFIER, "active", "uncontrolled", "acute", "severe", "serious", "ongoing",
     "persistent", "systemic", "current")

_add(_EXACT, _NUMBER_WORD, *_WORD_NUMBERS)
_add(_INFIX, _COMPARATOR_WORD, *_CMP_ANCHORS)

_WORD_BITS: dict[bytes, int] = {}
_MAX_CACHED_WORDS = 200_000


def _classify(word: bytes) -> int:
    w = word.decode()
    bits = _EXACT.get(w, 0)
    if any(c.isdigit() for c in w):
        bits |= _DIGIT
    for k, b in _PREFIX.items():
        if w.startswith(k):
            bits |= b
    for k, b in _INFIX.items():
        if k in w:
            bits |= b
    if len(_WORD_BITS) >= _MAX_CACHED_WORDS:
        _WORD_BITS.clear()
    _WORD_BITS[word] = bits
    return bits


_TRANS = str.maketrans(_CHAR_MAP)
# Bytes that are not ASCII regex word characters become word separators.  Splitting a
# non-ASCII word into ASCII pieces keeps every (ASCII) keyword inside one piece, at a piece
# start if it was at a word start, so the gates stay necessary conditions.
_SEPARATORS = bytes(c if c < 128 and (chr(c).isalnum() or c == ord("_")) else 32 for c in range(256))
_LOWER_SEPARATORS = bytes(
    (c + 32 if 65 <= c <= 90 else c) if c < 128 and (chr(c).isalnum() or c == ord("_")) else 32 for c in range(256)
)
_DIGIT_OR_PLUS_RE = re.compile(r"[\d+]")  # \d: NormText's numbers include non-ASCII digits
_SKIP_ITEM_RE = re.compile(r"\brefers?\s+to\b|\bpoints?\s+each\b", re.IGNORECASE)
_YEARS_RANGE_RE = re.compile(r"\d\s*(?:[a-z]+\s*){0,3}(?:-|to|~|and)\s*\D{0,4}\d")
_IN_THE_RE = re.compile(r"\bin\s+the\b")


_AIDS = 1 << 26  # "AIDS" occurs in the original text (normalized to "hiv-aids")
_IN_THE = 1 << 27  # text checks a plan may ask for (beside _SKIP and ANTIGENS)
_YEAR_RANGE = 1 << 28
# The bits the decision reads: everything else in a word's bits is irrelevant here.
_DECISION_BITS = (_DIGIT | _BOUND_WORD | _SKIP | _FLAG | _ALLO | _ALLO_PART | _GENE | _MODIFIED | _INFECTION
                  | _INFECTION_QUALIFIER | _NUMBER_WORD | _COMPARATOR_WORD | PERF | LIFE_EXPECTANCY | LABS | AGE
                  | _WINDOW | _EXPOSURE | _IN | _THE | _YEAR | _ANTIGEN_CORE | _AIDS)
# decision bits -> (parts, want_flags, hints) when no text check is needed, else
# (parts before the checks, want_flags, hints, checks): a pure function of the bits, and
# items repeat few combinations, so each is worked out once (`_decide`).
_PLANS: dict[int, tuple[int, bool, int] | tuple[int, bool, int, int]] = {}


def _decide(key: int) -> tuple[int, bool, int] | tuple[int, bool, int, int]:
    """What `scan` concludes from an item's bits: the extractors that may fire, whether a
    flag may be raised, the `NormText` hints, and which text checks are still to run."""
    bits = key
    want_flags = bool(bits & _FLAG or (bits & _ALLO and bits & _ALLO_PART) or (bits & _GENE and bits & _MODIFIED)
                      or (bits & _INFECTION and bits & _INFECTION_QUALIFIER) or bits & _AIDS)
    hints = (HAS_NUMBER_WORDS if bits & _NUMBER_WORD else NO_NUMBER_WORDS) \
        | (HAS_COMPARATOR_WORDS if bits & _COMPARATOR_WORD else NO_COMPARATOR_WORDS)
    plan: tuple[int, bool, int] | tuple[int, bool, int, int]
    if not bits & (_DIGIT | _BOUND_WORD):
        plan = (0, want_flags, hints)
    else:
        parts = bits & (PERF | LIFE_EXPECTANCY | LABS | AGE)
        if bits & _WINDOW and bits & _EXPOSURE:
            parts |= WASHOUTS
        in_the = _IN_THE if bits & _EXPOSURE and bits & _IN and bits & _THE and not parts & WASHOUTS else 0
        year_range = _YEAR_RANGE if bits & _YEAR and not parts & AGE else 0
        if year_range and bits & _NUMBER_WORD:  # "between eighteen years and sixty years"
            parts |= AGE
            year_range = 0
        checks = (_SKIP if bits & _SKIP else 0) | (ANTIGENS if bits & _ANTIGEN_CORE else 0) | year_range | in_the
        plan = (parts, want_flags, hints, checks) if checks else (parts, want_flags, hints)
    if len(_PLANS) >= 65_536:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def scan(text: str) -> tuple[int, bool, int]:
    """(extractors that may fire, whether a flag may be raised, `NormText` hints) for one
    criterion item."""
    if text.isascii():
        # lower-casing and word separation in one bytes translation
        raw = text.encode()
        words = raw.translate(_LOWER_SEPARATORS).split()
        low = None
    else:
        low = text.lower()
        if any(ch in low for ch in _CHAR_MAP):  # (translate looks every character up in a dict)
            low = low.translate(_TRANS)
        raw = low.encode()
        words = raw.translate(_SEPARATORS).split()
    try:  # after warm-up every word is cached: one C-level pass, no Python loop
        bits = reduce(or_, map(_WORD_BITS.__getitem__, words), 0)
    except KeyError:
        bits = 0
        for w in words:
            b = _WORD_BITS.get(w)
            bits |= _classify(w) if b is None else b
    if low is None:  # ASCII digits are word characters: the words' bits hold them, "+" aside
        if b"+" in raw:
            bits |= _DIGIT
    elif _DIGIT_OR_PLUS_RE.search(low) is not None:  # \d: NormText's numbers include non-ASCII digits
        bits |= _DIGIT
    # (a non-ASCII text's ASCII digits are in `low`, so the search found them too)
    if "AIDS" in text:
        bits |= _AIDS
    key = bits & _DECISION_BITS
    plan = _PLANS.get(key)
    if plan is None:
        plan = _decide(key)
    if len(plan) == 3:
        return plan  # type: ignore[return-value]
    parts, want_flags, hints, checks = plan  # type: ignore[misc]
    if checks & _SKIP and _SKIP_ITEM_RE.search(text):
        return 0, want_flags, hints
    checks &= ~_SKIP
    if checks:
        if low is None:
            low = text.lower()
        g = " ".join(low.replace("\\", "").split())  # regex checks want NormText's spacing
        if checks & ANTIGENS and ANTIGEN_RE.search(g):
            parts |= ANTIGENS
        if checks & _YEAR_RANGE and _YEARS_RANGE_RE.search(g):
            parts |= AGE
        if checks & _IN_THE and _IN_THE_RE.search(g):
            parts |= WASHOUTS
    return parts, want_flags, hints


# --- second stage: after the item is normalized and its quantities found -------------------
# Each extractor below reads only quantities of certain kinds; an item without any cannot
# give it a row, so it is not run (`tests/test_profiles_gate.py` checks the equivalence).
_TIME_OR_NONE = frozenset({"time", None})


def refine(parts: int, qtys: list[Qty]) -> int:
    """`parts` without the quantity-reading extractors that no quantity of the item can feed:
    labs need a bound that is neither a duration, a foreign unit nor a bare number
    (`_labs._is_candidate`, `_labs._is_marker`); ages a duration or a unit-less bound; life
    expectancy a duration."""
    labs = age = le = False
    for q in qtys:
        kinds = q.kinds()
        unit = q.unit.kind
        if kinds <= _TIME_OR_NONE:
            age = True
        if unit == "time":
            le = True
        if "time" not in kinds and "other" not in kinds and (q.has_cmp or unit is not None):
            labs = True
    if not labs:
        parts &= ~LABS
    if not age:
        parts &= ~AGE
    if not le:
        parts &= ~LIFE_EXPECTANCY
    return parts


# Every washout window is a number followed by a time unit (years, months, weeks, days, hours
# and their abbreviations all start with one of these letters).
_TIME_AFTER_NUMBER_RE = re.compile(r"\d\s*[ymwdh]")


def has_time_window(text: str) -> bool:
    return _TIME_AFTER_NUMBER_RE.search(text) is not None
