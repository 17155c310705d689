"""One write transaction on the store: what the engine's unit of work reads and writes.

A transaction opened for a run holds that run against every other writer until it commits:
``SELECT ... FOR UPDATE`` on the run's row on PostgreSQL, the database's write lock
(``BEGIN IMMEDIATE``) on SQLite. Everything a command changes (the run's columns it means to
change, step records, approvals, locks, its idempotency key and its timeline events) commits
together or not at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agape_ops.engine.records import (
    Approval,
    CommandClaim,
    Event,
    Run,
    StepRecord,
)
from agape_ops.errors import Conflict, StoreError
from agape_ops.store import rows
from agape_ops.store.schema import (
    ACTIVE_RUN_STATES,
    EVENT_COUNTER,
    approvals,
    commands,
    counters,
    events,
    locks,
    runs,
    steps,
)

_RUN_COUNTER = "runs"
_REHEARSAL_COUNTER = "rehearsals"
_FINISHED_STATES = ("resolved", "closed")


class Statements:
    """The statements every command runs, built once per store with bound parameters.

    Building a statement with its values inlined costs SQLAlchemy a fresh cache key on every
    call; these are built once and take their values at execution.
    """

    def __init__(self, *, is_sqlite: bool) -> None:
        insert = sqlite.insert if is_sqlite else postgresql.insert
        bump = insert(counters).values(name=sa.bindparam("name"), value=sa.bindparam("by"))
        self.bump = bump.on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + bump.excluded.value}
        ).returning(counters.c.value)
        lock = runs.select().where(runs.c.id == sa.bindparam("run_id"))
        self.lock_run = lock if is_sqlite else lock.with_for_update()
        self.steps = steps.select().where(steps.c.run_id == sa.bindparam("run_id"))
        save = insert(steps)
        keys = ("run_id", "step_id")
        self.save_step = save.on_conflict_do_update(
            index_elements=[steps.c.run_id, steps.c.step_id],
            set_={c.name: save.excluded[c.name] for c in steps.columns if c.name not in keys},
        )
        self.finish_step = (
            steps.update()
            .where(
                steps.c.run_id == sa.bindparam("key_run_id"),
                steps.c.step_id == sa.bindparam("key_step_id"),
                steps.c.claim_key == sa.bindparam("key_claim"),
            )
            .values(
                state=sa.bindparam("state"),
                result=sa.bindparam("result", type_=steps.c.result.type),
                finding=sa.bindparam("finding"),
                error=sa.bindparam("error"),
                finished_at=sa.bindparam("finished_at", type_=steps.c.finished_at.type),
                lease_until=None,
                items_done=sa.bindparam("items_done", type_=steps.c.items_done.type),
                monitor=sa.bindparam("monitor", type_=steps.c.monitor.type),
            )
        )
        self.claim = (
            insert(commands)
            .values(
                key=sa.bindparam("key"),
                run_id=sa.bindparam("run_id"),
                claimed_at=sa.bindparam("claimed_at"),
            )
            .on_conflict_do_nothing(index_elements=[commands.c.key])
            .returning(commands.c.key)
        )
        self.outcome = sa.select(commands.c.outcome).where(commands.c.key == sa.bindparam("key"))
        finish = insert(commands)
        self.finish = finish.on_conflict_do_update(
            index_elements=[commands.c.key],
            set_={"outcome": finish.excluded.outcome, "finished_at": finish.excluded.finished_at},
        )
        self.last_seq = sa.select(sa.func.max(events.c.seq)).where(
            events.c.run_id == sa.bindparam("run_id")
        )
        self.add_events = events.insert()


class SqlTransaction:
    """The reads and writes of one unit of work, inside one database transaction."""

    def __init__(self, conn: AsyncConnection, *, is_sqlite: bool, statements: Statements) -> None:
        self._conn = conn
        self._is_sqlite = is_sqlite
        self._sql = statements

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        return sqlite.insert(table) if self._is_sqlite else postgresql.insert(table)

    def _for_update(self, query: sa.Select[Any]) -> sa.Select[Any]:
        # SQLite has no row locks; its BEGIN IMMEDIATE already excludes every other writer.
        return query if self._is_sqlite else query.with_for_update()

    async def _bump(self, counter: str, by: int = 1) -> int:
        """Add ``by`` to a named counter and return its new value; the row stays locked."""
        found = await self._conn.execute(self._sql.bump, {"name": counter, "by": by})
        return int(found.scalar_one())

    # Runs

    async def lock_run(self, run_id: str) -> Run | None:
        """Return the run, held against other writers until this transaction ends."""
        found = await self._conn.execute(self._sql.lock_run, {"run_id": run_id})
        row = found.mappings().first()
        return None if row is None else rows.run_from(row)

    async def find_active_run(self, fingerprint: str) -> Run | None:
        """Return the active run of this alert fingerprint (at most one exists), held."""
        query = self._for_update(
            runs.select().where(
                runs.c.fingerprint == fingerprint, runs.c.state.in_(ACTIVE_RUN_STATES)
            )
        )
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else rows.run_from(row)

    async def create_run(self, run: Run, prefix: str) -> Run:
        """Insert a new run numbered from the store-wide counter.

        Raise ``Conflict`` when another active run already has the run's fingerprint.
        """
        if run.rehearsal:  # counted apart; negative, so never an incident's (unique) number
            shown = await self._bump(_REHEARSAL_COUNTER)
            number = -shown
        else:
            shown = number = await self._bump(_RUN_COUNTER)
        created = dataclasses.replace(run, id=f"{run.id or prefix}-{shown}", number=number)
        try:
            await self._conn.execute(runs.insert().values(rows.run_values(created)))
        except sa.exc.IntegrityError as exc:
            raise Conflict(
                f"another run is already open for fingerprint {run.fingerprint!r}"
            ) from exc
        return created

    async def update_run(self, run_id: str, changes: Mapping[str, Any]) -> None:
        """Change only the named columns of the run."""
        values = {k: (v.value if isinstance(v, Enum) else v) for k, v in changes.items()}
        if values:
            await self._conn.execute(runs.update().where(runs.c.id == run_id).values(values))

    # Steps

    async def steps(self, run_id: str) -> dict[str, StepRecord]:
        """Return the run's step records by step id."""
        found = (await self._conn.execute(self._sql.steps, {"run_id": run_id})).mappings().all()
        return {row["step_id"]: rows.step_from(row) for row in found}

    async def save_step(self, record: StepRecord) -> None:
        """Insert or overwrite the record of (run_id, step_id); trim an oversized result."""
        await self._conn.execute(self._sql.save_step, rows.step_values(record))

    async def finish_step(self, record: StepRecord, claim_key: str) -> bool:
        """Store a step's verdict if ``claim_key`` still holds its claim; say whether it did."""
        values = rows.step_values(record)
        values |= {"key_run_id": record.run_id, "key_step_id": record.step_id}
        values["key_claim"] = claim_key
        found = await self._conn.execute(self._sql.finish_step, values)
        return found.rowcount == 1

    # Approvals and locks

    async def add_approval(self, approval: Approval) -> list[Approval]:
        """Record an approval (once per approver); return every approval of its subject."""
        await self._conn.execute(
            self._insert(approvals)
            .values(
                run_id=approval.run_id,
                step_id=approval.subject,
                approver=approval.approver,
                approved_at=approval.approved_at,
                shown=dict(approval.shown),
            )
            .on_conflict_do_nothing(
                index_elements=[approvals.c.run_id, approvals.c.step_id, approvals.c.approver]
            )
        )
        return [a for a in await self.approvals(approval.run_id) if a.subject == approval.subject]

    async def approvals(self, run_id: str) -> list[Approval]:
        """Return the run's pending approvals, oldest first."""
        return await run_approvals(self._conn, run_id)

    async def clear_approvals(self, run_id: str, step_id: str) -> None:
        """Forget every approval of the step, whatever values they were of."""
        await self._conn.execute(
            approvals.delete().where(
                approvals.c.run_id == run_id,
                sa.or_(approvals.c.step_id == step_id, approvals.c.step_id.like(f"{step_id}@%")),
            )
        )

    async def acquire_lock(self, name: str, run_id: str, now: datetime) -> str | None:
        """Take a named lock for a run; return None on success, else the holding run's id.

        A lock whose run has been resolved or closed is free: a run that ended without
        releasing it (its runbook no longer loaded, the bot stopped in between) blocks no one.
        """
        finished = sa.select(runs.c.id).where(runs.c.state.in_(_FINISHED_STATES))
        await self._conn.execute(
            locks.delete().where(locks.c.name == name, locks.c.run_id.in_(finished))
        )
        take = (
            self._insert(locks)
            .values(name=name, run_id=run_id, acquired_at=now)
            .on_conflict_do_nothing(index_elements=[locks.c.name])
            .returning(locks.c.name)
        )
        holder_of = sa.select(locks.c.run_id).where(locks.c.name == name)
        # The holder may release between our insert and our read; then try again.
        for _ in range(5):
            if (await self._conn.execute(take)).first() is not None:
                return None
            holder: str | None = await self._conn.scalar(holder_of)
            if holder is not None:
                return None if holder == run_id else holder
        raise StoreError(f"lock {name!r} kept changing hands; try again")

    async def release_locks(self, run_id: str, names: Iterable[str] | None = None) -> None:
        """Release the run's locks (only ``names`` when given); others' locks stay."""
        statement = locks.delete().where(locks.c.run_id == run_id)
        if names is not None:
            statement = statement.where(locks.c.name.in_(list(names)))
        await self._conn.execute(statement)

    # Idempotency

    async def claim_command(self, key: str, run_id: str | None, now: datetime) -> CommandClaim:
        """Claim an idempotency key, or return the outcome of whoever claimed it first.

        The claim commits with the rest of the transaction: rolled back, it was never made.
        """
        claim = {"key": key, "run_id": run_id, "claimed_at": now}
        if (await self._conn.execute(self._sql.claim, claim)).first() is not None:
            return CommandClaim(claimed=True)
        outcome = await self._conn.scalar(self._sql.outcome, {"key": key})
        return CommandClaim(claimed=False, outcome=outcome)

    async def finish_command(self, key: str, outcome: dict[str, Any], now: datetime) -> None:
        """Store the outcome later deliveries of the key are answered with."""
        values = {"key": key, "run_id": outcome.get("run_id"), "claimed_at": now}
        values |= {"outcome": outcome, "finished_at": now}
        await self._conn.execute(self._sql.finish, values)

    # Timeline

    async def events(self, run_id: str) -> list[Event]:
        """Return the run's timeline in order, as this transaction sees it."""
        query = events.select().where(events.c.run_id == run_id).order_by(events.c.seq)
        found = (await self._conn.execute(query)).mappings().all()
        return [rows.event_from(row) for row in found]

    async def append_events(self, staged: list[Event]) -> list[Event]:
        """Append events to their runs' timelines and to the store-wide log, in order.

        ``seq`` numbers each run's timeline 1, 2, ...; ``position`` numbers the log. The log's
        counter stays locked until this transaction commits, so positions become visible in
        the order they were given: a follower never skips an event that commits late.
        """
        if not staged:
            return []
        last = await self._bump(EVENT_COUNTER, len(staged))
        seqs: dict[str, int] = {}
        stored: list[Event] = []
        for offset, event in enumerate(staged):
            if event.run_id not in seqs:
                current = await self._conn.scalar(self._sql.last_seq, {"run_id": event.run_id})
                seqs[event.run_id] = int(current or 0)
            seqs[event.run_id] += 1
            position = last - len(staged) + 1 + offset
            stored.append(dataclasses.replace(event, seq=seqs[event.run_id], position=position))
        await self._conn.execute(self._sql.add_events, [rows.event_values(e) for e in stored])
        return stored


async def run_approvals(conn: AsyncConnection, run_id: str) -> list[Approval]:
    """Return a run's pending approvals, oldest first."""
    query = (
        approvals.select()
        .where(approvals.c.run_id == run_id)
        .order_by(approvals.c.approved_at, approvals.c.approver)
    )
    found = (await conn.execute(query)).mappings().all()
    return [
        Approval(
            run_id=row["run_id"],
            subject=row["step_id"],
            approver=row["approver"],
            approved_at=row["approved_at"],
            shown=dict(row["shown"] or {}),
        )
        for row in found
    ]
