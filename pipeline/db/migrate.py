"""Apply the warehouse's migrations (`migrations/NNNN_name.sql|.py`) in order, once each.

Each migration runs in its own transaction together with its `schema_version` row, so a
failing file leaves the warehouse at the previous version.  Other modules add files
(e.g. `0002_fetches.sql`); nothing here needs to change for that.

A `.py` migration is for data that SQL alone cannot derive (e.g. backfilling history with
the Python merge rules): it defines `upgrade(conn)`, which runs inside the migration's
transaction and must not commit.  Its source is read like the SQL files (not imported), so
the folder needs no `__init__.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import duckdb

_FILE_NAME = re.compile(r"^(\d{4})_(\w+)\.(sql|py)$")


class MigrationError(Exception):
    """A migration file is malformed or failed to apply."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # file name, e.g. "0001_core.sql"
    sql: str  # the file's text: SQL, or Python source defining upgrade(conn)

    @property
    def is_python(self) -> bool:
        return self.name.endswith(".py")

    def apply(self, conn: duckdb.DuckDBPyConnection) -> None:
        if not self.is_python:
            conn.execute(self.sql).fetchall()
            return
        namespace: dict[str, object] = {"__name__": f"pipeline.db.migrations.m{self.version:04d}"}
        exec(compile(self.sql, self.name, "exec"), namespace)  # our own packaged file
        upgrade = namespace.get("upgrade")
        if not callable(upgrade):
            raise MigrationError(f"migration {self.name} defines no upgrade(conn)")
        upgrade(conn)


def available_migrations(folder: Traversable | None = None) -> tuple[Migration, ...]:
    """Every migration in `folder` (default: the package's own), ordered by version."""
    if folder is None:
        folder = resources.files("pipeline.db").joinpath("migrations")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations share version {version}: {found[version].name}, {entry.name}"
            )
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return tuple(found[v] for v in sorted(found))


def applied_versions(conn: duckdb.DuckDBPyConnection) -> frozenset[int]:
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = 'schema_version' AND table_schema = current_schema()"
    ).fetchall()
    if not exists[0][0]:
        return frozenset()
    return frozenset(v for (v,) in conn.execute("SELECT version FROM schema_version").fetchall())


def migrate(
    conn: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] | None = None
) -> tuple[Migration, ...]:
    """Bring the warehouse on `conn` up to date; return the migrations applied now."""
    todo = available_migrations() if migrations is None else migrations
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    ).fetchall()
    done = applied_versions(conn)
    applied: list[Migration] = []
    for migration in todo:
        if migration.version in done:
            continue
        conn.begin()
        try:
            migration.apply(conn)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?, current_timestamp::TIMESTAMP)",
                [migration.version, migration.name],
            ).fetchall()
            conn.commit()
        except MigrationError:
            conn.rollback()
            raise
        except Exception as exc:
            conn.rollback()
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MigrationError(f"migration {migration.name} failed: {first_line}") from exc
        applied.append(migration)
    if applied:
        # Fold the schema changes into the file now rather than leaving them to WAL replay
        # on the next open (DDL replay is where DuckDB is most fragile); best effort.
        try:
            conn.execute("CHECKPOINT").fetchall()
        except duckdb.Error:
            pass
    return tuple(applied)


def pending_migrations(
    conn: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] | None = None
) -> tuple[Migration, ...]:
    """Migrations not yet applied to the warehouse on `conn` (works on read-only connections)."""
    todo = available_migrations() if migrations is None else migrations
    done = applied_versions(conn)
    return tuple(m for m in todo if m.version not in done)
