"""The run engine: every change to a run goes through here as a command.

For each command the engine checks the run's state and the actor's permission, takes the
command's idempotency key, calls the adapter (never the surface), and appends what happened to
the run's timeline. Surfaces render the outcome and the events; they never call adapters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from agape_ops.engine import run_changes, transitions
from agape_ops.engine.commands import (
    Acknowledge,
    AddNote,
    Command,
    MarkItemDone,
    Outcome,
    ProvideInput,
    RunStep,
    SetState,
    SkipStep,
    StartRun,
)
from agape_ops.engine.context import redacted_inputs, validate_input
from agape_ops.engine.locks import KeyedLocks
from agape_ops.engine.permissions import Permissions, approval_subject
from agape_ops.engine.ports import Adapter
from agape_ops.engine.records import Run, RunState, StepRecord, StepState
from agape_ops.engine.results import StepResult
from agape_ops.engine.steps import Plan, StepRunner
from agape_ops.engine.store import RunStore
from agape_ops.engine.timeline import Listener, Timeline
from agape_ops.errors import (
    EngineError,
    InputError,
    LockHeld,
    PermissionDenied,
    TemplateError,
    UnknownRun,
    UnknownRunbook,
    UnknownStep,
)
from agape_ops.redaction import Redactor
from agape_ops.runbooks.model import Risk, Runbook, Step

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    """Runs runbooks as durable state machines over a store and a set of adapters.

    Secret inputs are held in memory, never stored, and taught to ``redactor`` (the log's too).
    """

    def __init__(
        self,
        *,
        runbooks: Mapping[str, Runbook],
        store: RunStore,
        adapters: Mapping[str, Adapter],
        permissions: Permissions,
        settings_context: Mapping[str, str | None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        run_prefix: str = "INC",
        redactor: Redactor | None = None,
    ) -> None:
        self.runbooks = runbooks
        self.store = store
        self.adapters = adapters
        self.permissions = permissions
        self.settings_context = dict(settings_context or {})
        self.clock = clock
        self.run_prefix = run_prefix
        self.timeline = Timeline(store, clock)
        self.stepper = StepRunner(
            store=store,
            adapters=adapters,
            timeline=self.timeline,
            settings_context=self.settings_context,
            clock=clock,
            redactor=redactor or Redactor([]),
        )
        self._clicks = KeyedLocks()  # one execution per idempotency key
        self._runs = KeyedLocks()  # one change at a time to a run's own record

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every event the engine appends, in order."""
        self.timeline.listeners.append(listener)

    # -- the one entry point -----------------------------------------------------------------

    async def execute(self, command: Command) -> Outcome:
        """Carry out a command exactly once per idempotency key; never raise for bad input."""
        async with self._clicks.hold(command.key):
            run_id = getattr(command, "run_id", None)
            claim = await self.store.claim_command(command.key, run_id)
            if not claim.claimed:
                return await self._duplicate(claim.outcome)
            try:
                outcome = await self._dispatch(command)
            except BaseException as exc:
                # Record that this click ended, so a redelivery does not wait forever on an
                # outcome that will never come; the surface reports the failure. It may have
                # stopped after changing something: point to the timeline, not a blind retry.
                failed = Outcome(
                    ok=False,
                    message=f"this command stopped ({type(exc).__name__}) before it finished; "
                    "check the run's timeline for what it did before trying again",
                    error=type(exc).__name__,
                )
                await asyncio.shield(self.store.finish_command(command.key, failed.stored()))
                raise
            await self.store.finish_command(command.key, outcome.stored())
            return outcome

    async def _duplicate(self, stored: dict[str, Any] | None) -> Outcome:
        """Answer a repeated delivery with the first outcome, its run included."""
        if stored is None:
            return Outcome(
                ok=False,
                duplicate=True,
                message="this click is already being handled; nothing was repeated",
            )
        run_id = stored.get("run_id")
        return Outcome(
            ok=bool(stored.get("ok")),
            duplicate=True,
            message=str(stored.get("message", "")),
            error=stored.get("error"),
            run=await self.store.get_run(run_id) if isinstance(run_id, str) else None,
        )

    async def _dispatch(self, command: Command) -> Outcome:
        try:
            if isinstance(command, StartRun):
                return await self._start(command)
            if isinstance(command, RunStep):
                return await self._run_step(command)
            async with self._runs.hold(command.run_id.upper()):
                return await self._change_run(command)
        except (EngineError, InputError, TemplateError) as exc:
            message = self.stepper.redactor.text(exc.message)
            return Outcome(ok=False, message=message, error=type(exc).__name__)

    async def _change_run(
        self, command: Acknowledge | MarkItemDone | SkipStep | ProvideInput | SetState | AddNote
    ) -> Outcome:
        if isinstance(command, MarkItemDone):
            return await run_changes.mark_item(self, command)
        if isinstance(command, SkipStep):
            return await run_changes.skip(self, command)
        if isinstance(command, ProvideInput):
            return await run_changes.provide_input(self, command)
        if isinstance(command, SetState):
            return await run_changes.set_state(self, command)
        if isinstance(command, AddNote):
            return await run_changes.note(self, command)
        return await run_changes.acknowledge(self, command)

    # -- lookups -----------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run:
        run = await self.store.get_run(run_id.upper())
        if run is None:
            raise UnknownRun(f"no run {run_id}; `/ops status` lists the open ones")
        return run

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

    # -- start -------------------------------------------------------------------------------

    async def _start(self, command: StartRun) -> Outcome:
        runbook = self.runbooks.get(command.runbook_id)
        if runbook is None:
            known = ", ".join(sorted(self.runbooks)) or "none loaded"
            raise UnknownRunbook(f"no runbook {command.runbook_id!r} (runbooks: {known})")
        inputs: dict[str, str] = {}
        for name, value in command.inputs.items():
            if name not in runbook.inputs:
                raise InputError(f"{runbook.id} has no input {name!r}", input_name=name)
            inputs[name] = validate_input(name, runbook.inputs[name], value)
        public, secret = self.stepper.held.split(runbook, inputs)
        # Kept and shown again: an alert quoting a DSN or a key must not be repeated with it.
        dumped = command.alert.model_dump(mode="json") if command.alert else None
        alert = self.stepper.redactor.value(dumped)
        run = await self.store.create_run(
            Run(
                id=self.run_prefix,
                number=0,
                runbook_id=runbook.id,
                title=runbook.title,
                severity=runbook.severity.value,
                state=RunState.OPEN,
                created_by=command.actor,
                created_at=self.clock(),
                alert=alert,
                fingerprint=command.fingerprint,
                inputs=public,
                rehearsal=command.rehearsal,
                surface=dict(command.surface),
            )
        )
        self.stepper.held.keep(run.id, secret)
        cause = f"alert “{alert['title']}”" if alert else f"{command.actor}"
        rehearsal = " (rehearsal: writes are shown, not executed)" if run.rehearsal else ""
        await self.timeline.record(
            run,
            command.actor,
            "run.opened",
            f"{run.id} opened: {runbook.title} ({runbook.severity.value}) by {cause}{rehearsal}",
            detail={
                "runbook": runbook.id,
                "rehearsal": run.rehearsal,
                "inputs": redacted_inputs(runbook, inputs),
            },
        )
        if command.auto:
            await self.stepper.run_auto_steps(run, runbook)
        return Outcome(ok=True, message=f"{run.id} opened: {runbook.title}", run=run)

    async def run_auto_steps(self, run_id: str) -> list[StepRecord]:
        """Run the runbook's automatic checks (detection, and steps marked ``auto``)."""
        run = await self.get_run(run_id)
        return await self.stepper.run_auto_steps(run, self.runbook_of(run))

    async def plan(self, run_id: str, step_id: str, inputs: Mapping[str, str]) -> Plan:
        """Say what a step would do and, for writes, what it would touch; change nothing."""
        run = await self.get_run(run_id)
        runbook = self.runbook_of(run)
        return await self.stepper.plan(run, runbook, self.step_of(runbook, step_id), inputs)

    # -- steps -------------------------------------------------------------------------------

    async def _run_step(self, command: RunStep) -> Outcome:
        async with self._runs.hold(command.run_id.upper()):
            prepared = await self._prepare_step(command)
        if isinstance(prepared, Outcome):
            return prepared
        run, runbook, step, values = prepared
        record = await self.stepper.perform(run, runbook, step, command.actor, values, command.key)
        if step.two_person:
            subject = approval_subject(step, redacted_inputs(runbook, values))
            await self.store.clear_approvals(run.id, subject)
        ok = record.state not in (StepState.ERROR,)
        message = record.finding or record.error or step.title
        return Outcome(
            ok=ok,
            message=message,
            run=run,
            step=record,
            result=StepResult.model_validate(record.result) if record.result else None,
            error=None if ok else "StepError",
        )

    async def _prepare_step(
        self, command: RunStep
    ) -> Outcome | tuple[Run, Runbook, Step, dict[str, str]]:
        """Check a step may run now and record what running it changes on the run.

        Return an Outcome when it may not (yet): refused, inputs missing, confirmation or a
        second approver needed, lock held; else what ``perform`` needs.
        """
        run = await self.get_run(command.run_id)
        transitions.require_active(run)
        runbook = self.runbook_of(run)
        step = self.step_of(runbook, command.step_id)
        if not self.permissions.may_run(command.actor, step):
            return await self.refuse(run, step, command.actor)
        values, missing = self.stepper.resolve_inputs(run, runbook, step, command.inputs)
        if missing:
            return Outcome(
                ok=False,
                run=run,
                needs_inputs=missing,
                message=f"“{step.title}” needs {', '.join(missing)}",
            )
        if step.changes_things and not command.confirmed:
            return Outcome(
                ok=False,
                run=run,
                needs_confirmation=True,
                message=step.confirm or f"Run “{step.title}”?",
            )
        if step.two_person and step.risk is Risk.DANGEROUS and not run.rehearsal:
            # An approval is of the step with these values: a second approver giving others
            # starts a new approval instead of running what nobody else approved.
            shown = redacted_inputs(runbook, values)
            subject = approval_subject(step, shown)
            approvers = await self.store.add_approval(run.id, subject, command.actor)
            if len(approvers) < 2:
                await self.timeline.record(
                    run,
                    command.actor,
                    "step.approved",
                    f"{command.actor} approved “{step.title}”; waiting for a second, "
                    "different approver",
                    step_id=step.id,
                    detail={"inputs": shown},
                )
                return Outcome(
                    ok=False,
                    run=run,
                    message=(
                        f"Approved by {command.actor}. “{step.title}” needs a second, "
                        "different approver before it runs."
                    ),
                )
        if step.lock and not run.rehearsal:
            holder = await self.store.acquire_lock(step.lock, run.id)
            if holder is not None:
                why = f"the {step.lock} lock is held by {holder}; finish or resolve {holder} first"
                return await self.refuse(run, step, command.actor, why, LockHeld)
        await run_changes.acknowledge_implicitly(self, run, command.actor, step)
        await self.stepper.keep_inputs(run, runbook, values)
        return run, runbook, step, values

    async def refuse(
        self,
        run: Run,
        step: Step,
        actor: str,
        why: str | None = None,
        error: type[EngineError] = PermissionDenied,
    ) -> Outcome:
        """Refuse a step: say why (by default, who may run it), change nothing, record it."""
        why = why or self.permissions.refusal(step)
        await self.timeline.record(
            run,
            actor,
            "step.refused",
            f"refused {actor}: {why}",
            step_id=step.id,
            outcome="refused",
        )
        return Outcome(ok=False, run=run, message=why, error=error.__name__)
