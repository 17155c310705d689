"""The headline of a run: what is wrong now, most severe first, the likely cause named.

A person paged at 3 a.m. reads the top of the run first, so the problems are ranked, not listed
in walkthrough order:

1. **found**: what the detection checks found, the incident itself (and a check whose runbook
   declares that not reaching its system *is* the incident: ``unreachable: problem``);
2. **likely cause**: a dependency the backend cannot work without is down (a read of postgres,
   redis or the admin API that cannot reach it, or one declared ``unreachable: cause``);
3. **finding**: what the diagnosis (or any later read) found;
4. **warning**: a check that could not say anything useful, such as a third-party status page
   the bot cannot reach (``unreachable: warning``, the default for other systems).

Writes that failed are on their own step and the timeline, not here: the headline is about the
systems, not the bot's attempts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum

from agape_ops.engine.records import RunState, StepState
from agape_ops.engine.results import duration_words
from agape_ops.runbooks.model import IfUnreachable, Step

#: Systems the backend cannot work without: one of them down is the likely cause.
CORE_KINDS = frozenset({"postgres", "redis", "admin_api"})


class Rank(IntEnum):
    """How much a problem matters to the person reading the headline; lower comes first."""

    FOUND = 0
    CAUSE = 1
    FINDING = 2
    WARNING = 3


@dataclass(frozen=True)
class Problem:
    """One line of "what is wrong now": its text, its rank and the step that found it."""

    text: str
    rank: Rank
    step_id: str

    @property
    def likely_cause(self) -> bool:
        return self.rank is Rank.CAUSE

    @property
    def warning(self) -> bool:
        return self.rank is Rank.WARNING


@dataclass(frozen=True)
class Headline:
    """The top of the run: its state, how bad, whose, how old, and what is wrong now."""

    state: RunState
    severity: str
    owner: str | None
    age: timedelta
    items: tuple[Problem, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        """Return the problems' texts, most severe first."""
        return tuple(p.text for p in self.items)

    @property
    def age_words(self) -> str:
        return duration_words(self.age)


def if_unreachable(step: Step) -> IfUnreachable:
    """Return what a step failing to reach its system means: as declared, else by its kind."""
    if step.unreachable is not None:
        return step.unreachable
    return IfUnreachable.CAUSE if step.kind in CORE_KINDS else IfUnreachable.WARNING


def incident_down(step: Step, state: StepState) -> bool:
    """Say whether a step's error is the incident itself (its system down is the problem)."""
    return (
        state is StepState.ERROR
        and not step.changes_things
        and if_unreachable(step) is IfUnreachable.PROBLEM
    )


def shown_state(step: Step, state: StepState) -> StepState:
    """Return the state a step shows: a check whose system being down is the incident itself
    (``unreachable: problem``) found the problem; it did not fail to run."""
    return StepState.FAILED if incident_down(step, state) else state


_RANK_OF = {
    IfUnreachable.PROBLEM: Rank.FOUND,
    IfUnreachable.CAUSE: Rank.CAUSE,
    IfUnreachable.WARNING: Rank.WARNING,
}


def rank_of(section: str, step: Step, state: StepState) -> Rank | None:
    """Return how a step in this state ranks in the headline, or None when it is not a problem."""
    if state is StepState.FAILED:
        return Rank.FOUND if section == "detection" else Rank.FINDING
    if state is StepState.ERROR and not step.changes_things and step.manual is None:
        return _RANK_OF[if_unreachable(step)]
    return None


def problems(found: Iterable[tuple[str, Step, StepState, str]]) -> tuple[Problem, ...]:
    """Rank ``(section, step, state, text)`` of every step: most severe first, then in
    walkthrough order (the sort is stable)."""
    ranked = [
        Problem(text, rank, step.id)
        for section, step, state, text in found
        if (rank := rank_of(section, step, state)) is not None
    ]
    return tuple(sorted(ranked, key=lambda p: p.rank))
