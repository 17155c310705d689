"""The run engine: the one entry point for every change to a run, and the queries surfaces read.

``execute`` hands each command to its handler (a registry the composition root fills). A handler
works inside units of work (``engine/unit.py``): one store transaction that holds the run,
claims the command's idempotency key, checks and changes the run, stages its timeline events and
stores its outcome, all committed together. Events reach listeners only after the commit.

Nothing here holds state that decides what happens to a run: locks, idempotency, step claims
and leases live in the store, so several bot processes can share one PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from agape_ops.engine import views
from agape_ops.engine.commands import Command, Outcome, Status
from agape_ops.engine.handlers import default_handlers
from agape_ops.engine.handlers.stepping import reap
from agape_ops.engine.permissions import Permissions
from agape_ops.engine.ports import Adapter, JobBoard, Probe
from agape_ops.engine.postmortem import render_json, render_markdown
from agape_ops.engine.quick import Look, quick_look
from agape_ops.engine.records import (
    ACTIVE_STATES,
    Delivery,
    Event,
    Run,
    ScheduledJob,
    SchedulerState,
)
from agape_ops.engine.steps import Plan, StepRunner
from agape_ops.engine.store import RunStore
from agape_ops.engine.unit import DuplicateDelivery, Unit
from agape_ops.errors import (
    EngineError,
    InputError,
    StoreError,
    TemplateError,
    UnknownRun,
    UnknownRunbook,
    UnknownStep,
)
from agape_ops.redaction import Redactor
from agape_ops.runbooks.model import Runbook, Step
from agape_ops.runbooks.team import Team

log = logging.getLogger(__name__)

Handler = Callable[["Engine", Any], Awaitable[Outcome]]
Listener = Callable[[Event], Awaitable[None]]

#: How long a repeated delivery waits for the first one's answer before saying it is busy.
DUPLICATE_WAIT_S = 30.0
#: How long a claimed step stays claimed without its process renewing the lease.
STEP_LEASE_S = 30.0
#: How long a process may take to send an event's outputs before another takes them over.
DELIVERY_LEASE = timedelta(seconds=30)
#: How late a job may be before ``jobs`` calls it overdue (nobody is scheduling).
OVERDUE = timedelta(minutes=1)
#: How long idempotency keys and delivery ids are kept (Slack retries within minutes).
KEEP_KEYS = timedelta(days=7)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    """Runs runbooks as durable state machines over a store and a set of adapters."""

    def __init__(
        self,
        *,
        runbooks: Mapping[str, Runbook],
        store: RunStore,
        adapters: Mapping[str, Adapter],
        permissions: Permissions,
        handlers: Mapping[type, Handler] | None = None,
        team: Team | None = None,
        settings_context: Mapping[str, str | None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        run_prefix: str = "INC",
        redactor: Redactor | None = None,
        step_lease_s: float = STEP_LEASE_S,
        duplicate_wait_s: float = DUPLICATE_WAIT_S,
        allow_shell: bool = True,
    ) -> None:
        if handlers is None:
            handlers = default_handlers()
        self.runbooks = runbooks
        self.store = store
        self.adapters = adapters
        self.permissions = permissions
        self.handlers = dict(handlers)
        self.team = team or Team()
        self.clock = clock
        self.run_prefix = run_prefix
        self.redactor = redactor or Redactor([])
        self.step_lease = timedelta(seconds=step_lease_s)
        self.duplicate_wait_s = duplicate_wait_s
        #: False: shell steps are handed over as commands to run by hand, never run or asked.
        self.allow_shell = allow_shell
        self.stepper = StepRunner(
            adapters=adapters,
            settings_context=dict(settings_context or {}),
            redactor=self.redactor,
        )
        self._listeners: list[Listener] = []
        #: Where the scheduled jobs can be read (set by the composition root), if anywhere.
        self.job_board: JobBoard | None = None

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every event this engine commits, in order, after the commit."""
        self._listeners.append(listener)

    async def publish(self, events: Iterable[Event]) -> None:
        """Hand committed events to every listener; a failing listener is reported, not fatal."""
        for event in events:
            for listener in self._listeners:
                try:
                    await listener(event)
                except Exception:  # a broken surface must not break the run; report it
                    log.exception("event listener failed on %s", event.kind)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        """Open a unit of work: one transaction; its events are published after it commits."""
        async with self.store.transaction() as tx:
            unit = Unit(tx, self.clock)
            yield unit
            unit.events = await tx.append_events(unit.staged)
        await self.publish(unit.events)

    # -- the one entry point -----------------------------------------------------------------

    async def execute(self, command: Command) -> Outcome:
        """Carry out a command exactly once per idempotency key; never raise for bad input."""
        handler = self.handlers.get(type(command))
        if handler is None:
            raise TypeError(f"no handler for {type(command).__name__}")
        deadline = time.monotonic() + self.duplicate_wait_s
        while True:
            try:
                return await handler(self, command)
            except DuplicateDelivery as duplicate:
                stored = duplicate.outcome or await self._first_answer(command.key, deadline)
                if stored is None:  # the first delivery rolled back: this one may go ahead
                    continue
                return await self._duplicate(stored)
            except (EngineError, InputError, TemplateError) as exc:
                outcome = Outcome(
                    Status.FAILED, self.redactor.text(exc.message), error=type(exc).__name__
                )
                await self.store.finish_command(command.key, outcome.stored())
                return outcome
            except BaseException as exc:
                # Record that this click ended, so a redelivery does not wait for an outcome
                # that will never come; it may have stopped after changing something: point to
                # the timeline, not a blind retry.
                stopped = Outcome(
                    Status.FAILED,
                    f"this command stopped ({type(exc).__name__}) before it finished; check "
                    "the run's timeline for what it did before trying again",
                    error=type(exc).__name__,
                )
                await asyncio.shield(self.store.finish_command(command.key, stopped.stored()))
                raise

    async def _first_answer(self, key: str, deadline: float) -> dict[str, Any] | None:
        """Wait for the first delivery's stored outcome; None if it rolled back."""
        pause = 0.005
        while True:
            stored = await self.store.command_outcome(key)
            if stored is not None:
                return None if stored.get("unclaimed") else stored
            if time.monotonic() >= deadline:
                return {
                    "status": Status.FAILED.value,
                    "message": "this click is already being handled; nothing was repeated",
                    "pending": True,
                }
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    async def _duplicate(self, stored: Mapping[str, Any]) -> Outcome:
        """Answer a repeated delivery with the first outcome, its run included."""
        run_id = stored.get("run_id")
        first = None if stored.get("pending") else Status(stored.get("status", "failed"))
        return Outcome(
            Status.DUPLICATE,
            str(stored.get("message", "")),
            error=stored.get("error"),
            first=first,
            run=await self.store.get_run(run_id) if isinstance(run_id, str) else None,
        )

    # -- lookups -----------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run:
        """Return a run by id, or say there is none and how to find the open ones."""
        run = await self.store.get_run(run_id.upper())
        if run is None:
            raise UnknownRun(f"no run {run_id}; `/ops status` lists the open ones")
        return run

    async def find_run(self, run_id: str) -> Run | None:
        """Return a run by id, or None when there is none."""
        return await self.store.get_run(run_id.upper())

    def runbook_of(self, run: Run) -> Runbook:
        runbook = self.runbooks.get(run.runbook_id)
        if runbook is None:
            raise UnknownRunbook(f"runbook {run.runbook_id} is no longer loaded")
        return runbook

    def step_of(self, runbook: Runbook, step_id: str) -> Step:
        step = runbook.step(step_id)
        if step is None:
            known = ", ".join(s.id for s in runbook.steps())
            raise UnknownStep(f"{runbook.id} has no step {step_id!r} (steps: {known})")
        return step

    def hands_over(self, run: Run, step: Step) -> bool:
        """Say whether a step is shown as a command to run by hand instead of run: shell is off
        (a rehearsal shows what it would run instead, never asks for it by hand)."""
        return step.shell is not None and not self.allow_shell and not run.rehearsal

    # -- queries for surfaces ----------------------------------------------------------------

    async def view(self, run_id: str) -> views.RunView:
        """Return the surface-neutral view of a run: headline, steps, buttons, approvals."""
        run = await self.get_run(run_id)
        records = await self.store.get_steps(run.id)
        approvals = await self.store.approvals(run.id)
        return views.run_view(
            run,
            self.runbooks.get(run.runbook_id),
            records,
            approvals,
            self.team,
            now=self.clock(),
            allow_shell=self.allow_shell,
        )

    async def runs(self, *, active: bool = False, limit: int = 50) -> list[Run]:
        """Return runs newest first (only those not yet resolved, when ``active``)."""
        return await self.store.list_runs(
            states=list(ACTIVE_STATES) if active else None, limit=limit
        )

    async def timeline(self, run_id: str) -> list[Event]:
        """Return a run's timeline in order."""
        return await self.store.events((await self.get_run(run_id)).id)

    async def export(self, run_id: str, fmt: str = "md") -> str:
        """Return a run's postmortem draft as Markdown (or JSON when ``fmt`` is json), redacted.

        The alert's own text is kept as it came, so redact what it may quote (a DSN, a key).
        """
        run = await self.get_run(run_id)
        runbook = self.runbooks.get(run.runbook_id)
        steps = await self.store.get_steps(run.id)
        events = await self.store.events(run.id)
        if fmt == "json":
            data = self.redactor.value(render_json(run, runbook, steps, events))
            return json.dumps(data, indent=2)
        return self.redactor.text(render_markdown(run, runbook, steps, events))

    async def plan(self, run_id: str, step_id: str, inputs: Mapping[str, str]) -> Plan:
        """Say what a step would do and, for writes, what it would touch; change nothing."""
        run = await self.get_run(run_id)
        runbook = self.runbook_of(run)
        step = self.step_of(runbook, step_id)
        steps = await self.store.get_steps(run.id)
        history = await self.store.events(run.id) if step.changes_things else []
        return await self.stepper.plan(run, runbook, step, steps, inputs, history=history)

    async def events_after(self, position: int, *, limit: int = 500) -> list[Event]:
        """Return the store's event log after ``position``: every process's events, in order."""
        return await self.store.events_after(position, limit=limit)

    async def last_position(self) -> int:
        """Return the position of the newest event in the store's log (0 when empty)."""
        return await self.store.last_position()

    async def follow(
        self, position: int | None = None, *, poll_s: float = 0.5
    ) -> AsyncIterator[Event]:
        """Yield every event committed after ``position`` (default: from now on), by any
        process, in order, for as long as the caller keeps iterating."""
        if position is None:
            position = await self.last_position()
        while True:
            batch = await self.store.events_after(position)
            for event in batch:
                position = event.position
                yield event
            if not batch:
                await asyncio.sleep(poll_s)

    async def jobs(self, run_id: str | None = None) -> list[ScheduledJob]:
        """Return the scheduled jobs (escalation, re-checks, monitors, reminders) of one run or
        of all, soonest first; none when no scheduler is set up."""
        if self.job_board is None:
            return []
        try:
            found = await self.job_board.jobs(run_id.upper() if run_id else None)
        except Exception as exc:
            log.warning("could not read the scheduled jobs", exc_info=True)
            raise StoreError(
                f"the scheduled jobs could not be read ({type(exc).__name__}); the bot's log "
                "has the details"
            ) from exc
        late = self.clock() - OVERDUE
        found = [
            dataclasses.replace(job, overdue=job.next_at is not None and job.next_at < late)
            for job in found
        ]
        latest = datetime.max.replace(tzinfo=UTC)
        return sorted(found, key=lambda job: (job.next_at or latest, job.id))

    def scheduler_state(self) -> SchedulerState:
        """Return this process's part in scheduling (``off`` when no scheduler is set up)."""
        return self.job_board.state() if self.job_board else SchedulerState("off")

    async def quick(self, look: str, values: list[str]) -> Look:
        """Take a quick look outside any run (``verify`` a reference, ``queues``): a loaded
        runbook's read step doing it, through the same adapter; nothing is changed or kept."""
        return await quick_look(self, look, values, self.clock())

    async def probes(self, timeout_s: float = 3.0) -> dict[str, Probe]:
        """Probe every adapter at once, each within ``timeout_s``; never raise."""

        async def one(name: str, adapter: Adapter) -> Probe:
            try:
                return await asyncio.wait_for(adapter.probe(), timeout_s)
            except TimeoutError:
                return Probe(name, False, f"no answer within {timeout_s:.0f} s")
            except Exception as exc:  # noqa: BLE001 - a probe reports, it never breaks
                return Probe(name, False, f"the probe failed ({type(exc).__name__})")

        names = list(self.adapters)
        found = await asyncio.gather(*(one(n, self.adapters[n]) for n in names))
        return dict(zip(names, found, strict=True))

    async def claim_delivery(self, key: str) -> Delivery:
        """Claim sending one output of a committed event (a Slack message) for this process.

        The store decides, so replicas and restarts agree: CLAIMED means send it, then call
        ``finish_delivery``; HELD means another process is on it (ask again after
        ``DELIVERY_LEASE``: a claim a dead process left is taken over); DONE means it was sent.
        """
        return await self.store.claim_delivery(key, self.clock(), DELIVERY_LEASE)

    async def finish_delivery(self, key: str) -> None:
        """Record that a claimed output was sent (or given up): nobody sends it again."""
        await self.store.finish_delivery(key, self.clock())

    # -- housekeeping ------------------------------------------------------------------------

    async def reap_interrupted(self) -> list[tuple[str, str]]:
        """Mark steps whose process stopped renewing their lease as interrupted; return them.

        Any process may do this: the step's claim moves on only inside the run's transaction.
        """
        reaped = []
        for run_id, step_id in await self.store.expired_leases(self.clock()):
            if await reap(self, run_id, step_id):
                reaped.append((run_id, step_id))
        return reaped

    async def housekeep(self) -> int:
        """Mark interrupted steps and forget idempotency keys older than ``KEEP_KEYS``; return
        how many keys were forgotten. Safe to run from every process, as often as wanted."""
        await self.reap_interrupted()
        return await self.store.prune(self.clock() - KEEP_KEYS)
