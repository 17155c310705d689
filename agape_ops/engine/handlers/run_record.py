"""Commands that change a run's own record rather than call a system: acknowledge, state,
inputs, notes, checklist items and skips.

Each is one decision inside one unit of work (``in_one_unit``): the run is held while it checks
the run's state and the actor's permission, changes only the columns it means to change, and
stages what it did for the timeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agape_ops.engine import transitions
from agape_ops.engine.commands import (
    Acknowledge,
    AddNote,
    MarkItemDone,
    Outcome,
    ProvideInput,
    RecordSurface,
    SetState,
    SkipStep,
    Status,
)
from agape_ops.engine.context import redacted_inputs, validate_input
from agape_ops.engine.handlers.guards import guards, refuse
from agape_ops.engine.records import Run, RunState, StepRecord, StepState
from agape_ops.engine.steps import BOT
from agape_ops.engine.unit import Unit
from agape_ops.errors import InputError, InvalidTransition, PermissionDenied, StepBusy
from agape_ops.runbooks.model import Step
from agape_ops.values import MAX_TEXT_CHARS, check_text

if TYPE_CHECKING:  # the engine imports the handlers' registry
    from agape_ops.engine.engine import Engine


async def mark_item(engine: Engine, unit: Unit, command: MarkItemDone) -> Outcome:
    """Tick one item of a checklist; the step is done once every item is."""
    run = await unit.run(command.run_id)
    transitions.require_active(run)
    step = engine.step_of(engine.runbook_of(run), command.step_id)
    if step.manual is None:
        raise InvalidTransition(f"“{step.title}” is not a checklist")
    if not 0 <= command.item < len(step.manual.items):
        raise InvalidTransition(f"“{step.title}” has items 1-{len(step.manual.items)}")
    if not engine.permissions.may_run(command.actor, step):
        return refuse(engine, unit, run, step, command.actor)
    record = (await unit.tx.steps(run.id)).get(step.id) or StepRecord(run.id, step.id)
    if not record.items_done and record.state is not StepState.DONE:
        # The first tick starts the step: its guards hold for a checklist as for a call.
        runbook = engine.runbook_of(run)
        waiting = await guards(
            engine, unit, run, runbook, step, command.actor, {}, command.confirmed
        )
        if waiting is not None:
            return waiting
    await acknowledge_implicitly(engine, unit, run, command.actor, step)
    if command.item not in record.items_done:
        record.items_done = sorted({*record.items_done, command.item})
    complete = len(record.items_done) == len(step.manual.items)
    record.state = StepState.DONE if complete else StepState.PENDING
    record.actor, record.finished_at = command.actor, unit.clock()
    await unit.tx.save_step(record)
    text = step.manual.items[command.item].text
    unit.record(
        run,
        command.actor,
        "item.done",
        f"done: {text}",
        step_id=step.id,
        outcome=record.state.value,
        detail={"item": command.item},
    )
    return Outcome(Status.DONE, f"Done: {text}", run=run, step=record)


async def skip(engine: Engine, unit: Unit, command: SkipStep) -> Outcome:
    """Mark a step skipped, keeping the reason on the timeline."""
    run = await unit.run(command.run_id)
    transitions.require_active(run)
    step = engine.step_of(engine.runbook_of(run), command.step_id)
    if not engine.permissions.may_run(command.actor, step):
        return refuse(engine, unit, run, step, command.actor)
    record = (await unit.tx.steps(run.id)).get(step.id) or StepRecord(run.id, step.id)
    if record.state is StepState.RUNNING:
        raise StepBusy(f"“{step.title}” is running; it cannot be skipped now")
    record.state, record.actor, record.finished_at = StepState.SKIPPED, command.actor, unit.clock()
    await unit.tx.save_step(record)
    why = f": {command.reason}" if command.reason else ""
    unit.record(
        run,
        command.actor,
        "step.skipped",
        f"skipped “{step.title}”{why}",
        step_id=step.id,
        outcome="skipped",
    )
    return Outcome(Status.DONE, f"Skipped {step.title}", run=run, step=record)


async def provide_input(engine: Engine, unit: Unit, command: ProvideInput) -> Outcome:
    """Give the run a value its steps need; secret values are never kept, so they are refused
    here and given to the step that uses them instead."""
    run = await unit.run(command.run_id)
    transitions.require_active(run)
    runbook = engine.runbook_of(run)
    spec = runbook.inputs.get(command.name)
    if spec is None:
        raise InputError(f"{runbook.id} has no input {command.name!r}", input_name=command.name)
    if spec.secret:
        engine.redactor.add([command.value])
    if not engine.permissions.may_respond(command.actor):
        raise PermissionDenied(f"setting {command.name} requires a responder")
    value = validate_input(command.name, spec, command.value)
    if spec.secret:
        raise InputError(
            f"{command.name} is secret, so the bot never keeps it: give it to the step that "
            "needs it when that step asks",
            input_name=command.name,
        )
    await unit.tx.update_run(run.id, {"inputs": {**run.inputs, command.name: value}})
    shown = redacted_inputs(runbook, {command.name: value})
    unit.record(
        run,
        command.actor,
        "input.provided",
        f"{command.name} = {shown[command.name]}",
        detail={"inputs": shown},
    )
    return Outcome(Status.DONE, f"{command.name} set", run=run)


async def note(engine: Engine, unit: Unit, command: AddNote) -> Outcome:
    """Add a person's note to the run's timeline."""
    del engine  # a note needs nothing but the run
    run = await unit.run(command.run_id)
    if run.state is RunState.CLOSED:
        raise InvalidTransition(f"{run.id} is closed; notes can no longer be added")
    text = check_text(command.text, limit=MAX_TEXT_CHARS, what="the note").strip()
    if not text:
        raise InputError("a note needs some text")
    unit.record(run, command.actor, "note.added", text)
    return Outcome(Status.DONE, "Note added", run=run)


async def acknowledge(engine: Engine, unit: Unit, command: Acknowledge) -> Outcome:
    """Acknowledge the run once, as a responder: later acknowledgements say who was first."""
    run = await unit.run(command.run_id)
    transitions.require_active(run)
    if not engine.permissions.may_respond(command.actor):
        why = (
            f"acknowledging {run.id} requires a responder ({engine.permissions.responder_names()})"
        )
        unit.record(run, command.actor, "state.refused", why, outcome="refused")
        return Outcome(Status.REFUSED, why, run=run, error=PermissionDenied.__name__)
    if run.acknowledged_at is not None:
        message = f"{run.id} was acknowledged by {run.acknowledged_by}"
        return Outcome(Status.DONE, message, run=run)
    await _acknowledged(unit, run, command.actor, f"{command.actor} acknowledged {run.id}")
    return Outcome(Status.DONE, f"{run.id} acknowledged by {command.actor}", run=run)


async def acknowledge_implicitly(
    engine: Engine, unit: Unit, run: Run, actor: str, step: Step
) -> None:
    """Count the first responder to change something on an open run as acknowledging it.

    Reads, by anyone, acknowledge nothing: looking is not taking the incident on.
    """
    acting = step.changes_things and engine.permissions.may_respond(actor)
    if acting and actor != BOT and run.acknowledged_at is None and run.state is RunState.OPEN:
        summary = f"{actor} acknowledged {run.id} by acting on “{step.title}”"
        await _acknowledged(unit, run, actor, summary)


async def _acknowledged(unit: Unit, run: Run, actor: str, summary: str) -> None:
    run.acknowledged_at, run.acknowledged_by = unit.clock(), actor
    if run.state is RunState.OPEN:
        run.state = RunState.ACKNOWLEDGED
    changes = {
        "acknowledged_at": run.acknowledged_at,
        "acknowledged_by": actor,
        "state": run.state,
    }
    await unit.tx.update_run(run.id, changes)
    unit.record(run, actor, "run.acknowledged", summary)


async def set_state(engine: Engine, unit: Unit, command: SetState) -> Outcome:
    """Move the run along its life (mitigated, resolved, closed), releasing its locks at the end.

    A run whose runbook is no longer loaded still changes state: people must be able to close
    an incident whatever became of its runbook file.
    """
    run = await unit.run(command.run_id)
    transitions.require_active(run)
    target = transitions.parse_state(command.state)
    if not engine.permissions.may_respond(command.actor):
        why = f"marking a run {target.value} requires a responder"
        unit.record(run, command.actor, "state.refused", why, outcome="refused")
        return Outcome(Status.REFUSED, why, run=run, error=PermissionDenied.__name__)
    transitions.require_transition(run, target)
    if target is RunState.RESOLVED and not command.confirmed:
        reasons = await _still_open(engine, unit, run)
        if reasons:
            message = (
                f"{run.id} may not be over: {'; '.join(reasons)}. Resolve it anyway? "
                "Confirm to resolve it as it is."
            )
            return Outcome(Status.NEEDS_CONFIRMATION, message, run=run)
    now = unit.clock()
    changes: dict[str, object] = {"state": target}
    if run.acknowledged_at is None:
        changes.update(acknowledged_at=now, acknowledged_by=command.actor)
    if target is RunState.MITIGATED:
        changes["mitigated_at"] = now
    elif target is RunState.RESOLVED:
        changes.update(resolved_at=now, resolved_by=command.actor)
    elif target is RunState.CLOSED:
        changes["closed_at"] = now
    await unit.tx.update_run(run.id, changes)
    for name, value in changes.items():
        setattr(run, name, value)
    if target in (RunState.RESOLVED, RunState.CLOSED):
        await unit.tx.release_locks(run.id)
    note_text = f": {command.note}" if command.note else ""
    unit.record(
        run,
        command.actor,
        f"run.{target.value}",
        f"{run.id} {target.value} by {command.actor}{note_text}",
    )
    return Outcome(Status.DONE, f"{run.id} is {target.value}", run=run)


async def _still_open(engine: Engine, unit: Unit, run: Run) -> list[str]:
    """Say what the run's records show is not over: a detection check whose latest result is
    the problem, and two-person steps approved once and waiting for a second approver."""
    runbook = engine.runbooks.get(run.runbook_id)
    records = await unit.tx.steps(run.id)
    reasons: list[str] = []
    for step in runbook.detection if runbook is not None else []:
        record = records.get(step.id)
        if record is not None and record.state is StepState.FAILED:
            at = f" at {record.finished_at:%H:%M} UTC" if record.finished_at else ""
            finding = f": {record.finding}" if record.finding else ""
            reasons.append(f"“{step.title}” still showed the problem when last run{at}{finding}")
    waiting: dict[str, list[str]] = {}
    for approval in await unit.tx.approvals(run.id):
        waiting.setdefault(approval.subject, []).append(approval.approver)
    for subject, approvers in waiting.items():
        step_id = subject.split("@", 1)[0]
        found = runbook.step(step_id) if runbook is not None else None
        title = found.title if found is not None else step_id
        reasons.append(
            f"“{title}” was approved by {', '.join(approvers)} and waits for a second approver"
        )
    return reasons


async def record_surface(engine: Engine, unit: Unit, command: RecordSurface) -> Outcome:
    """Keep where a surface shows the run; the first place recorded wins (two processes that
    both posted a card keep one, and the caller deletes the other)."""
    run = await unit.run(command.run_id)
    kept = run.surface.get(command.place)
    if kept is not None:
        return Outcome(Status.DONE, f"{command.place} already recorded", run=run)
    run.surface = {**run.surface, command.place: dict(command.where)}
    await unit.tx.update_run(run.id, {"surface": run.surface})
    return Outcome(Status.DONE, f"{command.place} recorded", run=run)
