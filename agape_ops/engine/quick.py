"""Quick looks outside any run: `/ops verify REFERENCE` and `/ops queues`.

Each borrows the read step of a loaded runbook that does that look (Paystack's verify, BullMQ's
queue statistics), so its finding is worded as in the walkthrough and its call goes through the
same adapter, timeouts and redaction. Only reads: nothing here changes anything, so nothing needs
a run, a confirmation or a timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from agape_ops.engine.context import validate_input
from agape_ops.engine.records import Run, RunState
from agape_ops.engine.results import StepResult
from agape_ops.engine.steps import BOT, Progress
from agape_ops.errors import InputError, UnknownStep
from agape_ops.runbooks.model import PaystackCall, RedisCall, Risk, Runbook, Step

if TYPE_CHECKING:
    from agape_ops.engine.engine import Engine


@dataclass(frozen=True)
class Look:
    """What a quick look found: its finding, its result, and whether its call failed."""

    title: str
    finding: str
    result: StepResult | None
    failed: bool


def _verify(step: Step) -> bool:
    return isinstance(step.call, PaystackCall) and step.call.action == "verify"


def _queues(step: Step) -> bool:
    return isinstance(step.call, RedisCall) and step.call.command == "queue_stats"


#: Each quick look: which read step does it, and which inputs it takes, in order.
LOOKS: dict[str, tuple[Callable[[Step], bool], tuple[str, ...]]] = {
    "verify": (_verify, ("reference",)),
    "queues": (_queues, ()),
}


def find_step(runbooks: Mapping[str, Runbook], look: str) -> tuple[Runbook, Step]:
    """Return the first read step (in runbook id order) that does ``look``."""
    wanted, _ = LOOKS[look]
    for runbook_id in sorted(runbooks):
        runbook = runbooks[runbook_id]
        for step in runbook.steps():
            if step.risk is Risk.READ and step.call is not None and wanted(step):
                return runbook, step
    raise UnknownStep(f"no loaded runbook has a step that does `{look}`")


async def quick_look(engine: Engine, look: str, values: list[str], now: datetime) -> Look:
    """Run one quick look with the values typed after it (``verify T123``)."""
    if look not in LOOKS:
        raise InputError(f"no quick look {look!r} (there are: {', '.join(LOOKS)})")
    runbook, step = find_step(engine.runbooks, look)
    names = LOOKS[look][1]
    if len(values) != len(names):
        wanted = " ".join(f"<{n}>" for n in names)
        raise InputError(f"usage: /ops {look} {wanted}".strip())
    inputs = {
        name: validate_input(name, runbook.inputs[name], value)
        for name, value in zip(names, values, strict=True)
    }
    run = Run(
        id=f"{engine.run_prefix}-0",
        number=0,
        runbook_id=runbook.id,
        title=runbook.title,
        severity=runbook.severity.value,
        state=RunState.OPEN,
        created_by=BOT,
        created_at=now,
    )
    verdict = await engine.stepper.call(run, runbook, step, {}, inputs, f"quick:{look}", Progress())
    result = StepResult.model_validate(verdict.result) if verdict.result else None
    return Look(step.title, verdict.finding, result, failed=verdict.error is not None)
