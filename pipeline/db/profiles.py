"""Structured eligibility and cell-therapy profiles in the warehouse (0005_eligibility.sql).

`refresh_profiles` derives, per trial, the rows of `eligibility_constraints`,
`eligibility_flags`, `therapies`, `dose_levels` and `trial_ages` from the golden tables
(`trials`, `criteria`, `interventions`) with the pure extractors in `pipeline.eligibility` and
`pipeline.therapy`, and fills `trials.min_age_years` / `max_age_years` from the criteria where
the page shows no age field.

Which trials it recomputes: those whose inputs changed since their rows were made -- a 64-bit
digest of each trial's criteria, interventions and texts, computed in SQL, is compared with the
one stored in `profile_state` -- or whose rows came from another extractor version.  So the
refresh is self-healing: it can run after any load (or after a crash between a load and the
refresh, or an extractor upgrade) and finds the work itself; run again, it changes no row.
Rows of trials that no longer exist are deleted.  Everything is written from Arrow tables, in
one transaction -- the load's own when the loader calls it (`pipeline.db.load.load_batch`), so a
load and its profiles commit, pass the blocking checks or roll back together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.db.schema import PROFILE_SCHEMAS, PROFILE_TABLES
from pipeline.eligibility import EXTRACTOR_VERSION, FLAGS, VARIABLES, CriterionProfile, profile_criteria
from pipeline.faults import checkpoint, rollback_quietly
from pipeline.models import Criterion, Intervention, TrialRecord
from pipeline.therapy import MODALITIES, PROFILER_VERSION, TherapyProfile, profile_interventions


# One digest per trial of everything the extractors read.  DuckDB's hash() is fast (a full
# digest of 20k trials with 500k criteria takes ~0.1 s); should a DuckDB upgrade change it,
# every trial looks changed once and is recomputed, which is harmless.
_DIGEST_SQL = """
WITH c AS (
    SELECT trial_id, bit_xor(hash(criterion_type, ordinal, parent_ordinal, text)) AS h
    FROM criteria {where} GROUP BY trial_id
), i AS (
    SELECT trial_id, bit_xor(hash(position, intervention_type, name, description)) AS h
    FROM interventions {where} GROUP BY trial_id
)
SELECT t.trial_id,
       hash(t.brief_title, t.official_title, t.brief_summary, t.detailed_description, c.h, i.h) AS input_hash,
       s.input_hash AS stored_hash, s.extractor_version, s.profiler_version
