"""The commands a surface sends the engine, and the outcome it gets back.

Every command carries the actor and an idempotency key: for Slack, derived from the click
(action ts + action id), for the console, a fresh one per typed command. Delivering the same
command twice answers with the first outcome and executes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agape_ops.alerts.model import Alert
from agape_ops.engine.records import Event, Run, StepRecord
from agape_ops.engine.results import StepResult


@dataclass(frozen=True)
class StartRun:
    runbook_id: str
    actor: str
    key: str
    alert: Alert | None = None
    fingerprint: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    rehearsal: bool = False
    surface: dict[str, Any] = field(default_factory=dict)
    auto: bool = True


@dataclass(frozen=True)
class Acknowledge:
    run_id: str
    actor: str
    key: str


@dataclass(frozen=True)
class RunStep:
    """Run a step. ``seen`` is how many times the step had run when the person saw the button
    they pressed (a Slack card): a change made since then is not repeated on that press's
    confirmation, it is asked again, so a double click acts once."""

    run_id: str
    step_id: str
    actor: str
    key: str
    inputs: dict[str, str] = field(default_factory=dict)
    confirmed: bool = False
    seen: int | None = None
    #: Why the bot runs it by itself: "" (a person, or the checks at opening), "recheck" (a
    #: scheduled re-check: shown on the card, not told), "monitor" (a monitor's next sample,
    #: run only while its watch goes on), "requires" (the check a write needs before it is
    #: offered) or "verify" (a check run again after a write that should have cleared it).
    purpose: str = ""
    #: The write a "requires" or "verify" check runs for (its step id).
    for_step: str = ""


@dataclass(frozen=True)
class MarkItemDone:
    """Tick one item (0-based) of a checklist; a guarded checklist's first tick is confirmed."""

    run_id: str
    step_id: str
    item: int
    actor: str
    key: str
    confirmed: bool = False


@dataclass(frozen=True)
class SkipStep:
    run_id: str
    step_id: str
    actor: str
    key: str
    reason: str = ""


@dataclass(frozen=True)
class ProvideInput:
    run_id: str
    name: str
    value: str
    actor: str
    key: str


@dataclass(frozen=True)
class SetState:
    """Mark the run mitigated, resolved or closed. Resolving while the latest detection still
    shows a problem, or a two-person approval waits, needs ``confirmed``."""

    run_id: str
    state: str
    actor: str
    key: str
    note: str = ""
    confirmed: bool = False  # resolve anyway: a check still shows a problem, or an approval waits


@dataclass(frozen=True)
class AddNote:
    run_id: str
    text: str
    actor: str
    key: str


@dataclass(frozen=True)
class RecordSurface:
    """Remember where a surface shows the run (the Slack card's channel and ts), so every
    process and every restart updates that same message. Not a timeline event."""

    run_id: str
    place: str  # e.g. "card"
    where: dict[str, Any]
    actor: str
    key: str


@dataclass(frozen=True)
class OpenForAlert:
    """An alert arrived: attach it to the active run of its fingerprint, or open one.

    ``key`` is the delivery's idempotency key (for Slack, from the event id), so a retried
    delivery does nothing more. ``source`` says where the alert was posted (channel and message
    ts), kept on the run so a surface can answer in that message's thread.
    """

    alert: Alert
    fingerprint: str
    actor: str
    key: str
    source: dict[str, Any] = field(default_factory=dict)
    rehearsal: bool = False
    auto: bool = True


@dataclass(frozen=True)
class Escalate:
    """Page the run's escalation levels up to ``level`` that nobody has been paged for yet,
    unless someone acknowledged the run. The key is fixed per level (``escalate:INC-7:2``)."""

    run_id: str
    level: int
    actor: str
    key: str


@dataclass(frozen=True)
class Recheck:
    """Run the run's re-checked conditions again (as the bot) and say when all have cleared,
    or a cleared problem came back. The key is fixed per tick (``recheck:INC-7:12``)."""

    run_id: str
    actor: str
    key: str


@dataclass(frozen=True)
class Remind:
    """Remind the thread: ``status`` (an update is due on an open run) or ``post_incident``
    (the follow-up work of a resolved run is not done)."""

    run_id: str
    what: str
    actor: str
    key: str


Command = (
    StartRun
    | OpenForAlert
    | Acknowledge
    | RunStep
    | MarkItemDone
    | SkipStep
    | ProvideInput
    | SetState
    | AddNote
    | RecordSurface
    | Escalate
    | Recheck
    | Remind
)


class Status(StrEnum):
    """What came of a command; surfaces switch on it."""

    DONE = "done"
    REFUSED = "refused"  # not permitted, or a lock another run holds: says who may
    NEEDS_CONFIRMATION = "needs_confirmation"
    NEEDS_INPUTS = "needs_inputs"
    AWAITING_APPROVAL = "awaiting_approval"  # a two-person step waits for a second approver
    DUPLICATE = "duplicate"  # a repeated delivery: nothing executed, the first answer given
    FAILED = "failed"  # bad input, a wrong state, or the step's call failed


#: ``Outcome.error`` of a write whose ``requires:`` check found nothing for it to do.
PRECONDITION_UNMET = "PreconditionUnmet"
#: ``Outcome.error`` of a write whose ``requires:`` check could not run (its system is down).
PRECONDITION_UNCHECKED = "PreconditionUnchecked"


class Intake(StrEnum):
    """What alert intake did with an alert."""

    OPENED = "opened"
    ATTACHED = "attached"  # a re-fire of the active run's alert
    RESOLVED = "resolved"  # monitoring says the active run's alert resolved
    NO_RUN = "no_run"  # resolved, with no active run to tell
    UNMATCHED = "unmatched"  # no runbook matches


@dataclass
class Outcome:
    """What came of a command: its status, what to tell the person, and what it touched.

    A duplicate answers with the first delivery's message; ``first`` is that delivery's
    status (None while it is still running). ``events`` are the timeline events the command
    committed, in order.
    """

    status: Status
    message: str
    run: Run | None = None
    step: StepRecord | None = None
    result: StepResult | None = None
    needs_inputs: list[str] = field(default_factory=list)
    error: str | None = None
    first: Status | None = None
    intake: Intake | None = None
    events: list[Event] = field(default_factory=list)
    #: The checks a write re-ran once it succeeded (its ``verifies:``), each one's outcome.
    rechecks: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Say whether the command (or, for a duplicate, its first delivery) did what it asked."""
        status = self.first if self.status is Status.DUPLICATE else self.status
        return status is Status.DONE

    @property
    def duplicate(self) -> bool:
        return self.status is Status.DUPLICATE

    @property
    def needs_confirmation(self) -> bool:
        return self.status is Status.NEEDS_CONFIRMATION

    def stored(self) -> dict[str, Any]:
        """Return what the store keeps of this outcome for later duplicates."""
        return {
            "status": self.status.value,
            "message": self.message,
            "run_id": self.run.id if self.run else None,
            "step_id": self.step.step_id if self.step else None,
            "error": self.error,
        }
