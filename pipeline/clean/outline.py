"""A page as a reader sees it: an ordered list of visible lines with their structure.

HTML and plain-text captures both become the same `Outline`, so every site
adapter parses one representation.  For HTML, block elements end lines the way
a browser's innerText does; list items carry their nesting depth and an item
id (so a list item split over several lines can be joined back), headings carry
their level.  Invisible content (scripts, styles, templates, hidden elements)
never becomes a line.  Class names and ids are never consulted.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from dataclasses import dataclass, field

from lxml import etree

from pipeline.clean.text import INVISIBLE, INVISIBLE_CHARS, fold, normalize_space


@dataclass(slots=True)
class Line:
    """One visible line.  Treat as immutable: not `frozen` only because a frozen dataclass
    costs ~4x as much to build, and every page builds hundreds of these."""

    text: str
    depth: int = 0  # list nesting (HTML) or indentation level (text captures)
    item: int = 0  # id of the list item the line belongs to, 0 when not in a list
    starts_item: bool = False  # first line of a list item
    heading: int = 0  # 1-6 inside <h1>-<h6>, 0 otherwise
    cell: bool = False  # inside a table cell or definition term/description
    _key: str | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        """fold(text): lower-cased, punctuation collapsed, for label lookups.  Computed on
        first use: list items (most criteria lines) are never looked up as labels."""
        key = self._key
        if key is None:
            key = self._key = fold(self.text)
        return key


@dataclass(frozen=True, slots=True)
class Outline:
    lines: tuple[Line, ...]
    title: str | None = None  # the document <title> or og:title
    canonical: str | None = None  # <link rel=canonical> or og:url
    is_html: bool = False


_BLOCK = frozenset(
    "address article aside blockquote body center dd details dialog dir div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html legend li main menu nav "
    "ol p pre section summary table tbody thead tfoot tr td th ul caption".split()
)
_SKIP = frozenset(
    "script style noscript template svg math head iframe object embed canvas select "
    "option textarea input audio video map datalist".split()
)
_CELL = frozenset(("td", "th", "dt", "dd"))
_LIST = frozenset(("ul", "ol", "menu", "dir"))
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_LOOKS_HTML = re.compile(r"<\s*(?:!doctype|html|head|body|div|p|h[1-6]|ul|table|span|section|main)\b", re.I)

# The attributes themselves (then their elements): about half the cost of asking for the
# elements that carry them.
_MAY_HIDE = etree.XPath("//@style|//@hidden|//@aria-hidden")
_parent = operator.methodcaller("getparent")
_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True, recover=True, no_network=True)


def _has_invisible(text: str) -> bool:
    # `in` is a memchr-speed scan; the regex's character class is ~20x slower on 60 KB.
    return not text.isascii() and any(ch in text for ch in INVISIBLE_CHARS)


def looks_like_html(text: str) -> bool:
    return bool(_LOOKS_HTML.search(text[:5000]))


def _is_hidden(el: etree._Element) -> bool:
    if el.get("hidden") is not None or el.get("aria-hidden") == "true":
        return True
    style = el.get("style")
    return bool(style and _HIDDEN_STYLE.search(style))


def html_outline(html: str) -> Outline:
    html = _XML_DECL.sub("", html, count=1)
    # Unicode normalization and invisible characters are handled once for the whole
    # document, so each line only needs its whitespace collapsed.
    html = unicodedata.normalize("NFC", html)
    if _has_invisible(html):
        html = INVISIBLE.sub("", html)
    root = None if not html or html.isspace() else etree.fromstring(html, _PARSER)
    if root is None:
        return Outline(lines=(), is_html=True)
    title, canonical = _head_info(root)
    # Invisible subtrees go before the walk, in C: a skipped element that is not a block
    # (none of _SKIP is) contributes only its tail, which strip_elements keeps in place.
    etree.strip_elements(root, *_SKIP, with_tail=False)
    # Elements with the attributes that can hide them, found by XPath (C) instead of
    # asking every element for its attributes in the loop.
    hidden = {el for el in map(_parent, _MAY_HIDE(root)) if _is_hidden(el)}

    if root in hidden:
        return Outline(lines=(), title=title, canonical=canonical, is_html=True)
    lines = _walk(root, hidden)
    return Outline(lines=tuple(lines), title=title, canonical=canonical, is_html=True)


def _walk(root: etree._Element, hidden: set[etree._Element]) -> list[Line]:
    """The visible lines under `root`, in document order.

    A recursive visit over `for child in el` (lxml's own C iteration) costs about a third
    less than iterwalk's start/end events.  Recursion is bounded: libxml2 stops nesting
    at 256 levels (deeper markup is flattened), well inside Python's limit.
    """
    lines: list[Line] = []
    buf: list[str] = []
    push = buf.append  # bound once: the visit runs for every element of every page
    depth = 0  # open lists
    li_stack: list[int] = []  # ids of open <li>
    item_started: set[int] = set()
    next_item = 1
    heading = 0
    cells = 0
    block, lists, cell_tags, headings = _BLOCK, _LIST, _CELL, _HEADINGS

    def flush() -> None:
        # Callers test `if buf` first: most block boundaries have nothing buffered.
        text = " ".join("".join(buf).split())
        buf.clear()
        if text:
            if li_stack:
                item = li_stack[-1]
                starts = item not in item_started
                if starts:
                    item_started.add(item)
                lines.append(Line(text, depth, item, starts, heading, cells > 0))
            else:
                lines.append(Line(text, depth, 0, False, heading, cells > 0))

    def visit(el: etree._Element) -> None:
        nonlocal depth, next_item, heading, cells
        tag = el.tag
        is_block = tag in block
        if is_block:
            if buf:
                flush()
            if tag in lists:
                depth += 1
            elif tag == "li":
                li_stack.append(next_item)
                next_item += 1
            elif tag in headings:
                heading = headings[tag]
            elif tag in cell_tags:
                cells += 1
        text = el.text
        if text:
            push(text)
        for child in el:
            child_tag = child.tag
            if child_tag.__class__ is str and child_tag != "br" and not (hidden and child in hidden):
                visit(child)
            elif child_tag == "br" and buf:
                flush()
            # The tail follows the child whatever it was (hidden, a <br>, an entity); after
            # a block it starts a new line.
            tail = child.tail
            if tail:
                if buf and child_tag.__class__ is str and child_tag in block:
                    flush()
                push(tail)
        if is_block:
            if buf:
                flush()
            if tag in lists:
                depth -= 1
            elif tag == "li" and li_stack:
                li_stack.pop()
            elif tag in headings:
                heading = 0
            elif tag in cell_tags:
                cells -= 1

    try:
        visit(root)
    finally:
        # `visit` calls itself through its closure, a reference cycle that kept the page's
        # lines and its whole lxml tree alive until the cyclic GC ran (~270 objects a page
        # for it to trace, and the tree's C memory in the meantime); emptying the name
        # breaks the cycle, so all of it is freed when the caller lets go.
        del visit
    if buf:
        flush()
    return lines


def _head_info(root: etree._Element) -> tuple[str | None, str | None]:
    title = canonical = None
    head = root.find("head")
    if head is None:
        return None, None
    for el in head:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "title" and el.text and title is None:
            title = normalize_space(el.text)
        elif tag == "link" and "canonical" in (el.get("rel") or "").lower():
            canonical = el.get("href")
        elif tag == "meta":
            prop = (el.get("property") or el.get("name") or "").lower()
            if prop == "og:url" and canonical is None:
                canonical = el.get("content")
            elif prop == "og:title" and title is None:
                title = normalize_space(el.get("content") or "")
    return title, canonical


_CAPTURE_BULLET = re.compile(r"^- +")


def text_outline(text: str) -> Outline:
    """A plain-text capture: one Line per non-empty line.

    A "- " the copy tool put before each <li> makes the line a list item (depth
    1, like HTML markup); other leading spaces are kept as depth = indent // 2
    with no item id, because indentation alone does not say where an item
    starts.  Lines keep their own markers (numbers, bullets): stripping them is
    the criteria parser's job.
    """
    lines: list[Line] = []
    item = 0
    for raw in text.splitlines():
        if not raw.strip():
            continue
        expanded = raw.expandtabs(4)
        indent = len(expanded) - len(expanded.lstrip(" \u00a0"))
        body = expanded.strip()
        depth = indent // 2
        in_list = False
        if _CAPTURE_BULLET.match(body):
            body = _CAPTURE_BULLET.sub("", body, count=1)
            depth += 1
            in_list = True
        body = normalize_space(body)
        if not body:
            continue
        if in_list:
            item += 1
        lines.append(Line(body, depth, item if in_list else 0, in_list, 0, False))
    return Outline(lines=tuple(lines), is_html=False)
