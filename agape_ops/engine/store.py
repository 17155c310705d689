"""The store the engine needs: Protocols owned here, implemented by ``agape_ops.store``.

Commands change runs only inside ``transaction()``: one transaction that holds the run it locks
against every other writer (in this process or another) until it commits, so a command reads,
decides and writes without anyone changing the run in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from agape_ops.engine.records import (
    Approval,
    CommandClaim,
    Delivery,
    Event,
    Run,
    RunState,
    StepRecord,
)


class RunTransaction(Protocol):
    """The reads and writes of one unit of work; they commit together or not at all."""

    async def lock_run(self, run_id: str) -> Run | None:
        """Return the run, held against other writers until the transaction ends."""
        ...

    async def find_active_run(self, fingerprint: str) -> Run | None:
        """Return the one active run of an alert fingerprint, held; None when there is none."""
        ...

    async def create_run(self, run: Run, prefix: str) -> Run:
        """Insert a run numbered ``<prefix>-<n>``; raise ``Conflict`` when another active run
        has its fingerprint (a concurrent intake won)."""
        ...

    async def update_run(self, run_id: str, changes: Mapping[str, Any]) -> None:
        """Change only the named columns of the run."""
        ...

    async def steps(self, run_id: str) -> dict[str, StepRecord]: ...

    async def save_step(self, record: StepRecord) -> None: ...

    async def finish_step(self, record: StepRecord, claim_key: str) -> bool:
        """Store a step's verdict if ``claim_key`` still holds its claim; say whether it did."""
        ...

    async def add_approval(self, approval: Approval) -> list[Approval]:
        """Record an approval once per approver; return every approval of its subject."""
        ...

    async def approvals(self, run_id: str) -> list[Approval]: ...

    async def clear_approvals(self, run_id: str, step_id: str) -> None: ...

    async def acquire_lock(self, name: str, run_id: str, now: datetime) -> str | None:
        """Take a named lock for the run; None on success, else the holding run's id."""
        ...

    async def release_locks(self, run_id: str, names: Iterable[str] | None = None) -> None: ...

    async def claim_command(self, key: str, run_id: str | None, now: datetime) -> CommandClaim:
        """Claim an idempotency key, or return the earlier claim's outcome (None if pending)."""
        ...

    async def finish_command(self, key: str, outcome: dict[str, Any], now: datetime) -> None: ...

    async def events(self, run_id: str) -> list[Event]:
        """Return the run's timeline in order."""
        ...

    async def append_events(self, staged: list[Event]) -> list[Event]:
        """Append events, numbering each run's timeline (``seq``) and the log (``position``)."""
        ...


class RunStore(Protocol):
    """Durable state of runs: transactions for commands, single reads for queries."""

    run_prefix: str

    def transaction(self) -> AbstractAsyncContextManager[RunTransaction]: ...

    async def get_run(self, run_id: str) -> Run | None: ...

    async def list_runs(
        self, *, states: list[RunState] | None = None, limit: int = 50
    ) -> list[Run]:
        """Return runs newest first, optionally only those in ``states``."""
        ...

    async def get_steps(self, run_id: str) -> dict[str, StepRecord]: ...

    async def approvals(self, run_id: str) -> list[Approval]: ...

    async def events(self, run_id: str) -> list[Event]:
        """Return the run's timeline in order."""
        ...

    async def events_after(self, position: int, *, limit: int = 500) -> list[Event]:
        """Return the store-wide log's events after ``position``, in order."""
        ...

    async def last_position(self) -> int: ...

    async def renew_lease(self, run_id: str, step_id: str, key: str, until: datetime) -> bool:
        """Extend a running step's lease while ``key`` still holds its claim."""
        ...

    async def expired_leases(self, now: datetime) -> list[tuple[str, str]]:
        """Return (run id, step id) of running steps whose lease ran out."""
        ...

    async def finish_command(self, key: str, outcome: dict[str, Any]) -> None:
        """Store a command's outcome outside any run's transaction (it failed before one)."""
        ...

    async def command_outcome(self, key: str) -> dict[str, Any] | None:
        """Return a key's stored outcome, None while pending, or ``{"unclaimed": True}``."""
        ...

    async def claim_delivery(self, key: str, now: datetime, lease: timedelta) -> Delivery:
        """Claim sending one output for ``lease`` (taking over one a dead process left)."""
        ...

    async def finish_delivery(self, key: str, now: datetime) -> None:
        """Record that a claimed output was sent: nobody sends it again."""
        ...

    async def prune(self, before: datetime) -> int:
        """Forget finished idempotency keys and delivery ids older than ``before``."""
        ...

    async def close(self) -> None: ...
