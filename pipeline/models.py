"""Typed records handed between the pipeline's stages.

Every stage takes and returns these frozen dataclasses, never loose dicts, so a
field renamed in one stage is a type error in the next.  Sequences are tuples so
records stay hashable and immutable.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["veeva", "clinconnect", "unknown"]
ParseStatus = Literal["ok", "partial", "rejected"]
CriterionType = Literal["inclusion", "exclusion"]
ContactRole = Literal["central_contact", "overall_official", "site_contact"]


@dataclass(frozen=True, slots=True)
class RawPage:
    """One page version exactly as read: bytes plus where and when they came from."""

    url: str
    content: bytes
    fetched_at: dt.datetime
    content_sha256: str
    source_hint: Source | None = None  # set by a crawler that knows the site; None = detect


@dataclass(frozen=True, slots=True)
class Identifier:
    id_type: str  # "nct", "org_study_id", "secondary", or a site's own id type
    id_value: str


@dataclass(frozen=True, slots=True)
class Intervention:
    intervention_type: str | None  # API v2 code: DRUG, BIOLOGICAL, DEVICE, ...
    name: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Arm:
    label: str
    arm_type: str | None  # API v2 code: EXPERIMENTAL, ACTIVE_COMPARATOR, ...
    description: str | None = None
    interventions: tuple[str, ...] = ()  # "Drug: Name" as the page lists them


@dataclass(frozen=True, slots=True)
class Criterion:
    criterion_type: CriterionType
    ordinal: int  # 1-based, document order within (trial, criterion_type)
    parent_ordinal: int | None
    text: str


@dataclass(frozen=True, slots=True)
class Contact:
    role: ContactRole
    name: str
    credentials: str | None = None  # degrees split off the name: "PhD", "MD, PhD"
    affiliation: str | None = None
    phone: str | None = None
    email: str | None = None
    title: str | None = None  # the page's role wording, e.g. "Principal Investigator"


@dataclass(frozen=True, slots=True)
class Location:
    facility: str | None
    city: str | None
    state: str | None
    country: str | None
    status: str | None = None  # API v2 recruitment status code


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """Everything one page says about one trial, normalized to API v2 vocabularies."""

    nct_id: str | None = None
    brief_title: str | None = None
    official_title: str | None = None
    acronym: str | None = None
    lead_sponsor: str | None = None
    overall_status: str | None = None
    phases: tuple[str, ...] = ()
    study_type: str | None = None
    enrollment: int | None = None
    enrollment_type: str | None = None
    sex: str | None = None
    min_age: str | None = None
    max_age: str | None = None
    min_age_years: float | None = None
    max_age_years: float | None = None
    healthy_volunteers: bool | None = None
    brief_summary: str | None = None
    detailed_description: str | None = None
    primary_purpose: str | None = None
    allocation: str | None = None
    intervention_model: str | None = None
    masking: str | None = None
    start_date: dt.date | None = None
    primary_completion_date: dt.date | None = None
    completion_date: dt.date | None = None
    first_submitted_date: dt.date | None = None
    last_update_date: dt.date | None = None
    funder_types: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    arms: tuple[Arm, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    contacts: tuple[Contact, ...] = ()
    locations: tuple[Location, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """The outcome of parsing one RawPage: a record, or the reason there is none."""

    page_id: str  # ingest.page_id_for(url, content_sha256): one id per distinct page version
    url: str
    source: Source
    content_sha256: str
    fetched_at: dt.datetime
    parse_status: ParseStatus
    parse_error: str | None = None  # why rejected, or which fields were missing when partial
    record: TrialRecord | None = None
    warnings: tuple[str, ...] = field(default=())
