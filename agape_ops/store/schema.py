"""The store's tables, and the ordered migrations that build them, recorded in a version table.

Every table carries the ``ops_`` prefix so the store can share a PostgreSQL database with other
tools without clashing. ``migrate`` runs inside one transaction, serialised between processes
(an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two bots starting at once
apply each migration exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from agape_ops.errors import StoreError

#: Any fixed 64-bit number, the same for every agape-ops process: the key of the advisory lock
#: that serialises migrations on PostgreSQL.
MIGRATION_LOCK_KEY = 0x4167617065_0001


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Store aware datetimes as UTC and return them aware in UTC on every backend.

    SQLite keeps no offset, so values are written as naive UTC there and given UTC back on read;
    PostgreSQL returns ``timestamptz`` in the session's zone, which is converted to UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        utc = aware.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> sa.JSON:
    # SQL NULL for None, so "no alert" and "an alert that is JSON null" cannot be confused.
    return sa.JSON(none_as_null=True)


metadata = sa.MetaData()

schema_version = sa.Table(
    "ops_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

counters = sa.Table(
    "ops_counters",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

runs = sa.Table(
    "ops_runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("number", sa.BigInteger, nullable=False, unique=True),
    sa.Column("runbook_id", sa.String(200), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("severity", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("alert", _json()),
    sa.Column("fingerprint", sa.String(200), index=True),
    sa.Column("inputs", _json(), nullable=False),
    sa.Column("rehearsal", sa.Boolean, nullable=False),
    sa.Column("surface", _json(), nullable=False),
    sa.Column("acknowledged_at", UtcDateTime),
    sa.Column("acknowledged_by", sa.String(200)),
    sa.Column("mitigated_at", UtcDateTime),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("resolved_by", sa.String(200)),
    sa.Column("closed_at", UtcDateTime),
)

steps = sa.Table(
    "ops_steps",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("step_id", sa.String(200), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("result", _json()),
    sa.Column("finding", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("actor", sa.String(200)),
    sa.Column("started_at", UtcDateTime),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("items_done", _json(), nullable=False),
)

events = sa.Table(
    "ops_events",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("step_id", sa.String(200)),
    sa.Column("outcome", sa.String(64)),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("detail", _json(), nullable=False),
)

commands = sa.Table(
    "ops_commands",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("run_id", sa.String(64), index=True),
    sa.Column("claimed_at", UtcDateTime, nullable=False),
    sa.Column("outcome", _json()),
    sa.Column("finished_at", UtcDateTime),
)

approvals = sa.Table(
    "ops_approvals",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("step_id", sa.String(200), primary_key=True),
    sa.Column("approver", sa.String(200), primary_key=True),
    sa.Column("approved_at", UtcDateTime, nullable=False),
)

locks = sa.Table(
    "ops_locks",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
)

seen_events = sa.Table(
    "ops_seen_events",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("seen_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class Migration:
    """One step of the schema's history: its number, what it does, and the DDL doing it."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_first_tables(conn: Connection) -> None:
    # Builds the tables as declared above. When a later migration alters a table, freeze that
    # table's first shape here first, so a fresh store still replays history step by step.
    metadata.create_all(
        conn,
        tables=[counters, runs, steps, events, commands, approvals, locks, seen_events],
        checkfirst=False,
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, steps, events, commands, approvals, locks, counters, seen events",
        _create_first_tables,
    ),
)


def migrate(conn: Connection) -> int:
    """Bring the schema up to the newest migration inside the caller's transaction.

    Return the schema version now in force. Refuse a store written by a newer agape-ops rather
    than guess at columns this version does not know.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
    schema_version.create(conn, checkfirst=True)
    current = conn.scalar(sa.select(sa.func.max(schema_version.c.version))) or 0
    latest = MIGRATIONS[-1].version
    if current > latest:
        raise StoreError(
            f"the store has schema version {current}, newer than this agape-ops knows "
            f"({latest}): upgrade agape-ops, or point OPS_DATABASE_URL at another store"
        )
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        migration.apply(conn)
        row: dict[str, Any] = {
            "version": migration.version,
            "description": migration.description,
            "applied_at": datetime.now(UTC),
        }
        conn.execute(schema_version.insert().values(row))
    return latest
