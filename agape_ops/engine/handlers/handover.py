"""Handing a shell step over to a person while shell steps are off (``OPS_ALLOW_SHELL``).

With shell off the bot never runs the command, so there is nothing to confirm and nothing to
fail: the press shows the command line to copy (rendered with the step's inputs, secret ones
masked, then redacted), records the step as handed over to the person who pressed it and puts
that on the timeline. It runs inside the step handler's first unit of work, which already
checked the run is active, the person may run the step and its inputs are valid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agape_ops.engine.commands import Outcome, Status
from agape_ops.engine.context import redacted_inputs
from agape_ops.engine.records import Run, StepRecord, StepState
from agape_ops.engine.results import StepResult
from agape_ops.engine.steps import command_line
from agape_ops.engine.unit import Unit
from agape_ops.runbooks.model import Runbook, ShellCall, Step

if TYPE_CHECKING:  # the engine imports the handlers' registry
    from agape_ops.engine.engine import Engine


async def hand_over(  # noqa: PLR0917 - the step handler's one call, each argument named there
    engine: Engine,
    unit: Unit,
    run: Run,
    runbook: Runbook,
    step: Step,
    actor: str,
    values: dict[str, str],
) -> Outcome:
    """Record ``step`` as handed over to ``actor`` with the command to run by hand."""
    steps = await unit.tx.steps(run.id)
    shown = engine.stepper.shown_inputs(run, runbook, values)
    call = engine.stepper.request_for(run, step, steps, shown, "by-hand").call
    if not isinstance(call, ShellCall):
        raise TypeError(f"only a shell step is handed over, not {step.kind}")
    line = engine.redactor.text(command_line(call))
    finding = f"Shell steps are off (OPS_ALLOW_SHELL): run it by hand: {line}"
    result = StepResult(summary=f"handed over to {actor}: run it by hand", text=line)
    record = steps.get(step.id) or StepRecord(run_id=run.id, step_id=step.id)
    now = unit.clock()
    record.state, record.actor, record.started_at, record.finished_at = (
        StepState.HANDED_OVER,
        actor,
        now,
        now,
    )
    record.finding, record.error, record.result = finding, None, result.model_dump(mode="json")
    record.attempts += 1
    record.claim_key, record.lease_until = None, None
    await unit.tx.save_step(record)
    unit.record(
        run,
        actor,
        "step.handed_over",
        finding,
        step_id=step.id,
        outcome=StepState.HANDED_OVER.value,
        detail={
            "inputs": redacted_inputs(runbook, values),
            "risk": step.risk.value,
            "rehearsal": run.rehearsal,
            "command": line,
        },
    )
    return Outcome(Status.DONE, finding, run=run, step=record, result=result)
