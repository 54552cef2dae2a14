"""The DuckDB warehouse: schema migrations, connections, bulk loading, checks and queries.

Submodules: migrate (schema), connection (open, locks, errors), schema (table metadata),
load (bulk writes), history (trial history and presence), checks (data quality), query
(read-only SQL for the CLI), sample (the warehouse docs/queries.md is written against).
"""

from pipeline.db.connection import (
    DEFAULT_WAREHOUSE,
    WAREHOUSE_ENV,
    WarehouseError,
    open_warehouse,
    resolve_warehouse,
)
from pipeline.db.migrate import MigrationError, available_migrations

__all__ = [
    "DEFAULT_WAREHOUSE", "WAREHOUSE_ENV", "MigrationError", "WarehouseError",
    "available_migrations", "open_warehouse", "resolve_warehouse",
]
