"""The run's life: open -> acknowledged -> mitigated -> resolved -> closed."""

from __future__ import annotations

from agape_ops.engine.records import Run, RunState
from agape_ops.errors import InvalidTransition

#: States a run may move to from each state. Resolving is allowed from any active state;
#: closing only after resolving, so every closed run has a time to resolve.
ALLOWED: dict[RunState, frozenset[RunState]] = {
    RunState.OPEN: frozenset({RunState.ACKNOWLEDGED, RunState.MITIGATED, RunState.RESOLVED}),
    RunState.ACKNOWLEDGED: frozenset({RunState.MITIGATED, RunState.RESOLVED}),
    RunState.MITIGATED: frozenset({RunState.RESOLVED}),
    RunState.RESOLVED: frozenset({RunState.CLOSED}),
    RunState.CLOSED: frozenset(),
}


def parse_state(name: str) -> RunState:
    """Return the state a person named, or say which names exist."""
    try:
        return RunState(name.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in RunState if s is not RunState.OPEN)
        raise InvalidTransition(f"unknown state {name!r} (one of: {names})") from None


def require_active(run: Run) -> None:
    """Refuse commands on a closed run; resolved runs still take post-incident work."""
    if run.state is RunState.CLOSED:
        raise InvalidTransition(
            f"{run.id} is closed; nothing more can be done on it (export its timeline with "
            f"`agape-ops timeline {run.id}`)"
        )


def require_transition(run: Run, target: RunState) -> None:
    """Refuse a state change the run's life does not allow, saying what is allowed."""
    if target not in ALLOWED[run.state]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[run.state])) or "nothing"
        raise InvalidTransition(f"{run.id} is {run.state.value}; it can become: {allowed}")
