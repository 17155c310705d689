"""Calling one step: render its call, ask its adapter, judge the result into a verdict.

The step handler decides whether a step may run (state, permission, confirmation, approvals,
locks) and records what came of it; this module makes the call between the two, holding no
transaction, and says beforehand what a step would do.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agape_ops.alerts.model import Alert
from agape_ops.engine.context import (
    alert_check,
    base_context,
    judge,
    read_monitor,
    redacted_inputs,
    references_for,
    render_call,
    resolve_inputs,
    split_secret,
)
from agape_ops.engine.ports import Adapter, AdapterRequest
from agape_ops.engine.records import Event, Run, StepRecord, StepState
from agape_ops.engine.results import StepResult
from agape_ops.errors import AdapterError, AdapterNotConfigured, AgapeError
from agape_ops.redaction import Redactor
from agape_ops.runbooks.model import PaystackCall, PostgresCall, Runbook, ShellCall, Step

BOT = "agape-ops"
#: How a rehearsed change's finding begins; what it would run follows.
REHEARSED = "Rehearsal, not executed. Would run: "

log = logging.getLogger(__name__)

#: The setting that enables each adapter, named when a step needs one that was not built.
ENABLED_BY: dict[str, str] = {
    "postgres": "DATABASE_URL",
    "redis": "REDIS_URL",
    "paystack": "PAYSTACK_SECRET_KEY",
    "admin_api": "ADMIN_API_URL and ADMIN_TOKEN",
    "prometheus": "PROMETHEUS_URL",
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


@dataclass
class Verdict:
    """What came of one execution of a step, ready to be stored and put on the timeline."""

    state: StepState
    kind: str
    finding: str
    error: str | None = None
    result: dict[str, Any] | None = None
    duration_ms: int = 0
    items_done: list[int] | None = None
    #: A monitor's reading of this result: its figure, and whether its ``until:`` holds.
    reading: Reading | None = None


@dataclass(frozen=True)
class Reading:
    """What a monitor reads from one result: the figure to show, whether it has recovered."""

    figure: float | None
    met: bool


@dataclass
class Progress:
    """How far a call got: whether the system answered before something stopped it."""

    answered: bool = False


def confirm_text(
    step: Step, history: Sequence[Event] = (), shown: Mapping[str, str] | None = None
) -> str:
    """Return the question a person confirms before a step that changes things runs.

    When the run's timeline shows the same change already made with the same values, the
    question says when and by whom first, so a second press is never a blind repeat.
    """
    question = step.confirm or f"Run “{step.title}”?"
    done = [
        e
        for e in history
        if e.step_id == step.id
        and e.kind in ("step.finished", "step.done")
        and e.outcome != StepState.ERROR.value
        and e.detail.get("inputs", {}) == dict(shown or {})
        and not e.detail.get("rehearsal")
    ]
    if not done:
        return question
    last = done[-1]
    on = ", ".join(f"{k}={v}" for k, v in dict(shown or {}).items())
    target = f" on {on}" if on else ""
    return (
        f"Already done{target} at {last.at:%H:%M} UTC by {last.actor} ({last.summary}); "
        f"this would do it again. {question}"
    )


class StepRunner:
    """Carries out steps for the engine through the adapters; touches no store.

    Secret inputs reach the adapter's call and nothing else: what a step shows (its
    description, finding, result, error) is rendered with them masked, then redacted by value.
    """

    def __init__(
        self,
        *,
        adapters: Mapping[str, Adapter],
        settings_context: Mapping[str, str | None],
        redactor: Redactor,
    ) -> None:
        self.adapters = adapters
        self.settings_context = settings_context
        self.redactor = redactor

    def shown_inputs(self, run: Run, runbook: Runbook, values: Mapping[str, str]) -> dict[str, str]:
        """Return every input value a step may read as it may be shown (secret ones masked)."""
        values = {**run.inputs, **values}
        split_secret(runbook, values, self.redactor)
        return redacted_inputs(runbook, values)

    async def call(  # noqa: PLR0917 - one call site, each argument named there
        self,
        run: Run,
        runbook: Runbook,
        step: Step,
        steps: Mapping[str, StepRecord],
        inputs: Mapping[str, str],
        click: str,
        progress: Progress,
    ) -> Verdict:
        """Execute one step and judge its result; adapter failures become an error verdict."""
        started = time.monotonic()
        shown = self.shown_inputs(run, runbook, inputs)
        verdict: Verdict
        try:
            outcome = await self._call(run, step, steps, inputs, click, shown)
            progress.answered = True
            if isinstance(outcome, Rehearsal):
                finding = f"{REHEARSED}{outcome.description}"
                verdict = Verdict(StepState.SKIPPED, "step.rehearsed", finding)
            elif outcome is None:  # a manual checklist carried out as a whole
                items = list(range(len(step.manual.items))) if step.manual else []
                verdict = Verdict(StepState.DONE, "step.done", f"{step.title}: done")
                verdict.items_done = items
            else:
                # Judged as shown: a server that echoes a secret input back is masked too.
                result = self.redactor.result(outcome)
                context = base_context(run, steps, shown, self.settings_context)
                problem, finding = judge(step, result, context)
                result.duration_ms = int((time.monotonic() - started) * 1000)
                verdict = Verdict(
                    _state_of(step, problem),
                    "step.finished",
                    self.redactor.text(finding),
                    result=result.model_dump(mode="json"),
                )
                if step.monitor is not None:
                    verdict.reading = Reading(*read_monitor(step.monitor, result, context))
        except AgapeError as exc:
            error = self.redactor.text(exc.message)
            verdict = Verdict(StepState.ERROR, "step.error", f"{step.title}: {error}", error)
        verdict.duration_ms = int((time.monotonic() - started) * 1000)
        return verdict

    async def _call(  # noqa: PLR0917 - private; call passes what it resolved
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
        values = {**run.inputs, **inputs}
        context = base_context(run, steps, values, self.settings_context)
        call, params = render_call(step, context)
        extra: dict[str, Any] = {}
        if isinstance(call, PaystackCall) and call.action == "verify_many":
            extra["references"] = references_for(call, steps)
        if isinstance(call, PostgresCall) and call.dsn_input:  # a secret input: the call only
            extra["dsn"] = values.get(call.dsn_input, "")
        return AdapterRequest(
            run_id=run.id,
            step=step,
            call=call,
            params=params,
            extra=extra,
            idempotency_key=f"{run.id}:{step.id}:{click}",
        )

    async def plan(
        self,
        run: Run,
        runbook: Runbook,
        step: Step,
        steps: Mapping[str, StepRecord],
        inputs: Mapping[str, str],
        *,
        history: Sequence[Event] = (),
    ) -> Plan:
        """Say what a step would do and, for writes, what it would touch; change nothing.

        The description is of the call rendered with secret inputs masked.
        """
        values, missing = resolve_inputs(runbook, step, inputs, run)
        confirm = confirm_text(step, history, redacted_inputs(runbook, values))
        if missing:
            return Plan(step, "", confirm, missing_inputs=tuple(missing))
        if step.manual is not None or step.alert is not None:
            return Plan(step, step.title, confirm)
        adapter = self.adapters.get(step.kind)
        if adapter is None:
            return Plan(step, "", confirm, error=not_configured(step.kind))
        shown = self.shown_inputs(run, runbook, values)
        try:
            request = self.request_for(run, step, steps, values, "<this click>")
            preview = await adapter.preview(request) if step.changes_things else None
            described = adapter.describe(self.request_for(run, step, steps, shown, "<this click>"))
        except AgapeError as exc:
            return Plan(step, "", confirm, error=self.redactor.text(exc.message))
        if preview is not None:
            preview = self.redactor.result(preview)
        return Plan(step, self.redactor.text(described), confirm, preview=preview)


def command_line(call: ShellCall) -> str:
    """Return the shell line that runs ``call`` as the bot would: its cwd, env and argv."""
    env = [f"{name}={shlex.quote(value)}" for name, value in call.env.items()]
    line = " ".join([*env, shlex.join(call.command)])
    return f"cd {shlex.quote(call.cwd)} && {line}" if call.cwd else line


def written_command(step: Step) -> str | None:
    """Return a shell step's command line as the runbook writes it (templates unrendered)."""
    return command_line(step.shell) if step.shell is not None else None


def not_configured(kind: str) -> str:
    """Say that a step's adapter was not built, and which setting would build it."""
    setting = ENABLED_BY.get(kind)
    return f"no {kind} adapter is configured" + (f": set {setting}" if setting else "")


def stopped(step: Step, run: Run, exc: BaseException, *, answered: bool) -> str:
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


def depends_on_others(step: Step) -> bool:
    """Say whether a step reads what other steps found (so it runs after them)."""
    call = step.call
    if isinstance(call, PaystackCall) and call.references_from:
        return True
    return "steps." in call.model_dump_json() or "steps." in (step.when or "") + (
        step.finding or ""
    )
