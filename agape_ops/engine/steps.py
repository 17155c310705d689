"""Running one step: render its call, ask its adapter, judge the result, record it.

The engine decides whether a step may run (state, permission, confirmation, approvals, locks);
this module carries it out once it may, and says beforehand what it would do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agape_ops.alerts.model import Alert
from agape_ops.engine.context import (
    HeldSecrets,
    alert_check,
    base_context,
    judge,
    redacted_inputs,
    references_for,
    render_call,
    resolve_inputs,
)
from agape_ops.engine.ports import Adapter, AdapterRequest
from agape_ops.engine.records import Run, StepRecord, StepState
from agape_ops.engine.results import StepResult
from agape_ops.engine.store import RunStore
from agape_ops.engine.timeline import Timeline
from agape_ops.errors import AdapterError, AdapterNotConfigured, AgapeError, StepBusy
from agape_ops.redaction import Redactor
from agape_ops.runbooks.model import PaystackCall, Runbook, Step

BOT = "agape-ops"

log = logging.getLogger(__name__)

#: The setting that enables each adapter, named when a step needs one that was not built.
ENABLED_BY: dict[str, str] = {
    "postgres": "DATABASE_URL",
    "redis": "REDIS_URL",
    "paystack": "PAYSTACK_SECRET_KEY",
    "admin_api": "ADMIN_API_URL and ADMIN_TOKEN",
    "shell": "OPS_ALLOW_SHELL=true",
}


@dataclass(frozen=True)
class Plan:
    """What a step would do, shown before a person confirms it."""

    step: Step
    description: str
    confirm: str | None
    preview: StepResult | None = None
    missing_inputs: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Rehearsal:
    """A change a rehearsal shows instead of making."""

    description: str


class StepRunner:
    """Carries out steps for the engine, through the adapters, onto the timeline.

    Secret inputs reach the adapter's call and nothing else: what a step shows (its
    description, finding, result, error) is rendered with them masked, then redacted by value.
    """

    def __init__(
        self,
        *,
        store: RunStore,
        adapters: Mapping[str, Adapter],
        timeline: Timeline,
        settings_context: Mapping[str, str | None],
        clock: Callable[[], datetime],
        redactor: Redactor,
    ) -> None:
        self.store = store
        self.adapters = adapters
        self.timeline = timeline
        self.settings_context = settings_context
        self.clock = clock
        self.redactor = redactor
        self.held = HeldSecrets(redactor)

    def inputs_of(self, run: Run, given: Mapping[str, str]) -> dict[str, str]:
        """Return every input value the run's steps may read: stored, held secret, given."""
        return {**run.inputs, **self.held.of(run.id), **given}

    def resolve_inputs(
        self, run: Run, runbook: Runbook, step: Step, given: Mapping[str, str]
    ) -> tuple[dict[str, str], list[str]]:
        """Return the step's input values (held secret ones included) and the missing names."""
        return resolve_inputs(runbook, step, {**self.held.of(run.id), **given}, run)

    async def keep_inputs(self, run: Run, runbook: Runbook, values: Mapping[str, str]) -> None:
        """Keep input values for the run's later steps: stored, except secret ones (held)."""
        public, secret = self.held.split(runbook, values)
        self.held.keep(run.id, secret)
        if public:
            run.inputs.update(public)
            await self.store.save_run(run)

    def _shown_inputs(self, run: Run, runbook: Runbook, given: Mapping[str, str]) -> dict[str, str]:
        """Return the run's inputs as they may be shown, learning the secret ones to redact."""
        values = self.inputs_of(run, given)
        self.held.split(runbook, values)
        return redacted_inputs(runbook, values)

    async def run_auto_steps(self, run: Run, runbook: Runbook) -> list[StepRecord]:
        """Run the automatic checks: independent ones at once, dependent ones after."""
        steps = runbook.auto_steps()
        first = [s for s in steps if not _depends_on_others(s)]
        later = [s for s in steps if _depends_on_others(s)]
        key = f"auto:{run.id}"
        records = list(
            await asyncio.gather(*(self.perform(run, runbook, s, BOT, {}, key) for s in first))
        )
        for step in later:
            records.append(await self.perform(run, runbook, step, BOT, {}, key))
        return records

    async def perform(  # noqa: PLR0917 - one call site per caller, each argument named there
        self,
        run: Run,
        runbook: Runbook,
        step: Step,
        actor: str,
        inputs: Mapping[str, str],
        click: str,
    ) -> StepRecord:
        """Execute one step: claimed, timed, judged, stored and written to the timeline."""
        if not await self.store.claim_step(run.id, step.id, actor):
            raise StepBusy(f"“{step.title}” is running already; wait for its result")
        steps = await self.store.get_steps(run.id)
        record = steps.get(step.id) or StepRecord(run_id=run.id, step_id=step.id)
        record.state, record.actor, record.started_at = StepState.RUNNING, actor, self.clock()
        record.attempts = max(record.attempts, 1)
        record.result = None  # this attempt's only: later steps must not read an older one
        kind, result, started = "step.finished", None, time.monotonic()
        shown = self._shown_inputs(run, runbook, inputs)
        try:
            outcome = await self._call(run, step, steps, inputs, click, shown)
            record.error = None
            if isinstance(outcome, Rehearsal):
                kind, record.state = "step.rehearsed", StepState.SKIPPED
                record.finding = f"Rehearsal, not executed. Would run: {outcome.description}"
            elif outcome is None:  # a manual checklist carried out as a whole
                kind, record.state = "step.done", StepState.DONE
                record.finding = f"{step.title}: done"
                record.items_done = list(range(len(step.manual.items))) if step.manual else []
            else:
                # Judged as shown: a server that echoes a secret input back is masked too.
                result = self.redactor.result(outcome)
                context = base_context(run, steps, shown, self.settings_context)
                problem, finding = judge(step, result, context)
                record.finding = self.redactor.text(finding)
                record.state = _state_of(step, problem)
        except AgapeError as exc:
            kind, record.state = "step.error", StepState.ERROR
            record.error = self.redactor.text(exc.message)
            record.finding = f"{step.title}: {record.error}"
        except BaseException as exc:
            # Whoever waited went away (shutdown, a dropped request) or a bug stopped it: the
            # step must not stay "running" for good, or nobody could run it again in this run.
            if result is not None:
                record.result = result.model_dump(mode="json")
            record.error = _stopped(step, run, exc, answered=result is not None)
            await asyncio.shield(self._record_stop(run, step, record, actor))
            raise
        duration = int((time.monotonic() - started) * 1000)
        if result is not None:
            result.duration_ms = duration
            record.result = result.model_dump(mode="json")
        record.finished_at = self.clock()
        await self.store.save_step(record)
        await self.timeline.record(
            run,
            actor,
            kind,
            record.finding or step.title,
            step_id=step.id,
            outcome=record.state.value,
            duration_ms=duration,
            detail={
                "inputs": redacted_inputs(runbook, inputs),
                "risk": step.risk.value,
                "rehearsal": run.rehearsal,
            },
        )
        return record

    async def _record_stop(self, run: Run, step: Step, record: StepRecord, actor: str) -> None:
        """Store and announce a step that stopped without a verdict."""
        record.state, record.finished_at = StepState.ERROR, self.clock()
        record.finding = f"{step.title}: {record.error}"
        await self.store.save_step(record)
        await self.timeline.record(
            run, actor, "step.error", record.finding, step_id=step.id, outcome=record.state.value
        )

    async def _call(  # noqa: PLR0917 - private; perform passes what it resolved
        self,
        run: Run,
        step: Step,
        steps: Mapping[str, StepRecord],
        inputs: Mapping[str, str],
        click: str,
        shown: Mapping[str, str],
    ) -> StepResult | Rehearsal | None:
        if step.manual is not None:
            return None
        if step.alert is not None:
            alert = Alert.model_validate(run.alert) if run.alert else None
            return alert_check(step.alert, alert)
        adapter = self.adapters.get(step.kind)
        if adapter is None:
            raise AdapterNotConfigured(
                not_configured(step.kind), adapter=step.kind, step_id=step.id
            )
        if run.rehearsal and step.changes_things:
            described = adapter.describe(self.request_for(run, step, steps, shown, click))
            return Rehearsal(self.redactor.text(described))
        request = self.request_for(run, step, steps, inputs, click)
        try:
            return await adapter.execute(request)
        except AdapterError as exc:
            exc.step_id = exc.step_id or step.id
            raise
        except Exception as exc:  # the adapter boundary: a bug there must not stop the run
            log.exception("the %s adapter failed on step %s of %s", step.kind, step.id, run.id)
            raise AdapterError(
                f"the {step.kind} adapter failed unexpectedly ({type(exc).__name__}); the "
                "bot's log has the details",
                adapter=step.kind,
                step_id=step.id,
            ) from exc

    def request_for(
        self,
        run: Run,
        step: Step,
        steps: Mapping[str, StepRecord],
        inputs: Mapping[str, str],
        click: str,
    ) -> AdapterRequest:
        """Build the adapter request for a step: its call rendered, its key unique per click."""
        context = base_context(run, steps, self.inputs_of(run, inputs), self.settings_context)
        call, params = render_call(step, context)
        extra: dict[str, Any] = {}
        if isinstance(call, PaystackCall) and call.action == "verify_many":
            extra["references"] = references_for(call, steps)
        return AdapterRequest(
            run_id=run.id,
            step=step,
            call=call,
            params=params,
            extra=extra,
            idempotency_key=f"{run.id}:{step.id}:{click}",
        )

    async def plan(self, run: Run, runbook: Runbook, step: Step, inputs: Mapping[str, str]) -> Plan:
        """Say what a step would do and, for writes, what it would touch; change nothing.

        The description is of the call rendered with secret inputs masked.
        """
        values, missing = self.resolve_inputs(run, runbook, step, inputs)
        if missing:
            return Plan(step, "", step.confirm, missing_inputs=tuple(missing))
        if step.manual is not None or step.alert is not None:
            return Plan(step, step.title, step.confirm)
        adapter = self.adapters.get(step.kind)
        if adapter is None:
            return Plan(step, "", step.confirm, error=not_configured(step.kind))
        shown = self._shown_inputs(run, runbook, values)
        try:
            steps = await self.store.get_steps(run.id)
            request = self.request_for(run, step, steps, values, "<this click>")
            preview = await adapter.preview(request) if step.changes_things else None
            described = adapter.describe(self.request_for(run, step, steps, shown, "<this click>"))
        except AgapeError as exc:
            return Plan(step, "", step.confirm, error=self.redactor.text(exc.message))
        if preview is not None:
            preview = self.redactor.result(preview)
        return Plan(step, self.redactor.text(described), step.confirm, preview=preview)


