"""Veeva-style (ctv.veeva.com/study/<slug>) fixture pages in three markups.

The visible content follows docs/dev/page-layouts.md; the page is first described as a
list of logical blocks, then each variant draws the blocks its own way:
  1 semantic: h1/h2/h3 headings, ul/ol lists, dl for the design pairs;
  2 div soup: div/span/strong with build-tool class names, <br>-separated value lines,
    criteria as text-numbered divs (no list markup);
  3 table/section: facts in <th>/<td> rows, nested <section>s, <dt>/<dd>, criteria as
    lists whose items carry their numbering as text.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.devtools.render import plan_page
from pipeline.devtools.render.common import (
    ARM_GROUP_WORDS,
    FUNDER_DISPLAY,
    SVG_ICONS,
    Node,
    class_names,
    criteria_trees,
    css_blob,
    enumerator,
    esc,
    head,
    intervention_line,
    js_bundle,
    masking_line,
    meta_description,
    paragraphs,
    person,
    phase_lines,
    place_line,
    rng_for,
    runs,
    stable_int,
    state_script,
    status_word,
    to_json_str,
    veeva_ages,
)
from pipeline.models import Contact, TrialRecord
from pipeline.vocab import DISPLAY

# --------------------------------------------------------------------------- logical content


@dataclass(slots=True)
class _Site:
    facility: str | None
    place: str | None
    status: str | None
    contacts: list[Contact] = field(default_factory=list)


@dataclass(slots=True)
class _Content:
    title: str
    sponsor: str | None
    sponsor_logo: bool
    status_label: str
    status_lines: list[str]
    facts: list[tuple[str, list[str]]]  # Conditions .. Identifiers
    about: list[list[str]]
    full: list[list[str]]
    eligibility: list[tuple[str, str]]  # Enrollment, Sex, Ages, Volunteers
    criteria: dict[str, list[Node]]
    combined_criteria: bool
    design: list[tuple[str, str]]
    arms_heading: str | None
    arms: list[tuple[str, str | None, list[list[str]], list[str]]]  # label, type line, description, treatments
    site_count: int
    sites: list[_Site]
    central: list[Contact]


def _content(record: TrialRecord, extras: Mapping[str, Any], show_nct: bool, rng: random.Random) -> _Content:
    phases = phase_lines(record.phases, combine=rng.random() < 0.4)
    status = status_word(record.overall_status, "veeva")
    identifiers = [i.id_value for i in record.identifiers if i.id_type != "nct" or show_nct]
    if show_nct and record.nct_id and not any(i.id_type == "nct" for i in record.identifiers):
        identifiers.insert(0, record.nct_id)
    facts: list[tuple[str, list[str]]] = []
    if record.conditions:
        facts.append(("Conditions", list(record.conditions)))
    if record.interventions:
        facts.append(("Treatments", [intervention_line(i.intervention_type, i.name) for i in record.interventions]))
    if record.study_type:
        facts.append(("Study type", [DISPLAY["study_type"].get(record.study_type, record.study_type)]))
    if record.funder_types:
        facts.append(("Funder types", [FUNDER_DISPLAY.get(f, f) for f in record.funder_types]))
    facts.append(("Identifiers", identifiers))  # the heading stays even when empty, as on the real site

    elig: list[tuple[str, str]] = []
    if record.enrollment is not None:
        n = record.enrollment
        noun = "patient" if n == 1 else "patients"
        elig.append(("Enrollment", f"{n} estimated {noun}" if record.enrollment_type == "ESTIMATED" else f"{n} {noun}"))
    if record.sex:
        elig.append(("Sex", DISPLAY["sex"].get(record.sex, record.sex)))
    if ages := veeva_ages(record):
        elig.append(("Ages", ages))
    if record.healthy_volunteers is not None:
        elig.append(("Volunteers", "Accepts Healthy Volunteers" if record.healthy_volunteers else "No Healthy Volunteers"))

    design: list[tuple[str, str]] = []
    if record.study_type == "OBSERVATIONAL":
        if m := extras.get("observational_model"):
            design.append(("Observational model", str(m)))
        if t := extras.get("time_perspective"):
            design.append(("Time perspective", str(t)))
    else:
        if record.primary_purpose:
            design.append(("Primary purpose", DISPLAY["primary_purpose"].get(record.primary_purpose, record.primary_purpose)))
        if record.allocation:
            design.append(("Allocation", DISPLAY["allocation"].get(record.allocation, record.allocation)))
        if record.intervention_model:
            design.append(("Interventional model", DISPLAY["intervention_model"].get(record.intervention_model, "")))
        who = (extras.get("who_masked") or ()) if rng.random() < 0.7 else ()
        if m := masking_line(record.masking, tuple(who)):
            design.append(("Masking", m))

    arms = []
    for arm in record.arms:
        arms.append((
            arm.label,
            ARM_GROUP_WORDS.get(arm.arm_type or ""),
            paragraphs(arm.description),
            list(arm.interventions),
        ))
    arms_heading = None
    if arms:
        k = len(arms)
        groups = f"{k} patient group" if k == 1 else f"{k} patient groups"
        arms_heading = f"{record.enrollment} participants in {groups}" if record.enrollment is not None else groups.capitalize()

    sites: list[_Site] = []
    site_index: dict[int, int] = {}  # location index -> index in `sites`
    for i, loc in enumerate(record.locations):
        if not (loc.facility or loc.city or loc.state or loc.country):
            continue
        site_index[i] = len(sites)
        sites.append(_Site(loc.facility, place_line(loc.city, loc.state, loc.country), status_word(loc.status, "veeva")))
    _attach_site_contacts(record, sites, site_index, extras.get("site_contact_sites"))

    return _Content(
        title=record.brief_title or record.official_title or "",
        sponsor=record.lead_sponsor,
        sponsor_logo=rng.random() < 0.4,
        status_label="Status and phase" if record.phases else "Status",
        status_lines=([status] if status else []) + phases,
        facts=facts,
        about=paragraphs(record.brief_summary),
        full=paragraphs(record.detailed_description),
        eligibility=elig,
        criteria=criteria_trees(record, extras.get("criteria_styles")),
        combined_criteria=rng.random() < 0.25,
        design=design,
        arms_heading=arms_heading,
        arms=arms,
        site_count=len(sites),
        sites=sites,
        central=[c for c in record.contacts if c.role == "central_contact"],
    )


def _attach_site_contacts(
    record: TrialRecord, sites: list[_Site], site_index: Mapping[int, int], owners: Sequence[int] | None
) -> None:
    """Site contacts under their site.  TrialRecord does not link a site contact to its
    location; the loader's `extras["site_contact_sites"]` does (without it, all go under
    the first site -- the evaluation does not score which site a contact is listed under)."""
    contacts = [c for c in record.contacts if c.role == "site_contact"]
    if not contacts or not sites:
        return
    for n, contact in enumerate(contacts):
        owner = owners[n] if owners is not None and n < len(owners) else 0
        sites[site_index.get(owner, 0)].contacts.append(contact)


# --------------------------------------------------------------------------- chrome

_FOOTER_LINKS = ["Clinical trials", "Find clinical trials", "Trials by location", "Research sites", "Resources", "Legal"]


def _chrome_pieces(rng: random.Random, cls: list[str], variant: int) -> dict[str, str]:
    c = lambda: rng.choice(cls)  # noqa: E731
    nav_items = "".join(f'<li class="{c()}"><a href="/{w.lower().replace(" ", "-")}">{w}</a></li>'
                        for w in ["Find clinical trials", "Trials by location", "Research sites", "Resources"])
    nav_hidden = ' style="display:none"' if variant != 3 else ""
    header = (
        f'<header class="{c()}"><div class="{c()}"><a class="{c()}" href="/">ClinicalTrials.Veeva</a></div>'
        f'<nav class="{c()}" aria-label="Main"><span class="{c()}">Menu</span>'
        f'<ul class="{c()}"{nav_hidden}>{nav_items}</ul></nav>'
        f'<form class="{c()}" role="search" action="/search"><input type="search" name="q" '
        f'placeholder="Search by condition, treatment or location"><button type="submit">Search</button></form>'
        f'<svg class="{c()}" width="20" height="20"><use href="#i-search"></use></svg></header>'
    )
    cookie = (
        f'<div class="{c()}" role="dialog" aria-label="Cookie consent"><p class="{c()}">We use cookies to '
        f'improve your experience and analyze site traffic. See our <a href="/legal/cookies">Cookie Policy</a>.</p>'
        f'<button class="{c()}" type="button">Accept</button><button class="{c()}" type="button">Decline</button></div>'
    )
    links = "".join(f'<li><a href="/{w.lower().replace(" ", "-")}">{w}</a></li>' for w in _FOOTER_LINKS[1:])
    footer = (
        f'<footer class="{c()}"><div class="{c()}"><p class="{c()}">Data sourced from clinicaltrials.gov</p></div>'
        f'<div class="{c()}"><h4 class="{c()}">Clinical trials</h4><ul class="{c()}">{links}</ul></div>'
        f'<div class="{c()}"><a href="/legal/privacy">Privacy</a> <a href="/legal/terms">Terms of use</a></div>'
        f'<p class="{c()}">© Copyright 2025 Veeva Systems</p></footer>'
    )
    hidden = (
        f'<div class="{c()}" hidden><h2>Share this trial</h2><p>Status: Completed</p>'
        f'<p>Copy link</p></div>'
        f'<template id="tpl-site"><div class="site"><p>Facility name</p><p>City, Country</p></div></template>'
    )
    aside = (
        f'<aside class="{c()}"><div class="{c()}">Similar trials</div>'
        f'<div class="{c()}" role="status"><span class="{c()}"></span>Loading...</div></aside>'
    )
    noscript = '<noscript>You need to enable JavaScript to see all trial locations.</noscript>'
    return {"header": header, "cookie": cookie, "footer": footer, "hidden": hidden, "aside": aside,
            "noscript": noscript}


# --------------------------------------------------------------------------- variant 1: semantic

def _v1_items(nodes: Sequence[Node], depth: int) -> str:
    out = []
    for kind, group in runs(nodes):
        if kind == "para" and depth == 0:
            out.append(f"<p>{esc(group[0].criterion.text)}</p>")
            continue
        tag = "ol" if any(n.ordered for n in group) else "ul"
        lis = "".join(f"<li>{esc(n.criterion.text)}{_v1_children(n, depth)}</li>" for n in group)
        out.append(f"<{tag}>{lis}</{tag}>")
    return "".join(out)


def _v1_children(node: Node, depth: int) -> str:
    if not node.children:
        return ""
    tag = "ol" if any(ch.ordered for ch in node.children) else "ul"
    lis = "".join(f"<li>{esc(ch.criterion.text)}{_v1_children(ch, depth + 1)}</li>" for ch in node.children)
    return f"<{tag}>{lis}</{tag}>"


def _lines_p(lines: Sequence[str]) -> str:
    return "".join(f"<p>{esc(x)}</p>" for x in lines)


def _paras_p(paras: Sequence[Sequence[str]]) -> str:
    return "".join("<p>" + "<br>".join(esc(x) for x in p) + "</p>" for p in paras)


def _criteria_v1(ct: _Content) -> str:
    inc, exc = ct.criteria.get("inclusion", []), ct.criteria.get("exclusion", [])
    if ct.combined_criteria:
        body = ""
        if inc:
            body += "<p>Inclusion Criteria:</p>" + _v1_items(inc, 0)
        if exc:
            body += "<p>Exclusion Criteria:</p>" + _v1_items(exc, 0)
        return f"<section><h3>Inclusion and exclusion criteria</h3>{body}</section>" if body else ""
    out = ""
    if inc:
        out += f"<section><h3>Inclusion criteria</h3>{_v1_items(inc, 0)}</section>"
    if exc:
        out += f"<section><h3>Exclusion criteria</h3>{_v1_items(exc, 0)}</section>"
    return out


def _body_v1(ct: _Content, rng: random.Random, cls: list[str]) -> str:
    c = lambda: rng.choice(cls)  # noqa: E731
    out = [f'<article class="{c()}">', f'<h1 class="{c()}">{esc(ct.title)}</h1>']
    if ct.sponsor:
        if ct.sponsor_logo:
            out.append(f'<div class="{c()}"><img src="/logos/{stable_int(ct.sponsor) % 997}.png" alt="{esc(ct.sponsor)} logo" width="40" height="40">'
                       f'<p class="{c()}">{esc(ct.sponsor)}</p></div>')
        else:
            out.append(f'<div class="{c()}"><span class="{c()}">{esc(ct.sponsor[:1].upper())}</span>'
                       f'<p class="{c()}">{esc(ct.sponsor)}</p></div>')
    out.append(f'<section class="{c()}"><h2>{esc(ct.status_label)}</h2><ul class="{c()}">'
               + "".join(f"<li>{esc(x)}</li>" for x in ct.status_lines) + "</ul></section>")
    for label, values in ct.facts:
        items = "".join(f"<li>{esc(v)}</li>" for v in values)
        out.append(f'<section class="{c()}"><h2>{esc(label)}</h2><ul class="{c()}">{items}</ul></section>')
    out.append(f'<h2 class="{c()}">Details and patient eligibility</h2>')
    if ct.about:
        out.append(f"<section><h3>About</h3>{_paras_p(ct.about)}</section>")
    if ct.full:
        out.append(f"<section><h3>Full description</h3>{_paras_p(ct.full)}</section>")
    for label, value in ct.eligibility:
        out.append(f'<section class="{c()}"><h3>{esc(label)}</h3><p>{esc(value)}</p></section>')
    out.append(_criteria_v1(ct))
    if ct.design:
        pairs = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in ct.design)
        out.append(f'<section class="{c()}"><h2>Trial design</h2><dl>{pairs}</dl></section>')
    if ct.arms_heading:
        lis = []
        for label, type_line, desc, treatments in ct.arms:
            parts = [f"<h4>{esc(label)}</h4>"]
            if type_line:
                parts.append(f"<p>{esc(type_line)}</p>")
            if desc:
                parts.append("<p>Description:</p>" + _paras_p(desc))
            if treatments:
                parts.append(f"<p>{'Treatment:' if len(treatments) == 1 else 'Treatments:'}</p>"
                             + "<ul>" + "".join(f"<li>{esc(t)}</li>" for t in treatments) + "</ul>")
            lis.append(f'<li class="{c()}">' + "".join(parts) + "</li>")
        out.append(f'<section class="{c()}"><h2>{esc(ct.arms_heading)}</h2><ul class="{c()}">{"".join(lis)}</ul></section>')
    out.append(_sites_v1(ct, c))
    out.append("</article>")
    return "".join(out)


def _contact_lines(contact: Contact, with_details: bool = True) -> list[str]:
    lines = [person(contact.name, contact.credentials)]
    if with_details:
        lines += [x for x in (contact.phone, contact.email) if x]
    return lines


def _sites_v1(ct: _Content, c: Any) -> str:
    out = [f'<section class="{c()}"><h2>Trial contacts and locations</h2><p class="{c()}">{ct.site_count}</p>'
           f'<div class="{c()}" role="status">Loading...</div>']
    if ct.sites:
        lis = []
        for s in ct.sites:
            lines = [x for x in (s.facility, s.place, s.status) if x]
            for contact in s.contacts:
                lines += _contact_lines(contact)
            lis.append(f'<li class="{c()}">{_lines_p(lines)}</li>')
        out.append(f'<ul class="{c()}">{"".join(lis)}</ul>')
    if ct.central:
        names = "; ".join(person(x.name, x.credentials) for x in ct.central)
        out.append(f'<h3 class="{c()}">Central trial contact</h3><p>{esc(names)}</p>')
    out.append("</section>")
    return "".join(out)


# --------------------------------------------------------------------------- variant 2: div soup

def _soup_items(nodes: Sequence[Node], depth: int, scheme: int, c: Any) -> str:
    out = []
    for kind, group in runs(nodes):
        for idx, n in enumerate(group, start=1):
            marker = enumerator(n.style, idx, depth, scheme) if kind == "list" else ""
            kids = f'<div class="{c()}">{_soup_items(n.children, depth + 1, scheme, c)}</div>' if n.children else ""
            out.append(f'<div class="{c()}"><div class="{c()}">{esc(marker + n.criterion.text)}</div>{kids}</div>')
    return "".join(out)


def _soup_label(text: str, c: Any, rng: random.Random) -> str:
    tag = rng.choice(["strong", "span", "b"])
    return f'<div class="{c()}"><{tag} class="{c()}">{esc(text)}</{tag}></div>'


def _body_v2(ct: _Content, rng: random.Random, cls: list[str]) -> str:
    c = lambda: rng.choice(cls)  # noqa: E731
    scheme = rng.randrange(3)
    out = [f'<div class="{c()}"><div class="{c()}"><span class="{c()}">{esc(ct.title)}</span></div>']
    if ct.sponsor:
        avatar = (f'<img class="{c()}" src="/logos/s.png" alt="{esc(ct.sponsor)} logo">' if ct.sponsor_logo
                  else f'<div class="{c()}">{esc(ct.sponsor[:1].upper())}</div>')
        out.append(f'<div class="{c()}">{avatar}<div class="{c()}">{esc(ct.sponsor)}</div></div>')
    out.append(f'<div class="{c()}">{_soup_label(ct.status_label, c, rng)}<div class="{c()}">'
               + "<br>".join(esc(x) for x in ct.status_lines) + "</div></div>")
    for label, values in ct.facts:
        out.append(f'<div class="{c()}">{_soup_label(label, c, rng)}<div class="{c()}">'
                   + "<br>".join(esc(v) for v in values) + "</div></div>")
    out.append(f'<div class="{c()}"><b>Details and patient eligibility</b></div>')
    for label, paras in (("About", ct.about), ("Full description", ct.full)):
        if paras:
            body = "".join(f'<div class="{c()}">' + "<br>".join(esc(x) for x in p) + "</div>" for p in paras)
            out.append(f'<div class="{c()}">{_soup_label(label, c, rng)}{body}</div>')
    for label, value in ct.eligibility:
        out.append(f'<div class="{c()}">{_soup_label(label, c, rng)}<div class="{c()}">{esc(value)}</div></div>')
    inc, exc = ct.criteria.get("inclusion", []), ct.criteria.get("exclusion", [])
    if ct.combined_criteria and (inc or exc):
        body = ""
        if inc:
            body += f'<div class="{c()}">Inclusion Criteria:</div>' + _soup_items(inc, 0, scheme, c)
        if exc:
            body += f'<div class="{c()}">Exclusion Criteria:</div>' + _soup_items(exc, 0, scheme, c)
        out.append(f'<div class="{c()}">{_soup_label("Inclusion and exclusion criteria", c, rng)}{body}</div>')
    else:
        for label, nodes in (("Inclusion criteria", inc), ("Exclusion criteria", exc)):
            if nodes:
                out.append(f'<div class="{c()}">{_soup_label(label, c, rng)}{_soup_items(nodes, 0, scheme, c)}</div>')
    if ct.design:
        pairs = "".join(f'<div class="{c()}"><div class="{c()}">{esc(k)}</div><div class="{c()}">{esc(v)}</div></div>'
                        for k, v in ct.design)
        out.append(f'<div class="{c()}">{_soup_label("Trial design", c, rng)}{pairs}</div>')
    if ct.arms_heading:
        blocks = []
        for label, type_line, desc, treatments in ct.arms:
            lines = [esc(label)] + ([esc(type_line)] if type_line else [])
            inner = f'<div class="{c()}">' + "<br>".join(lines) + "</div>"
            if desc:  # one line: the next arm's label must not read as more description
                inner += f'<div class="{c()}">Description:<br>' + esc(" ".join(x for p in desc for x in p)) + "</div>"
            if treatments:
                inner += (f'<div class="{c()}">{"Treatment:" if len(treatments) == 1 else "Treatments:"}<br>'
                          + "<br>".join(esc(t) for t in treatments) + "</div>")
            blocks.append(f'<div class="{c()}">{inner}</div>')
        out.append(f'<div class="{c()}">{_soup_label(ct.arms_heading, c, rng)}{"".join(blocks)}</div>')
    out.append(f'<div class="{c()}">{_soup_label("Trial contacts and locations", c, rng)}'
               f'<div class="{c()}">{ct.site_count}</div><div class="{c()}">Loading...</div>')
    for s in ct.sites:
        lines = [x for x in (s.facility, s.place, s.status) if x]
        for contact in s.contacts:
            lines += _contact_lines(contact)
        out.append(f'<div class="{c()}">' + "<br>".join(esc(x) for x in lines) + "</div>")
    if ct.central:
        out.append(_soup_label("Central trial contact", c, rng))
        for contact in ct.central:
            out.append(f'<div class="{c()}">' + "<br>".join(esc(x) for x in _contact_lines(contact)) + "</div>")
    out.append("</div></div>")
    return "".join(out)


# --------------------------------------------------------------------------- variant 3: table / sections

def _v3_items(nodes: Sequence[Node], depth: int, scheme: int) -> str:
    out = []
    for kind, group in runs(nodes):
        if kind == "para" and depth == 0:
            out.append(f"<p>{esc(group[0].criterion.text)}</p>")
            continue
        lis = []
        for idx, n in enumerate(group, start=1):
            marker = enumerator(n.style, idx, depth, scheme)
            kids = ""
            if n.children:
                kids = '<ul style="list-style:none">' + _v3_children(n.children, depth + 1, scheme) + "</ul>"
            lis.append(f"<li><span>{esc(marker.strip())}</span> {esc(n.criterion.text)}{kids}</li>"
                       if marker else f"<li>{esc(n.criterion.text)}{kids}</li>")
        out.append('<ul style="list-style:none">' + "".join(lis) + "</ul>")
    return "".join(out)


def _v3_children(nodes: Sequence[Node], depth: int, scheme: int) -> str:
    lis = []
    index = 0
    for n in nodes:
        index = index + 1 if n.style != "para" else index
        marker = enumerator(n.style, index, depth, scheme) if n.style != "para" else ""
        kids = ('<ul style="list-style:none">' + _v3_children(n.children, depth + 1, scheme) + "</ul>") if n.children else ""
        text = f"<span>{esc(marker.strip())}</span> {esc(n.criterion.text)}" if marker else esc(n.criterion.text)
        lis.append(f"<li>{text}{kids}</li>")
    return "".join(lis)


def _body_v3(ct: _Content, rng: random.Random, cls: list[str]) -> str:
    c = lambda: rng.choice(cls)  # noqa: E731
    scheme = rng.randrange(3)
    out = [f'<section class="{c()}"><header class="{c()}"><h1>{esc(ct.title)}</h1>']
    if ct.sponsor:
        if ct.sponsor_logo:
            out.append(f'<figure class="{c()}"><img src="/logos/x.png" alt="{esc(ct.sponsor)} logo">'
                       f"<figcaption>{esc(ct.sponsor)}</figcaption></figure>")
        else:
            out.append(f'<div class="{c()}"><span>{esc(ct.sponsor[:1].upper())}</span></div><p>{esc(ct.sponsor)}</p>')
    out.append("</header>")
    rows = [f"<tr><th>{esc(ct.status_label)}</th><td>{_lines_p(ct.status_lines)}</td></tr>"]
    for label, values in ct.facts:
        rows.append(f"<tr><th>{esc(label)}</th><td>{_lines_p(values)}</td></tr>")
    out.append(f'<table class="{c()}"><tbody>{"".join(rows)}</tbody></table>')
    out.append(f'<section class="{c()}"><h2>Details and patient eligibility</h2>')
    if ct.about:
        out.append(f"<section><h3>About</h3>{_paras_p(ct.about)}</section>")
    if ct.full:
        out.append(f"<section><h3>Full description</h3>{_paras_p(ct.full)}</section>")
    if ct.eligibility:
        out.append("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in ct.eligibility) + "</dl>")
    inc, exc = ct.criteria.get("inclusion", []), ct.criteria.get("exclusion", [])
    if ct.combined_criteria and (inc or exc):
        body = ""
        if inc:
            body += "<p>Inclusion Criteria:</p>" + _v3_items(inc, 0, scheme)
        if exc:
            body += "<p>Exclusion Criteria:</p>" + _v3_items(exc, 0, scheme)
        out.append(f"<section><h3>Inclusion and exclusion criteria</h3>{body}</section>")
    else:
        for label, nodes in (("Inclusion criteria", inc), ("Exclusion criteria", exc)):
            if nodes:
                out.append(f"<section><h3>{label}</h3>{_v3_items(nodes, 0, scheme)}</section>")
    out.append("</section>")
    if ct.design:
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in ct.design)
        out.append(f'<section class="{c()}"><h2>Trial design</h2><table><tbody>{rows}</tbody></table></section>')
    if ct.arms_heading:
        bodies = []
        for label, type_line, desc, treatments in ct.arms:
            rows = [f'<tr><th colspan="2">{esc(label)}</th></tr>']
            if type_line:
                rows.append(f'<tr><td colspan="2">{esc(type_line)}</td></tr>')
            if desc:
                rows.append(f"<tr><td>Description:</td><td>{esc(' '.join(x for p in desc for x in p))}</td></tr>")
            if treatments:
                word = "Treatment:" if len(treatments) == 1 else "Treatments:"
                rows.append(f"<tr><td>{word}</td><td>{_lines_p(treatments)}</td></tr>")
            bodies.append("<tbody>" + "".join(rows) + "</tbody>")
        out.append(f'<section class="{c()}"><h2>{esc(ct.arms_heading)}</h2><table>{"".join(bodies)}</table></section>')
    out.append(f'<section class="{c()}"><h2>Trial contacts and locations</h2><p>{ct.site_count}</p><p>Loading...</p>')
    if ct.sites:
        rows = []
        for s in ct.sites:
            contact_lines = [x for contact in s.contacts for x in _contact_lines(contact)]
            cells = [s.facility, s.place, s.status]
            tds = "".join(f"<td>{esc(x)}</td>" for x in cells if x)
            if contact_lines:
                tds += "<td>" + "<br>".join(esc(x) for x in contact_lines) + "</td>"
            rows.append(f"<tr>{tds}</tr>")
        out.append(f'<table class="{c()}"><tbody>{"".join(rows)}</tbody></table>')
    if ct.central:
        rows = "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in _contact_lines(contact)) + "</tr>"
                       for contact in ct.central)
        out.append(f'<section><h3>Central trial contact</h3><table><tbody>{rows}</tbody></table></section>')
    out.append("</section></section>")
    return "".join(out)


# --------------------------------------------------------------------------- page

def render_veeva(
    record: TrialRecord,
    variant: int,
    *,
    show_nct: bool,
    rng_seed: int | str = 0,
    extras: Mapping[str, Any] | None = None,
) -> str:
    """A full Veeva-style HTML document for `record` in markup `variant` (1, 2 or 3)."""
    plan = plan_page(record, "veeva", variant, show_nct=show_nct, rng_seed=rng_seed)
    rng = rng_for(plan.seed, "page")
    extras = extras or {}
    content = _content(record, extras, plan.show_nct, rng)
    cls = class_names(rng, 60, style=["module", "hash", "short"][variant - 1])
    chrome = _chrome_pieces(rng, cls, variant)
    body = {1: _body_v1, 2: _body_v2, 3: _body_v3}[variant](content, rng, cls)
    css = css_blob(rng, cls, rules=120)
    title = f"{content.title} | ClinicalTrials.Veeva"
    ld = to_json_str({"@context": "https://schema.org", "@type": "Organization", "name": "Veeva Systems",
                      "url": "https://ctv.veeva.com"})
    cookie_top = rng.random() < 0.5
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        head(title=title, description=meta_description(record), canonical=plan.canonical, og_url=plan.og_url,
             css=css, extra=[f'<script type="application/ld+json">{ld}</script>']),
        f'<body class="{rng.choice(cls)}">',
        SVG_ICONS,
        chrome["cookie"] if cookie_top else "",
        chrome["header"],
        f'<main class="{rng.choice(cls)}">',
        body,
        chrome["aside"],
        "</main>",
        chrome["footer"],
        chrome["hidden"],
        chrome["noscript"],
        "" if cookie_top else chrome["cookie"],
        f"<script>window.__APP_STATE__={state_script(rng, record.nct_id, 'veeva')};</script>",
        f'<script defer>{js_bundle(rng, 14000)}</script>',
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
