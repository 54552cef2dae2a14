"""Shared pieces of the fixture renderers: seeded randomness, formatting, criteria trees, boilerplate.

Everything is a pure function of its inputs (no clock, no global state), so a page
rendered twice from the same record and seed is byte-identical.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import random
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.models import Criterion, TrialRecord
from pipeline.vocab import DISPLAY

# --------------------------------------------------------------------------- randomness


def stable_int(*parts: object) -> int:
    """A process-independent hash (Python's hash() is salted per process)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def rng_for(*parts: object) -> random.Random:
    return random.Random(stable_int(*parts))


def class_names(rng: random.Random, n: int, style: str = "hash") -> list[str]:
    """Meaningless class names of the kinds build tools emit ("css-1x9k2a", "Trial_header__3kF9a")."""
    out: list[str] = []
    alnum = string.ascii_lowercase + string.digits
    words = ["wrap", "box", "row", "col", "item", "inner", "block", "cell", "txt", "head", "body", "grid"]
    for i in range(n):
        if style == "hash":
            name = "css-" + "".join(rng.choice(alnum) for _ in range(6))
        elif style == "module":
            name = f"{rng.choice(words).capitalize()}_{rng.choice(words)}__{''.join(rng.choice(string.ascii_letters + string.digits) for _ in range(5))}"
        else:
            name = rng.choice(string.ascii_lowercase) + "".join(rng.choice(alnum) for _ in range(4)) + str(i)
        out.append(name)
    return out


# --------------------------------------------------------------------------- text formatting

def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def paragraphs(text: str | None) -> list[list[str]]:
    """"p1 line1\\np1 line2\\n\\np2" -> [["p1 line1", "p1 line2"], ["p2"]]."""
    if not text:
        return []
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        if lines:
            out.append(lines)
    return out


def date_short(d: dt.date | None) -> str | None:
    """Apr 11, 2024"""
    return f"{d.strftime('%b')} {d.day}, {d.year}" if d else None


def date_long(d: dt.date | None) -> str | None:
    """June 14, 2025"""
    return f"{d.strftime('%B')} {d.day}, {d.year}" if d else None


VEEVA_STATUS = {"RECRUITING": "Enrolling", "NOT_YET_RECRUITING": "Not yet enrolling"}
FUNDER_DISPLAY = {"NIH": "NIH", "FED": "U.S. Fed", "INDUSTRY": "Industry", "OTHER": "Other"}
ARM_GROUP_WORDS = {
    "EXPERIMENTAL": "Experimental group",
    "ACTIVE_COMPARATOR": "Active Comparator group",
    "PLACEBO_COMPARATOR": "Placebo Comparator group",
    "SHAM_COMPARATOR": "Sham Comparator group",
    "NO_INTERVENTION": "No Intervention group",
    "OTHER": "Other group",
}


def status_word(code: str | None, site: str) -> str | None:
    if not code:
        return None
    if site == "veeva" and code in VEEVA_STATUS:
        return VEEVA_STATUS[code]
    return DISPLAY["overall_status"].get(code, code.replace("_", " ").capitalize())


def phase_lines(phases: Sequence[str], combine: bool) -> list[str]:
    words = [DISPLAY["phase"].get(p, p) for p in phases]
    if combine and len(words) > 1:
        return ["/".join(words)]
    return words


_AGE_SPLIT = re.compile(r"^(\d+(?:\.\d+)?)\s+(\w+?)s?$", re.I)


def _age_parts(text: str) -> tuple[str, str]:
    m = _AGE_SPLIT.match(text.strip())
    if not m:
        return text, ""
    return m[1], m[2].lower()


def veeva_ages(record: TrialRecord) -> str | None:
    """"18 to 75 years old", "3+ years old", "up to 65 years old", "6 months to 17 years old"."""
    lo, hi = record.min_age, record.max_age
    if not lo and not hi:
        return None
    if lo and hi:
        (ln, lu), (hn, hu) = _age_parts(lo), _age_parts(hi)
        if lu == hu:
            return f"{ln} to {hn} {hu}s old"
        return f"{ln} {lu}s to {hn} {hu}s old"
    if lo:
        n, u = _age_parts(lo)
        return f"{n}+ {u}s old"
    n, u = _age_parts(hi)  # type: ignore[arg-type]
    return f"up to {n} {u}s old"


def intervention_line(itype: str | None, name: str) -> str:
    word = DISPLAY["intervention_type"].get(itype or "")
    return f"{word}: {name}" if word else name


def person(name: str, credentials: str | None) -> str:
    return f"{name}, {credentials}" if credentials else name


def masking_line(code: str | None, who: Sequence[str]) -> str | None:
    if not code:
        return None
    word = DISPLAY["masking"].get(code, code.capitalize())
    if code != "NONE" and who:
        return f"{word} ({', '.join(who)})"
    return word


def place_line(city: str | None, state: str | None, country: str | None) -> str | None:
    parts = [p for p in (city, state, country) if p]
    return ", ".join(parts) if parts else None


def slugify(text: str, limit: int = 90) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "study"


# --------------------------------------------------------------------------- criteria trees

@dataclass(slots=True)
class Node:
    criterion: Criterion
    style: str  # bullet / number / letter / roman / para
    children: list[Node] = field(default_factory=list)

    @property
    def ordered(self) -> bool:
        return self.style in ("number", "letter", "roman")


def criteria_trees(record: TrialRecord, styles: Sequence[str] | None) -> dict[str, list[Node]]:
    """Criteria as forests per type, in document order."""
    out: dict[str, list[Node]] = {"inclusion": [], "exclusion": []}
    by_key: dict[tuple[str, int], Node] = {}
    for i, c in enumerate(record.criteria):
        style = styles[i] if styles is not None and i < len(styles) else "bullet"
        node = Node(c, style)
        by_key[(c.criterion_type, c.ordinal)] = node
        parent = by_key.get((c.criterion_type, c.parent_ordinal)) if c.parent_ordinal else None
        if parent is not None:
            parent.children.append(node)
        else:
            out.setdefault(c.criterion_type, []).append(node)
    return out


def runs(nodes: Sequence[Node]) -> list[tuple[str, list[Node]]]:
    """Group siblings into ("list", [...]) runs and single ("para", [node]) entries."""
    out: list[tuple[str, list[Node]]] = []
    for node in nodes:
        if node.style == "para":
            out.append(("para", [node]))
        elif out and out[-1][0] == "list":
            out[-1][1].append(node)
        else:
            out.append(("list", [node]))
    return out


_ROMANS = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii", "xiv", "xv"]


def enumerator(style: str, index: int, depth: int, scheme: int) -> str:
    """Text marker for the index-th (1-based) sibling: "3. ", "c) ", "(2) ", "• "."""
    if style == "para":
        return ""
    if style in ("number", "letter", "roman"):
        letter = string.ascii_lowercase[(index - 1) % 26]
        roman = _ROMANS[(index - 1) % len(_ROMANS)]
        forms = [
            [f"{index}. ", f"{letter}. ", f"{roman}. "],
            [f"{index}) ", f"({letter}) ", f"({index}) "],
            [f"({index}) ", f"{letter}) ", f"{roman}) "],
        ][scheme % 3]
        return forms[min(depth, 2)]
    bullets = [["• ", "◦ ", "- "], ["- ", "• ", "◦ "], ["• ", "- ", "* "]][scheme % 3]
    return bullets[min(depth, 2)]


# --------------------------------------------------------------------------- boilerplate

_CSS_PROPS = [
    "display:flex", "display:block", "display:grid", "margin:0", "margin:0 auto", "padding:8px 16px",
    "padding:0", "color:#1b1f24", "color:#5f6b7a", "background:#fff", "background:#f4f6f9",
    "font-size:14px", "font-size:1.125rem", "font-weight:600", "line-height:1.5", "border-radius:6px",
    "border:1px solid #dfe3e8", "gap:12px", "align-items:center", "justify-content:space-between",
    "max-width:1200px", "width:100%", "position:relative", "overflow:hidden", "text-decoration:none",
    "transition:color .2s ease", "box-shadow:0 1px 2px rgba(0,0,0,.08)", "flex-wrap:wrap",
    "list-style:none", "grid-template-columns:repeat(2,minmax(0,1fr))", "white-space:nowrap",
]


def css_blob(rng: random.Random, classes: Sequence[str], rules: int) -> str:
    """A stylesheet of plausible rules over the page's class names."""
    tags = ["body", "h1", "h2", "h3", "p", "ul", "ol", "li", "a", "table", "th", "td", "dl", "dt", "dd", "nav", "footer"]
    out = [":root{--brand:#f36f21;--ink:#1b1f24;--muted:#5f6b7a;--line:#dfe3e8}"]
    for i in range(rules):
        if classes and rng.random() < 0.8:
            sel = "." + rng.choice(classes)
            if rng.random() < 0.3:
                sel += " " + rng.choice(tags)
            if rng.random() < 0.15:
                sel += ":hover"
        else:
            sel = rng.choice(tags)
        props = ";".join(rng.sample(_CSS_PROPS, rng.randint(2, 6)))
        out.append(f"{sel}{{{props}}}")
        if i % 40 == 39:
            out.append(f"@media (max-width:{rng.choice([640, 768, 1024])}px){{.{rng.choice(classes) if classes else 'x'}{{display:none}}}}")
    return "\n".join(out)


_JS_WORDS = ["render", "hydrate", "state", "props", "route", "fetch", "cache", "query", "trial", "sites",
             "filter", "locale", "track", "event", "module", "chunk", "store", "dispatch", "effect"]


def js_bundle(rng: random.Random, size: int) -> str:
    """Minified-looking JavaScript of about `size` characters."""
    parts: list[str] = ["!function(){\"use strict\";var e={};"]
    total = len(parts[0])
    n = 0
    while total < size:
        a, b, c = (rng.choice(_JS_WORDS) + str(rng.randint(0, 99)) for _ in range(3))
        chunk = rng.choice([
            f"function {a}(t,n){{return t&&n?t.map(function(r){{return r.{b}+n}}):null}}",
            f"e.{a}=function(t){{var n=t.{b}||{{}};return Object.keys(n).length>{rng.randint(0, 9)}?n:e.{c}(t)}};",
            f"var {a}=[{','.join(str(rng.randint(0, 999)) for _ in range(8))}];",
            f"e.{b}=function(){{try{{return window.localStorage.getItem(\"{c}\")}}catch(t){{return null}}}};",
            f"if(typeof e.{a}===\"function\"){{e.{a}({{id:{n},name:\"{c}\"}})}}",
        ])
        parts.append(chunk)
        total += len(chunk)
        n += 1
    parts.append("}();")
    return "".join(parts)


def decoy_nct(rng: random.Random, avoid: str | None) -> str:
    while True:
        nct = "NCT0" + "".join(rng.choice(string.digits) for _ in range(7))
        if nct != avoid:
            return nct


def state_script(rng: random.Random, avoid_nct: str | None, site: str) -> str:
    """App state that looks like trial data but belongs to other trials: parsers must ignore scripts."""
    related = []
    for _ in range(3):
        related.append({
            "nctId": decoy_nct(rng, avoid_nct),
            "title": rng.choice([
                "A Study of Drug X in Adults With Advanced Solid Tumors",
                "Safety of Vaccine Y in Healthy Volunteers",
                "Observational Registry of Patients With Heart Failure",
            ]),
            "status": rng.choice(["Recruiting", "Completed", "Enrolling", "Terminated"]),
            "phase": rng.choice(["Phase 1", "Phase 2", "Phase 3", "Not Applicable"]),
            "sponsor": rng.choice(["Acme Therapeutics", "Global Health Institute", "Northwind Pharma"]),
            "enrollment": rng.randint(10, 900),
            "eligibility": "Inclusion Criteria:\n* Age 18 to 65 years\nExclusion Criteria:\n* Pregnancy",
            "locations": [{"city": "Springfield", "country": "United States"}],
        })
    state = {"site": site, "build": rng.randint(10**6, 10**7), "user": None, "relatedTrials": related,
             "flags": {"newSearch": True, "mapView": rng.random() < 0.5}}
    text = json.dumps(state, separators=(",", ":"))
    return text.replace("</", "<\\/")


SVG_ICONS = (
    '<svg xmlns="http://www.w3.org/2000/svg" style="display:none">'
    '<symbol id="i-search" viewBox="0 0 24 24"><path d="M15.5 14h-.79l-.28-.27A6.47 6.47 0 0 0 16 9.5 '
    '6.5 6.5 0 1 0 9.5 16c1.61 0 3.09-.59 4.23-1.57l.27.28v.79l5 4.99L20.49 19l-4.99-5zm-6 0C7.01 14 5 '
    '11.99 5 9.5S7.01 5 9.5 5 14 7.01 14 9.5 11.99 14 9.5 14z"/></symbol>'
    '<symbol id="i-pin" viewBox="0 0 24 24"><path d="M12 2C8.13 2 5 5.13 5 9c0 5.25 7 13 7 13s7-7.75 '
    '7-13c0-3.87-3.13-7-7-7zm0 9.5a2.5 2.5 0 0 1 0-5 2.5 2.5 0 0 1 0 5z"/></symbol>'
    '<symbol id="i-mail" viewBox="0 0 24 24"><path d="M20 4H4c-1.1 0-2 .9-2 2v12c0 1.1.9 2 2 2h16c1.1 0 '
    '2-.9 2-2V6c0-1.1-.9-2-2-2zm0 4-8 5-8-5V6l8 5 8-5v2z"/></symbol>'
    '<symbol id="i-phone" viewBox="0 0 24 24"><path d="M6.62 10.79a15.05 15.05 0 0 0 6.59 6.59l2.2-2.2c.27'
    '-.27.67-.36 1.02-.24 1.12.37 2.33.57 3.57.57.55 0 1 .45 1 1V20c0 .55-.45 1-1 1C10.61 21 3 13.39 3 4c0'
    '-.55.45-1 1-1h3.5c.55 0 1 .45 1 1 0 1.25.2 2.45.57 3.57.11.35.03.74-.25 1.02l-2.2 2.2z"/></symbol>'
    "</svg>"
)


def head(
    *,
    title: str,
    description: str,
    canonical: str | None,
    og_url: str | None,
    css: str,
    extra: Iterable[str] = (),
) -> str:
    parts = [
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f'<meta name="description" content="{esc(description)}">',
        f'<meta property="og:title" content="{esc(title)}">',
        '<meta property="og:type" content="website">',
    ]
    if og_url:
        parts.append(f'<meta property="og:url" content="{esc(og_url)}">')
    if canonical:
        parts.append(f'<link rel="canonical" href="{esc(canonical)}">')
    parts += [
        '<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>',
        '<link rel="icon" href="/favicon.ico" sizes="any">',
        *extra,
        f"<style>{css}</style>",
        "</head>",
    ]
    return "\n".join(parts)


def meta_description(record: TrialRecord) -> str:
    text = (record.brief_summary or record.brief_title or "").replace("\n", " ")
    return text[:155]


def to_json_str(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