def not_configured(kind: str) -> str:
    """Say that a step's adapter was not built, and which setting would build it."""
    setting = ENABLED_BY.get(kind)
    return f"no {kind} adapter is configured" + (f": set {setting}" if setting else "")


def _stopped(step: Step, run: Run, exc: BaseException, *, answered: bool) -> str:
    """Say why a step stopped without a verdict, and whether running it again is safe."""
    cancelled = isinstance(exc, asyncio.CancelledError)
    why = "interrupted" if cancelled else f"failed unexpectedly ({type(exc).__name__})"
    writes = step.changes_things and not run.rehearsal
    if answered:
        done = "the change was made, but " if writes else ""
        return f"{why}: {done}its result could not be judged; the bot's log has the details"
    if writes:
        return f"{why} while it ran: the change may have been made; check before running it again"
    return f"{why} before it finished; run it again"


def _state_of(step: Step, problem: bool | None) -> StepState:
    """Return a finished step's state from its condition's verdict."""
    if problem is True:
        return StepState.FAILED
    if problem is False:
        return StepState.PASSED
    if step.when is not None:  # the condition could not be decided (e.g. alert lacks value)
        return StepState.ERROR
    return StepState.DONE


def _depends_on_others(step: Step) -> bool:
    call = step.call
    if isinstance(call, PaystackCall) and call.references_from:
        return True
    return "steps." in call.model_dump_json() or "steps." in (step.when or "") + (
        step.finding or ""
    )
