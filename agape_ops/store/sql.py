"""The bot's own store: one SQLAlchemy Core ``RunStore`` for both SQLite and PostgreSQL.

Each method is one transaction. Races are settled by the database, never by reading and then
writing: numbers come from a counter row bumped with ``INSERT ... ON CONFLICT DO UPDATE ...
RETURNING``, claims are inserts that lose quietly on a unique key, and the step claim is an
``UPDATE ... WHERE state <> 'running'``. That holds between processes sharing the database as
well as between tasks; on SQLite, writers in one process also queue on an asyncio lock so they
do not spin on the file lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agape_ops.engine.records import CommandClaim, Event, Run, RunState, StepRecord, StepState
from agape_ops.errors import StoreError, UnknownRun
from agape_ops.store import rows
from agape_ops.store.connect import (
    SQLITE_BEGIN,
    StoreTarget,
    build_engine,
    resolve_target,
    translated,
)
from agape_ops.store.schema import (
    approvals,
    commands,
    counters,
    events,
    locks,
    migrate,
    runs,
    schema_version,
    seen_events,
    steps,
)

_CLOSED_STATES = (RunState.RESOLVED.value, RunState.CLOSED.value)
_RUN_COUNTER = "runs"


def _now() -> datetime:
    return datetime.now(UTC)


class SqlStore:
    """Durable runs, steps, timelines, idempotency keys, approvals and locks (a ``RunStore``)."""

    def __init__(self, engine: AsyncEngine, target: StoreTarget, *, run_prefix: str) -> None:
        self._engine = engine
        self._target = target
        self._run_prefix = run_prefix
        self._writer = asyncio.Lock() if target.is_sqlite else None
        self._closed = False

    @property
    def place(self) -> str:
        """Name where the store lives (a file path, or host:port/database), without secrets."""
        return self._target.place

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """Run the block as one write transaction, failures turned into ``StoreError``."""
        queue = self._writer if self._writer is not None else contextlib.nullcontext()
        async with queue:
            with translated(self._target):
                async with self._engine.begin() as conn:
                    yield conn

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """Run the block as a read-only snapshot that never waits for writers."""
        with translated(self._target):
            async with self._engine.connect() as conn:
                await conn.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
                yield conn

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self._target.is_sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)

    async def _next(self, conn: AsyncConnection, counter: str) -> int:
        """Bump a named counter inside the caller's transaction and return its new value."""
        statement = (
            self._insert(counters)
            .values(name=counter, value=1)
            .on_conflict_do_update(
                index_elements=[counters.c.name], set_={"value": counters.c.value + 1}
            )
            .returning(counters.c.value)
        )
        return int((await conn.execute(statement)).scalar_one())

    async def migrate(self) -> int:
        """Create or upgrade the schema; return its version."""
        async with self._write() as conn:
            return await conn.run_sync(migrate)

    async def schema_version(self) -> int:
        """Return the newest migration applied to this store."""
        async with self._read() as conn:
            version = await conn.scalar(sa.select(sa.func.max(schema_version.c.version)))
        return int(version or 0)

    # Runs

    async def create_run(self, run: Run) -> Run:
        """Persist a new run, numbering it from the store-wide counter in the same transaction."""
        prefix = run.id or self._run_prefix
        async with self._write() as conn:
            number = await self._next(conn, _RUN_COUNTER)
            created = dataclasses.replace(run, id=f"{prefix}-{number}", number=number)
            await conn.execute(runs.insert().values(rows.run_values(created)))
        return created

    async def get_run(self, run_id: str) -> Run | None:
        """Return the run, or None when no run has that id."""
        async with self._read() as conn:
            row = (await conn.execute(runs.select().where(runs.c.id == run_id))).mappings().first()
        return None if row is None else rows.run_from(row)

    async def save_run(self, run: Run) -> None:
        """Overwrite every field of the run but its id and number."""
        values = rows.run_values(run)
        del values["id"], values["number"]
        async with self._write() as conn:
            result = await conn.execute(runs.update().where(runs.c.id == run.id).values(values))
        if result.rowcount == 0:
            raise UnknownRun(f"cannot save run {run.id}: the store has no such run")

    async def list_runs(
        self, *, states: list[RunState] | None = None, limit: int = 50
    ) -> list[Run]:
        """Return runs newest first, optionally only those in ``states``."""
        query = runs.select().order_by(runs.c.number.desc()).limit(limit)
        if states is not None:
            query = query.where(runs.c.state.in_([RunState(s).value for s in states]))
        async with self._read() as conn:
            found = (await conn.execute(query)).mappings().all()
        return [rows.run_from(row) for row in found]

    async def find_open_run(self, fingerprint: str) -> Run | None:
        """Return the newest run with this alert fingerprint that is not resolved or closed."""
        query = (
            runs.select()
            .where(runs.c.fingerprint == fingerprint, runs.c.state.not_in(_CLOSED_STATES))
            .order_by(runs.c.number.desc())
            .limit(1)
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else rows.run_from(row)

    # Steps

    async def get_steps(self, run_id: str) -> dict[str, StepRecord]:
        """Return the run's step records by step id."""
        query = steps.select().where(steps.c.run_id == run_id).order_by(steps.c.step_id)
        async with self._read() as conn:
            found = (await conn.execute(query)).mappings().all()
        return {row["step_id"]: rows.step_from(row) for row in found}

    async def save_step(self, record: StepRecord) -> None:
        """Insert or overwrite the record of (run_id, step_id); trim an oversized result."""
        values = rows.step_values(record)
        statement = self._insert(steps).values(values)
        keys = ("run_id", "step_id")
        statement = statement.on_conflict_do_update(
            index_elements=[steps.c.run_id, steps.c.step_id],
            set_={name: statement.excluded[name] for name in values if name not in keys},
        )
        async with self._write() as conn:
            await conn.execute(statement)

    async def claim_step(self, run_id: str, step_id: str, actor: str) -> bool:
        """Mark the step running unless it is running already; say whether this call did."""
        now = _now()
        first = (
            self._insert(steps)
            .values(
                run_id=run_id,
                step_id=step_id,
                state=StepState.RUNNING.value,
                actor=actor,
                started_at=now,
                attempts=1,
                items_done=[],
            )
            .on_conflict_do_nothing(index_elements=[steps.c.run_id, steps.c.step_id])
            .returning(steps.c.step_id)
        )
        again = (
            steps.update()
            .where(
                steps.c.run_id == run_id,
                steps.c.step_id == step_id,
                steps.c.state != StepState.RUNNING.value,
            )
            .values(
                state=StepState.RUNNING.value,
                attempts=steps.c.attempts + 1,
                actor=actor,
                started_at=now,
                finished_at=None,
            )
        )
        async with self._write() as conn:
            if (await conn.execute(first)).first() is not None:
                return True
            return (await conn.execute(again)).rowcount == 1

    # Timeline

    async def append_event(self, event: Event) -> Event:
        """Append to the run's timeline, numbering from the run's own counter."""
        async with self._write() as conn:
            seq = await self._next(conn, f"seq:{event.run_id}")
            stored = dataclasses.replace(event, seq=seq)
            await conn.execute(events.insert().values(rows.event_values(stored)))
        return stored

    async def events(self, run_id: str) -> list[Event]:
        """Return the run's timeline in order."""
        query = events.select().where(events.c.run_id == run_id).order_by(events.c.seq)
        async with self._read() as conn:
            found = (await conn.execute(query)).mappings().all()
        return [rows.event_from(row) for row in found]

    # Idempotency, approvals, locks

    async def claim_command(self, key: str, run_id: str | None) -> CommandClaim:
        """Claim an idempotency key, or return the outcome of whoever claimed it first."""
        claim = (
            self._insert(commands)
            .values(key=key, run_id=run_id, claimed_at=_now())
            .on_conflict_do_nothing(index_elements=[commands.c.key])
            .returning(commands.c.key)
        )
        async with self._write() as conn:
            if (await conn.execute(claim)).first() is not None:
                return CommandClaim(claimed=True)
            outcome = await conn.scalar(sa.select(commands.c.outcome).where(commands.c.key == key))
        return CommandClaim(claimed=False, outcome=outcome)

    async def finish_command(self, key: str, outcome: dict[str, Any]) -> None:
        """Store the outcome later claims of the key will be answered with."""
        now = _now()
        statement = self._insert(commands).values(
            key=key, run_id=None, claimed_at=now, outcome=outcome, finished_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[commands.c.key],
            set_={"outcome": statement.excluded.outcome, "finished_at": now},
        )
        async with self._write() as conn:
            await conn.execute(statement)

    async def add_approval(self, run_id: str, step_id: str, approver: str) -> list[str]:
        """Record an approval of a step (once per approver); return all approvers so far."""
        approve = (
            self._insert(approvals)
            .values(run_id=run_id, step_id=step_id, approver=approver, approved_at=_now())
            .on_conflict_do_nothing(
                index_elements=[approvals.c.run_id, approvals.c.step_id, approvals.c.approver]
            )
        )
        so_far = (
            sa.select(approvals.c.approver)
            .where(approvals.c.run_id == run_id, approvals.c.step_id == step_id)
            .order_by(approvals.c.approved_at, approvals.c.approver)
        )
        async with self._write() as conn:
            await conn.execute(approve)
            return list((await conn.scalars(so_far)).all())

    async def clear_approvals(self, run_id: str, step_id: str) -> None:
        """Forget every approval of the step (it changed, or it ran)."""
        async with self._write() as conn:
            await conn.execute(
                approvals.delete().where(
                    approvals.c.run_id == run_id, approvals.c.step_id == step_id
                )
            )

    async def acquire_lock(self, name: str, run_id: str) -> str | None:
        """Take a named lock for a run; return None on success, else the holding run's id.

        A lock whose run has been resolved or closed is free: a run that ended without
        releasing it (its runbook no longer loaded, the bot stopped in between) blocks no one.
        """
        finished = sa.select(runs.c.id).where(runs.c.state.in_(_CLOSED_STATES))
        left_over = locks.delete().where(locks.c.name == name, locks.c.run_id.in_(finished))
        take = (
            self._insert(locks)
            .values(name=name, run_id=run_id, acquired_at=_now())
            .on_conflict_do_nothing(index_elements=[locks.c.name])
            .returning(locks.c.name)
        )
        holder_of = sa.select(locks.c.run_id).where(locks.c.name == name)
        async with self._write() as conn:
            await conn.execute(left_over)
            # The holder may release between our insert and our read; then try again.
            for _ in range(5):
                if (await conn.execute(take)).first() is not None:
                    return None
                holder: str | None = await conn.scalar(holder_of)
                if holder is not None:
                    return None if holder == run_id else holder
        raise StoreError(f"lock {name!r} kept changing hands; try again")

    async def release_lock(self, name: str, run_id: str) -> None:
        """Release the lock if this run holds it; a lock held by another run is left alone."""
        async with self._write() as conn:
            await conn.execute(locks.delete().where(locks.c.name == name, locks.c.run_id == run_id))

    async def remember_event(self, key: str) -> bool:
        """Return True the first time a key (e.g. a Slack event id) is seen, False after."""
        remember = (
            self._insert(seen_events)
            .values(key=key, seen_at=_now())
            .on_conflict_do_nothing(index_elements=[seen_events.c.key])
            .returning(seen_events.c.key)
        )
        async with self._write() as conn:
            return (await conn.execute(remember)).first() is not None

    async def close(self) -> None:
        """Close every connection; safe to call twice."""
        if not self._closed:
            self._closed = True
            await self._engine.dispose()


async def open_store(
    url: str,
    *,
    run_prefix: str = "INC",
    connect_timeout_s: float = 3.0,
    busy_timeout_s: float = 15.0,
) -> SqlStore:
    """Connect to the store at ``url``, create or upgrade its schema, and return it.

    Raise ``StoreError`` saying what is wrong (a missing or unwritable directory, an
    unreachable server) without any password from the URL.
    """
    target = resolve_target(url, connect_timeout_s=connect_timeout_s, busy_timeout_s=busy_timeout_s)
    store = SqlStore(build_engine(target), target, run_prefix=run_prefix)
    try:
        await store.migrate()
    except BaseException:
        await store.close()
        raise
    return store
