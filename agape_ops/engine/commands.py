"""The commands a surface sends the engine, and the outcome it gets back.

Every command carries the actor and an idempotency key: for Slack, derived from the click
(action ts + action id), for the console, a fresh one per typed command. Delivering the same
command twice answers with the first outcome and executes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agape_ops.alerts.model import Alert
from agape_ops.engine.records import Run, StepRecord
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
    run_id: str
    step_id: str
    actor: str
    key: str
    inputs: dict[str, str] = field(default_factory=dict)
    confirmed: bool = False


@dataclass(frozen=True)
class MarkItemDone:
    run_id: str
    step_id: str
    item: int
    actor: str
    key: str


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
    """Mark the run mitigated, resolved or closed."""

    run_id: str
    state: str
    actor: str
    key: str
    note: str = ""


@dataclass(frozen=True)
class AddNote:
    run_id: str
    text: str
    actor: str
    key: str


Command = (
    StartRun | Acknowledge | RunStep | MarkItemDone | SkipStep | ProvideInput | SetState | AddNote
)


@dataclass
class Outcome:
    """What came of a command: whether it did what was asked, and what to tell the person.

    ``needs_confirmation`` and ``needs_inputs`` ask the surface to come back with a
    confirmed command or the missing values; ``duplicate`` marks a repeated delivery that
    executed nothing and answers with the first outcome's message.
    """

    ok: bool
    message: str
    run: Run | None = None
    step: StepRecord | None = None
    result: StepResult | None = None
    needs_confirmation: bool = False
    needs_inputs: list[str] = field(default_factory=list)
    duplicate: bool = False
    error: str | None = None

    def stored(self) -> dict[str, Any]:
        """Return what the store keeps of this outcome for later duplicates."""
        return {
            "ok": self.ok,
            "message": self.message,
            "run_id": self.run.id if self.run else None,
            "step_id": self.step.step_id if self.step else None,
            "error": self.error,
        }
