"""The engine's records: runs, their steps' states, and the timeline's events.

Plain dataclasses, so the store can persist them and surfaces can render them without knowing
how either works. Times are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"  # a check whose condition found no problem
    FAILED = "failed"  # a check whose condition found the problem
    ERROR = "error"  # the call itself failed
    DONE = "done"  # an action or manual item carried out
    SKIPPED = "skipped"
    HANDED_OVER = "handed_over"  # a command shown to run by hand: the bot does not run it

    @property
    def words(self) -> str:
        """Say the state as a person reads it: a check that found the problem is "problem"."""
        return _STATE_WORDS[self]


_STATE_WORDS = {
    StepState.PENDING: "to do",
    StepState.RUNNING: "running",
    StepState.PASSED: "ok",
    StepState.FAILED: "problem",
    StepState.ERROR: "error",
    StepState.DONE: "done",
    StepState.SKIPPED: "skipped",
    StepState.HANDED_OVER: "handed over",
}


#: The prefix of a rehearsal's id (``REH-3``): rehearsals are counted apart from incidents, so a
#: game day never takes an incident number.
REHEARSAL_PREFIX = "REH"

#: States of a run still being worked on (neither resolved nor closed).
ACTIVE_STATES: tuple[RunState, ...] = (RunState.OPEN, RunState.ACKNOWLEDGED, RunState.MITIGATED)


@dataclass
class Run:
    """One walkthrough of one runbook, from the alert (or command) that opened it to its close."""

    id: str
    number: int  # the store's count; a rehearsal's is negative (counted apart, as REH-n)
    runbook_id: str
    title: str
    severity: str
    state: RunState
    created_by: str
    created_at: datetime
    alert: dict[str, Any] | None = None
    fingerprint: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    rehearsal: bool = False
    surface: dict[str, Any] = field(default_factory=dict)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    closed_at: datetime | None = None
    alert_count: int = 0
    alert_resolved_at: datetime | None = None
    #: What the scheduler did for the run: ``escalated`` (the last level paged), ``clear``
    #: (whether its re-checked conditions are clear), ``cleared_at``, ``flaps``, reminders.
    watch: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepRecord:
    """The state of one step within a run, with its latest result (bounded in size)."""

    run_id: str
    step_id: str
    state: StepState = StepState.PENDING
    result: dict[str, Any] | None = None
    finding: str | None = None
    error: str | None = None
    actor: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    items_done: list[int] = field(default_factory=list)
    claim_key: str | None = None
    lease_until: datetime | None = None
    #: A monitor step's watch: ``round`` (the attempt that started it), ``started_at``,
    #: ``ends_at``, ``state`` (watching, met, expired, stopped) and ``samples``.
    monitor: dict[str, Any] | None = None


@dataclass
class Event:
    """One entry of a run's append-only timeline: who, when, what, and how it went."""

    run_id: str
    at: datetime
    actor: str
    kind: str
    summary: str
    step_id: str | None = None
    outcome: str | None = None
    duration_ms: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    position: int = 0


@dataclass(frozen=True)
class Approval:
    """One approver's approval of a two-person step with particular input values."""

    run_id: str
    subject: str
    approver: str
    approved_at: datetime
    shown: dict[str, str] = field(default_factory=dict)

    @property
    def step_id(self) -> str:
        """Return the id of the step approved (the subject is ``step`` or ``step@values``)."""
        return self.subject.split("@", 1)[0]


@dataclass
class CommandClaim:
    """The answer to claiming an idempotency key: first claim, or the earlier outcome."""

    claimed: bool
    outcome: dict[str, Any] | None = None


class Delivery(StrEnum):
    """Who sends one output of a committed event (a Slack message): this process, nobody
    more (it was sent), or another process that is on it now."""

    CLAIMED = "claimed"
    DONE = "done"
    HELD = "held"


@dataclass(frozen=True)
class ScheduledJob:
    """A job as the scheduler holds it: what it does for which run, and when it next runs."""

    id: str
    run_id: str
    kind: str
    what: str
    next_at: datetime | None
    #: Due a while ago and not run: no process is scheduling (``Engine.jobs`` says so).
    overdue: bool = False


@dataclass(frozen=True)
class SchedulerState:
    """This process's part in scheduling: ``leading`` (it schedules), ``standby`` (another
    process does; this one takes over if it stops) or ``off``; jobs fired and failed here."""

    role: str
    fired: int = 0
    failed: int = 0
