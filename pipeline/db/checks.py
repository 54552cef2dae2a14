"""Data-quality checks on the warehouse, as plain functions (Dagster wraps them as asset checks).

Each check covers every table it applies to and returns a CheckOutcome with the number of
offending rows, a few examples and the failures per table, so a failure says what is wrong
without opening the database.  Table and column names in the SQL come from
`pipeline.db.schema` constants, never from input; code lists are parameters.

The BLOCKING checks also run inside every load transaction (pipeline.db.load): a load that
would break one of them is rolled back, so a broken batch never lands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from pipeline.db.history import TRACKED_FIELDS, value_text
from pipeline.db.schema import (
    CHILD_TABLES, ENUM_COLUMNS, INDEX_KEY_COLUMNS, KEY_COLUMNS, PROFILE_TABLES, RUN_COUNT_COLUMNS,
    RUN_TABLES,
)
from pipeline.eligibility import FLAGS, VARIABLES
from pipeline.therapy import MODALITIES
from pipeline.vocab import CODES

_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    name: str
    passed: bool
    failures: int  # offending rows (or values)
    examples: tuple[str, ...] = ()  # a few of them, as text
    by_table: Mapping[str, int] = field(default_factory=dict)  # every table checked -> failures

    @property
    def summary(self) -> str:
        if self.passed:
            return f"{self.name}: ok"
        shown = "; ".join(self.examples)
        return f"{self.name}: {self.failures} failing ({shown})"


def _outcome(name: str, failures: list[tuple[str, str]], tables: tuple[str, ...]) -> CheckOutcome:
    """failures: (table, example) pairs."""
    by_table = dict.fromkeys(tables, 0)
    for table, _ in failures:
        by_table[table] = by_table.get(table, 0) + 1
    return CheckOutcome(
        name, not failures, len(failures), tuple(e for _, e in failures[:_EXAMPLES]), by_table
    )


def _collect(
    conn: duckdb.DuckDBPyConnection, parts: Sequence[tuple[str, list[object]]]
) -> list[tuple[int, str | None, int | None]]:
    """Run every part (a query yielding columns k, n) as one UNION ALL query: the checks run
    inside every load, so one round trip per check rather than one per table."""
    if not parts:
        return []
    sql = " UNION ALL ".join(
        f"SELECT {i} AS part, CAST(k AS VARCHAR) AS k, CAST(n AS BIGINT) AS n FROM ({query})"
        for i, (query, _) in enumerate(parts)
    )
    params = [p for _, ps in parts for p in ps]
    return conn.execute(sql + " ORDER BY part, k", params).fetchall()


def unique_keys(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Every table's key (schema.KEY_COLUMNS) is never NULL and never repeated; an NCT ID
    belongs to one trial at most."""
    labels: list[tuple[str, str]] = []
    parts: list[tuple[str, list[object]]] = []
    for table, cols in KEY_COLUMNS.items():
        keys = ", ".join(cols)
        shown = ", ".join(f"coalesce(CAST({c} AS VARCHAR), '<NULL>')" for c in cols)
        any_null = " OR ".join(f"{c} IS NULL" for c in cols)
        labels.append((table, table))
        parts.append((f"SELECT concat_ws('/', {shown}) AS k, count(*) AS n FROM {table} "
                       f"GROUP BY {keys} HAVING count(*) > 1 OR bool_or({any_null})", []))
    labels.append(("trials", "trials.nct_id"))
    parts.append(("SELECT nct_id AS k, count(*) AS n FROM trials WHERE nct_id IS NOT NULL "
                  "GROUP BY nct_id HAVING count(*) > 1", []))
    failures = [(labels[i][0], f"{labels[i][1]}: {key} x{n}") for i, key, n in _collect(conn, parts)]
    return _outcome("unique_keys", failures, tuple(KEY_COLUMNS))


def _missing_trial(table: str, column: str = "trial_id") -> str:
    return (f"SELECT DISTINCT c.{column} AS k, NULL AS n FROM {table} c WHERE c.{column} IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM trials t WHERE t.trial_id = c.{column})")


def _missing_page(table: str, column: str) -> str:
    return (f"SELECT DISTINCT c.{column} AS k, NULL AS n FROM {table} c WHERE c.{column} IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM pages p WHERE p.page_id = c.{column})")


