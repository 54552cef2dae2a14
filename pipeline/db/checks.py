"""Data-quality checks on the warehouse, as plain functions (Dagster wraps them as asset checks).

Each check returns a CheckOutcome with the number of offending rows and a few examples, so
a failure says what is wrong without opening the database.  Table and column names in the
SQL come from `pipeline.db.schema` constants, never from input; code lists are parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from pipeline.db.schema import CHILD_TABLES, ENUM_COLUMNS
from pipeline.vocab import CODES

_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    name: str
    passed: bool
    failures: int  # offending rows (or values)
    examples: tuple[str, ...] = ()  # a few of them, as text

    @property
    def summary(self) -> str:
        if self.passed:
            return f"{self.name}: ok"
        shown = "; ".join(self.examples)
        return f"{self.name}: {self.failures} failing ({shown})"


def _outcome(name: str, failures: list[str]) -> CheckOutcome:
    return CheckOutcome(name, not failures, len(failures), tuple(failures[:_EXAMPLES]))


def unique_trial_ids(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    rows = conn.execute(
        "SELECT coalesce(trial_id, '<NULL>'), count(*) FROM trials "
        "GROUP BY trial_id HAVING count(*) > 1 OR trial_id IS NULL ORDER BY 1"
    ).fetchall()
    return _outcome("unique_trial_ids", [f"{tid} x{n}" for tid, n in rows])


def unique_nct_ids(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    rows = conn.execute(
        "SELECT nct_id, count(*) FROM trials WHERE nct_id IS NOT NULL "
        "GROUP BY nct_id HAVING count(*) > 1 ORDER BY 1"
    ).fetchall()
    return _outcome("unique_nct_ids", [f"{nct} x{n}" for nct, n in rows])


def no_orphan_rows(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Every child row and every linked page points at an existing trial; every silver
    record at an existing page."""
    failures: list[str] = []
    queries = [
        (table, f"SELECT DISTINCT c.trial_id FROM {table} c "
                "WHERE NOT EXISTS (SELECT 1 FROM trials t WHERE t.trial_id = c.trial_id)")
        for table in CHILD_TABLES
    ]
    queries.append(("pages", "SELECT DISTINCT p.trial_id FROM pages p WHERE p.trial_id IS NOT "
                             "NULL AND NOT EXISTS (SELECT 1 FROM trials t "
                             "WHERE t.trial_id = p.trial_id)"))
    queries.append(("page_records", "SELECT r.page_id FROM page_records r WHERE NOT EXISTS "
                                    "(SELECT 1 FROM pages p WHERE p.page_id = r.page_id)"))
    for table, sql in queries:
        for (key,) in conn.execute(sql + " ORDER BY 1").fetchall():
            failures.append(f"{table}: {key}")
    return _outcome("no_orphan_rows", failures)


def valid_enumerations(conn: duckdb.DuckDBPyConnection) -> CheckOutcome:
    """Every enumerated column holds only API v2 codes (pipeline.vocab.CODES) or NULL."""
    failures: list[str] = []
    for col in ENUM_COLUMNS:
        codes = sorted(CODES[col.kind])
        if col.is_list:
            sql = (f"SELECT DISTINCT v FROM (SELECT unnest({col.column}) AS v FROM {col.table}) "
                   "WHERE v IS NULL OR NOT list_contains(?, v) ORDER BY 1")
        else:
            sql = (f"SELECT DISTINCT {col.column} FROM {col.table} WHERE {col.column} IS NOT NULL "
                   f"AND NOT list_contains(?, {col.column}) ORDER BY 1")
        for (value,) in conn.execute(sql, [codes]).fetchall():
            failures.append(f"{col.table}.{col.column}={value!r}")
    return _outcome("valid_enumerations", failures)


ALL_CHECKS: tuple[Callable[[duckdb.DuckDBPyConnection], CheckOutcome], ...] = (
    unique_trial_ids, unique_nct_ids, no_orphan_rows, valid_enumerations,
)


def run_checks(conn: duckdb.DuckDBPyConnection) -> tuple[CheckOutcome, ...]:
    return tuple(check(conn) for check in ALL_CHECKS)
