"""The commands that change a run's own record rather than call a system: acknowledge, state,
inputs, notes, checklist items and skips.

The engine dispatches them here holding the run's lock, so no two of them interleave on one run
within the bot; each checks the run's state and the actor's permission before it changes
anything, and writes what it did to the timeline.
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
    SetState,
    SkipStep,
)
from agape_ops.engine.context import redacted_inputs, validate_input
from agape_ops.engine.records import Run, RunState, StepRecord, StepState
from agape_ops.errors import InputError, InvalidTransition, PermissionDenied, StepBusy
from agape_ops.runbooks.model import Step

if TYPE_CHECKING:  # the engine imports this module to dispatch to it
    from agape_ops.engine.engine import Engine


async def mark_item(engine: Engine, command: MarkItemDone) -> Outcome:
    """Tick one item of a checklist; the step is done once every item is."""
    run = await engine.get_run(command.run_id)
    transitions.require_active(run)
    step = engine.step_of(engine.runbook_of(run), command.step_id)
    if step.manual is None:
        raise InvalidTransition(f"“{step.title}” is not a checklist")
    if not 0 <= command.item < len(step.manual.items):
        raise InvalidTransition(f"“{step.title}” has items 1-{len(step.manual.items)}")
    if not engine.permissions.may_run(command.actor, step):
        return await engine.refuse(run, step, command.actor)
    await acknowledge_implicitly(engine, run, command.actor, step)
    record = (await engine.store.get_steps(run.id)).get(step.id) or StepRecord(run.id, step.id)
    if command.item not in record.items_done:
        record.items_done = sorted({*record.items_done, command.item})
    complete = len(record.items_done) == len(step.manual.items)
    record.state = StepState.DONE if complete else StepState.PENDING
    record.actor, record.finished_at = command.actor, engine.clock()
    await engine.store.save_step(record)
    text = step.manual.items[command.item].text
    await engine.timeline.record(
        run,
        command.actor,
        "item.done",
        f"done: {text}",
        step_id=step.id,
        outcome=record.state.value,
        detail={"item": command.item},
    )
    return Outcome(ok=True, run=run, step=record, message=f"Done: {text}")


async def skip(engine: Engine, command: SkipStep) -> Outcome:
    """Mark a step skipped, keeping the reason on the timeline."""
    run = await engine.get_run(command.run_id)
    transitions.require_active(run)
    step = engine.step_of(engine.runbook_of(run), command.step_id)
    if not engine.permissions.may_run(command.actor, step):
        return await engine.refuse(run, step, command.actor)
    record = (await engine.store.get_steps(run.id)).get(step.id) or StepRecord(run.id, step.id)
    if record.state is StepState.RUNNING:
        raise StepBusy(f"“{step.title}” is running; it cannot be skipped now")
    record.state, record.actor, record.finished_at = (
        StepState.SKIPPED,
        command.actor,
        engine.clock(),
    )
    await engine.store.save_step(record)
    why = f": {command.reason}" if command.reason else ""
    await engine.timeline.record(
        run,
        command.actor,
        "step.skipped",
        f"skipped “{step.title}”{why}",
        step_id=step.id,
        outcome="skipped",
    )
    return Outcome(ok=True, run=run, step=record, message=f"Skipped {step.title}")


async def provide_input(engine: Engine, command: ProvideInput) -> Outcome:
    """Give the run a value its steps need (secret ones are held, never stored)."""
    run = await engine.get_run(command.run_id)
    transitions.require_active(run)
    runbook = engine.runbook_of(run)
    spec = runbook.inputs.get(command.name)
    if spec is None:
        raise InputError(f"{runbook.id} has no input {command.name!r}", input_name=command.name)
    if not engine.permissions.may_respond(command.actor):
        raise PermissionDenied(f"setting {command.name} requires a responder")
    value = {command.name: validate_input(command.name, spec, command.value)}
    await engine.stepper.keep_inputs(run, runbook, value)
    shown = redacted_inputs(runbook, value)
    await engine.timeline.record(
        run,
        command.actor,
        "input.provided",
        f"{command.name} = {shown[command.name]}",
        detail={"inputs": shown},
    )
    return Outcome(ok=True, run=run, message=f"{command.name} set")


async def note(engine: Engine, command: AddNote) -> Outcome:
    """Add a person's note to the run's timeline."""
    run = await engine.get_run(command.run_id)
    if run.state is RunState.CLOSED:
        raise InvalidTransition(f"{run.id} is closed; notes can no longer be added")
    text = command.text.strip()
    if not text:
        raise InputError("a note needs some text")
    await engine.timeline.record(run, command.actor, "note.added", text[:2000])
    return Outcome(ok=True, run=run, message="Note added")


async def acknowledge(engine: Engine, command: Acknowledge) -> Outcome:
    """Acknowledge the run once: later acknowledgements say who was first."""
    run = await engine.get_run(command.run_id)
    transitions.require_active(run)
    if run.acknowledged_at is not None:
        return Outcome(
            ok=True, run=run, message=f"{run.id} was acknowledged by {run.acknowledged_by}"
        )
    await _record_ack(engine, run, command.actor, f"{command.actor} acknowledged {run.id}")
    return Outcome(ok=True, run=run, message=f"{run.id} acknowledged by {command.actor}")


async def acknowledge_implicitly(engine: Engine, run: Run, actor: str, step: Step) -> None:
    """Count the first person to act on an open run as acknowledging it."""
    if run.acknowledged_at is None and run.state is RunState.OPEN:
        await _record_ack(
            engine, run, actor, f"{actor} acknowledged {run.id} by acting on “{step.title}”"
        )


async def _record_ack(engine: Engine, run: Run, actor: str, summary: str) -> None:
    run.acknowledged_at, run.acknowledged_by = engine.clock(), actor
    if run.state is RunState.OPEN:
        run.state = RunState.ACKNOWLEDGED
    await engine.store.save_run(run)
    await engine.timeline.record(run, actor, "run.acknowledged", summary)


async def set_state(engine: Engine, command: SetState) -> Outcome:
    """Move the run along its life (mitigated, resolved, closed), releasing its locks at the end.

    A run whose runbook is no longer loaded still changes state: people must be able to close
    an incident whatever became of its runbook file.
    """
    run = await engine.get_run(command.run_id)
    transitions.require_active(run)
    target = transitions.parse_state(command.state)
    if not engine.permissions.may_respond(command.actor):
        why = f"marking a run {target.value} requires a responder"
        await engine.timeline.record(run, command.actor, "state.refused", why, outcome="refused")
        raise PermissionDenied(why)
    transitions.require_transition(run, target)
    now = engine.clock()
    if run.acknowledged_at is None:
        run.acknowledged_at, run.acknowledged_by = now, command.actor
    if target is RunState.MITIGATED:
        run.mitigated_at = now
    elif target is RunState.RESOLVED:
        run.resolved_at, run.resolved_by = now, command.actor
    elif target is RunState.CLOSED:
        run.closed_at = now
    run.state = target
    await engine.store.save_run(run)
    if target is RunState.CLOSED:
        engine.stepper.held.forget(run.id)
    runbook = engine.runbooks.get(run.runbook_id)
    if target in (RunState.RESOLVED, RunState.CLOSED) and runbook is not None:
        # Without the runbook its lock names are unknown; the store frees a finished run's
        # locks for the next run that asks anyway.
        for step in runbook.steps():
            if step.lock:
                await engine.store.release_lock(step.lock, run.id)
    note_text = f": {command.note}" if command.note else ""
    await engine.timeline.record(
        run,
        command.actor,
        f"run.{target.value}",
        f"{run.id} {target.value} by {command.actor}{note_text}",
    )
    return Outcome(ok=True, run=run, message=f"{run.id} is {target.value}")
