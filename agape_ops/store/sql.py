"""The bot's own store: one SQLAlchemy Core ``RunStore`` for both SQLite and PostgreSQL.

Commands change runs through ``transaction()`` (see ``store/transaction.py``): one database
transaction that holds the run against other writers, in this process or another. The methods
here are single reads, the few writes that need no run (a step's lease, pruning), and one-shot
wrappers over a transaction. Races are settled by the database, never by reading and then
writing: numbers come from counter rows bumped with ``INSERT ... ON CONFLICT DO UPDATE ...
RETURNING``, claims are inserts that lose quietly on a unique key. On SQLite, writers in one
process also queue on an asyncio lock so they do not spin on the file lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agape_ops.engine.records import (
    Approval,
    CommandClaim,
    Delivery,
    Event,
    Run,
    RunState,
    StepRecord,
    StepState,
)
from agape_ops.errors import UnknownRun
from agape_ops.store import rows
from agape_ops.store.connect import (
    SQLITE_BEGIN,
    StoreTarget,
    build_engine,
    resolve_target,
    translated,
)
from agape_ops.store.schema import (
    ACTIVE_RUN_STATES,
    commands,
    events,
    migrate,
    runs,
    schema_version,
    seen_events,
    steps,
)
from agape_ops.store.transaction import SqlTransaction, Statements, run_approvals

#: What ``command_outcome`` answers for a key nobody holds (never claimed, or rolled back).
UNCLAIMED: dict[str, Any] = {"unclaimed": True}


def _now() -> datetime:
    return datetime.now(UTC)


class SqlStore:
    """Durable runs, steps, timelines, idempotency keys, approvals and locks (a ``RunStore``)."""

    def __init__(self, engine: AsyncEngine, target: StoreTarget, *, run_prefix: str) -> None:
        self._engine = engine
        self._target = target
        self.run_prefix = run_prefix
        self._writer = asyncio.Lock() if target.is_sqlite else None
        self._statements = Statements(is_sqlite=target.is_sqlite)
        self._closed = False

    @property
    def target(self) -> StoreTarget:
        """Return where the store lives (its URL holds the password: never show it)."""
        return self._target

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

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTransaction]:
        """Open one write transaction; it commits when the block ends, or rolls back on error."""
        async with self._write() as conn:
            yield SqlTransaction(
                conn, is_sqlite=self._target.is_sqlite, statements=self._statements
            )

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
        async with self.transaction() as tx:
            return await tx.create_run(run, self.run_prefix)

    async def get_run(self, run_id: str) -> Run | None:
        """Return the run, or None when no run has that id."""
        async with self._read() as conn:
            row = (await conn.execute(runs.select().where(runs.c.id == run_id))).mappings().first()
        return None if row is None else rows.run_from(row)

    async def update_run(self, run_id: str, **changes: Any) -> None:
        """Change only the named columns of the run."""
        async with self.transaction() as tx:
            if await tx.lock_run(run_id) is None:
                raise UnknownRun(f"cannot change run {run_id}: the store has no such run")
            await tx.update_run(run_id, changes)

    async def list_runs(
        self, *, states: list[RunState] | None = None, limit: int = 50
    ) -> list[Run]:
        """Return runs newest first, optionally only those in ``states``."""
        # By time: a rehearsal's number is negative (counted apart from incidents).
        newest = (runs.c.created_at.desc(), runs.c.number.desc())
        query = runs.select().order_by(*newest).limit(limit)
        if states is not None:
            query = query.where(runs.c.state.in_([RunState(s).value for s in states]))
        async with self._read() as conn:
            found = (await conn.execute(query)).mappings().all()
        return [rows.run_from(row) for row in found]

    async def find_active_run(self, fingerprint: str) -> Run | None:
        """Return the run of this alert fingerprint that is not resolved or closed, if any."""
        query = runs.select().where(
            runs.c.fingerprint == fingerprint, runs.c.state.in_(ACTIVE_RUN_STATES)
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
        async with self.transaction() as tx:
            await tx.save_step(record)

    async def renew_lease(self, run_id: str, step_id: str, key: str, until: datetime) -> bool:
        """Extend a running step's lease while its claim is still ``key``'s; say if it was."""
        statement = (
            steps.update()
            .where(
                steps.c.run_id == run_id,
                steps.c.step_id == step_id,
                steps.c.claim_key == key,
                steps.c.state == StepState.RUNNING.value,
            )
            .values(lease_until=until)
        )
        async with self._write() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def expired_leases(self, now: datetime) -> list[tuple[str, str]]:
        """Return (run id, step id) of every running step whose lease ran out before ``now``."""
        query = sa.select(steps.c.run_id, steps.c.step_id).where(
            steps.c.state == StepState.RUNNING.value, steps.c.lease_until < now
        )
        async with self._read() as conn:
            return [(row.run_id, row.step_id) for row in (await conn.execute(query)).all()]

    async def approvals(self, run_id: str) -> list[Approval]:
        """Return the run's pending two-person approvals, oldest first."""
        async with self._read() as conn:
            return await run_approvals(conn, run_id)

    # Timeline

    async def append_event(self, event: Event) -> Event:
        """Append one event to its run's timeline and to the log."""
        async with self.transaction() as tx:
            (stored,) = await tx.append_events([event])
        return stored

    async def events(self, run_id: str) -> list[Event]:
        """Return the run's timeline in order."""
        query = events.select().where(events.c.run_id == run_id).order_by(events.c.seq)
        async with self._read() as conn:
            found = (await conn.execute(query)).mappings().all()
        return [rows.event_from(row) for row in found]

    async def events_after(self, position: int, *, limit: int = 500) -> list[Event]:
        """Return the log's events after ``position``, in order: how another process follows."""
        query = (
            events.select()
            .where(events.c.position > position)
            .order_by(events.c.position)
            .limit(limit)
        )
        async with self._read() as conn:
            found = (await conn.execute(query)).mappings().all()
        return [rows.event_from(row) for row in found]

    async def last_position(self) -> int:
        """Return the position of the newest event in the log (0 when it is empty)."""
        async with self._read() as conn:
            return int(await conn.scalar(sa.select(sa.func.max(events.c.position))) or 0)

    # Idempotency

    async def claim_command(self, key: str, run_id: str | None) -> CommandClaim:
        """Claim an idempotency key, or return the outcome of whoever claimed it first."""
        async with self.transaction() as tx:
            return await tx.claim_command(key, run_id, _now())

    async def finish_command(self, key: str, outcome: dict[str, Any]) -> None:
        """Store the outcome later claims of the key will be answered with."""
        async with self.transaction() as tx:
            await tx.finish_command(key, outcome, _now())

    async def command_outcome(self, key: str) -> dict[str, Any] | None:
        """Return a claimed key's outcome: None while pending, ``UNCLAIMED`` if nobody holds it."""
        query = sa.select(commands.c.outcome).where(commands.c.key == key)
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return UNCLAIMED
        outcome: dict[str, Any] | None = row.outcome
        return outcome

    async def claim_delivery(self, key: str, now: datetime, lease: timedelta) -> Delivery:
        """Claim the sending of one output (a Slack message for an event) for ``lease``.

        CLAIMED: this caller sends it (a claim left unfinished longer than ``lease`` by a
        process that died is taken over). DONE: it was sent. HELD: another process is on it.
        """
        claim = (
            self._insert(commands)
            .values(key=key, claimed_at=now)
            .on_conflict_do_nothing(index_elements=[commands.c.key])
            .returning(commands.c.key)
        )
        take_over = (
            commands.update()
            .where(
                commands.c.key == key,
                commands.c.finished_at.is_(None),
                commands.c.claimed_at < now - lease,
            )
            .values(claimed_at=now)
            .returning(commands.c.key)
        )
        async with self._write() as conn:
            if (await conn.execute(claim)).first() is not None:
                return Delivery.CLAIMED
            if (await conn.execute(take_over)).first() is not None:
                return Delivery.CLAIMED
            finished = await conn.scalar(
                sa.select(commands.c.finished_at).where(commands.c.key == key)
            )
        return Delivery.DONE if finished is not None else Delivery.HELD

    async def finish_delivery(self, key: str, now: datetime) -> None:
        """Record that a claimed output was sent (or given up): nobody sends it again."""
        async with self._write() as conn:
            await conn.execute(
                commands.update()
                .where(commands.c.key == key)
                .values(finished_at=now, outcome={"delivered": True})
            )

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        if self._target.is_sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)

    async def remember_event(self, key: str) -> bool:
        """Return True the first time a key (e.g. a Slack event id) is seen, False after."""
        remember = (
            self._insert_seen()
            .values(key=key, seen_at=_now())
            .on_conflict_do_nothing(index_elements=[seen_events.c.key])
            .returning(seen_events.c.key)
        )
        async with self._write() as conn:
            return (await conn.execute(remember)).first() is not None

    def _insert_seen(self) -> postgresql.Insert | sqlite.Insert:
        if self._target.is_sqlite:
            return sqlite.insert(seen_events)
        return postgresql.insert(seen_events)

    async def prune(self, before: datetime) -> int:
        """Forget finished idempotency keys and seen event ids older than ``before``.

        Keys still pending are kept, so an answer someone waits for is never lost.
        """
        async with self._write() as conn:
            done = await conn.execute(
                commands.delete().where(
                    commands.c.claimed_at < before, commands.c.finished_at.is_not(None)
                )
            )
            seen = await conn.execute(seen_events.delete().where(seen_events.c.seen_at < before))
        return int(done.rowcount or 0) + int(seen.rowcount or 0)

    # One-shot approvals and locks (the engine does these inside its transactions)

    async def add_approval(self, run_id: str, subject: str, approver: str) -> list[str]:
        """Record an approval of a subject (once per approver); return all approvers so far."""
        async with self.transaction() as tx:
            found = await tx.add_approval(Approval(run_id, subject, approver, _now()))
        return [a.approver for a in found]

    async def clear_approvals(self, run_id: str, step_id: str) -> None:
        """Forget every approval of the step (it changed, or it ran)."""
        async with self.transaction() as tx:
            await tx.clear_approvals(run_id, step_id)

    async def acquire_lock(self, name: str, run_id: str) -> str | None:
        """Take a named lock for a run; return None on success, else the holding run's id."""
        async with self.transaction() as tx:
            return await tx.acquire_lock(name, run_id, _now())

    async def release_lock(self, name: str, run_id: str) -> None:
        """Release the lock if this run holds it; a lock held by another run is left alone."""
        async with self.transaction() as tx:
            await tx.release_locks(run_id, [name])

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
