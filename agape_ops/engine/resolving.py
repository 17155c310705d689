"""What the view says about ending a run: what is still wrong when someone resolves it, and when a
rehearsing surface must not run a real run's write."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from agape_ops.engine.records import Run, StepState

if TYPE_CHECKING:  # the view imports these rules
    from agape_ops.engine.views import ApprovalView, StepView


def resolve_question(run: Run, unsettled: list[str]) -> str:
    if not unsettled:
        return f"Mark {run.id} resolved?"
    return f"Mark {run.id} resolved, though {'; '.join(unsettled)}?"


def unsettled_now(steps: Iterable[StepView], approvals: Iterable[ApprovalView]) -> list[str]:
    """Name the detection checks whose latest result is the problem, and waiting approvals."""
    named = [
        f"“{s.title}” still shows the problem"
        for s in steps
        if s.section == "detection" and s.state is StepState.FAILED
    ]
    named += [f"“{a.step_title}” waits for a second approver" for a in approvals]
    return named


def rehearsal_refusal(run: Run, step: StepView, *, rehearsing: bool) -> str | None:
    """Say why a rehearsing surface must not run a real run's write, or None when it may."""
    if rehearsing and not run.rehearsal and step.changes:
        return (
            f"not executed: this console is a rehearsal (--dry-run) and {run.id} is a real "
            "run; open a rehearsal run to walk its writes"
        )
    return None