FROM trials t
LEFT JOIN c USING (trial_id)
LEFT JOIN i USING (trial_id)
LEFT JOIN profile_state s USING (trial_id)
{where_t}
ORDER BY t.trial_id
"""
_IDS = "WHERE trial_id IN (SELECT unnest(CAST(? AS VARCHAR[])))"
_IDS_T = "WHERE t.trial_id IN (SELECT unnest(CAST(? AS VARCHAR[])))"


@dataclass(frozen=True, slots=True)
class TrialInputs:
    """What the extractors read about one trial."""

    trial_id: str
    input_hash: int
    criteria: tuple[Criterion, ...]
    interventions: tuple[Intervention, ...]
    title: str | None
    summary: str | None
    description: str | None


@dataclass(frozen=True, slots=True)
class RefreshResult:
    trials_profiled: int  # trials whose rows were (re)computed
    trials_dropped: int  # trials no longer in the warehouse whose rows were deleted
    ages_filled: int  # trials.min/max_age_years values written from the criteria
    rows_written: Mapping[str, int]  # rows inserted per profile table


def stale_trials(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """trial_id -> current input digest, for every trial whose profile is missing or outdated."""
    rows = conn.execute(_DIGEST_SQL.format(where="", where_t="")).fetchall()
    return {
        trial_id: digest
        for trial_id, digest, stored, extractor, profiler in rows
        if stored != digest or extractor != EXTRACTOR_VERSION or profiler != PROFILER_VERSION
    }


def _digests(conn: duckdb.DuckDBPyConnection, trial_ids: Sequence[str]) -> dict[str, int]:
    ids = sorted(set(trial_ids))
    rows = conn.execute(_DIGEST_SQL.format(where=_IDS, where_t=_IDS_T), [ids, ids, ids]).fetchall()
    return {trial_id: digest for trial_id, digest, *_ in rows}


def read_inputs(conn: duckdb.DuckDBPyConnection, digests: Mapping[str, int]) -> list[TrialInputs]:
    """The golden rows the extractors read, for the trials in `digests`, in trial_id order."""
    ids = sorted(digests)
    if not ids:
        return []
    criteria: dict[str, list[Criterion]] = {t: [] for t in ids}
    for trial_id, ctype, ordinal, parent, text in conn.execute(
        "SELECT trial_id, criterion_type, ordinal, parent_ordinal, text FROM criteria " + _IDS
        + " ORDER BY trial_id, criterion_type = 'exclusion', ordinal", [ids]
    ).fetchall():
        criteria[trial_id].append(Criterion(ctype, ordinal, parent, text))
    interventions: dict[str, list[Intervention]] = {t: [] for t in ids}
    for trial_id, itype, name, description in conn.execute(
        "SELECT trial_id, intervention_type, name, description FROM interventions " + _IDS
        + " ORDER BY trial_id, position", [ids]
    ).fetchall():
        interventions[trial_id].append(Intervention(itype, name, description))
    return [
        TrialInputs(trial_id, digests[trial_id], tuple(criteria[trial_id]), tuple(interventions[trial_id]),
                    brief or official, summary, description)
        for trial_id, brief, official, summary, description in conn.execute(
            "SELECT trial_id, brief_title, official_title, brief_summary, detailed_description FROM trials "
            + _IDS + " ORDER BY trial_id", [ids]
        ).fetchall()
    ]


def criteria_ages(profiles: Iterable[CriterionProfile]) -> tuple[float | None, float | None]:
    """(min, max) age in years the criteria require of every patient, or None per side.

    Only unconditioned, non-alternative age rows count (an age for one cohort or phase is no
    limit of the trial).  An inclusion range gives both sides; a one-sided exclusion gives the
    other side ("age > 75" excludes, so 75 is the maximum).  Several rows: the narrowest
    range they all allow; none at all if they contradict each other.
    """
    lows: list[float] = []
    highs: list[float] = []
    for p in profiles:
        for c in p.constraints:
            if c.variable != "age" or c.condition is not None or c.group is not None:
                continue
            if not c.negated:
                if c.lower is not None:
                    lows.append(c.lower)
                if c.upper is not None:
                    highs.append(c.upper)
            elif c.lower is not None and c.upper is None:
                highs.append(c.lower)
            elif c.upper is not None and c.lower is None:
                lows.append(c.upper)
    low = max(lows) if lows else None
    high = min(highs) if highs else None
    if low is not None and high is not None and low > high:
        return None, None
    return low, high


def eligibility_rows(
    criteria: Sequence[Criterion],
) -> tuple[list[dict[str, object]], list[dict[str, object]], float | None, float | None]:
    """Constraint and flag rows (without trial_id) and the criteria's (min, max) age of one
    trial's criteria, in the order `read_inputs` gives them."""
    constraints: list[dict[str, object]] = []
    flags: list[dict[str, object]] = []
    profiles = profile_criteria(criteria)
    for p in profiles:
        for pos, c in enumerate(p.constraints, 1):
            constraints.append({
                "criterion_type": p.criterion_type, "ordinal": p.ordinal,
                "position": pos, "variable": c.variable, "lower": c.lower,
                "lower_inclusive": c.lower_inclusive, "upper": c.upper,
                "upper_inclusive": c.upper_inclusive, "unit": c.unit, "negated": c.negated,
                "text": c.text, "condition": c.condition, "antigen": c.antigen, "alt_group": c.group,
            })
        for flag in p.flags:
            flags.append({"criterion_type": p.criterion_type, "ordinal": p.ordinal, "flag": flag})
    low, high = criteria_ages(profiles)
    return constraints, flags, low, high


