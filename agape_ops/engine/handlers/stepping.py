"""Running a step: claim it in one unit of work, call its system outside any, record the verdict
in a second.

A call can take seconds (a slow query, an HTTP retry, a shell command), so it must never hold
the run: the first unit checks that the step may run now (state, permission, inputs,
confirmation, a second approver, its lock), claims the command's key and the step, and gives the
claim a lease; the call then runs while this process renews the lease; the second unit records
what came of it. A step whose process died stops being renewed, and any process marks it
interrupted once the lease runs out (``reap``), so the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agape_ops.engine import transitions
from agape_ops.engine.commands import Outcome, RunStep, Status
from agape_ops.engine.context import redacted_inputs, resolve_inputs, split_secret
from agape_ops.engine.handlers.guards import guards, refuse
from agape_ops.engine.handlers.handover import hand_over
from agape_ops.engine.handlers.rechecks import precondition, verify
from agape_ops.engine.handlers.run_record import acknowledge_implicitly
from agape_ops.engine.handlers.watching import monitor_round
from agape_ops.engine.records import Run, StepRecord, StepState
from agape_ops.engine.results import StepResult
from agape_ops.engine.steps import BOT, Progress, Verdict, confirm_text, depends_on_others, stopped
from agape_ops.engine.unit import Unit
from agape_ops.engine.watch import watching
from agape_ops.errors import StepBusy
from agape_ops.runbooks.model import Runbook, Step

if TYPE_CHECKING:  # the engine imports the handlers' registry
    from agape_ops.engine.engine import Engine

log = logging.getLogger(__name__)


@dataclass
class Claimed:
    """What the first unit settled: the step may run now, with these inputs, claimed by us."""

    run: Run
    runbook: Runbook
    step: Step
    values: dict[str, str]
    steps: dict[str, StepRecord]


async def run_step(engine: Engine, command: RunStep) -> Outcome:
    """Run a step once per idempotency key: its precondition, claim, call (no run held),
    record, then the checks it should have cleared."""
    unmet = await precondition(engine, command)
    if unmet is not None:
        return unmet
    async with engine.unit() as unit:
        await unit.claim(command.key, command.run_id.upper())
        prepared = await _claim(engine, unit, command)
        if isinstance(prepared, Outcome):
            await unit.finish(command.key, prepared)
    if isinstance(prepared, Outcome):
        prepared.events = unit.events
        return prepared
    claimed_events = unit.events
    progress = Progress()
    try:
        verdict = await _leased(engine, prepared, command.key, progress)
    except BaseException as exc:
        why = stopped(prepared.step, prepared.run, exc, answered=progress.answered)
        verdict = Verdict(StepState.ERROR, "step.error", f"{prepared.step.title}: {why}", why)
        await asyncio.shield(_record(engine, command, prepared, verdict))
        raise
    outcome = await _record(engine, command, prepared, verdict)
    outcome.events = claimed_events + outcome.events
    if outcome.status is Status.DONE and outcome.step is not None:
        attempt, run = outcome.step.attempts, prepared.run
        outcome.rechecks = await verify(engine, run, prepared.step, prepared.values, attempt)
    return outcome


async def _claim(engine: Engine, unit: Unit, command: RunStep) -> Outcome | Claimed:
    """Decide whether the step may run now; if so, claim it. Return an Outcome when it may not."""
    run = await unit.run(command.run_id)
    transitions.require_active(run)
    runbook = engine.runbook_of(run)
    step = engine.step_of(runbook, command.step_id)
    actor = command.actor
    if not engine.permissions.may_run(actor, step):
        return refuse(engine, unit, run, step, actor)
    values, missing = resolve_inputs(runbook, step, command.inputs, run)
    if missing:
        message = f"“{step.title}” needs {', '.join(missing)}"
        return Outcome(Status.NEEDS_INPUTS, message, run=run, needs_inputs=missing)
    if engine.hands_over(run, step):  # shell off: the command to copy, nothing asked, nothing run
        return await hand_over(engine, unit, run, runbook, step, actor, values)
    steps = await unit.tx.steps(run.id)
    record = steps.get(step.id) or StepRecord(run_id=run.id, step_id=step.id)
    if command.purpose == "monitor" and not watching(record):
        return Outcome(Status.DONE, f"“{step.title}” is not being watched", run=run)
    # A press on a button shown before the change was last made confirms what it saw, not a
    # repeat: ask again (the question says when and by whom it was done).
    stale = command.seen is not None and record.attempts > command.seen
    live = record.lease_until is None or record.lease_until > unit.clock()
    if stale and step.changes_things and record.state is StepState.RUNNING and live:
        # A double click's second press while the first is still running: the question says
        # the change is under way, so confirming it is never a blind repeat.
        started = f" at {record.started_at:%H:%M} UTC" if record.started_at else ""
        said = f"Already started{started} by {record.actor}, still running; this would do it again."
        return Outcome(Status.NEEDS_CONFIRMATION, f"{said} {confirm_text(step)}", run=run)
    confirmed = command.confirmed and not (stale and step.changes_things)
    refused = await guards(engine, unit, run, runbook, step, actor, values, confirmed)
    if refused is not None:
        return refused
    if record.state is StepState.RUNNING:
        if record.lease_until is not None and record.lease_until <= unit.clock():
            await _interrupted(unit, run, step, record)
        else:
            raise StepBusy(f"“{step.title}” is running already; wait for its result")
    await acknowledge_implicitly(engine, unit, run, actor, step)
    public, _secret = split_secret(runbook, values, engine.redactor)
    if any(run.inputs.get(k) != v for k, v in public.items()):
        run.inputs = {**run.inputs, **public}
        await unit.tx.update_run(run.id, {"inputs": run.inputs})
    now = unit.clock()
    record.state, record.actor, record.started_at, record.finished_at = (
        StepState.RUNNING,
        actor,
        now,
        None,
    )
    record.attempts += 1
    record.result = None  # this attempt's only: later steps must not read an older one
    record.claim_key, record.lease_until = command.key, now + engine.step_lease
    await unit.tx.save_step(record)
    steps[step.id] = record
    return Claimed(run, runbook, step, values, steps)


async def _leased(engine: Engine, claimed: Claimed, key: str, progress: Progress) -> Verdict:
    """Make the call while renewing the step's lease, so other processes know it is alive."""
    renewer = asyncio.create_task(_renew(engine, claimed, key))
    try:
        run, runbook, step = claimed.run, claimed.runbook, claimed.step
        return await engine.stepper.call(
            run, runbook, step, claimed.steps, claimed.values, key, progress
        )
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer


async def _renew(engine: Engine, claimed: Claimed, key: str) -> None:
    every = engine.step_lease.total_seconds() / 3
    while True:
        await asyncio.sleep(every)
        until = engine.clock() + engine.step_lease
        try:
            if not await engine.store.renew_lease(claimed.run.id, claimed.step.id, key, until):
                return  # the claim moved on (reaped after a stall): nothing left to renew
        except Exception:  # noqa: BLE001 - a store hiccup; the next renewal may get through
            log.warning("could not renew the lease of %s/%s", claimed.run.id, claimed.step.id)


async def _record(engine: Engine, command: RunStep, claimed: Claimed, verdict: Verdict) -> Outcome:
    """Store the verdict and its timeline event, unless the claim has moved on meanwhile.

    The step's row is written only while this click still holds its claim (an atomic
    conditional update), so the run itself need not be held while recording.
    """
    step, runbook, run = claimed.step, claimed.runbook, claimed.run
    record = dataclasses.replace(
        claimed.steps[step.id],
        state=verdict.state,
        finding=verdict.finding,
        error=verdict.error,
        result=verdict.result,
        lease_until=None,
    )
    if verdict.items_done is not None:
        record.items_done = verdict.items_done
    detail: dict[str, object] = {
        "inputs": redacted_inputs(runbook, claimed.values),
        "risk": step.risk.value,
        "rehearsal": run.rehearsal,
    }
    if command.purpose:
        detail["purpose"] = command.purpose
    guarded = runbook.step(command.for_step) if command.for_step else None
    if guarded is not None:
        detail["for"] = guarded.title
    async with engine.unit() as unit:
        record.finished_at = unit.clock()
        watched = monitor_round(step, record, verdict, command.purpose, unit.clock())
        if verdict.reading is not None:
            detail["figure"] = verdict.reading.figure
        if await unit.tx.finish_step(record, command.key):
            unit.record(
                run,
                command.actor,
                verdict.kind,
                verdict.finding or step.title,
                step_id=step.id,
                outcome=verdict.state.value,
                duration_ms=verdict.duration_ms,
                detail=detail,
            )
            if watched is not None:
                unit.record(run, BOT, watched[0], watched[1], step_id=step.id)
        else:
            # Reaped after its lease ran out (and perhaps run again since): the verdict is
            # still the truth about this attempt, so it goes on the timeline, not on the step.
            summary = (
                f"a late result of “{step.title}” (after its lease ran out): {verdict.finding}"
            )
            unit.record(run, command.actor, "step.late", summary, step_id=step.id, detail=detail)
        if step.two_person:
            await unit.tx.clear_approvals(run.id, step.id)
        ok = verdict.state is not StepState.ERROR
        outcome = Outcome(
            Status.DONE if ok else Status.FAILED,
            verdict.finding or verdict.error or step.title,
            run=run,
            step=record,
            result=StepResult.model_validate(verdict.result) if verdict.result else None,
            error=None if ok else "StepError",
        )
        await unit.finish(command.key, outcome)
    outcome.events = unit.events
    return outcome


