"""What the loader and the checks need to know about the warehouse tables.

The migrations in `migrations/` are the source of truth for DuckDB; this module mirrors
them as Arrow schemas (so bulk loads never depend on type inference from Python values)
and lists which columns hold API v2 codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipeline.models import TrialRecord
from pipeline.vocab import CODES

_STR = pa.string()
_INT = pa.int32()
_STRS = pa.list_(pa.string())
_TS = pa.timestamp("us")

ARROW_SCHEMAS: dict[str, pa.Schema] = {
    "pages": pa.schema([
        ("page_id", _STR), ("source", _STR), ("url", _STR), ("content_sha256", _STR),
        ("fetched_at", pa.timestamp("us")), ("trial_id", _STR), ("parse_status", _STR),
        ("parse_error", _STR), ("warnings", _STRS), ("parser_version", _STR),
    ]),
    "page_records": pa.schema([("page_id", _STR), ("record", _STR)]),
    "trials": pa.schema([
        ("trial_id", _STR), ("nct_id", _STR), ("brief_title", _STR), ("official_title", _STR),
        ("acronym", _STR), ("lead_sponsor", _STR), ("overall_status", _STR), ("phases", _STRS),
        ("study_type", _STR), ("enrollment", _INT), ("enrollment_type", _STR), ("sex", _STR),
        ("min_age", _STR), ("max_age", _STR), ("min_age_years", pa.float64()),
        ("max_age_years", pa.float64()), ("healthy_volunteers", pa.bool_()),
        ("brief_summary", _STR), ("detailed_description", _STR), ("primary_purpose", _STR),
        ("allocation", _STR), ("intervention_model", _STR), ("masking", _STR),
        ("start_date", pa.date32()), ("primary_completion_date", pa.date32()),
        ("completion_date", pa.date32()), ("first_submitted_date", pa.date32()),
        ("last_update_date", pa.date32()), ("funder_types", _STRS), ("sources", _STRS),
        ("page_count", _INT), ("best_page_id", _STR),
        # 0003_history.sql; maintained by pipeline.db.history after the golden insert
        ("first_seen_at", _TS), ("last_seen_at", _TS), ("last_changed_at", _TS),
        ("removed_from_source", pa.bool_()), ("removed_at", _TS),
    ]),
    "identifiers": pa.schema([
        ("trial_id", _STR), ("position", _INT), ("id_type", _STR), ("id_value", _STR),
    ]),
    "conditions": pa.schema([("trial_id", _STR), ("position", _INT), ("name", _STR)]),
    "keywords": pa.schema([("trial_id", _STR), ("position", _INT), ("keyword", _STR)]),
    "interventions": pa.schema([
        ("trial_id", _STR), ("position", _INT), ("intervention_type", _STR), ("name", _STR),
        ("description", _STR),
    ]),
    "arms": pa.schema([
        ("trial_id", _STR), ("position", _INT), ("label", _STR), ("arm_type", _STR),
        ("description", _STR), ("interventions", _STRS),
    ]),
    "arm_interventions": pa.schema([
        ("trial_id", _STR), ("arm_position", _INT), ("arm_label", _STR), ("position", _INT),
        ("intervention", _STR), ("intervention_type", _STR), ("intervention_name", _STR),
    ]),
    "criteria": pa.schema([
        ("trial_id", _STR), ("criterion_type", _STR), ("ordinal", _INT),
        ("parent_ordinal", _INT), ("text", _STR),
    ]),
    "contacts": pa.schema([
        ("trial_id", _STR), ("position", _INT), ("role", _STR), ("name", _STR),
        ("credentials", _STR), ("affiliation", _STR), ("phone", _STR), ("email", _STR),
        ("title", _STR),
    ]),
    "locations": pa.schema([
        ("trial_id", _STR), ("position", _INT), ("facility", _STR), ("city", _STR),
        ("state", _STR), ("country", _STR), ("status", _STR),
    ]),
    "trial_history": pa.schema([
        ("trial_id", _STR), ("field", _STR), ("old_value", _STR), ("new_value", _STR),
        ("observed_at", _TS), ("page_id", _STR),
    ]),
    # 0006_dedup.sql (pipeline.relink writes them)
    "link_keys": pa.schema([("page_id", _STR), ("kind", _STR), ("key", _STR)]),
    "block_keys": pa.schema([("page_id", _STR), ("pass", _STR), ("key", _STR)]),
    "record_links": pa.schema([
        ("page_id", _STR), ("trial_id", _STR), ("method", _STR), ("matched_page_id", _STR),
        ("score", pa.float64()), ("explanation", _STR),
    ]),
    "link_candidates": pa.schema([
        ("page_a", _STR), ("page_b", _STR), ("trial_a", _STR), ("trial_b", _STR),
        ("score", pa.float64()), ("probability", pa.float64()), ("explanation", _STR),
    ]),
    "link_decisions": pa.schema([
        ("page_a", _STR), ("page_b", _STR), ("decision", _STR), ("decided_at", _TS),
        ("note", _STR),
    ]),
    "trial_id_aliases": pa.schema([("retired_id", _STR), ("trial_id", _STR), ("retired_at", _TS)]),
    "field_sources": pa.schema([("trial_id", _STR), ("field", _STR), ("page_id", _STR)]),
    "field_conflicts": pa.schema([
        ("trial_id", _STR), ("field", _STR), ("value", _STR), ("page_id", _STR),
    ]),
}

# trials columns the history/presence step fills, not the golden merge.
TRIAL_TIME_COLUMNS: tuple[str, ...] = (
    "first_seen_at", "last_seen_at", "last_changed_at", "removed_from_source", "removed_at",
)

# Tables holding one trial's golden data, keyed by trial_id; replaced as a whole per trial.
CHILD_TABLES: tuple[str, ...] = (
    "identifiers", "conditions", "keywords", "interventions", "arms", "arm_interventions",
    "criteria", "contacts", "locations",
)
GOLDEN_TABLES: tuple[str, ...] = ("trials", *CHILD_TABLES)
# Structured eligibility and cell-therapy profiles (0005_eligibility.sql), derived per trial
# from the golden tables by pipeline.db.profiles inside the same load transaction.
_DBL = pa.float64()
PROFILE_SCHEMAS: dict[str, pa.Schema] = {
    "eligibility_constraints": pa.schema([
        ("trial_id", _STR), ("criterion_type", _STR), ("ordinal", _INT), ("position", _INT),
        ("variable", _STR), ("lower", _DBL), ("lower_inclusive", pa.bool_()), ("upper", _DBL),
        ("upper_inclusive", pa.bool_()), ("unit", _STR), ("negated", pa.bool_()), ("text", _STR),
        ("condition", _STR), ("antigen", _STR), ("alt_group", _INT),
    ]),
    "eligibility_flags": pa.schema([
        ("trial_id", _STR), ("criterion_type", _STR), ("ordinal", _INT), ("flag", _STR),
    ]),
    "therapies": pa.schema([
        ("trial_id", _STR), ("therapy_ordinal", _INT), ("intervention_type", _STR),
        ("intervention_name", _STR), ("modality", _STR), ("targets", _STRS), ("cell_source", _STRS),
        ("engineering", _STRS), ("infusion_schedule", _STRS), ("escalation_design", _STRS),
    ]),
    "dose_levels": pa.schema([
        ("trial_id", _STR), ("therapy_ordinal", _INT), ("level", _INT), ("value", _DBL),
        ("unit", _STR), ("per_kg", pa.bool_()), ("description", _STR),
    ]),
    "trial_ages": pa.schema([
        ("trial_id", _STR), ("min_age_years", _DBL), ("max_age_years", _DBL),
        ("min_age_source", _STR), ("max_age_source", _STR),
        ("criteria_min_age_years", _DBL), ("criteria_max_age_years", _DBL),
    ]),
    "profile_state": pa.schema([
        ("trial_id", _STR), ("input_hash", pa.uint64()), ("extractor_version", _STR),
        ("profiler_version", _STR),
    ]),
}
ARROW_SCHEMAS.update(PROFILE_SCHEMAS)
PROFILE_TABLES: tuple[str, ...] = tuple(PROFILE_SCHEMAS)
# trial_history is replaced per trial too, but from the page timeline (pipeline.db.history).
# Deduplication (0006_dedup.sql): the link index of stored pages, how pages were linked,
# the review queue and decisions, retired ids, and the provenance of golden values.
DEDUP_TABLES: tuple[str, ...] = (
    "link_keys", "block_keys", "record_links", "link_candidates", "link_decisions",
    "trial_id_aliases", "field_sources", "field_conflicts",
)
ALL_TABLES: tuple[str, ...] = (
    "pages", "page_records", *GOLDEN_TABLES, "trial_history", *DEDUP_TABLES,
    *PROFILE_TABLES)

# The run log (0007_runs.sql, pipeline.runlog): operational rows that differ between two runs
# on the same input, so they are not in ALL_TABLES (which determinism tests compare).
RUN_TABLES: tuple[str, ...] = ("runs", "run_pages", "run_changes")
# runs columns holding a run's counts and stage durations (pipeline.runlog.RunStats)
RUN_COUNT_COLUMNS: tuple[str, ...] = (
    "pages_discovered", "pages_fetched", "pages_unchanged", "pages_parsed", "pages_partial",
    "pages_rejected", "trials_added", "trials_changed", "trials_removed",
    "crawl_s", "parse_s", "link_s", "load_s",
)


# What identifies a row of each table (asset check `unique_keys`); NULL in a key is a failure.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "pages": ("page_id",),
    "page_records": ("page_id",),
    "trials": ("trial_id",),
    "identifiers": ("trial_id", "position"),
    "conditions": ("trial_id", "position"),
    "keywords": ("trial_id", "position"),
    "interventions": ("trial_id", "position"),
    "arms": ("trial_id", "position"),
    "arm_interventions": ("trial_id", "arm_position", "position"),
    "criteria": ("trial_id", "criterion_type", "ordinal"),
    "contacts": ("trial_id", "position"),
    "locations": ("trial_id", "position"),
    "trial_history": ("trial_id", "field", "observed_at"),
    "eligibility_constraints": ("trial_id", "criterion_type", "ordinal", "position"),
    "eligibility_flags": ("trial_id", "criterion_type", "ordinal", "flag"),
    "therapies": ("trial_id", "therapy_ordinal"),
    "dose_levels": ("trial_id", "therapy_ordinal", "level"),
    "trial_ages": ("trial_id",),
    "profile_state": ("trial_id",),
    "record_links": ("page_id",),
    "link_candidates": ("page_a", "page_b"),
    "link_decisions": ("page_a", "page_b"),
    "trial_id_aliases": ("retired_id",),
    "field_sources": ("trial_id", "field"),
    "field_conflicts": ("trial_id", "field", "page_id"),
}
# The link index: checked by the non-blocking `pages_have_links` check rather than inside
# every load (block_keys holds ~12 rows per page; grouping it all costs seconds per run).
INDEX_KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "link_keys": ("page_id", "kind", "key"),
    "block_keys": ("page_id", "pass", "key"),
}


@dataclass(frozen=True, slots=True)
class EnumColumn:
    table: str
    column: str
    kind: str  # key of vocab.CODES
    is_list: bool = False


ENUM_COLUMNS: tuple[EnumColumn, ...] = (
    EnumColumn("pages", "source", "source"),
    EnumColumn("pages", "parse_status", "parse_status"),
    EnumColumn("trials", "overall_status", "overall_status"),
    EnumColumn("trials", "phases", "phase", is_list=True),
    EnumColumn("trials", "study_type", "study_type"),
    EnumColumn("trials", "enrollment_type", "enrollment_type"),
    EnumColumn("trials", "sex", "sex"),
    EnumColumn("trials", "primary_purpose", "primary_purpose"),
    EnumColumn("trials", "allocation", "allocation"),
    EnumColumn("trials", "intervention_model", "intervention_model"),
    EnumColumn("trials", "masking", "masking"),
    EnumColumn("interventions", "intervention_type", "intervention_type"),
    EnumColumn("arms", "arm_type", "arm_type"),
    EnumColumn("arm_interventions", "intervention_type", "intervention_type"),
    EnumColumn("criteria", "criterion_type", "criterion_type"),
    EnumColumn("contacts", "role", "contact_role"),
    EnumColumn("locations", "status", "location_status"),
)

# TrialRecord fields (and child-record fields) that must hold codes, for pre-load validation.
_RECORD_ENUMS: tuple[tuple[str, str], ...] = (
    ("overall_status", "overall_status"), ("study_type", "study_type"),
    ("enrollment_type", "enrollment_type"), ("sex", "sex"),
    ("primary_purpose", "primary_purpose"), ("allocation", "allocation"),
    ("intervention_model", "intervention_model"), ("masking", "masking"),
)


def invalid_codes(record: TrialRecord) -> tuple[str, ...]:
    """Enumerated values in `record` the warehouse would reject, as 'field=value' strings.

    The schema's CHECK constraints would fail the whole load transaction on one bad value;
    checking first lets the run quarantine just that page with a reason instead.
    """
    bad: list[str] = []

    def check(label: str, kind: str, value: str | None) -> None:
        if value is not None and value not in CODES[kind]:
            bad.append(f"{label}={value!r}")

    for field_name, kind in _RECORD_ENUMS:
        check(field_name, kind, getattr(record, field_name))
    for phase in record.phases:
        check("phases", "phase", phase)
    for item in record.interventions:
        check("interventions.intervention_type", "intervention_type", item.intervention_type)
    for arm in record.arms:
        check("arms.arm_type", "arm_type", arm.arm_type)
    for criterion in record.criteria:
        check("criteria.criterion_type", "criterion_type", criterion.criterion_type)
    for contact in record.contacts:
        check("contacts.role", "contact_role", contact.role)
    for location in record.locations:
        check("locations.status", "location_status", location.status)
    return tuple(bad)
