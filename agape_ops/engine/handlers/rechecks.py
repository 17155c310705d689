"""The checks around a write: the read it ``requires:`` before it is offered, and the checks it
``verifies:`` once it has run.

Both are ordinary steps run as the bot through the engine's one entry point, so each is claimed,
recorded and shown like any check, and a redelivered click repeats neither: a precondition's key
is the write's click's (``requires:<key>``), a re-check's names the run, the write, its attempt
and the check (``verify:<run>:<write>:<attempt>:<check>``). Neither holds the run while it calls
its system.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from agape_ops.engine.commands import (
    PRECONDITION_UNCHECKED,
    PRECONDITION_UNMET,
    Outcome,
    RunStep,
    Status,
)
from agape_ops.engine.context import resolve_inputs
from agape_ops.engine.records import ACTIVE_STATES, Run, StepRecord, StepState
from agape_ops.engine.steps import BOT
from agape_ops.errors import AgapeError, StepBusy
from agape_ops.runbooks.model import Step

if TYPE_CHECKING:  # the engine imports the handlers' registry
    from agape_ops.engine.engine import Engine


def _may_require(engine: Engine, step_id: str) -> bool:
    """Say whether any loaded runbook has a step of this id with a ``requires:`` check."""
    for runbook in engine.runbooks.values():
        step = runbook.step(step_id)
        if step is not None and step.requires is not None:
            return True
    return False


async def precondition(engine: Engine, command: RunStep) -> Outcome | None:
    """Run the write's required read with the write's inputs; return why the write may not be
    offered (nothing asked, nothing run, said on the timeline), or None when it may go ahead.

    Anything that stops the write anyway (a closed run, a refusal, missing or bad inputs) is
    left to the claim, which says so without running the read.
    """
    if not _may_require(engine, command.step_id):
        return None  # no loaded runbook guards a step of this id: spare the click a read
    run = await engine.find_run(command.run_id.upper())
    runbook = engine.runbooks.get(run.runbook_id) if run else None
    step = runbook.step(command.step_id) if runbook else None
    if run is None or runbook is None or step is None or step.requires is None:
        return None
    check = runbook.step(step.requires.step)
    if check is None or run.state not in ACTIVE_STATES:
        return None
    if step.manual is not None or not engine.permissions.may_run(command.actor, step):
        return None
    try:
        values, missing = resolve_inputs(runbook, step, command.inputs, run)
    except AgapeError:
        return None
    if missing:
        return None
    given = {name: values[name] for name in check.inputs if name in values}
    checked = await engine.execute(
        RunStep(
            run.id,
            check.id,
            BOT,
            f"requires:{command.key}",
            inputs=given,
            purpose="requires",
            for_step=step.id,
        )
    )
    if checked.duplicate:
        return None  # this click was delivered before: the claim gives its first answer
    record = checked.step
    if checked.error == StepBusy.__name__:
        # Someone else's press runs the same check right now (a double click): its result,
        # moments from now, is as fresh as ours would be.
        record = await _settled(engine, run.id, check.id)
    state = record.state if record is not None else None
    if state in (StepState.FAILED, StepState.DONE):
        return None  # the check found the problem the write is for
    if state is StepState.PASSED:
        finding = record.finding if record is not None else None
        why = f"{step.requires.otherwise}: {finding}" if finding else step.requires.otherwise
        said = f"“{step.title}” not run, nothing asked: {why}"
        return await _not_run(
            engine, command, run, step, (Status.REFUSED, PRECONDITION_UNMET, why, said)
        )
    why = (
        f"“{step.title}” was not run: its precondition “{check.title}” could not be checked "
        f"({record.error if record is not None and record.error else checked.message}); "
        "nothing was changed"
    )
    return await _not_run(
        engine, command, run, step, (Status.FAILED, PRECONDITION_UNCHECKED, why, why)
    )


async def _settled(engine: Engine, run_id: str, step_id: str) -> StepRecord | None:
    """Wait (at most a lease) for a check another press is running; return its record."""
    deadline = time.monotonic() + engine.step_lease.total_seconds()
    pause = 0.01
    while time.monotonic() < deadline:
        record = (await engine.store.get_steps(run_id)).get(step_id)
        if record is None or record.state is not StepState.RUNNING:
            return record
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)
    return None


async def _not_run(
    engine: Engine,
    command: RunStep,
    run: Run,
    step: Step,
    answer: tuple[Status, str, str, str],
) -> Outcome:
    """Answer the click (once, under its key) and put why the write did not run on the timeline."""
    status, error, message, summary = answer
    async with engine.unit() as unit:
        await unit.claim(command.key, run.id)
        held = await unit.run(run.id)
        outcome_word = "not run" if error == PRECONDITION_UNMET else "error"
        unit.record(
            held, command.actor, "step.precondition", summary, step_id=step.id, outcome=outcome_word
        )
        outcome = Outcome(status, message, run=held, error=error)
        await unit.finish(command.key, outcome)
    outcome.events = unit.events
    return outcome


async def verify(
    engine: Engine, run: Run, step: Step, values: dict[str, str], attempt: int
) -> list[Outcome]:
    """Run again, as the bot and with the write's inputs, the checks a write that just
    succeeded should have cleared. A rehearsal changed nothing, so it re-checks nothing."""
    if not step.verifies or run.rehearsal:
        return []
    runbook = engine.runbook_of(run)
    given = {**run.inputs, **values}

    def command(check_id: str) -> RunStep:
        check = runbook.step(check_id)
        inputs = {n: given[n] for n in (check.inputs if check else []) if n in given}
        key = f"verify:{run.id}:{step.id}:{attempt}:{check_id}"
        return RunStep(
            run.id, check_id, BOT, key, inputs=inputs, purpose="verify", for_step=step.id
        )

    return list(await asyncio.gather(*(engine.execute(command(c)) for c in step.verifies)))