# (table the failure belongs to, label in examples, SQL returning the dangling keys as k)
_REFERENCES: tuple[tuple[str, str, str], ...] = (
    *((t, t, _missing_trial(t)) for t in CHILD_TABLES),
    ("pages", "pages", _missing_trial("pages")),
    ("trial_history", "trial_history", _missing_trial("trial_history")),
    ("page_records", "page_records", _missing_page("page_records", "page_id")),
    ("trials", "trials.best_page_id", _missing_page("trials", "best_page_id")),
    ("trial_history", "trial_history.page_id", _missing_page("trial_history", "page_id")),
    # deduplication (0006_dedup.sql)
    ("link_keys", "link_keys.page_id", _missing_page("link_keys", "page_id")),
    ("block_keys", "block_keys.page_id", _missing_page("block_keys", "page_id")),
    ("record_links", "record_links", _missing_trial("record_links")),
    ("record_links", "record_links.page_id", _missing_page("record_links", "page_id")),
    ("record_links", "record_links.matched_page_id",
     _missing_page("record_links", "matched_page_id")),
    ("record_links", "record_links.trial_id=pages.trial_id",
     "SELECT l.page_id AS k, NULL AS n FROM record_links l JOIN pages p USING (page_id) "
     "WHERE p.trial_id IS DISTINCT FROM l.trial_id"),
    ("link_candidates", "link_candidates.trial_a", _missing_trial("link_candidates", "trial_a")),
    ("link_candidates", "link_candidates.trial_b", _missing_trial("link_candidates", "trial_b")),
    ("link_candidates", "link_candidates.page_a", _missing_page("link_candidates", "page_a")),
    ("link_candidates", "link_candidates.page_b", _missing_page("link_candidates", "page_b")),
    ("link_decisions", "link_decisions.page_a", _missing_page("link_decisions", "page_a")),
    ("link_decisions", "link_decisions.page_b", _missing_page("link_decisions", "page_b")),
    ("trial_id_aliases", "trial_id_aliases", _missing_trial("trial_id_aliases")),
    ("trial_id_aliases", "trial_id_aliases.retired_id (still a current trial)",
     "SELECT a.retired_id AS k, NULL AS n FROM trial_id_aliases a "
     "JOIN trials t ON t.trial_id = a.retired_id"),
    ("field_sources", "field_sources", _missing_trial("field_sources")),
    ("field_sources", "field_sources.page_id", _missing_page("field_sources", "page_id")),
    ("field_conflicts", "field_conflicts", _missing_trial("field_conflicts")),
    ("field_conflicts", "field_conflicts.page_id", _missing_page("field_conflicts", "page_id")),
    ("arm_interventions", "arm_interventions.arm_position",
     "SELECT DISTINCT ai.trial_id || '/' || ai.arm_position AS k, NULL AS n "
     "FROM arm_interventions ai WHERE NOT EXISTS (SELECT 1 FROM arms a "
     "WHERE a.trial_id = ai.trial_id AND a.position = ai.arm_position)"),
    *((t, t, _missing_trial(t)) for t in PROFILE_TABLES),
    *((t, f"{t} -> criteria",
       f"SELECT DISTINCT x.trial_id || '/' || x.criterion_type || '/' || x.ordinal AS k, NULL AS n "
       f"FROM {t} x WHERE NOT EXISTS (SELECT 1 FROM criteria c WHERE c.trial_id = x.trial_id "
       "AND c.criterion_type = x.criterion_type AND c.ordinal = x.ordinal)")
      for t in ("eligibility_constraints", "eligibility_flags")),
    ("dose_levels", "dose_levels.therapy_ordinal",
     "SELECT DISTINCT d.trial_id || '/' || d.therapy_ordinal AS k, NULL AS n FROM dose_levels d "
     "WHERE NOT EXISTS (SELECT 1 FROM therapies t WHERE t.trial_id = d.trial_id "
     "AND t.therapy_ordinal = d.therapy_ordinal)"),
    ("criteria", "criteria.parent_ordinal",
     "SELECT DISTINCT c.trial_id || '/' || c.criterion_type || '/' || c.ordinal AS k, NULL AS n "
     "FROM criteria c WHERE c.parent_ordinal IS NOT NULL AND NOT EXISTS (SELECT 1 FROM criteria p "
     "WHERE p.trial_id = c.trial_id AND p.criterion_type = c.criterion_type "
     "AND p.ordinal = c.parent_ordinal)"),
)


