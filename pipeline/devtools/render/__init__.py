"""Fixture pages: a TrialRecord drawn as a Veeva-style or ClinConnect-style page.

Each site has several deliberately different markups (`VARIANTS`) of the same visible
content (docs/dev/page-layouts.md).  `plan_page` fixes everything about a page that is
not its HTML -- URL, canonical link, whether the NCT ID is visible -- and `shown_fields`
says which TrialRecord fields (and sub-fields, dotted) a reader of that page can see, so
an evaluation scores only those.  `visible_truth` cuts a ground-truth record down to
what the page shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pipeline.devtools.render.common import rng_for, slugify, stable_int
from pipeline.models import TrialRecord

SITES: tuple[str, ...] = ("veeva", "clinconnect")
VARIANTS: dict[str, tuple[int, ...]] = {"veeva": (1, 2, 3), "clinconnect": (1, 2, 3)}
VARIANT_NAMES: dict[int, str] = {1: "semantic", 2: "div-soup", 3: "table-section"}

VEEVA_BASE = "https://ctv.veeva.com/study/"
CLINCONNECT_BASE = "https://clinconnect.io/trials/"


@dataclass(frozen=True, slots=True)
class PagePlan:
    """Everything about one fixture page except its markup."""

    site: str
    variant: int
    show_nct: bool  # the NCT ID is printed in the page body
    url: str  # the URL the page would be fetched from
    canonical: str | None  # <link rel=canonical>
    og_url: str | None  # <meta property=og:url>
    nct_visible: bool  # the NCT ID is readable anywhere: body, URL, canonical/og:url
    seed: str


@dataclass(frozen=True, slots=True)
class RenderedPage:
    html: str
    plan: PagePlan
    shown: frozenset[str]
    nct_id: str | None

    @property
    def file_name(self) -> str:
        return page_file_name(self.plan.site, self.plan.variant, self.nct_id)


def page_file_name(site: str, variant: int, nct_id: str | None) -> str:
    return f"{site}-v{variant}-{nct_id or 'unknown'}.html"


def default_show_nct(nct_id: str | None, site: str, variant: int) -> bool:
    """Deterministic policy: 1 in 4 Veeva pages and 1 in 3 ClinConnect pages omit the NCT ID."""
    h = stable_int(nct_id, site, variant, "show-nct")
    return h % (4 if site == "veeva" else 3) != 0


def plan_page(record: TrialRecord, site: str, variant: int, *, show_nct: bool, rng_seed: int | str = 0) -> PagePlan:
    if site not in VARIANTS or variant not in VARIANTS[site]:
        raise ValueError(f"unknown page kind {site!r} v{variant}")
    seed = f"{rng_seed}|{site}|{variant}|{record.nct_id}|{int(show_nct)}"
    nct = record.nct_id
    show = bool(show_nct and nct)
    if site == "veeva":
        url = VEEVA_BASE + slugify(record.brief_title or nct or "study")
        return PagePlan(
            site, variant, show, url,
            canonical=url if variant in (1, 3) else None,
            og_url=url if variant == 2 else None,
            nct_visible=show,
            seed=seed,
        )
    # ClinConnect lives at /trials/<NCT>; a page saved without its NCT in the body may
    # still carry it in the URL and canonical link -- or come from a share link without it.
    in_url = bool(nct) and (show or rng_for(seed, "cc-url").random() < 0.5)
    if in_url:
        url = CLINCONNECT_BASE + nct  # type: ignore[operator]
        return PagePlan(
            site, variant, show, url,
            canonical=url if variant in (1, 3) else None,
            og_url=url if variant == 2 else None,
            nct_visible=True,
            seed=seed,
        )
    token = f"{stable_int(seed, 'share'):016x}"[:12]
    return PagePlan(site, variant, show, f"https://clinconnect.io/s/{token}", None, None, False, seed)


_VEEVA_FIELDS = frozenset({
    "brief_title", "lead_sponsor", "overall_status", "phases", "study_type", "enrollment", "enrollment_type",
    "sex", "min_age", "max_age", "min_age_years", "max_age_years", "healthy_volunteers", "brief_summary",
    "detailed_description", "primary_purpose", "allocation", "intervention_model", "masking", "funder_types",
    "conditions", "identifiers", "interventions", "arms", "arms.description", "arms.interventions",
    "criteria", "contacts", "contacts.central_contact", "contacts.site_contact", "contacts.site_contact.phone",
    "contacts.site_contact.email", "locations", "locations.facility", "locations.status",
})
_CLINCONNECT_FIELDS = frozenset({
    "brief_title", "lead_sponsor", "start_date", "last_update_date", "first_submitted_date", "completion_date",
    "overall_status", "phases", "keywords", "sex", "criteria", "contacts", "contacts.central_contact",
    "contacts.central_contact.phone", "contacts.central_contact.email", "contacts.overall_official",
    "contacts.overall_official.title", "contacts.overall_official.affiliation", "locations", "locations.facility",
})


# Fields a site does not show but has look-alike, site-written text for (ClinConnect's
# "ClinConnect Summary" and "About <Sponsor>" blurb): an extractor must leave them empty.
_EMPTY_FIELDS: dict[str, frozenset[str]] = {
    "veeva": frozenset(),
    "clinconnect": frozenset({"brief_summary", "detailed_description"}),
}


def must_be_empty(site: str) -> frozenset[str]:
    """TrialRecord fields that must come back empty from `site`'s pages (decoy text only)."""
    return _EMPTY_FIELDS[site]


