"""The interfaces the engine needs from the outside, owned here and implemented elsewhere.

Adapters (``agape_ops.adapters``) implement ``Adapter``; the store (``agape_ops.store``)
implements ``RunStore``. The engine never imports either package: the composition root passes
the implementations in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agape_ops.engine.records import ScheduledJob, SchedulerState
from agape_ops.engine.results import StepResult
from agape_ops.runbooks.model import Step
from agape_ops.runbooks.strict import Strict


@dataclass(frozen=True)
class AdapterRequest:
    """One call an adapter is asked to make for a step of a run.

    ``call`` is the step's call model (``PostgresCall``, ``PaystackCall`` ...) with every
    template already rendered; for postgres, ``params`` holds the bound parameter values.
    ``extra`` carries values the engine resolved (``references`` for ``verify_many``).
    ``idempotency_key`` is unique per run, step and click: adapters that change things send it
    on (the admin API's ``Idempotency-Key`` header).
    """

    run_id: str
    step: Step
    call: Strict
    idempotency_key: str
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """An adapter's health: reachable or not, in words, and how long it took to find out."""

    name: str
    ok: bool
    detail: str
    latency_ms: int | None = None
    configured: bool = True


class Adapter(Protocol):
    """One external system the runbooks call."""

    name: str

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Make the call and return its result; raise an AdapterError subclass on failure."""
        ...

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """For a step that changes things: show what it would touch, changing nothing."""
        ...

    def describe(self, request: AdapterRequest) -> str:
        """Say exactly what ``execute`` would do (SQL and params, method and URL, argv)."""
        ...

    async def probe(self) -> Probe:
        """Check the system answers; never raise."""
        ...


class JobBoard(Protocol):
    """The scheduled jobs, as any process can read them (the scheduler writes them)."""

    async def jobs(self, run_id: str | None = None) -> list[ScheduledJob]:
        """Return the scheduled jobs of one run (or all), soonest first."""
        ...

    def state(self) -> SchedulerState:
        """Return this process's part in scheduling."""
        ...
