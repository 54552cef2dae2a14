"""What every source adapter provides, and the label-driven section splitter they share.

An adapter describes a site by what a reader sees: the labels that open its
sections, the lines that are site chrome, the phrases that identify it, and the
URL shapes of its study pages.  Adding a mirror is one new module that builds a
`SiteAdapter` and registers it in `pipeline.sources`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipeline.clean.memo import remember
from pipeline.clean.outline import Line, Outline
from pipeline.clean.text import fold
from pipeline.models import TrialRecord


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    label: str  # the label as the page shows it
    match: re.Match[str] | None  # for pattern labels ("30 participants in 1 patient group")
    lines: tuple[Line, ...]

    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


@dataclass(frozen=True, slots=True)
class Layout:
    """The visible vocabulary of a site: section labels, pattern labels, chrome."""

    labels: dict[str, str]  # folded label -> section key
    patterns: tuple[tuple[re.Pattern[str], str], ...] = ()  # whole-line regex -> key
    chrome: frozenset[str] = frozenset()  # folded lines that are never content
    inline_labels: frozenset[str] = frozenset()  # keys whose value may share the label's line
    # Where each section sits on the page.  Inside a free-text or criteria section
    # (`sticky`) only a label of a later section ends it, so a description line
    # reading "Inclusion Criteria:" or a criterion "Age:" stays content.
    order: dict[str, int] = field(default_factory=dict)
    sticky: frozenset[str] = frozenset()
    # A label and its value run together on one line ("Enrollment 36 estimated
    # patients", two spans in a row) are split only when the rest is a valid value.
    run_on: dict[str, Callable[[str], bool]] = field(default_factory=dict)
    # Keys whose label, written with a colon, also occurs inside free text
    # ("Inclusion Criteria:" in a description): there it is content, not a label.
    text_headers: frozenset[str] = frozenset({"inclusion", "exclusion", "criteria"})
    # _classify's answers for short lines, which repeat from page to page (labels, values).
    _memo: dict[str, tuple[str, re.Match[str] | None, str | None] | None] = field(
        default_factory=dict, compare=False, repr=False)

    def classify(self, line: Line, current: str | None = None) -> tuple[str, re.Match[str] | None, str | None] | None:
        """(key, match, inline value) when `line` opens a section, else None."""
        if line.item:  # labels are never list items
            return None
        text = line.text
        if len(text) > 160 or not text[:1].isalnum():
            return None
        memo = self._memo
        if text in memo:
            hit = memo[text]
        else:
            hit = self._classify(text, line.key)
            remember(memo, text, text, hit)
        if hit is None or current not in self.sticky:
            return hit
        if text.endswith(":") and hit[0] in self.text_headers:
            return None
        if self.order.get(hit[0], 0) <= self.order.get(current, 0):
            return None
        return hit

    def _classify(self, text: str, folded: str) -> tuple[str, re.Match[str] | None, str | None] | None:
        key = self.labels.get(folded)
        if key:
            return key, None, None
        for pattern, pkey in self.patterns:
            m = pattern.match(text)
            if m:
                return pkey, m, None
        if ":" in text:
            head, _, rest = text.partition(":")
            key = self.labels.get(fold(head))
            if key and key in self.inline_labels and rest.strip():
                return key, None, rest.strip()
        if self.run_on and " " in folded:
            words = folded.split(" ")
            for n in (3, 2, 1):
                key = self.labels.get(" ".join(words[:n]))
                check = self.run_on.get(key) if key else None
                if check is None:
                    continue
                rest = _drop_words(text, n)
                if rest and check(rest):
                    return key, None, rest
        return None


def _drop_words(text: str, n: int) -> str:
    """`text` without its first n words (as fold() counts them) and the separators after them."""
    rest = text
    for _ in range(n):
        rest = re.sub(r"^[^A-Za-z0-9]*[A-Za-z0-9]+", "", rest, count=1)
    return rest.lstrip(" :\u00a0-–—|")


_CHROME_MAX = 160  # characters; as Layout.classify's longest label line


def split_sections(lines: Sequence[Line], layout: Layout) -> tuple[list[Line], list[Section]]:
    """Cut the page at its labels.  Returns the lines before the first label and the sections."""
    preamble: list[Line] = []
    sections: list[Section] = []
    key: str | None = None
    label = ""
    match: re.Match[str] | None = None
    body: list[Line] = []

    def close() -> None:
        if key is not None:
            sections.append(Section(key, label, match, tuple(body)))

    chrome = layout.chrome
    for line in lines:
        # Chrome is a short line; folding every long paragraph to find out is wasted work.
        if not line.item and len(line.text) <= _CHROME_MAX and line.key in chrome:
            continue
        hit = layout.classify(line, key)
        if hit is None:
            (body if key is not None else preamble).append(line)
            continue
        close()
        key, match, inline = hit
        label = line.text
        body = [Line(inline, line.depth, 0, False, line.heading, line.cell)] if inline else []
    close()
    return preamble, sections


@dataclass(frozen=True, slots=True)
class SiteAdapter:
    name: str
    hosts: tuple[str, ...]
    study_url: re.Pattern[str]  # path of a study page
    signatures: tuple[re.Pattern[str], ...]  # visible phrases only this site shows
    layout: Layout
    extract: Callable[[Outline, str, list[str]], TrialRecord]  # (outline, url, problems out)
    # fields a complete page of this site shows; missing ones make a page `partial`
    required: tuple[str, ...] = field(default=("brief_title", "overall_status", "nct_id"))

    def score(self, outline: Outline, url: str) -> int:
        """How strongly the page looks like this site: URL host, signatures, labels seen."""
        points = 0
        low_url = url.lower()
        if any(f"//{h}" in low_url or f".{h}" in low_url for h in self.hosts):
            points += 10
        if outline.canonical and any(h in outline.canonical.lower() for h in self.hosts):
            points += 10
        text = "\n".join(line.text for line in outline.lines)
        points += 3 * sum(1 for sig in self.signatures if sig.search(text))
        labels = self.layout.labels
        seen = {labels[line.key] for line in outline.lines if not line.item and line.key in labels}
        return points + len(seen)
