"""The store the engine needs: a Protocol owned here, implemented by ``agape_ops.store``."""

from __future__ import annotations

from typing import Any, Protocol

from agape_ops.engine.records import CommandClaim, Event, Run, RunState, StepRecord


class RunStore(Protocol):
    """Durable state of runs. Every method is atomic on its own."""

    async def create_run(self, run: Run) -> Run:
        """Persist a new run, assigning ``number`` and ``id`` (``<prefix>-<number>``).

        ``run.id`` arrives as the prefix (e.g. ``INC``); numbers are unique and increasing
        across the store, also under concurrent callers.
        """
        ...

    async def get_run(self, run_id: str) -> Run | None: ...

    async def save_run(self, run: Run) -> None:
        """Overwrite a run's mutable fields (state, timestamps, inputs, surface)."""
        ...

    async def list_runs(
        self, *, states: list[RunState] | None = None, limit: int = 50
    ) -> list[Run]:
        """Return runs newest first, optionally only those in ``states``."""
        ...

    async def find_open_run(self, fingerprint: str) -> Run | None:
        """Return the newest run with this alert fingerprint that is not resolved or closed."""
        ...

    async def get_steps(self, run_id: str) -> dict[str, StepRecord]: ...

    async def save_step(self, record: StepRecord) -> None:
        """Insert or overwrite the record of (run_id, step_id)."""
        ...

    async def claim_step(self, run_id: str, step_id: str, actor: str) -> bool:
        """Mark the step running unless it is running already; say whether this call did."""
        ...

    async def append_event(self, event: Event) -> Event:
        """Append to the run's timeline, assigning ``seq`` (1, 2, ... per run)."""
        ...

    async def events(self, run_id: str) -> list[Event]:
        """Return the run's timeline in order."""
        ...

    async def claim_command(self, key: str, run_id: str | None) -> CommandClaim:
        """Claim an idempotency key: first caller gets ``claimed=True``; later callers get
        ``claimed=False`` and the outcome stored by ``finish_command`` (None while pending)."""
        ...

    async def finish_command(self, key: str, outcome: dict[str, Any]) -> None: ...

    async def add_approval(self, run_id: str, step_id: str, approver: str) -> list[str]:
        """Record an approval of a step (once per approver); return all approvers so far."""
        ...

    async def clear_approvals(self, run_id: str, step_id: str) -> None: ...

    async def acquire_lock(self, name: str, run_id: str) -> str | None:
        """Take a named lock for a run; return None on success, else the holding run's id.

        Taking a lock the same run already holds succeeds; a lock held by a run that is
        resolved or closed is free."""
        ...

    async def release_lock(self, name: str, run_id: str) -> None: ...

    async def close(self) -> None: ...