def shown_fields(site: str, variant: int, show_nct: bool, *, nct_in_url: bool = False) -> frozenset[str]:
    """TrialRecord fields a reader can see on a (site, variant) page.

    Dotted entries refine collections: "contacts.central_contact" = central contacts are
    listed, "contacts.central_contact.phone" = with their phone numbers, "criteria.nesting"
    = item nesting is visible in the markup, "locations.status" = per-site status, ...
    "nct_id" is present when the ID is readable anywhere (body, URL, canonical link).
    """
    if site == "veeva":
        out = set(_VEEVA_FIELDS)
        if variant in (1, 3):
            out.add("criteria.nesting")  # list markup nests; the div soup only has text markers
        if variant in (2, 3):
            out |= {"contacts.central_contact.phone", "contacts.central_contact.email"}
    elif site == "clinconnect":
        out = set(_CLINCONNECT_FIELDS)  # one flat criteria list: nesting is not shown
    else:
        raise ValueError(f"unknown site {site!r}")
    if show_nct or nct_in_url:
        out.add("nct_id")
    return frozenset(out)


def plan_shown(plan: PagePlan) -> frozenset[str]:
    fields = shown_fields(plan.site, plan.variant, plan.show_nct)
    return fields | {"nct_id"} if plan.nct_visible else fields - {"nct_id"}


def visible_truth(record: TrialRecord, shown: frozenset[str] | set[str]) -> TrialRecord:
    """The ground truth as the page shows it: hidden collection members and attributes dropped.

    Scalar fields are left alone (the evaluator only scores fields in `shown`), except
    nct_id, which is None when the page does not show it anywhere.
    """
    changes: dict[str, Any] = {}
    if "nct_id" not in shown:
        changes["nct_id"] = None
    changes["identifiers"] = tuple(
        i for i in record.identifiers if i.id_type != "nct" or "nct_id" in shown
    )
    contacts = []
    for c in record.contacts:
        key = f"contacts.{c.role}"
        if key not in shown:
            continue
        contacts.append(replace(
            c,
            phone=c.phone if f"{key}.phone" in shown else None,
            email=c.email if f"{key}.email" in shown else None,
            title=c.title if f"{key}.title" in shown else None,
            affiliation=c.affiliation if f"{key}.affiliation" in shown else None,
        ))
    changes["contacts"] = tuple(contacts)
    changes["locations"] = tuple(
        replace(
            loc,
            facility=loc.facility if "locations.facility" in shown else None,
            status=loc.status if "locations.status" in shown else None,
        )
        for loc in record.locations
        if loc.facility or loc.city or loc.state or loc.country
    )
    changes["interventions"] = tuple(
        replace(i, description=i.description if "interventions.description" in shown else None)
        for i in record.interventions
    )
    changes["arms"] = tuple(
        replace(
            a,
            description=a.description if "arms.description" in shown else None,
            interventions=a.interventions if "arms.interventions" in shown else (),
        )
        for a in record.arms
    )
    return replace(record, **changes)


def render_page(
    record: TrialRecord,
    site: str,
    variant: int,
    *,
    show_nct: bool,
    rng_seed: int | str = 0,
    extras: Mapping[str, Any] | None = None,
) -> RenderedPage:
    """Render one page and return it with its plan and shown fields."""
    from pipeline.devtools.render.clinconnect import render_clinconnect
    from pipeline.devtools.render.veeva import render_veeva

    plan = plan_page(record, site, variant, show_nct=show_nct, rng_seed=rng_seed)
    fn = render_veeva if site == "veeva" else render_clinconnect
    html = fn(record, variant, show_nct=show_nct, rng_seed=rng_seed, extras=extras)
    return RenderedPage(html, plan, plan_shown(plan), record.nct_id)


__all__ = [
    "CLINCONNECT_BASE",
    "PagePlan",
    "RenderedPage",
    "SITES",
    "VARIANTS",
    "VARIANT_NAMES",
    "VEEVA_BASE",
    "default_show_nct",
    "must_be_empty",
    "page_file_name",
    "plan_page",
    "plan_shown",
    "render_page",
    "shown_fields",
    "visible_truth",
]
