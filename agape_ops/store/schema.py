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

#: Run states in which a run is still being worked on; at most one such run per fingerprint.
ACTIVE_RUN_STATES = ("open", "acknowledged", "mitigated")


def _runs_v1() -> list[sa.Column[Any]]:
    return [
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
    ]


def _steps_v1() -> list[sa.Column[Any]]:
    return [
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
    ]


def _events_v1() -> list[sa.Column[Any]]:
    return [
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
    ]


# Version 2 added, to runs: how many times the alert fired and when monitoring said it resolved;
# to steps: the claim (idempotency key) and lease of a running step; to events: their position
# in the store-wide log that other processes follow.
_RUNS_V2 = (
    sa.Column("alert_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("alert_resolved_at", UtcDateTime),
)
_STEPS_V2 = (
    sa.Column("claim_key", sa.String(400)),
    sa.Column("lease_until", UtcDateTime),
)
_EVENTS_V2 = (sa.Column("position", sa.BigInteger),)

# Version 3 added, to runs: what the scheduler has done for it (the escalation level paged,
# whether its checks are clear, reminders); to steps: a monitor's round and its samples.
_RUNS_V3 = (sa.Column("watch", _json(), nullable=False, server_default="{}"),)
_STEPS_V3 = (sa.Column("monitor", _json()),)

runs = sa.Table("ops_runs", metadata, *_runs_v1(), *_RUNS_V2, *_RUNS_V3)
steps = sa.Table("ops_steps", metadata, *_steps_v1(), *_STEPS_V2, *_STEPS_V3)
events = sa.Table("ops_events", metadata, *_events_v1(), *_EVENTS_V2)

_ACTIVE = sa.and_(runs.c.state.in_(ACTIVE_RUN_STATES), runs.c.fingerprint.is_not(None))
#: Two deliveries of one alert, or two replicas, can never open two runs for it.
ONE_ACTIVE_RUN_PER_FINGERPRINT = sa.Index(
    "ops_runs_one_active_per_fingerprint",
    runs.c.fingerprint,
    unique=True,
    sqlite_where=_ACTIVE,
    postgresql_where=_ACTIVE,
)
EVENTS_BY_POSITION = sa.Index("ops_events_position", events.c.position, unique=True)
commands = sa.Table(
    "ops_commands",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("run_id", sa.String(64), index=True),
    sa.Column("claimed_at", UtcDateTime, nullable=False),
    sa.Column("outcome", _json()),
    sa.Column("finished_at", UtcDateTime),
)


def _approvals_v1() -> list[sa.Column[Any]]:
    # ``step_id`` holds the approval's subject: the step with the input values approved.
    return [
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("step_id", sa.String(200), primary_key=True),
        sa.Column("approver", sa.String(200), primary_key=True),
        sa.Column("approved_at", UtcDateTime, nullable=False),
    ]


#: Version 2: the input values an approval is of, as shown (secret ones masked).
_APPROVALS_V2 = (sa.Column("shown", _json()),)
approvals = sa.Table("ops_approvals", metadata, *_approvals_v1(), *_APPROVALS_V2)

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
    # The first shape of every table: the tables version 2 altered are rebuilt from their frozen
    # version 1 columns, so a fresh store replays history step by step.
    first = sa.MetaData()
    sa.Table("ops_runs", first, *_runs_v1())
    sa.Table("ops_steps", first, *_steps_v1())
    sa.Table("ops_events", first, *_events_v1())
    sa.Table("ops_approvals", first, *_approvals_v1())
    for table in (counters, commands, locks, seen_events):
        table.to_metadata(first)
    first.create_all(conn, checkfirst=False)


def _add_columns(conn: Connection, altered: tuple[tuple[sa.Table, Any], ...]) -> None:
    for table, columns in altered:
        for column in columns:
            ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))


def _what_the_scheduler_did(conn: Connection) -> None:
    _add_columns(conn, ((runs, _RUNS_V3), (steps, _STEPS_V3)))


def _one_run_per_fingerprint_and_an_event_log(conn: Connection) -> None:
    altered = (
        (runs, _RUNS_V2),
        (steps, _STEPS_V2),
        (events, _EVENTS_V2),
        (approvals, _APPROVALS_V2),
    )
    _add_columns(conn, altered)
    # A store from version 1 may hold several active runs of one fingerprint: the newest keeps
    # it, the older ones keep theirs suffixed with their own id, so no run is lost or changed.
    newer = runs.alias("newer")
    newest = (
        sa.select(sa.func.max(newer.c.number))
        .where(newer.c.fingerprint == runs.c.fingerprint, newer.c.state.in_(ACTIVE_RUN_STATES))
        .scalar_subquery()
    )
    older = sa.select(runs.c.id, runs.c.fingerprint).where(_ACTIVE, runs.c.number < newest)
    for run_id, fingerprint in conn.execute(older).all():
        conn.execute(
            runs.update().where(runs.c.id == run_id).values(fingerprint=f"{fingerprint}~{run_id}")
        )
    ONE_ACTIVE_RUN_PER_FINGERPRINT.create(conn)
    # Number the existing timeline into the log, oldest first, and start the counter after it.
    ordered = sa.select(events.c.run_id, events.c.seq).order_by(
        events.c.at, events.c.run_id, events.c.seq
    )
    position = 0
    for position, (run_id, seq) in enumerate(conn.execute(ordered).all(), start=1):
        conn.execute(
            events.update()
            .where(events.c.run_id == run_id, events.c.seq == seq)
            .values(position=position)
        )
    conn.execute(counters.insert().values(name=EVENT_COUNTER, value=position))
    EVENTS_BY_POSITION.create(conn)
    # Plain DDL: an ``sa.Index`` would attach itself to the shared table objects.
    for table, name in ((commands, "claimed_at"), (seen_events, "seen_at")):
        conn.execute(sa.text(f"CREATE INDEX ix_{table.name}_{name} ON {table.name} ({name})"))


#: The counter that numbers the store-wide event log.
EVENT_COUNTER = "events"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, steps, events, commands, approvals, locks, counters, seen events",
        _create_first_tables,
    ),
    Migration(
        2,
        "one active run per fingerprint, step leases, alert counts, the event log's positions",
        _one_run_per_fingerprint_and_an_event_log,
    ),
    Migration(
        3,
        "what the scheduler did for a run (escalation, re-checks, reminders); monitors' samples",
        _what_the_scheduler_did,
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