def therapy_rows(
    interventions: Sequence[Intervention], title: str | None, summary: str | None, description: str | None,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Therapy and dose-level rows (without trial_id) of one trial."""
    therapies: list[dict[str, object]] = []
    doses: list[dict[str, object]] = []
    profiles: tuple[TherapyProfile, ...] = profile_interventions(interventions, title, summary, description)
    for ordinal, th in enumerate(profiles, 1):  # = interventions.position when listed
        therapies.append({
            "therapy_ordinal": ordinal, "intervention_type": th.intervention_type,
            "intervention_name": th.intervention_name, "modality": th.modality,
            "targets": list(th.targets), "cell_source": list(th.cell_source),
            "engineering": list(th.engineering), "infusion_schedule": list(th.infusion_schedule),
            "escalation_design": list(th.escalation_design),
        })
        for d in th.dose_levels:
            doses.append({
                "therapy_ordinal": ordinal, "level": d.level, "value": d.value,
                "unit": d.unit, "per_kg": d.per_kg, "description": d.description,
            })
    return therapies, doses


def profile_rows(inputs: Sequence[TrialInputs]) -> dict[str, pa.Table]:
    """The profile tables' rows for `inputs` (pure: no warehouse access)."""
    rows: dict[str, list[dict[str, object]]] = {t: [] for t in PROFILE_TABLES}
    for trial in inputs:
        tid = trial.trial_id
        constraints, flags, low, high = eligibility_rows(trial.criteria)
        therapies, doses = therapy_rows(trial.interventions, trial.title, trial.summary, trial.description)
        for name, part in (("eligibility_constraints", constraints), ("eligibility_flags", flags),
                           ("therapies", therapies), ("dose_levels", doses)):
            rows[name].extend({"trial_id": tid, **row} for row in part)
        # the effective columns are settled by _sync_ages, which sees the page's fields
        rows["trial_ages"].append({
            "trial_id": tid, "min_age_years": None, "max_age_years": None, "min_age_source": None,
            "max_age_source": None, "criteria_min_age_years": low, "criteria_max_age_years": high,
        })
        rows["profile_state"].append({
            "trial_id": tid, "input_hash": trial.input_hash, "extractor_version": EXTRACTOR_VERSION,
            "profiler_version": PROFILER_VERSION,
        })
    return {name: pa.Table.from_pylist(r, schema=PROFILE_SCHEMAS[name]) for name, r in rows.items()}


# --- profiles made by the parse workers ---------------------------------------------------
#
# The profiles are pure functions of a trial's criteria, interventions and texts, and the
# golden record takes each of those whole from one of its pages (pipeline.golden): so the
# parse workers profile every page they parse (in parallel, next to the parse) and the loader
# uses, for a trial it must (re)profile, the rows of a page whose inputs are exactly the
# golden record's -- the same function of the same inputs, hence the same rows.  A trial with
# no such page among the batch's (inputs mixed from several pages, pages loaded earlier) is
# profiled by the loader as before.  The staged columns carry the extractor versions that made
# them, so a worker running other extractor code is never trusted.  (The loader compares the
# records it decoded from the staged JSON; that they equal the records the worker profiled is
# the serializer's exact round trip, tests/test_parse_batches.py.)

PROFILE_VERSIONS = f"{EXTRACTOR_VERSION}/{PROFILER_VERSION}"
_PAGE_ROW_TABLES: tuple[str, ...] = ("eligibility_constraints", "eligibility_flags", "therapies", "dose_levels")


def _row_struct(table: str) -> pa.StructType:
    return pa.struct([f for f in PROFILE_SCHEMAS[table] if f.name != "trial_id"])


# Columns the parse workers add to each staged page (pipeline.parse_batches.STAGED_SCHEMA).
PAGE_PROFILE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("profile_versions", pa.string()),  # PROFILE_VERSIONS, null when not profiled
    pa.field("criteria_min_age_years", pa.float64()),
    pa.field("criteria_max_age_years", pa.float64()),
    *(pa.field(f"profile_{t}", pa.list_(_row_struct(t))) for t in _PAGE_ROW_TABLES),
)


def _exclusion_last(c: Criterion) -> tuple[bool, int]:
    return c.criterion_type == "exclusion", c.ordinal


