"""ClinConnect-style (clinconnect.io/trials/<NCT>) fixture pages in three markups.

Visible content per docs/dev/page-layouts.md: title, "Launched by SPONSOR · date",
"Current as of ...", status and phase, keywords, a site-written "ClinConnect Summary"
and "About <Sponsor>" blurb (not trial data), gender, ONE flat criteria list with
"Inclusion Criteria:"/"Exclusion Criteria:" marker items and "• "-prefixed texts,
contacts, locations, trial officials and a timeline.
  1 semantic: h1/h2, ul/li, dl for the timeline;
  2 div soup: divs/spans with build-tool class names, <br>-separated lines, the
    criteria list as a run of divs;
  3 table/section: nested <section>s, <th>/<td> tables for officials and timeline.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.devtools.render import plan_page
from pipeline.devtools.render.common import (
    SVG_ICONS,
    Node,
    class_names,
    criteria_trees,
    css_blob,
    date_long,
    date_short,
    enumerator,
    esc,
    head,
    js_bundle,
    meta_description,
    person,
    phase_lines,
    place_line,
    rng_for,
    state_script,
    status_word,
    to_json_str,
)
from pipeline.models import TrialRecord
from pipeline.vocab import DISPLAY

# --------------------------------------------------------------------------- site-written text


def _summary(record: TrialRecord, rng: random.Random) -> list[str]:
    """The "ClinConnect Summary": plain-language copy the site writes itself."""
    topic = (record.conditions[0] if record.conditions else None) or (
        record.keywords[0] if record.keywords else "a health condition")
    who = {"FEMALE": "women", "MALE": "men"}.get(record.sex or "", "people")
    if record.min_age_years and record.min_age_years >= 18:
        age = f"be at least {int(record.min_age_years)} years old"
    elif record.max_age_years and record.max_age_years < 18:
        age = "be a child or teenager within the age range the researchers describe"
    else:
        age = "meet the age and health requirements the study team describes"
    status = {
        "RECRUITING": "currently looking for participants",
        "NOT_YET_RECRUITING": "expected to start looking for participants soon",
        "COMPLETED": "no longer enrolling because it has finished",
        "ACTIVE_NOT_RECRUITING": "ongoing but not taking new participants",
    }.get(record.overall_status or "", "listed on this page for your information")
    opener = rng.choice([
        "This clinical trial is exploring",
        "This study is looking at",
        "Researchers in this trial want to learn more about",
    ])
    return [
        f"{opener} new ways to help {who} living with {topic}. The study is {status}, and the team "
        f"hopes to find out whether the approach being tested is safe and whether it works better than "
        f"what is available today.",
        f"To take part, you would generally need to {age} and have a confirmed diagnosis or situation that "
        f"matches the study's focus. If you join, you may have regular visits, tests and check-ins so the "
        f"research team can keep an eye on your health. Talk with your doctor or the study team to see "
        f"whether this trial could be a good fit for you.",
    ]


def _about_sponsor(sponsor: str, rng: random.Random) -> str:
    kind = rng.choice(["research organization", "healthcare institution", "life sciences organization"])
    return (
        f"{sponsor} is a {kind} dedicated to advancing medical knowledge through rigorous clinical research. "
        f"With a commitment to patient safety, scientific integrity and collaboration with investigators "
        f"and research sites, {sponsor} works to bring promising therapies and evidence-based care to the "
        f"patients and communities who need them most."
    )


# --------------------------------------------------------------------------- content


@dataclass(slots=True)
class _Content:
    title: str
    launched: str | None
    current_as_of: str | None
    status: str | None
    phase: str | None
    keywords: list[str]
    summary: list[str]
    gender: str | None
    criteria: list[str]  # flat list texts, marker items included
    sponsor: str | None
    about: str | None
    contacts: list[list[str]]
    locations: list[list[str]]
    officials: list[list[str]]
    timeline: list[tuple[str, str]]
    nct: str | None  # shown in the breadcrumb when the body shows it


def _flat_criteria(trees: Mapping[str, list[Node]], rng: random.Random) -> list[str]:
    out: list[str] = []
    numbered = rng.random() < 0.6  # keep "1. " / "a. " numbering as text

    def walk(nodes: Sequence[Node], depth: int) -> None:
        index = 0
        for n in nodes:
            if n.style != "para":
                index += 1
            bullet = "* " if n.children and rng.random() < 0.5 else "• "
            number = enumerator(n.style, index, depth, 0) if numbered and n.ordered else ""
            out.append(bullet + number + n.criterion.text)
            walk(n.children, depth + 1)

    for kind, marker in (("inclusion", "Inclusion Criteria:"), ("exclusion", "Exclusion Criteria:")):
        if trees.get(kind):
            out.append(marker)
            walk(trees[kind], 0)
    return out


def _content(record: TrialRecord, extras: Mapping[str, Any], show_nct: bool, rng: random.Random) -> _Content:
    sponsor_upper = record.lead_sponsor.upper() if record.lead_sponsor else None
    launched = None
    if sponsor_upper:
        start = date_short(record.start_date)
        launched = f"Launched by {sponsor_upper} · {start}" if start else f"Launched by {sponsor_upper}"
    phases = phase_lines(record.phases, combine=True)
    upper_gender = rng.random() < 0.75
    gender = None
    if record.sex:
        gender = record.sex if upper_gender else DISPLAY["sex"].get(record.sex, record.sex)
    contacts = []
    for c in record.contacts:
        if c.role == "central_contact":
            contacts.append([person(c.name, c.credentials)] + [x for x in (c.phone, c.email) if x])
    officials = []
    for c in record.contacts:
        if c.role == "overall_official":
            officials.append([person(c.name, c.credentials)] + [x for x in (c.title, c.affiliation) if x])
    locations = []
    for loc in record.locations:
        place = place_line(loc.city, loc.state, loc.country)
        lines = [x for x in (loc.facility, place) if x]
        if lines:
            locations.append(lines)
    completion_word = "Estimated completion" if extras.get("completion_type") == "ESTIMATED" else "Completion"
    timeline = [
        ("First submit", date_short(record.first_submitted_date) or "Not reported"),
        ("Trial launched", date_short(record.start_date) or "Not reported"),
        ("Trial updated", date_short(record.last_update_date) or "Not reported"),
        (completion_word, date_short(record.completion_date) or "Not reported"),
    ]
    return _Content(
        title=record.brief_title or record.official_title or "",
        launched=launched,
        current_as_of=f"Current as of {date_long(record.last_update_date)}" if record.last_update_date else None,
        status=status_word(record.overall_status, "clinconnect"),
        phase=phases[0] if phases else None,
        keywords=list(record.keywords),
        summary=_summary(record, rng),
        gender=gender,
        criteria=_flat_criteria(criteria_trees(record, extras.get("criteria_styles")), rng),
        sponsor=record.lead_sponsor,
        about=_about_sponsor(record.lead_sponsor, rng) if record.lead_sponsor else None,
        contacts=contacts,
        locations=locations,
        officials=officials,
        timeline=timeline,
        nct=record.nct_id if show_nct else None,
    )


# --------------------------------------------------------------------------- chrome


def _chrome(rng: random.Random, cls: list[str], ct: _Content) -> dict[str, str]:
    c = lambda: rng.choice(cls)  # noqa: E731
    crumb_tail = f'<li class="{c()}">{esc(ct.nct)}</li>' if ct.nct else ""
    header = (
        f'<header class="{c()}"><a class="{c()}" href="/">ClinConnect</a>'
        f'<nav class="{c()}"><a href="/trials">Find trials</a> <a href="/sponsors">For sponsors</a> '
        f'<a href="/login">Sign in</a></nav></header>'
        f'<nav class="{c()}" aria-label="Breadcrumb"><ol class="{c()}"><li><a href="/">Home</a></li>'
        f'<li><a href="/trials">Trials</a></li>{crumb_tail}</ol></nav>'
    )
    cookie = (
        f'<div class="{c()}" role="dialog"><span>This site uses cookies to personalise content.</span> '
        f'<a href="/privacy">Learn more</a><button type="button">Got it</button></div>'
    )
    footer = (
        f'<footer class="{c()}"><div class="{c()}"><a href="/">ClinConnect</a>'
        f'<p>Helping patients find the right clinical trial.</p></div>'
        f'<div class="{c()}"><a href="/about">About us</a> <a href="/privacy">Privacy Policy</a> '
        f'<a href="/terms">Terms of Service</a> <a href="/contact">Contact</a></div>'
        f'<p class="{c()}">Trial listings are based on public registry records and may change. '
        f'Always confirm details with the study team.</p>'
        f'<p class="{c()}">© 2025 ClinConnect, Inc. All rights reserved.</p></footer>'
    )
    apply = (
        f'<div class="{c()}"><a class="{c()}" href="#apply">Check if you qualify</a>'
        f'<div class="{c()}" role="status">Loading...</div></div>'
    )
    hidden = (
        f'<div class="{c()}" style="display:none"><p>Recruiting</p><p>Phase 3</p><p>Launched by ACME PHARMA</p></div>'
        f'<div class="{c()}" aria-hidden="true">Share</div>'
    )
    noscript = "<noscript>Please enable JavaScript to apply for this trial.</noscript>"
    return {"header": header, "cookie": cookie, "footer": footer, "apply": apply, "hidden": hidden,
            "noscript": noscript}


# --------------------------------------------------------------------------- variants


def _body_v1(ct: _Content, rng: random.Random, cls: list[str]) -> str:
    c = lambda: rng.choice(cls)  # noqa: E731
    out = [f'<article class="{c()}"><h1 class="{c()}">{esc(ct.title)}</h1>']
    if ct.launched:
        out.append(f'<p class="{c()}">{esc(ct.launched)}</p>')
    out.append(f'<section class="{c()}"><h2>Trial Information</h2>')
    if ct.current_as_of:
        out.append(f'<p class="{c()}">{esc(ct.current_as_of)}</p>')
    if ct.status:
        out.append(f'<p class="{c()}"><span class="{c()}">{esc(ct.status)}</span></p>')
    if ct.phase:
        out.append(f'<p class="{c()}">{esc(ct.phase)}</p>')
    out.append("<h3>Keywords</h3><ul>" + "".join(f"<li>{esc(k)}</li>" for k in ct.keywords) + "</ul>")
    out.append("<h3>ClinConnect Summary</h3>" + "".join(f"<p>{esc(p)}</p>" for p in ct.summary))
    if ct.gender:
        out.append(f"<h3>Gender</h3><p>{esc(ct.gender)}</p>")
    if ct.criteria:
        out.append("<h3>Eligibility criteria</h3><ul>" + "".join(f"<li>{esc(x)}</li>" for x in ct.criteria) + "</ul>")
    out.append("</section>")
    if ct.sponsor and ct.about:
        out.append(f'<section class="{c()}"><h2>About {esc(ct.sponsor)}</h2><p>{esc(ct.about)}</p></section>')
    if ct.contacts:
        out.append(f'<section class="{c()}"><h2>Contacts</h2>'
                   + "".join(f'<div class="{c()}">' + "".join(f"<p>{esc(x)}</p>" for x in lines) + "</div>"
                             for lines in ct.contacts) + "</section>")
    if ct.locations:
        out.append(f'<section class="{c()}"><h2>Locations</h2><ul>'
                   + "".join("<li>" + "".join(f"<p>{esc(x)}</p>" for x in lines) + "</li>" for lines in ct.locations)
                   + f'</ul><div class="{c()}">Patients applied</div></section>')
    if ct.officials:
        out.append(f'<section class="{c()}"><h2>Trial Officials</h2>'
                   + "".join(f'<div class="{c()}">' + "".join(f"<p>{esc(x)}</p>" for x in lines) + "</div>"
                             for lines in ct.officials) + "</section>")
    out.append(f'<section class="{c()}"><h2>Timeline</h2><dl>'
               + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in ct.timeline) + "</dl></section>")
    out.append("</article>")
    return "".join(out)


def _body_v2(ct: _Content, rng: random.Random, cls: list[str]) -> str:
    c = lambda: rng.choice(cls)  # noqa: E731

    def label(text: str) -> str:
        tag = rng.choice(["div", "strong", "span"])
        return f'<div class="{c()}"><{tag} class="{c()}">{esc(text)}</{tag}></div>'

    out = [f'<div class="{c()}"><div class="{c()}">{esc(ct.title)}</div>']
    if ct.launched:
        out.append(f'<div class="{c()}"><span class="{c()}">{esc(ct.launched)}</span></div>')
    out.append(f'<div class="{c()}">{label("Trial Information")}')
    lines = [x for x in (ct.current_as_of, ct.status, ct.phase) if x]
    out.append(f'<div class="{c()}">' + "<br>".join(esc(x) for x in lines) + "</div>")
    out.append(label("Keywords") + f'<div class="{c()}">'
               + "".join(f'<span class="{c()}">{esc(k)}</span><br>' for k in ct.keywords) + "</div>")
    out.append(label("ClinConnect Summary") + "".join(f'<div class="{c()}">{esc(p)}</div>' for p in ct.summary))
    if ct.gender:
        out.append(label("Gender") + f'<div class="{c()}">{esc(ct.gender)}</div>')
    if ct.criteria:
        out.append(label("Eligibility criteria") + f'<div class="{c()}">'
                   + "".join(f'<div class="{c()}">{esc(x)}</div>' for x in ct.criteria) + "</div>")
    out.append("</div>")
    if ct.sponsor and ct.about:
        out.append(label(f"About {ct.sponsor}") + f'<div class="{c()}">{esc(ct.about)}</div>')
    if ct.contacts:
        out.append(label("Contacts") + "".join(
            f'<div class="{c()}">' + "<br>".join(esc(x) for x in lines) + "</div>" for lines in ct.contacts))
    if ct.locations:
        out.append(label("Locations") + "".join(
            f'<div class="{c()}">' + "<br>".join(esc(x) for x in lines) + "</div>" for lines in ct.locations)
            + f'<div class="{c()}"><span>Patients applied</span></div>')
    if ct.officials:
        out.append(label("Trial Officials") + "".join(
            f'<div class="{c()}">' + "<br>".join(esc(x) for x in lines) + "</div>" for lines in ct.officials))
    out.append(label("Timeline") + "".join(
        f'<div class="{c()}"><span class="{c()}">{esc(k)}</span><br><span class="{c()}">{esc(v)}</span></div>'
        for k, v in ct.timeline))
    out.append("</div>")
    return "".join(out)


def _body_v3(ct: _Content, rng: random.Random, cls: list[str]) -> str:
    c = lambda: rng.choice(cls)  # noqa: E731
    out = [f'<section class="{c()}"><header><h1>{esc(ct.title)}</h1>']
    if ct.launched:
        out.append(f"<p>{esc(ct.launched)}</p>")
    out.append("</header>")
    out.append(f'<section class="{c()}"><h2>Trial Information</h2>')
    for x in (ct.current_as_of, ct.status, ct.phase):
        if x:
            out.append(f"<p>{esc(x)}</p>")
    out.append(f'<section class="{c()}"><h3>Keywords</h3>'
               + "".join(f"<p>{esc(k)}</p>" for k in ct.keywords) + "</section>")
    out.append(f'<section class="{c()}"><h3>ClinConnect Summary</h3>'
               + "".join(f"<p>{esc(p)}</p>" for p in ct.summary) + "</section>")
    if ct.gender:
        out.append(f"<table><tbody><tr><th>Gender</th><td>{esc(ct.gender)}</td></tr></tbody></table>")
    if ct.criteria:
        out.append(f'<section class="{c()}"><h3>Eligibility criteria</h3><ul>'
                   + "".join(f"<li><p>{esc(x)}</p></li>" for x in ct.criteria) + "</ul></section>")
    out.append("</section>")
    if ct.sponsor and ct.about:
        out.append(f"<section><h2>About {esc(ct.sponsor)}</h2><p>{esc(ct.about)}</p></section>")
    if ct.contacts:
        out.append("<section><h2>Contacts</h2><table><tbody>"
                   + "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in lines) + "</tr>" for lines in ct.contacts)
                   + "</tbody></table></section>")
    if ct.locations:
        out.append("<section><h2>Locations</h2>"
                   + "".join("<section>" + "".join(f"<p>{esc(x)}</p>" for x in lines) + "</section>"
                             for lines in ct.locations)
                   + "<p>Patients applied</p></section>")
    if ct.officials:
        out.append("<section><h2>Trial Officials</h2><table><tbody>"
                   + "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in lines) + "</tr>" for lines in ct.officials)
                   + "</tbody></table></section>")
    out.append("<section><h2>Timeline</h2><table><tbody>"
               + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in ct.timeline)
               + "</tbody></table></section>")
    out.append("</section>")
    return "".join(out)


def render_clinconnect(
    record: TrialRecord,
    variant: int,
    *,
    show_nct: bool,
    rng_seed: int | str = 0,
    extras: Mapping[str, Any] | None = None,
) -> str:
    """A full ClinConnect-style HTML document for `record` in markup `variant` (1, 2 or 3)."""
    plan = plan_page(record, "clinconnect", variant, show_nct=show_nct, rng_seed=rng_seed)
    rng = rng_for(plan.seed, "page")
    content = _content(record, extras or {}, plan.show_nct, rng)
    cls = class_names(rng, 50, style=["hash", "short", "module"][variant - 1])
    chrome = _chrome(rng, cls, content)
    body = {1: _body_v1, 2: _body_v2, 3: _body_v3}[variant](content, rng, cls)
    css = css_blob(rng, cls, rules=100)
    title = f"{content.title} | ClinConnect"
    extra_head = []
    if plan.canonical or plan.og_url:
        ld = to_json_str({"@context": "https://schema.org", "@type": "WebPage",
                          "url": plan.canonical or plan.og_url, "name": content.title})
        extra_head.append(f'<script type="application/ld+json">{ld}</script>')
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        head(title=title, description=meta_description(record), canonical=plan.canonical, og_url=plan.og_url,
             css=css, extra=extra_head),
        f'<body class="{rng.choice(cls)}">',
        SVG_ICONS,
        chrome["header"],
        f'<main class="{rng.choice(cls)}">',
        body,
        chrome["apply"],
        "</main>",
        chrome["footer"],
        chrome["cookie"],
        chrome["hidden"],
        chrome["noscript"],
        f'<script id="__NEXT_DATA__" type="application/json">{state_script(rng, record.nct_id, "clinconnect")}</script>',
        f"<script>{js_bundle(rng, 12000)}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"

