"""The guards every step has, whatever its kind: who may run it, its confirmation, a second
approver, its lock. Steps that call a system and checklists ticked by hand pass the same ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agape_ops.engine.commands import Outcome, Status
from agape_ops.engine.context import redacted_inputs
from agape_ops.engine.permissions import approval_subject
from agape_ops.engine.records import Approval, Run
from agape_ops.engine.steps import confirm_text
from agape_ops.engine.unit import Unit
from agape_ops.errors import EngineError, LockHeld, PermissionDenied
from agape_ops.runbooks.model import Risk, Runbook, Step

if TYPE_CHECKING:  # the engine imports the handlers' registry
    from agape_ops.engine.engine import Engine


def refuse(
    engine: Engine,
    unit: Unit,
    run: Run,
    step: Step,
    actor: str,
    *,
    why: str | None = None,
    error: type[EngineError] = PermissionDenied,
) -> Outcome:
    """Refuse a step: say why (by default, who may run it), change nothing, record it."""
    why = why or engine.permissions.refusal(step)
    unit.record(
        run, actor, "step.refused", f"refused {actor}: {why}", step_id=step.id, outcome="refused"
    )
    return Outcome(Status.REFUSED, why, run=run, error=error.__name__)


async def guards(  # noqa: PLR0917 - the same facts for every caller, named at each call
    engine: Engine,
    unit: Unit,
    run: Run,
    runbook: Runbook,
    step: Step,
    actor: str,
    values: dict[str, str],
    confirmed: bool,
) -> Outcome | None:
    """Apply a step's guards, whatever its kind (a checklist too): its confirmation, a second
    approver, its lock. Return why it may not go ahead yet, or None when it may."""
    shown = redacted_inputs(runbook, values)
    if step.changes_things and not confirmed:
        question = confirm_text(step, await unit.tx.events(run.id), shown)
        return Outcome(Status.NEEDS_CONFIRMATION, question, run=run)
    if step.two_person and step.risk is Risk.DANGEROUS and not run.rehearsal:
        # An approval is of the step with these values: a second approver giving others
        # starts a new approval instead of running what nobody else approved.
        subject = approval_subject(step, shown)
        approval = Approval(run.id, subject, actor, unit.clock(), shown)
        approvers = {a.approver for a in await unit.tx.add_approval(approval)}
        if len(approvers) < 2:
            unit.record(
                run,
                actor,
                "step.approved",
                f"{actor} approved “{step.title}”; waiting for a second, different approver",
                step_id=step.id,
                detail={"inputs": shown},
            )
            message = (
                f"Approved by {actor}. “{step.title}” needs a second, different approver "
                "before it runs."
            )
            return Outcome(Status.AWAITING_APPROVAL, message, run=run)
    if step.lock and not run.rehearsal:
        holder = await unit.tx.acquire_lock(step.lock, run.id, unit.clock())
        if holder is not None:
            why = f"the {step.lock} lock is held by {holder}; finish or resolve {holder} first"
            return refuse(engine, unit, run, step, actor, why=why, error=LockHeld)
    return None