def foreign_keys(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Every reference resolves: child rows, linked pages, history and profile rows point at
    an existing trial; constraints and flags at their criterion, dose levels at their therapy; silver records, best pages and history rows at an existing page; arm interventions
    at their arm; sub-criteria at their parent criterion."""
    rows = _collect(conn, [(sql, []) for _, _, sql in _REFERENCES])
    failures = [(_REFERENCES[i][0], f"{_REFERENCES[i][1]}: {key}") for i, key, _ in rows]
    return _outcome("foreign_keys", failures, tuple(dict.fromkeys(t for t, _, _ in _REFERENCES)))


def valid_enumerations(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Every enumerated column holds only API v2 codes (pipeline.vocab.CODES) or NULL, history
    only tracked field names, and the profile tables only their extractors' vocabularies
    (constraint variables, flags, modalities, age sources)."""
    columns = [(c.table, c.column, sorted(CODES[c.kind]), c.is_list) for c in ENUM_COLUMNS]
    columns.append(("trial_history", "field", sorted(TRACKED_FIELDS), False))
    # the profile tables' vocabularies (pipeline.eligibility, pipeline.therapy)
    columns += [
        ("eligibility_constraints", "criterion_type", sorted(CODES["criterion_type"]), False),
        ("eligibility_constraints", "variable", sorted(VARIABLES), False),
        ("eligibility_flags", "criterion_type", sorted(CODES["criterion_type"]), False),
        ("eligibility_flags", "flag", sorted(FLAGS), False),
        ("therapies", "modality", sorted(MODALITIES), False),
        ("trial_ages", "min_age_source", ["criteria", "page"], False),
        ("trial_ages", "max_age_source", ["criteria", "page"], False),
    ]
    parts: list[tuple[str, list[object]]] = []
    for table, column, codes, is_list in columns:
        if is_list:
            sql = (f"SELECT DISTINCT v AS k, NULL AS n FROM (SELECT unnest({column}) AS v FROM {table}) "
                   "WHERE v IS NULL OR NOT list_contains(?, v)")
        else:
            sql = (f"SELECT DISTINCT {column} AS k, NULL AS n FROM {table} WHERE {column} IS NOT NULL "
                   f"AND NOT list_contains(?, {column})")
        parts.append((sql, [codes]))
    failures = [(columns[i][0], f"{columns[i][0]}.{columns[i][1]}={value!r}")
                for i, value, _ in _collect(conn, parts)]
    return _outcome("valid_enumerations", failures, tuple(dict.fromkeys(t for t, *_ in columns)))


def trials_have_pages(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """No trial without a page (and page_count is right); no parsed page without a trial."""
    failures: list[tuple[str, str]] = []
    rows = conn.execute(
        "SELECT t.trial_id, count(p.page_id), t.page_count FROM trials t "
        "LEFT JOIN pages p ON p.trial_id = t.trial_id GROUP BY t.trial_id, t.page_count "
        "HAVING count(p.page_id) = 0 OR count(p.page_id) IS DISTINCT FROM t.page_count ORDER BY 1"
    ).fetchall()
    failures.extend(("trials", f"trials: {tid} has {n} pages, page_count {pc}") for tid, n, pc in rows)
    rows = conn.execute(
        "SELECT p.page_id FROM pages p JOIN page_records r USING (page_id) "
        "WHERE p.trial_id IS NULL AND p.parse_status <> 'rejected' ORDER BY 1"
    ).fetchall()
    failures.extend(("pages", f"pages: {pid} parsed but in no trial") for (pid,) in rows)
    return _outcome("trials_have_pages", failures, ("trials", "pages"))


def pages_have_links(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Every page in a trial says how it was linked (record_links), every trial says where
    its values came from (field_sources), and the link index (link_keys, block_keys) has no
    repeated key.  Not blocking: a warehouse loaded before the dedup tables existed gets
    these rows from its next run."""
    failures: list[tuple[str, str]] = []
    for table, cols in INDEX_KEY_COLUMNS.items():  # our own constant names
        keys = ", ".join(cols)
        rows = conn.execute(
            f"SELECT concat_ws('/', {keys}) FROM {table} GROUP BY {keys} HAVING count(*) > 1 "
            "ORDER BY 1 LIMIT 20").fetchall()
        failures.extend((table, f"{table}: {k} repeated") for (k,) in rows)
    rows = conn.execute(
        "SELECT p.page_id FROM pages p WHERE p.trial_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM record_links l WHERE l.page_id = p.page_id) ORDER BY 1"
    ).fetchall()
    failures.extend(("record_links", f"record_links: page {pid} has no link row") for (pid,) in rows)
    rows = conn.execute(
        "SELECT t.trial_id FROM trials t WHERE NOT EXISTS "
        "(SELECT 1 FROM field_sources f WHERE f.trial_id = t.trial_id) ORDER BY 1"
    ).fetchall()
    failures.extend(("field_sources", f"field_sources: trial {tid} has none") for (tid,) in rows)
    return _outcome("pages_have_links", failures,
                    ("record_links", "field_sources", *INDEX_KEY_COLUMNS))


def history_matches_trials(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """The latest history value of each tracked field equals the trial's current value, and
    every trial has first_seen_at <= last_changed_at."""
    failures: list[tuple[str, str]] = []
    for name in TRACKED_FIELDS:  # our own constant names
        rows = conn.execute(
            f"SELECT h.trial_id, h.new_value, t.{name} FROM (SELECT trial_id, "
            "arg_max(new_value, observed_at) AS new_value FROM trial_history "
            "WHERE field = ? GROUP BY trial_id) h JOIN trials t USING (trial_id) ORDER BY 1",
            [name],
        ).fetchall()
        for trial_id, latest, current in rows:
            if latest != value_text(current):
                failures.append(("trial_history", f"{trial_id}.{name}: history {latest!r}, "
                                                  f"trials {value_text(current)!r}"))
    rows = conn.execute(
        "SELECT trial_id FROM trials WHERE first_seen_at IS NULL OR last_changed_at IS NULL "
        "OR last_changed_at < first_seen_at ORDER BY 1"
    ).fetchall()
    failures.extend(("trials", f"trials: {tid} first_seen_at/last_changed_at") for (tid,) in rows)
    return _outcome("history_matches_trials", failures, ("trial_history", "trials"))


def runs_recorded(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """The run log is consistent: finished runs have a finish time not before their start, failed
    runs say why and succeeded ones do not, counts are never negative, and every rejected page
    and trial change belongs to a logged run."""
    negative = " OR ".join(f"{c} < 0" for c in RUN_COUNT_COLUMNS)  # our own column names
    parts: list[tuple[str, list[object]]] = [
        ("SELECT run_id || ': finished_at' AS k, NULL AS n FROM runs WHERE outcome <> 'running' "
         "AND (finished_at IS NULL OR finished_at < started_at)", []),
        ("SELECT run_id || ': outcome ' || outcome || ' vs error' AS k, NULL AS n FROM runs "
         "WHERE (outcome = 'failed') <> (error IS NOT NULL)", []),
        (f"SELECT run_id || ': negative count' AS k, NULL AS n FROM runs WHERE {negative}", []),
        ("SELECT DISTINCT run_id || ': no such run' AS k, NULL AS n FROM run_pages "
         "WHERE run_id NOT IN (SELECT run_id FROM runs)", []),
        ("SELECT DISTINCT run_id || ': no such run' AS k, NULL AS n FROM run_changes "
         "WHERE run_id NOT IN (SELECT run_id FROM runs)", []),
    ]
    tables = ("runs", "runs", "runs", "run_pages", "run_changes")
    failures = [(tables[i], f"{tables[i]}: {key}") for i, key, _ in _collect(conn, parts)]
    return _outcome("runs_recorded", failures, RUN_TABLES)


Check = Callable[[duckdb.DuckDBPyConnection], CheckOutcome]

# Integrity the warehouse must never lose: the load refuses to commit when one fails.
BLOCKING_CHECKS: tuple[Check, ...] = (unique_keys, foreign_keys, valid_enumerations, trials_have_pages)
ALL_CHECKS: tuple[Check, ...] = (*BLOCKING_CHECKS, history_matches_trials, pages_have_links)


def run_checks(
    conn: duckdb.DuckDBPyConnection, checks: tuple[Check, ...] = ALL_CHECKS
) -> tuple[CheckOutcome, ...]:
    return tuple(check(conn) for check in checks)


__all__ = [
    "ALL_CHECKS", "BLOCKING_CHECKS", "CheckOutcome", "foreign_keys",
    "history_matches_trials", "pages_have_links", "run_checks", "runs_recorded", "trials_have_pages", "unique_keys",
    "valid_enumerations",
]
