"""Small pure text helpers: whitespace, capture repairs, name casing."""

from __future__ import annotations

import re
import unicodedata

from pipeline.clean.memo import short_text_memo

# Zero-width characters and soft hyphens, and the bidirectional controls (LRM/RLM,
# embeddings, overrides, isolates) that can make stored text read differently from what it
# holds ("Trojan source"): a regex beats str.translate with a dict by far.
INVISIBLE_CHARS = (
    "\u200b\u200c\u200d\u2060\ufeff\u00ad"
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
INVISIBLE = re.compile(f"[{INVISIBLE_CHARS}]")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_SPACES = re.compile(r"\s+")

# "1×107 cells/kg": the capture dropped the superscript of 10^7.  Only the
# multiplication sign (or an x/* directly before a unit) marks a power of ten,
# and only exponents 1-19 qualify, so "2 × 100 mg" and "3 x 10 days" stay as they are.
_LOST_SUPERSCRIPT = re.compile(
    r"(?P<mant>\d(?:[.,]\d+)?)\s*(?P<op>[×✕⨯])\s*10(?P<exp>1\d|[1-9])(?![\d.,]\d)"
)
_LOST_SUPERSCRIPT_X = re.compile(
    r"(?P<mant>\d(?:\.\d+)?)\s*(?P<op>[xX*])\s*10(?P<exp>1\d|[1-9])(?=\s*(?:/|cells|CAR|[A-Za-z]*\s*cells|per\b))"
)
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_UNICODE_POWER = re.compile(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)")


def normalize_space(text: str) -> str:
    """NFC, invisible characters removed, runs of whitespace collapsed, trimmed."""
    if not text:
        return ""
    if not text.isascii():  # ASCII is NFC already and holds no invisible characters
        text = INVISIBLE.sub("", unicodedata.normalize("NFC", text))
    # str.split() splits on exactly the characters `\s` matches (Py_UNICODE_ISSPACE)
    return " ".join(text.split())


def normalize_inline_space(text: str) -> str:
    """Like normalize_space but keeps newlines (for multi-paragraph fields)."""
    text = INVISIBLE.sub("", unicodedata.normalize("NFC", text))
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def repair_powers_of_ten(text: str) -> str:
    """`1×107` -> `1×10^7`, `1.0×109/L` -> `1.0×10^9/L`, `10⁷` -> `10^7`."""
    if "10" not in text:
        return text
    text = _UNICODE_POWER.sub(lambda m: "10^" + m.group(1).translate(_SUPERSCRIPT_DIGITS), text)
    # The two patterns below start with \d, so re tries them at every digit of the text (a
    # description's ~0.05 ms each); each runs only when its operator can be there.
    if "×" in text or "✕" in text or "⨯" in text:
        text = _LOST_SUPERSCRIPT.sub(_lost_power, text)
    if _x_before_ten(text):
        text = _LOST_SUPERSCRIPT_X.sub(_lost_power, text)
    return text


def _lost_power(m: re.Match[str]) -> str:
    return f"{m['mant']}{m.group(0)[len(m['mant']):m.start('exp') - m.start()]}^{m['exp']}"


def _x_before_ten(text: str) -> bool:
    """Whether some "10" follows an x, X or * (whitespace between allowed), as in every
    `_LOST_SUPERSCRIPT_X` match; "10" is rare, so a few finds instead of the regex's scan."""
    i = text.find("10")
    while i >= 0:
        j = i
        while j > 0 and text[j - 1].isspace():  # (= the pattern's \s: both are Py_UNICODE_ISSPACE)
            j -= 1
        if j > 0 and text[j - 1] in "xX*":
            return True
        i = text.find("10", i + 1)
    return False


_SMALL_WORDS = frozenset(
    "a an and as at but by de del der des di du e en et for from in la le of on or the to van von y".split()
)
_KEEP_UPPER = frozenset(
    "AB AG AML ASA BV CAR CHU CIC CNS CRO HIV II III IV KG LLC LP LLP MD NCI NHS NIH NK "
    "NV PLC SA SAS SL SPA SRL UK US USA VA VU AB UMC UCLA UCSF UNC USC ETH AIDS MRC".split()
)


def _case_word(word: str, first: bool) -> str:
    core = word.strip("().,;:&'\"")
    if not core:
        return word
    upper = core.upper()
    if upper in _KEEP_UPPER or "." in core.rstrip(".") or not re.search(r"[AEIOUY]", upper):
        return word
    if not first and core.lower() in _SMALL_WORDS:
        return word.lower()
    parts = re.split(r"([-/'])", word.lower())
    return "".join(p[:1].upper() + p[1:] if p not in "-/'" else p for p in parts)


def sponsor_case(name: str) -> str:
    """Upper-cased sponsor names back to title case: `ZHEJIANG UNIVERSITY` -> `Zhejiang University`.

    Names that already mix case are left alone: their casing is the sponsor's own.
    """
    name = normalize_space(name)
    if any(c.islower() for c in name):  # stops at the first: most names mix case early
        return name
    letters = [c for c in name if c.isalpha()]
    if not letters:
        return name
    if len(letters) <= 5 and " " not in name:  # a bare acronym: "NCI", "GSK"
        return name
    words = name.split(" ")
    return " ".join(_case_word(w, i == 0) for i, w in enumerate(words))


_NON_ALNUM = re.compile(r"[\W_]+")  # Unicode-aware: CJK or accented text must not fold to ""
# ASCII fast path: every ASCII character but letters and digits becomes a space, then runs
# of spaces collapse -- exactly what the regex does on ASCII text, about twice as fast.
_ASCII_PUNCT = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})


@short_text_memo
def fold(text: str) -> str:
    """Case- and punctuation-insensitive key for label matching."""
    if text.isascii():
        return " ".join(text.lower().translate(_ASCII_PUNCT).split())
    return _NON_ALNUM.sub(" ", text.lower()).strip()
