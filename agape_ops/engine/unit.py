"""The unit of work: one transaction in which a command reads, decides and writes.

A handler locks the run it changes, checks and changes it, stages its timeline events and
stores its outcome under the command's idempotency key; all of it commits together. The events
are handed to listeners only after the commit, so a listener never runs while a run is held
and never hears of a change that was rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from agape_ops.engine.commands import Outcome
from agape_ops.engine.records import Event, Run
from agape_ops.engine.store import RunTransaction
from agape_ops.errors import UnknownRun


class DuplicateDelivery(Exception):
    """The command's idempotency key was claimed before: ``outcome`` is the first answer
    (None while the first delivery is still running)."""

    def __init__(self, outcome: dict[str, Any] | None) -> None:
        super().__init__("duplicate delivery")
        self.outcome = outcome


class Unit:
    """What a handler holds while it decides: the transaction, the clock, staged events."""

    def __init__(self, tx: RunTransaction, clock: Callable[[], datetime]) -> None:
        self.tx = tx
        self.clock = clock
        self.staged: list[Event] = []
        #: The events as committed (numbered), once the unit has committed.
        self.events: list[Event] = []

    async def claim(self, key: str, run_id: str | None) -> None:
        """Claim the command's idempotency key; raise ``DuplicateDelivery`` if it was taken."""
        claim = await self.tx.claim_command(key, run_id, self.clock())
        if not claim.claimed:
            raise DuplicateDelivery(claim.outcome)

    async def finish(self, key: str, outcome: Outcome) -> None:
        """Store the outcome later deliveries of the key are answered with."""
        await self.tx.finish_command(key, outcome.stored(), self.clock())

    async def run(self, run_id: str) -> Run:
        """Return the run, held against every other writer until the unit commits."""
        run = await self.tx.lock_run(run_id.upper())
        if run is None:
            raise UnknownRun(f"no run {run_id}; `/ops status` lists the open ones")
        return run

    def record(self, run: Run, actor: str, kind: str, summary: str, **fields: Any) -> None:
        """Stage one timeline event; it is numbered and stored when the unit commits."""
        self.staged.append(
            Event(run_id=run.id, at=self.clock(), actor=actor, kind=kind, summary=summary, **fields)
        )
