"""The team file (``OPS_TEAM_FILE``): responders, approvers, escalation, reminders, contacts,
dashboards."""

from __future__ import annotations

import re

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from agape_ops.runbooks.model import Severity
from agape_ops.runbooks.strict import Strict
from agape_ops.runbooks.timing import check_duration, duration_seconds, unit_required

#: A Slack user id (``U…``, ``W…`` on Enterprise Grid) or user group id (``S…``).
SLACK_ID = r"^[UWS][A-Z0-9]+$"


class Contact(Strict):
    role: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    slack: str | None = None


class Dashboard(Strict):
    name: str
    url: str | None = None
    note: str | None = None


def _at(where: int | str, message: str, value: object) -> ValidationError:
    """Return an error placed at one item (index or key) of the field being validated, so the
    team file's problem names that item's line rather than the whole list's."""
    error = PydanticCustomError("value_error", message)
    return ValidationError.from_exception_data(
        "team", [InitErrorDetails(type=error, loc=(where,), input=value)]
    )


def _slack_ids(ids: list[str]) -> list[str]:
    for i, value in enumerate(ids):
        if not re.fullmatch(SLACK_ID, value):
            raise _at(
                i,
                f"{value!r} is not a Slack user or user group id: write U… or W… for a person "
                "and S… for a user group (Slack shows them under Copy member ID / the group's "
                "URL), not a name or an @handle",
                value,
            )
    return ids


class Escalation(Strict):
    """One level: whom to page when nobody has acknowledged the run this long after it opened."""

    after: str | None = Field(default=None, description="A duration: 10m, 1h.")
    after_minutes: int | None = Field(default=None, gt=0, description="Minutes (older spelling).")
    notify: list[str] = Field(min_length=1, description="Slack user or user group ids.")
    severities: list[Severity] = Field(
        default_factory=list, description="The severities this level pages for (default: all)."
    )

    @field_validator("after", mode="before")
    @classmethod
    def _after_unit(cls, value: object) -> object:
        return unit_required(value)

    @field_validator("after")
    @classmethod
    def _after(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, least_s=1)

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: list[str]) -> list[str]:
        return _slack_ids(value)

    @model_validator(mode="after")
    def _one_delay(self) -> Escalation:
        if (self.after is None) == (self.after_minutes is None):
            raise ValueError("give a level exactly one of `after` (10m) or `after_minutes` (10)")
        return self

    @property
    def after_s(self) -> float:
        """Return the seconds after opening at which this level is paged."""
        if self.after is not None:
            return duration_seconds(self.after)
        return float((self.after_minutes or 0) * 60)


class Reminders(Strict):
    """Reminders in a run's thread: status updates while it is open, the post-incident work
    once it is resolved."""

    status_update: dict[str, str] = Field(
        default_factory=lambda: {"sev1": "30m", "sev2": "1h"},
        description="Per severity: how long without a note before a status update is asked.",
    )
    post_incident: str | None = Field(
        default="24h",
        description="After resolution: how often to remind of the post-incident checklist.",
    )

    @field_validator("status_update", mode="before")
    @classmethod
    def _status_units(cls, value: object) -> object:
        if isinstance(value, dict):
            for severity, every in value.items():
                try:
                    unit_required(every)
                except ValueError as exc:
                    raise _at(str(severity), str(exc), every) from None
        return value

    @field_validator("status_update")
    @classmethod
    def _status(cls, value: dict[str, str]) -> dict[str, str]:
        for severity, every in value.items():
            if severity not in set(Severity):
                raise _at(severity, f"{severity!r} is not a severity (sev1 … sev4)", severity)
            try:
                check_duration(every, least_s=60)
            except ValueError as exc:
                raise _at(severity, str(exc), every) from None
        return value

    @field_validator("post_incident", mode="before")
    @classmethod
    def _post_unit(cls, value: object) -> object:
        return unit_required(value)

    @field_validator("post_incident")
    @classmethod
    def _post(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value, least_s=60)

    def status_every_s(self, severity: str) -> float | None:
        every = self.status_update.get(severity)
        return None if every is None else duration_seconds(every)

    @property
    def post_incident_s(self) -> float | None:
        return None if self.post_incident is None else duration_seconds(self.post_incident)


class Team(Strict):
    """The team file (``OPS_TEAM_FILE``): who may act, whom to escalate to, where to look."""

    responders: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)
    escalation: list[Escalation] = Field(
        default_factory=list,
        description="Levels in the order they are paged; each for every severity or those named.",
    )
    reminders: Reminders = Field(default_factory=Reminders)
    contacts: list[Contact] = Field(default_factory=list)
    dashboards: list[Dashboard] = Field(default_factory=list)

    @field_validator("escalation")
    @classmethod
    def _levels_in_order(cls, value: list[Escalation]) -> list[Escalation]:
        for severity in Severity:
            earlier: Escalation | None = None
            for i, level in enumerate(value):
                if level.severities and severity not in level.severities:
                    continue
                if earlier is not None and level.after_s <= earlier.after_s:
                    raise _at(
                        i,
                        f"level {i + 1} pages {severity} no later than the level before it "
                        f"(after {_delay(earlier)}): each level must come later than the last",
                        level.after or level.after_minutes,
                    )
                earlier = level
        return value

    @field_validator("responders", "approvers")
    @classmethod
    def _people(cls, value: list[str]) -> list[str]:
        return _slack_ids(value)

    def escalation_for(self, severity: str) -> list[Escalation]:
        """Return the levels paged for a run of this severity, first level first."""
        return _for(self.escalation, severity)


def _delay(level: Escalation) -> str:
    return level.after or f"{level.after_minutes} minutes"


def _for(levels: list[Escalation], severity: str) -> list[Escalation]:
    return [level for level in levels if not level.severities or severity in level.severities]