async def _interrupted(unit: Unit, run: Run, step: Step, record: StepRecord) -> None:
    """Mark a step whose claim's lease ran out as interrupted (in the caller's unit), and
    answer the click that claimed it, so a redelivery of that click is told, not kept waiting."""
    if step.changes_things and not run.rehearsal:
        why = "the change may have been made; check before running it again"
    else:
        why = "run it again"
    record.error = f"interrupted: the bot process running it stopped answering; {why}"
    record.state, record.finding = StepState.ERROR, f"{step.title}: {record.error}"
    record.finished_at, record.lease_until = unit.clock(), None
    unit.record(
        run,
        BOT,
        "step.error",
        record.finding,
        step_id=step.id,
        outcome=record.state.value,
        detail={"interrupted": True, "attempt": record.claim_key},
    )
    if record.claim_key:
        stopped_outcome = Outcome(Status.FAILED, record.error, run=run, error="Interrupted")
        await unit.tx.finish_command(record.claim_key, stopped_outcome.stored(), unit.clock())


async def reap(engine: Engine, run_id: str, step_id: str) -> bool:
    """Mark one step interrupted if its lease has run out; say whether this call did."""
    async with engine.unit() as unit:
        run = await unit.run(run_id)
        record = (await unit.tx.steps(run.id)).get(step_id)
        runbook = engine.runbooks.get(run.runbook_id)
        step = runbook.step(step_id) if runbook else None
        if record is None or step is None or record.state is not StepState.RUNNING:
            return False
        if record.lease_until is None or record.lease_until > unit.clock():
            return False
        await _interrupted(unit, run, step, record)
        await unit.tx.save_step(record)
    return True


async def run_auto_steps(
    engine: Engine, run: Run, runbook: Runbook, inputs: Mapping[str, str]
) -> list[Outcome]:
    """Run the runbook's automatic checks as the bot, each once (a fixed key per run and step):
    independent ones at once, those that read other steps' results after them."""
    steps = runbook.auto_steps()

    def command(step: Step) -> RunStep:
        given = {name: inputs[name] for name in step.inputs if name in inputs}
        return RunStep(run.id, step.id, BOT, f"auto:{run.id}:{step.id}", inputs=given)

    first = [s for s in steps if not depends_on_others(s)]
    later = [s for s in steps if depends_on_others(s)]
    outcomes = list(await asyncio.gather(*(engine.execute(command(s)) for s in first)))
    for step in later:
        outcomes.append(await engine.execute(command(step)))
    return outcomes
