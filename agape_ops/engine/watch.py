"""What a run's records say about its watch: whether a monitor is watching, whether the
re-checked conditions are clear, what post-incident work is left. Pure functions, read by the
handlers, the schedule and the views alike."""

from __future__ import annotations

from collections.abc import Mapping

from agape_ops.engine.records import StepRecord, StepState
from agape_ops.runbooks.model import Runbook


def watching(record: StepRecord | None) -> bool:
    """Say whether a step's monitor is watching (the scheduler samples it)."""
    return bool(record and record.monitor and record.monitor.get("state") == "watching")


def clear_state(runbook: Runbook, steps: Mapping[str, StepRecord]) -> bool | None:
    """Say whether the re-checked conditions are all clear (True), one shows its problem
    (False), or it cannot be told (None: a check errored or has not run)."""
    states = [steps.get(s.id, StepRecord("", s.id)).state for s in runbook.recheck_steps()]
    if not states:
        return None
    if StepState.FAILED in states:
        return False
    if all(state is StepState.PASSED for state in states):
        return True
    return None


def outstanding(runbook: Runbook, steps: Mapping[str, StepRecord]) -> list[str]:
    """Return the titles of post-incident steps (or their checklist items) not yet done."""
    left = []
    for step in runbook.post_incident:
        record = steps.get(step.id)
        state = record.state if record else StepState.PENDING
        if state in {StepState.DONE, StepState.PASSED, StepState.SKIPPED}:
            continue
        if step.manual is not None:
            done = set(record.items_done if record else [])
            items = [i.text for n, i in enumerate(step.manual.items) if n not in done]
            left.extend(items or [step.title])
        else:
            left.append(step.title)
    return left
