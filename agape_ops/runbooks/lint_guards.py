"""Lint a write's guards around its call: the read it ``requires:`` first and the checks it
``verifies:`` afterwards.

Both name read steps that find a problem (they have ``when:``) and that the engine runs with the
write's own inputs, so each must be a read with a call, take no input the write lacks and, for a
precondition, run earlier in the walkthrough.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping

from agape_ops.runbooks.loader import Loc
from agape_ops.runbooks.model import Runbook, Step


def guard_problems(
    runbook: Runbook, step: Step, loc: Loc, order: Mapping[str, int]
) -> Iterator[tuple[Loc, str]]:
    """Yield (location, message) for each problem of the step's ``requires:`` and ``verifies:``."""
    index = order.get(step.id, -1)
    if step.requires is not None:
        where = (*loc, "requires", "step")
        if not step.changes_things or step.manual is not None:
            yield (
                (*loc, "requires"),
                (
                    "`requires:` guards a write that calls a system: a read or a checklist "
                    "cannot have one"
                ),
            )
        else:
            name = step.requires.step
            for message in _read_check(runbook, step, name, "requires"):
                yield where, message
            position = order.get(name)
            if position is not None and position >= index:
                yield (
                    where,
                    (f"requires `{name}`, which comes after this step; move the check before it"),
                )
    if step.verifies and (not step.changes_things or step.manual is not None):
        yield (
            (*loc, "verifies"),
            (
                "`verifies:` re-runs checks after a write that calls a system: a read or a "
                "checklist cannot have it"
            ),
        )
        return
    seen: set[str] = set()
    for j, name in enumerate(step.verifies):
        if name in seen:
            yield (*loc, "verifies", j), f"`{name}` is listed twice under `verifies:`"
            continue
        seen.add(name)
        for message in _read_check(runbook, step, name, "verifies"):
            yield (*loc, "verifies", j), message


def _read_check(runbook: Runbook, step: Step, name: str, key: str) -> Iterator[str]:
    """Say what keeps step ``name`` from being a check the write can run with its inputs."""
    target = runbook.step(name)
    if target is None:
        known = [s.id for s in runbook.steps()]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        yield f"{key} `{name}`, which is not a step of this runbook{hint}"
        return
    if target.changes_things or target.manual is not None or target.shell is not None:
        yield (
            f"{key} `{name}`, which is not a read: only a read step with a call (SQL, a queue, "
            "an API) can be run as a check"
        )
        return
    if target.when is None:
        yield (
            f"{key} `{name}`, which has no `when:`: give it the condition that is true while "
            "the problem is present"
        )
    lacking = [i for i in target.inputs if i not in step.inputs]
    if lacking:
        yield (
            f"{key} `{name}`, which needs {', '.join(lacking)}; add "
            f"{'it' if len(lacking) == 1 else 'them'} to this step's `inputs:` (the check runs "
            "with this step's values)"
        )
