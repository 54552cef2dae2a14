"""One-pass text normalization that remembers where every character came from.

Criteria text arrives in many spellings of the same thing ("≥", ">/=", "not less than",
"\\>=" from CT.gov markdown, "10⁹" with the superscript lost as "109").  Every extractor
matches against a single lower-case spelling instead: comparators become "<", "<=", ">",
">="; trailing "or older"/"and over" become the upper-case tokens ORMORE_AGE / ORMORE
(upper case cannot collide with the lower-cased text); "×" becomes "x", "µ" becomes "u".

Constraints must quote the *original* span, so the normalizer keeps an offset map from
normalized positions back to the input.
"""

from __future__ import annotations

import re
from bisect import bisect_right

_CMP_PHRASES: dict[str, tuple[str, ...]] = {
    ">=": (
        "greater than or equal to", "greater than or equal", "greater or equal to",
        "greater than equal to", "more than or equal to", "equal to or greater than",
        "equal to or more than", "equal or greater than", "equal to or above", "equal to or higher than",
        "not less than", "no less than", "not lower than", "not below", "at least", "a minimum of",
        "minimum of", ">/=", "=/>", "=>", ">=", "> or =", ">or=", "> =", "≥", "⩾", "≧",
    ),
    "<=": (
        "less than or equal to", "less than or equal", "less or equal to", "less than equal to",
        "equal to or less than", "equal to or lower than", "equal or less than", "not more than",
        "no more than", "not greater than", "no greater than", "not higher than", "not exceeding",
        "not to exceed", "not above", "at most", "a maximum of", "maximum of", "</=", "=<", "<=",
        "< or =", "<or=", "< =", "≤", "⩽", "≦",
    ),
    ">": (
        "greater than", "more than", "higher than", "larger than", "in excess of", "exceeding",
        "exceeds", "exceed", "above", "over", "＞", ">",
    ),
    "<": ("less than", "lower than", "fewer than", "smaller than", "below", "under", "＜", "<"),
    "age >": ("older than",),
    "age <": ("younger than",),
    " ORMORE_AGE": ("or older", "and older"),
    " ORLESS_AGE": ("or younger", "and younger"),
    " ORMORE": (
        "or more", "or greater", "or higher", "or above", "or over", "and over", "and above",
        "and beyond", "or beyond", "and up", "or later", "or longer",
    ),
    " ORLESS": ("or less", "or lower", "or fewer", "or below", "and below", "and under", "or shorter"),
    "aged between ": ("between the ages of ", "between the age of "),
}

_WORD_NUMBERS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "eighteen": "18", "twenty": "20", "thirty": "30",
    "forty": "40", "fifty": "50", "sixty": "60", "ninety": "90",
}

_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_CHAR_MAP = {
    "×": "x", "✕": "x", "µ": "u", "μ": "u", "–": "-", "—": "-", "−": "-", "‐": "-", "‑": "-",
    "’": "'", "‘": "'", "\u00a0": " ", "²": "2", "³": "3", "℃": "°c",
}


def _phrase_pattern(phrase: str) -> str:
    # Word phrases need word boundaries and tolerate any whitespace run; symbols match as-is.
    body = r"\s+".join(re.escape(w) for w in phrase.split())
    if phrase[0].isalpha():
        body = r"\b" + body
    if phrase[-1].isalpha():
        body += r"\b"
    return body


_PHRASE_TO_REPL: dict[str, str] = {}
for _repl, _phrases in _CMP_PHRASES.items():
    for _p in _phrases:
        _PHRASE_TO_REPL[" ".join(_p.split()).lower()] = _repl