def criteria_input(record: TrialRecord) -> tuple[Criterion, ...] | None:
    """The record's criteria as `read_inputs` reads them back from the warehouse (inclusions
    first, by ordinal); None when that order would not be unique (such a record's rows break
    a key anyway), so the loader profiles it itself."""
    criteria = record.criteria
    if len({(c.criterion_type, c.ordinal) for c in criteria}) != len(criteria) or any(
            c.criterion_type not in ("inclusion", "exclusion") for c in criteria):
        return None
    return tuple(sorted(criteria, key=_exclusion_last))


def therapy_input(record: TrialRecord) -> tuple[tuple[Intervention, ...], str | None, str | None, str | None]:
    """What `read_inputs` gives the therapy profiler for this record (title: brief, else official)."""
    return (record.interventions, record.brief_title or record.official_title, record.brief_summary,
            record.detailed_description)


def page_profile_columns(records: Iterable[TrialRecord | None]) -> dict[str, list[object]]:
    """PAGE_PROFILE_FIELDS for each record (None: a page not profiled).  Pages with the same
    inputs (a trial's pages on both mirrors, often) are profiled once."""
    cols: dict[str, list[object]] = {f.name: [] for f in PAGE_PROFILE_FIELDS}
    seen_criteria: dict[tuple[Criterion, ...], tuple[object, object, float | None, float | None]] = {}
    seen_therapy: dict[tuple[object, ...], tuple[object, object]] = {}
    for record in records:
        criteria = criteria_input(record) if record is not None else None
        if record is None or criteria is None:
            for name in cols:
                cols[name].append(None)
            continue
        elig = seen_criteria.get(criteria)
        if elig is None:
            elig = seen_criteria[criteria] = eligibility_rows(criteria)
        key = therapy_input(record)
        ther = seen_therapy.get(key)
        if ther is None:
            ther = seen_therapy[key] = therapy_rows(
                tuple(Intervention(i.intervention_type, i.name, i.description) for i in key[0]), *key[1:])
        cols["profile_versions"].append(PROFILE_VERSIONS)
        cols["criteria_min_age_years"].append(elig[2])
        cols["criteria_max_age_years"].append(elig[3])
        cols["profile_eligibility_constraints"].append(elig[0])
        cols["profile_eligibility_flags"].append(elig[1])
        cols["profile_therapies"].append(ther[0])
        cols["profile_dose_levels"].append(ther[1])
    return cols


@dataclass(frozen=True, slots=True)
class PageProfiles:
    """The workers' profiles of a batch's pages: `table` has a `page_id` column and the
    PAGE_PROFILE_FIELDS; `rows` maps each page profiled by the current extractors to its row."""

    table: pa.Table
    rows: Mapping[str, int]

    @classmethod
    def of(cls, table: pa.Table) -> PageProfiles:
        ids = table.column("page_id").to_pylist()
        versions = table.column("profile_versions").to_pylist()
        return cls(table, {pid: i for i, (pid, v) in enumerate(zip(ids, versions)) if v == PROFILE_VERSIONS})


@dataclass(frozen=True, slots=True)
class Precomputed:
    """For some trials, the staged rows holding their profiles: trial_id -> (row of the page
    with the golden criteria, row of the page with the golden interventions and texts)."""

    profiles: PageProfiles
    picks: Mapping[str, tuple[int, int]]


def pick_page_profiles(
    profiles: PageProfiles, golden: Iterable[tuple[str, TrialRecord, Sequence[str]]],
    records: Mapping[str, TrialRecord],
) -> Precomputed:
    """For each (trial_id, golden record, page_ids): the staged pages (among `records`, the
    batch's parsed pages) whose profile inputs equal the golden record's, if any."""
    picks: dict[str, tuple[int, int]] = {}
    for trial_id, gold, page_ids in golden:
        gold_therapy = therapy_input(gold)
        elig = ther = None
        for pid in page_ids:
            row = profiles.rows.get(pid)
            record = records.get(pid)
            if row is None or record is None:
                continue
            if elig is None and record.criteria == gold.criteria:
                elig = row
            if ther is None and therapy_input(record) == gold_therapy:
                ther = row
            if elig is not None and ther is not None:
                picks[trial_id] = (elig, ther)
                break
    return Precomputed(profiles, picks)


