"""Eligibility criteria lines -> one Criterion per item, nested, markers stripped.

Nesting comes from what the reader sees: list markup depth when the page has
it; otherwise indentation and the numbering style ("1." then "a." opens a
sub-list, a later "2." closes it).  Text that is not a list item (an intro such
as "Subjects with any of the following ... :") is an item of its own but never
a parent, so list items after it stay top-level, as on ClinicalTrials.gov.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.clean.outline import Line
from pipeline.clean.text import fold, normalize_space, repair_powers_of_ten
from pipeline.models import Criterion, CriterionType

# One leading marker: bullet, "1." "1)" "(1)" "a." "a)" "(a)" "iv." "IV)".  A number
# followed by a digit ("2.0 mg") or a word without punctuation ("2 or more") is text.
_MARKER = re.compile(
    r"^(?:"
    r"(?P<bullet>[•·●○◦▪▫■□‣⁃∙*+–—-])(?=\s|$)"
    r"|\(?(?P<num>\d{1,3})(?:[.)](?!\d)|(?<=\(\d)\)|(?<=\(\d\d)\))"
    r"|\(?(?P<alpha>[a-zA-Z])(?:[.)](?=\s)|(?<=\([a-zA-Z])\))"
    r"|\(?(?P<roman>(?:x{0,3})(?:ix|iv|v?i{0,3})|(?:X{0,3})(?:IX|IV|V?I{1,3}))(?:[.)](?=\s)|\))"
    r")\s*"
)
_HEADER = re.compile(
    r"^(?:key |main |major |general |specific )?(inclusion|exclusion)(?: criteria)?$"
)
_STRAY_LEAD = re.compile(r"^[.,;:]+(?=[A-Za-z])")  # ".History of ..." left by a lost marker
_STRAY_FIRST = frozenset(".,;:")
_CHROME = frozenset({"loading", "show more", "show less", "read more", "see more", "view more"})


@dataclass(slots=True)
class _Raw:
    text: str
    level: int  # list depth, or indentation for plain lines
    in_list: bool
    style: str | None
    value: int | None


def _no_marker(text: str) -> bool:
    """True when `_MARKER` cannot match `text`.  Most items start with a word, and a marker
    that starts with a letter ("a.", "iv)") ends in "." or ")" within its first 9 characters."""
    return text[:1].isalpha() and "." not in text[:9] and ")" not in text[:9]


def strip_marker(text: str) -> tuple[str, str | None, int | None]:
    """Remove leading list markers; return (text, style of the innermost, its value)."""
    style: str | None = None
    value: int | None = None
    if _no_marker(text):
        return text.strip(), None, None
    for _ in range(3):  # "• 1. Blood creatinine" carries two markers
        if style is not None and _no_marker(text):
            break  # (the usual "• Word ...": no second marker, no second regex match)
        m = _MARKER.match(text)
        if not m or m.end() == 0 or (m.group("roman") == "" and not (m["bullet"] or m["num"] or m["alpha"])):
            break
        rest = text[m.end():]
        if not rest.strip():
            break
        if m["bullet"]:
            style, value = "bullet:" + m["bullet"], None
        elif m["num"]:
            paren = text.lstrip().startswith("(")
            style, value = ("(num)" if paren else "num"), int(m["num"])
        elif m["alpha"]:
            ch = m["alpha"]
            style, value = ("alpha" if ch.islower() else "ALPHA"), ord(ch.lower()) - 96
        elif m["roman"]:
            style, value = "roman", _roman(m["roman"])
        text = rest
    return text.strip(), style, value


def _roman(text: str) -> int:
    vals = {"i": 1, "v": 5, "x": 10}
    total = 0
    low = text.lower()
    for i, ch in enumerate(low):
        v = vals[ch]
        total += -v if i + 1 < len(low) and vals[low[i + 1]] > v else v
    return total


def header_type(text: str) -> CriterionType | None:
    """'Inclusion Criteria:' -> 'inclusion'; anything longer is an item, not a header."""
    # The header words must appear as they are in the lower-cased text (fold only turns
    # punctuation into spaces), so most items are turned away before folding.
    if "clusion" not in text.lower():
        return None
    m = _HEADER.match(fold(text))
    if not m or not text.rstrip().endswith(":") and len(text) > 40:
        return None
    return "inclusion" if m.group(1) == "inclusion" else "exclusion"


def _raw_items(lines: list[Line]) -> list[_Raw]:
    items: list[_Raw] = []
    last_item_id = 0
    for line in lines:
        text = line.text
        if len(text) <= 64 and fold(text) in _CHROME:
            continue
        if line.item and not line.starts_item and line.item == last_item_id and items:
            items[-1].text = f"{items[-1].text} {text}"  # a list item continued over several lines
            continue
        last_item_id = line.item
        items.append(_Raw(text, line.depth, bool(line.item), None, None))  # (positional: ~60 per page)
    return items


def parse_criteria(lines: list[Line], default_type: CriterionType = "inclusion") -> tuple[Criterion, ...]:
    out: list[Criterion] = []
    counters = {"inclusion": 0, "exclusion": 0}
    ctype: CriterionType = default_type
    # open ancestors: (level, in_list, style, value, ordinal)
    stack: list[tuple[int, bool, str | None, int | None, int]] = []
    for raw in _raw_items(lines):
        text, style, value = strip_marker(raw.text)
        switched = header_type(text)
        if switched:
            ctype = switched
            stack.clear()
            continue
        if text[:1] in _STRAY_FIRST:  # (every _STRAY_LEAD match starts with one: most items skip it)
            text = _STRAY_LEAD.sub("", text)
        text = repair_powers_of_ten(normalize_space(text))
        if not text or text in {".", ":", ";"}:
            continue
        parent = _place(stack, raw, style, value)
        counters[ctype] += 1
        ordinal = counters[ctype]
        out.append(Criterion(criterion_type=ctype, ordinal=ordinal, parent_ordinal=parent, text=text))
        if raw.in_list or style is not None:
            stack.append((raw.level, raw.in_list, style, value, ordinal, text.endswith(":")))
        else:
            stack.clear()  # a plain paragraph is never a parent
    return tuple(out)


def _place(stack: list, raw: _Raw, style: str | None, value: int | None) -> int | None:
    """Pop `stack` to where `raw` belongs and return its parent's ordinal.

    Stack entries are (level, in_list, style, value, ordinal, opens_sublist).
    """
    if raw.in_list:
        # Markup decides: strictly shallower list items are ancestors.
        while stack and (not stack[-1][1] or stack[-1][0] >= raw.level):
            stack.pop()
        return stack[-1][4] if stack else None
    if style is None:
        stack.clear()
        return None
    # A marker continuing an open sequence ("(2)" after "(1)", "b." after "a.") is
    # that item's sibling, whatever the (often damaged) indentation says.
    for i in range(len(stack) - 1, -1, -1):
        _, in_list, s, v, _, _ = stack[i]
        if not in_list and s == style and (value is None or v is None or value == v + 1):
            del stack[i:]
            return stack[-1][4] if stack else None
    while stack and (stack[-1][1] or stack[-1][0] > raw.level):
        stack.pop()
    # At the same indentation a new numbering style opens a sub-list only under
    # an item that announces one ("... as defined below:").
    while stack and stack[-1][0] == raw.level:
        if stack[-1][2] != style and stack[-1][5]:
            break
        stack.pop()
    return stack[-1][4] if stack else None
