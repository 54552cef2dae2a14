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

from pipeline.db.schema import PROFILE_SCHEMAS, PROFILE_TABLES
from pipeline.eligibility import EXTRACTOR_VERSION, FLAGS, VARIABLES, CriterionProfile, profile_criteria
from pipeline.faults import checkpoint, rollback_quietly
from pipeline.models import Criterion, Intervention
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


def profile_rows(inputs: Sequence[TrialInputs]) -> dict[str, pa.Table]:
    """The profile tables' rows for `inputs` (pure: no warehouse access)."""
    rows: dict[str, list[dict[str, object]]] = {t: [] for t in PROFILE_TABLES}
    for trial in inputs:
        tid = trial.trial_id
        profiles = profile_criteria(trial.criteria)
        for p in profiles:
            for pos, c in enumerate(p.constraints, 1):
                rows["eligibility_constraints"].append({
                    "trial_id": tid, "criterion_type": p.criterion_type, "ordinal": p.ordinal,
                    "position": pos, "variable": c.variable, "lower": c.lower,
                    "lower_inclusive": c.lower_inclusive, "upper": c.upper,
                    "upper_inclusive": c.upper_inclusive, "unit": c.unit, "negated": c.negated,
                    "text": c.text, "condition": c.condition, "antigen": c.antigen, "alt_group": c.group,
                })
            for flag in p.flags:
                rows["eligibility_flags"].append({
                    "trial_id": tid, "criterion_type": p.criterion_type, "ordinal": p.ordinal, "flag": flag,
                })
        therapies: tuple[TherapyProfile, ...] = profile_interventions(
            trial.interventions, trial.title, trial.summary, trial.description
        )
        for ordinal, th in enumerate(therapies, 1):  # = interventions.position when listed
            rows["therapies"].append({
                "trial_id": tid, "therapy_ordinal": ordinal, "intervention_type": th.intervention_type,
                "intervention_name": th.intervention_name, "modality": th.modality,
                "targets": list(th.targets), "cell_source": list(th.cell_source),
                "engineering": list(th.engineering), "infusion_schedule": list(th.infusion_schedule),
                "escalation_design": list(th.escalation_design),
            })
            for d in th.dose_levels:
                rows["dose_levels"].append({
                    "trial_id": tid, "therapy_ordinal": ordinal, "level": d.level, "value": d.value,
                    "unit": d.unit, "per_kg": d.per_kg, "description": d.description,
                })
        low, high = criteria_ages(profiles)
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


# Criteria fill the trial's age columns only where the page shows no age field of its own;
# trial_ages then records, per side, which of the two the value came from.  Both statements
# touch only rows whose value differs, so a second run changes nothing, and a reload that
# reset trials.min_age_years is repaired by the next run.
_FILL_AGES_SQL = (
    "UPDATE trials SET {side}_age_years = a.criteria_{side}_age_years FROM trial_ages a "
    "WHERE trials.trial_id = a.trial_id AND trials.{side}_age IS NULL "
    "AND trials.{side}_age_years IS DISTINCT FROM a.criteria_{side}_age_years"
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
    OR trial_ages.max_age_source IS DISTINCT FROM x.max_source)
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


def refresh_profiles(
    conn: duckdb.DuckDBPyConnection, trial_ids: Iterable[str] | None = None, *, transaction: bool = True
) -> RefreshResult:
    """Recompute the profile rows of every stale trial (see module doc), or exactly of
    `trial_ids` when given (trials not in the warehouse are ignored), in one transaction --
    or, with `transaction=False`, inside the caller's (the loader runs it in the load's
    transaction, so a load and its profiles commit or roll back together).
    Costs a few milliseconds when there is nothing to do."""
    digests = stale_trials(conn) if trial_ids is None else _digests(conn, list(trial_ids))
    orphans = {t for (t,) in conn.execute(_ORPHANS_SQL).fetchall()}
    if not digests and not orphans and not _count(conn, _AGES_OUT_OF_STEP_SQL):
        return RefreshResult(0, 0, 0, dict.fromkeys(PROFILE_TABLES, 0))
    frames = profile_rows(read_inputs(conn, digests))
    ids = pa.table({"trial_id": pa.array(sorted(set(digests) | orphans), type=pa.string())})
    written: dict[str, int] = dict.fromkeys(PROFILE_TABLES, 0)
    registered: list[str] = []
    if transaction:
        conn.begin()
    try:
        checkpoint("profiles.begun")
        conn.register("_profile_ids", ids)
        registered.append("_profile_ids")
        for name in PROFILE_TABLES:  # our own constant names, never input
            conn.execute(f"DELETE FROM {name} WHERE trial_id IN (SELECT trial_id FROM _profile_ids)").fetchall()
            if frames[name].num_rows:
                view = f"_profile_{name}"
                conn.register(view, frames[name])
                registered.append(view)
                written[name] = _count(conn, f"INSERT INTO {name} BY NAME SELECT * FROM {view}")
        filled = sum(_count(conn, _FILL_AGES_SQL.format(side=side)) for side in ("min", "max"))
        conn.execute(_SYNC_AGES_SQL).fetchall()
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