def _precomputed_frames(pre: Precomputed, digests: Mapping[str, int]) -> dict[str, pa.Table]:
    """The profile tables' rows of the trials in `digests`, all of them in `pre.picks`."""
    ids = sorted(digests)
    tids = pa.array(ids, type=pa.string())
    table = pre.profiles.table
    row_of = {"eligibility": pa.array([pre.picks[t][0] for t in ids], type=pa.int64()),
              "therapy": pa.array([pre.picks[t][1] for t in ids], type=pa.int64())}
    frames: dict[str, pa.Table] = {}
    for name in _PAGE_ROW_TABLES:
        rows = row_of["eligibility" if name.startswith("eligibility") else "therapy"]
        lists = table.column(f"profile_{name}").take(rows).combine_chunks()
        items = lists.flatten()
        parents = pc.list_parent_indices(lists)
        schema = PROFILE_SCHEMAS[name]
        frames[name] = pa.table(
            [tids.take(parents), *(items.field(f.name) for f in schema if f.name != "trial_id")],
            schema=schema)
    n = len(ids)
    nulls = pa.nulls(n, pa.float64())
    frames["trial_ages"] = pa.table([
        tids, nulls, nulls, pa.nulls(n, pa.string()), pa.nulls(n, pa.string()),
        table.column("criteria_min_age_years").take(row_of["eligibility"]).combine_chunks(),
        table.column("criteria_max_age_years").take(row_of["eligibility"]).combine_chunks(),
    ], schema=PROFILE_SCHEMAS["trial_ages"])
    frames["profile_state"] = pa.table([
        tids, pa.array([digests[t] for t in ids], type=pa.uint64()),
        pa.array([EXTRACTOR_VERSION] * n, type=pa.string()), pa.array([PROFILER_VERSION] * n, type=pa.string()),
    ], schema=PROFILE_SCHEMAS["profile_state"])
    return frames


def _frames(conn: duckdb.DuckDBPyConnection, digests: Mapping[str, int],
            precomputed: Precomputed | None) -> dict[str, pa.Table]:
    """The profile rows of the trials in `digests`: from the workers' rows where `precomputed`
    has them, else extracted here from the warehouse's golden rows."""
    picked = {t: d for t, d in digests.items() if precomputed is not None and t in precomputed.picks}
    if not picked:
        return profile_rows(read_inputs(conn, digests))
    assert precomputed is not None
    made = _precomputed_frames(precomputed, picked)
    rest = {t: d for t, d in digests.items() if t not in picked}
    if not rest:
        return made
    here = profile_rows(read_inputs(conn, rest))
    out = {}
    for name in PROFILE_TABLES:  # in trial_id order like profile_rows (a stable sort keeps each trial's order)
        both = pa.concat_tables([here[name], made[name]])
        out[name] = both.take(pc.sort_indices(both, sort_keys=[("trial_id", "ascending")]))
    return out


# Criteria fill the trial's age columns only where the page shows no age field of its own;
# trial_ages then records, per side, which of the two the value came from.  Both statements
# touch only rows whose value differs, so a second run changes nothing, and a reload that
# reset trials.min_age_years is repaired by the next run.
_FILL_AGES_SQL = (
    "UPDATE trials SET {side}_age_years = a.criteria_{side}_age_years FROM trial_ages a "
    "WHERE trials.trial_id = a.trial_id AND trials.{side}_age IS NULL "
    "AND trials.{side}_age_years IS DISTINCT FROM a.criteria_{side}_age_years{scope}"
)
_SYNC_AGES_SQL = """
UPDATE trial_ages SET min_age_years = x.min_years, max_age_years = x.max_years,
                      min_age_source = x.min_source, max_age_source = x.max_source
FROM (
    SELECT a.trial_id, t.min_age_years AS min_years, t.max_age_years AS max_years,
           CASE WHEN t.min_age_years IS NULL THEN NULL WHEN t.min_age IS NOT NULL THEN 'page' ELSE 'criteria' END
               AS min_source,
           CASE WHEN t.max_age_years IS NULL THEN NULL WHEN t.max_age IS NOT NULL THEN 'page' ELSE 'criteria' END
               AS max_source
    FROM trial_ages a JOIN trials t USING (trial_id)
) x
WHERE trial_ages.trial_id = x.trial_id AND (
    trial_ages.min_age_years IS DISTINCT FROM x.min_years OR trial_ages.max_age_years IS DISTINCT FROM x.max_years
    OR trial_ages.min_age_source IS DISTINCT FROM x.min_source
    OR trial_ages.max_age_source IS DISTINCT FROM x.max_source){scope}
"""