def trie_pattern(phrases: list[str], *, literal_spaces: bool = False) -> str:
    """One regex for many phrases, factored by common prefixes (Python's re does not do this
    itself, and a flat 100-way alternation made normalization the slowest step).  Optional
    endings are greedy, so the longest phrase wins, as in a longest-first alternation.  A
    space matches any whitespace run unless `literal_spaces`."""
    space = " " if literal_spaces else r"\s+"
    trie: dict[str, dict] = {}
    for p in phrases:
        node = trie
        for ch in p:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        alts = [(space if ch == " " else re.escape(ch)) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


_WORD_PHRASES = sorted(p for p in _PHRASE_TO_REPL if p[0].isalpha() and p[-1].isalpha())
_SYMBOL_PHRASES = sorted((p for p in _PHRASE_TO_REPL if p not in _WORD_PHRASES), key=len, reverse=True)
_PHRASE_ALT = (r"\b(?:" + trie_pattern(_WORD_PHRASES) + r")\b|"
               + "|".join(_phrase_pattern(p) for p in _SYMBOL_PHRASES))

_DUP = r"(?:\s*\(\s*(?:[<>≤≥]=?|=[<>])\s*\))?"  # "less than (<) 40": the symbol repeats the words
_WORDNUM_PAT = (r"\b(?:" + "|".join(_WORD_NUMBERS) + r")\b(?=[\s-]+(?:\(\s*\d+\s*\)\s*)?"
                r"(?:years?|months?|weeks?|days?|hours?|times)\b)")
_CH_PAT = "[×✕µμ–—−‐‑’‘\u00a0²³℃]"

_SYMBOLS = "<symbols>"  # gate: run only if a comparator symbol occurs
_SPACES = "<spaces>"  # gate: run only if a whitespace run or control whitespace occurs
_NON_ASCII = "<non-ascii>"  # gate: run only on text with non-ASCII characters
_NUMBER_WORDS = "<number words>"  # gate: run only if a spelled number occurs
_CMP_WORDS = "<comparator words>"  # gate: run only if a word of a comparator phrase occurs

# One word per comparator phrase (its longest that is not a filler word): a phrase can only
# occur where its anchor does, and a handful of substring tests cost far less than the
# phrase regex, whose leading word boundary makes Python's re try it at every position.
_FILLER = {"and", "or", "to", "of", "than", "the", "a", "not", "no"}
_CMP_ANCHORS = tuple(sorted({max((w for w in p.split() if w not in _FILLER), key=len) for p in _WORD_PHRASES}))
assert all(any(a in p for a in _CMP_ANCHORS) for p in _WORD_PHRASES)

# Separate small regexes, each gated by a cheap test, run much faster than one alternation
# (Python's re only applies its literal-prefix shortcuts to a pattern as a whole).
_PASSES: tuple[tuple[str, re.Pattern[str], str | None], ...] = (
    ("mdesc", re.compile(r"\\(?=[<>=\[\]*^_~#+\-.()!|])"), "\\"),
    ("sup", re.compile(r"10[⁰¹²³⁴⁵⁶⁷⁸⁹]+"), _NON_ASCII),
    ("word", re.compile(_WORDNUM_PAT), _NUMBER_WORDS),
    ("plus", re.compile(r"(?<=\d)\+(?![\d+])"), "+"),
    ("cmp", re.compile(r"\b(?:" + trie_pattern(_WORD_PHRASES) + r")\b" + _DUP), _CMP_WORDS),
    ("cmp", re.compile("(?:" + "|".join(_phrase_pattern(p) for p in _SYMBOL_PHRASES) + ")" + _DUP), _SYMBOLS),
    ("ch", re.compile(_CH_PAT), _NON_ASCII),
    ("ws", re.compile(r"\s{2,}|[\t\r\n\f\v]"), _SPACES),
)
_SYMBOL_GATE_RE = re.compile(r"[<>=≥≤⩾⩽≧≦＞＜]")
_WS_GATE_RE = re.compile(r"  |[\n\t\r\f\v]")
_AIDS_RE = re.compile(r"\bAIDS\b")


# Hints a caller may pass to NormText when it already knows (from the words of the text,
# see `_gate`) that a pass has nothing to do.
NO_NUMBER_WORDS = 1
NO_COMPARATOR_WORDS = 2
# ... or that one occurs (as a substring of a word), so the substring gate can be skipped: the
# pass's regex decides either way, a gate only saves running it.
HAS_NUMBER_WORDS = 4
HAS_COMPARATOR_WORDS = 8


_MDESC_RE, _SUP_RE, _WORD_RE, _PLUS_RE, _CMP_WORD_RE, _CMP_SYMBOL_RE, _CH_RE, _WS_RE = (rx for _, rx, _ in _PASSES)


def _replacements(orig: str, lowered: str, absent: int = 0) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, matched text) of every span to rewrite, left to right, non-overlapping."""
    # The passes of _PASSES in their order (ties between equal spans keep it), each behind its
    # gate, written out: a loop over the table cost as much as the gates themselves.
    todo: list[tuple[str, re.Pattern[str]]] = []
    non_ascii = not lowered.isascii()
    if "\\" in lowered:
        todo.append(("mdesc", _MDESC_RE))
    if non_ascii:
        todo.append(("sup", _SUP_RE))
    if absent & HAS_NUMBER_WORDS or (not absent & NO_NUMBER_WORDS and any(w in lowered for w in _WORD_NUMBERS)):
        todo.append(("word", _WORD_RE))
    if "+" in lowered:
        todo.append(("plus", _PLUS_RE))
    if absent & HAS_COMPARATOR_WORDS or (
            not absent & NO_COMPARATOR_WORDS and any(a in lowered for a in _CMP_ANCHORS)):
        todo.append(("cmp", _CMP_WORD_RE))
    # (substring tests: the gates as regexes cost more than the passes they guard)
    if ("<" in lowered or ">" in lowered or "=" in lowered) if not non_ascii \
            else _SYMBOL_GATE_RE.search(lowered) is not None:
        todo.append(("cmp", _CMP_SYMBOL_RE))
    if non_ascii:
        todo.append(("ch", _CH_RE))
    if "  " in lowered or "\n" in lowered or "\t" in lowered or "\r" in lowered or "\f" in lowered \
            or "\v" in lowered:  # = _WS_GATE_RE.search(lowered)
        todo.append(("ws", _WS_RE))
    found: list[tuple[int, int, str, str]] = []
    for kind, rx in todo:
        for m in rx.finditer(lowered):
            start, end = m.span()
            found.append((start, end, kind, m.group()))
    if "AIDS" in orig:
        found.extend((m.start(), m.end(), "aids", m.group()) for m in _AIDS_RE.finditer(orig))
    if len(found) <= 1:
        return found
    found.sort(key=lambda f: (f[0], -f[1]))
    out: list[tuple[int, int, str, str]] = []
    last = 0
    for f in found:
        if f[0] >= last:
            out.append(f)
            last = f[1]
    return out


class NormText:
    """Normalized lower-case text plus a map back to the original string."""

    __slots__ = ("orig", "text", "_nstarts", "_ostarts", "_oends", "_same", "_one")

    def __init__(self, orig: str, absent: int = 0) -> None:
        """`absent`: NO_/HAS_NUMBER_WORDS, NO_/HAS_COMPARATOR_WORDS when the caller knows."""
        self.orig = orig
        lowered = orig.lower()
        if len(lowered) != len(orig):  # rare: lower-casing changed the length; map char by char
            lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in orig)
        reps = _replacements(orig, lowered, absent)
        if not reps:  # common: nothing to rewrite, one unchanged piece
            self.text = lowered
            self._nstarts, self._ostarts, self._oends, self._same = ([0], [0], [len(orig)], [True]) if orig \
                else ([], [], [], [])
            self._one = len(orig) if orig else -1
            return
        self._one = -1
        # pieces of the output, alternately kept (same) and rewritten, with their offsets
        pieces: list[str] = []
        nstarts: list[int] = []
        ostarts: list[int] = []
        oends: list[int] = []
        same: list[bool] = []
        npos = 0
        opos = 0
        for start, end, kind, g in reps:
            if start > opos:
                pieces.append(lowered[opos:start])
                nstarts.append(npos)
                ostarts.append(opos)
                oends.append(start)
                same.append(True)
                npos += start - opos
            if kind == "mdesc":
                repl = ""
            elif kind == "aids":
                repl = "hiv-aids"
            elif kind == "sup":
                repl = "10^" + g[2:].translate(_SUPERSCRIPT)
            elif kind == "word":
                repl = _WORD_NUMBERS[g]
            elif kind == "plus":
                repl = " ORMORE"
            elif kind == "cmp":
                phrase = g.split("(")[0] if g.rstrip().endswith(")") and "(" in g else g
                repl = _PHRASE_TO_REPL[" ".join(phrase.split())]
                if repl[0] not in " a":  # symbols get a trailing space so "≥5" -> ">= 5" parses alike
                    repl = repl + " "
            elif kind == "ch":
                repl = _CHAR_MAP[g]
            else:
                repl = " "
            pieces.append(repl)
            nstarts.append(npos)
            ostarts.append(start)
            oends.append(end)
            same.append(False)
            npos += len(repl)
            opos = end
        if opos < len(orig):
            pieces.append(lowered[opos:])
            nstarts.append(npos)
            ostarts.append(opos)
            oends.append(len(orig))
            same.append(True)
        self.text = "".join(pieces)
        self._nstarts = nstarts
        self._ostarts = ostarts
        self._oends = oends
        self._same = same

    def to_orig(self, pos: int, *, end: bool = False) -> int:
        """Original offset for a normalized offset (span ends map to the end of a replacement)."""
        n = self._one
        if n >= 0:  # one unchanged piece: the identity, clamped to the end
            return pos if pos < n else n
        if not self._nstarts:
            return 0
        i = bisect_right(self._nstarts, pos) - 1
        if end and i > 0 and pos == self._nstarts[i]:
            i -= 1  # an end offset belongs to the piece it closes
        i = max(i, 0)
        if self._same[i]:
            return min(self._ostarts[i] + (pos - self._nstarts[i]), self._oends[i])
        return self._oends[i] if end else self._ostarts[i]

    def from_orig(self, opos: int) -> int | None:
        """Normalized offset of original offset `opos` when the character there was kept (or
        starts a replacement), else None."""
        n = self._one
        if n >= 0:  # one unchanged piece
            return opos if 0 <= opos < n else None
        if not self._ostarts:
            return None
        i = bisect_right(self._ostarts, opos) - 1
        if i < 0:
            return None
        if self._same[i]:
            n = self._nstarts[i] + (opos - self._ostarts[i])
            return n if opos < self._oends[i] else None
        return self._nstarts[i] if opos == self._ostarts[i] else None

    def span(self, start: int, end: int) -> str:
        """The original text behind normalized [start, end), whitespace-collapsed."""
        o0 = self.to_orig(start)
        o1 = self.to_orig(end, end=True)
        return " ".join(self.orig[o0:o1].split())


# Clause boundaries: ";" and a sentence-ending period (not "e.g." / "i.e." / "vs." / "no.").
_NOT_SENTENCE_END = ("e.g", "i.e", " vs", " no", "approx")
_PUNCT_RE = re.compile(r";|\.(?=\s|$)")


def boundaries(text: str) -> list[int]:
    """Positions of clause boundaries, with 0 and len(text) as sentinels."""
    if ";" not in text and "." not in text:  # (every boundary is one of them)
        return [0, len(text)]
    out = [0]
    for m in _PUNCT_RE.finditer(text):
        i = m.start()
        if m.group() == ";" or not text[max(0, i - 6):i].endswith(_NOT_SENTENCE_END):
            out.append(i)
    out.append(len(text))
    return out


def clause_bounds(bounds: list[int], pos: int) -> tuple[int, int]:
    """(start, end) of the clause containing pos, given boundaries()."""
    i = bisect_right(bounds, pos) - 1
    i = max(0, min(i, len(bounds) - 2))
    start = bounds[i] + (1 if i > 0 else 0)
    return start, bounds[i + 1]


# --- regex scans from known start words ------------------------------------------------------
# Python's re tries a pattern that does not start with a literal at every position (tens of
# nanoseconds each); when every match of a pattern starts with one of a few words, trying it
# only where those words occur (found with str.find) gives the same matches.


def occurrences(text: str, words: tuple[str, ...]) -> list[int]:
    """Every position where one of `words` occurs in `text` (unsorted, may repeat)."""
    out: list[int] = []
    find = text.find
    for w in words:
        i = find(w)
        while i >= 0:
            out.append(i)
            i = find(w, i + 1)
    return out


def matches_at(rx: re.Pattern[str], text: str, positions: list[int]) -> list[re.Match[str]]:
    """`list(rx.finditer(text))` when every match of `rx` starts at one of `positions` and
    none is empty: the same leftmost, non-overlapping matches (`match` at a position still
    sees the text before it, for lookbehinds and \\b)."""
    out: list[re.Match[str]] = []
    end = 0
    for p in sorted(set(positions)) if len(positions) > 1 else positions:
        if p >= end:
            m = rx.match(text, p)
            if m is not None:
                out.append(m)
                end = m.end()
    return out
