"""The team file (``OPS_TEAM_FILE``): responders, approvers, escalation, contacts, dashboards."""

from __future__ import annotations

from pydantic import Field

from agape_ops.runbooks.model import Strict


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


class Escalation(Strict):
    after_minutes: int = Field(gt=0)
    notify: list[str] = Field(min_length=1, description="Slack user or group ids.")


class Team(Strict):
    """The team file (``OPS_TEAM_FILE``): who may act, whom to escalate to, where to look."""

    responders: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)
    escalation: list[Escalation] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    dashboards: list[Dashboard] = Field(default_factory=list)