# Rows of trials that no longer exist (relinked away), and ages that disagree with what the
# two statements above would write: when neither and no trial is stale, refresh writes nothing.
_ORPHANS_SQL = " UNION ALL ".join(
    f"SELECT DISTINCT trial_id FROM {name} WHERE trial_id NOT IN (SELECT trial_id FROM trials)"
    for name in PROFILE_TABLES
)
_AGES_OUT_OF_STEP_SQL = """
SELECT count(*) FROM trials t JOIN trial_ages a USING (trial_id)
WHERE (t.min_age IS NULL AND t.min_age_years IS DISTINCT FROM a.criteria_min_age_years)
   OR (t.max_age IS NULL AND t.max_age_years IS DISTINCT FROM a.criteria_max_age_years)
   OR a.min_age_years IS DISTINCT FROM t.min_age_years OR a.max_age_years IS DISTINCT FROM t.max_age_years
"""


def _count(conn: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> int:
    rows = conn.execute(sql, params or []).fetchall()
    return int(rows[0][0]) if rows and rows[0] and isinstance(rows[0][0], int) else 0


def _stale_among(conn: duckdb.DuckDBPyConnection, trial_ids: Iterable[str]) -> dict[str, int]:
    """`stale_trials`, looking only at `trial_ids` (those not in the warehouse are ignored)."""
    ids = sorted(set(trial_ids))
    if not ids:
        return {}
    rows = conn.execute(_DIGEST_SQL.format(where=_IDS, where_t=_IDS_T), [ids, ids, ids]).fetchall()
    return {
        trial_id: digest
        for trial_id, digest, stored, extractor, profiler in rows
        if stored != digest or extractor != EXTRACTOR_VERSION or profiler != PROFILER_VERSION
    }


_IN_SCOPE = " AND {table}.trial_id IN (SELECT trial_id FROM _profile_scope)"


def refresh_profiles(
    conn: duckdb.DuckDBPyConnection, trial_ids: Iterable[str] | None = None, *, transaction: bool = True,
    precomputed: Precomputed | None = None, scope: Iterable[str] | None = None, gone: Iterable[str] = (),
) -> RefreshResult:
    """Recompute the profile rows of every stale trial (see module doc), or exactly of
    `trial_ids` when given (trials not in the warehouse are ignored), in one transaction --
    or, with `transaction=False`, inside the caller's (the loader runs it in the load's
    transaction, so a load and its profiles commit or roll back together).
    Costs a few milliseconds when there is nothing to do.

    `scope` (the loader, between the batches of a rebuild): look only at these trials -- the
    stale ones among them are recomputed and their ages settled -- and drop the rows of the
    `gone` trials, instead of scanning the whole warehouse; a later unscoped refresh does the
    rest.  `precomputed`: profile rows the parse workers made (see `pick_page_profiles`)."""
    scoped = scope is not None
    scope_ids = sorted(set(scope or ()))
    if scoped:
        digests = _stale_among(conn, scope_ids)
        orphans = set(gone) - set(scope_ids)
        if not digests and not orphans and not scope_ids:
            return RefreshResult(0, 0, 0, dict.fromkeys(PROFILE_TABLES, 0))
    else:
        digests = stale_trials(conn) if trial_ids is None else _digests(conn, list(trial_ids))
        orphans = {t for (t,) in conn.execute(_ORPHANS_SQL).fetchall()}
        if not digests and not orphans and not _count(conn, _AGES_OUT_OF_STEP_SQL):
            return RefreshResult(0, 0, 0, dict.fromkeys(PROFILE_TABLES, 0))
    frames = _frames(conn, digests, precomputed) if digests else {
        name: PROFILE_SCHEMAS[name].empty_table() for name in PROFILE_TABLES}
    ids = pa.table({"trial_id": pa.array(sorted(set(digests) | orphans), type=pa.string())})
    written: dict[str, int] = dict.fromkeys(PROFILE_TABLES, 0)
    registered: list[str] = []
    if transaction:
        conn.begin()
    try:
        checkpoint("profiles.begun")
        conn.register("_profile_ids", ids)
        registered.append("_profile_ids")
        if scoped:
            conn.register("_profile_scope", pa.table({"trial_id": pa.array(scope_ids, type=pa.string())}))
            registered.append("_profile_scope")
        if ids.num_rows:
            for name in PROFILE_TABLES:  # our own constant names, never input
                conn.execute(f"DELETE FROM {name} WHERE trial_id IN (SELECT trial_id FROM _profile_ids)").fetchall()
                if frames[name].num_rows:
                    view = f"_profile_{name}"
                    conn.register(view, frames[name])
                    registered.append(view)
                    written[name] = _count(conn, f"INSERT INTO {name} BY NAME SELECT * FROM {view}")
        fill_scope = _IN_SCOPE.format(table="trials") if scoped else ""
        filled = sum(_count(conn, _FILL_AGES_SQL.format(side=side, scope=fill_scope)) for side in ("min", "max"))
        conn.execute(_SYNC_AGES_SQL.format(scope=_IN_SCOPE.format(table="trial_ages") if scoped else "")).fetchall()
        checkpoint("profiles.before_commit")
        if transaction:
            conn.commit()
    except BaseException:
        if transaction:
            rollback_quietly(conn)
        raise
    finally:
        for view in registered:
            conn.unregister(view)
    checkpoint("profiles.committed")
    dropped = len({t for t in orphans if t not in digests})
    return RefreshResult(trials_profiled=len(digests), trials_dropped=dropped, ages_filled=filled,
                         rows_written=written)


# --- checks -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ProfileCheck:
    passed: bool
    summary: str
    examples: tuple[str, ...]


def check_profiles(conn: duckdb.DuckDBPyConnection) -> ProfileCheck:
    """Profiles are current for every trial, point at existing criteria, and use only the
    extractors' vocabularies (variables, flags, modalities)."""
    problems: list[str] = []
    stale = stale_trials(conn)
    if stale:
        problems += [f"stale profile: {t}" for t in sorted(stale)[:5]]
    queries = {
        "constraint without its criterion": (
            "SELECT c.trial_id || ' ' || c.criterion_type || ' ' || c.ordinal FROM eligibility_constraints c "
            "ANTI JOIN criteria USING (trial_id, criterion_type, ordinal) LIMIT 5", []),
        "flag without its criterion": (
            "SELECT f.trial_id || ' ' || f.criterion_type || ' ' || f.ordinal FROM eligibility_flags f "
            "ANTI JOIN criteria USING (trial_id, criterion_type, ordinal) LIMIT 5", []),
        "unknown variable": (
            "SELECT DISTINCT variable FROM eligibility_constraints "
            "WHERE NOT list_contains(CAST(? AS VARCHAR[]), variable) LIMIT 5", [list(VARIABLES)]),
        "unknown flag": (
            "SELECT DISTINCT flag FROM eligibility_flags WHERE NOT list_contains(CAST(? AS VARCHAR[]), flag) LIMIT 5",
            [list(FLAGS)]),
        "unknown modality": (
            "SELECT DISTINCT modality FROM therapies WHERE NOT list_contains(CAST(? AS VARCHAR[]), modality) LIMIT 5",
            [list(MODALITIES)]),
    }
    for label, (sql, params) in queries.items():
        problems += [f"{label}: {v}" for (v,) in conn.execute(sql, params).fetchall()]
    if not problems:
        return ProfileCheck(True, "profiles current for every trial; vocabularies valid", ())
    return ProfileCheck(False, f"{len(stale)} stale trial profile(s); {len(problems)} problem(s)",
                        tuple(problems[:10]))
