"""An alert, as every source (Alertmanager, Grafana, Datadog, Sentry, UptimeRobot, a person)
is reduced to before matching: a title, a text, labels, values and whether it fires."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(BaseModel):
    """A normalised alert. ``labels`` are strings; ``values`` are the figures it reports."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(default="text", description="alertmanager, grafana, datadog, ... or text")
    title: str = ""
    text: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    values: dict[str, Any] = Field(default_factory=dict)
    status: AlertStatus = AlertStatus.FIRING
    link: str | None = None
    channel: str | None = None
    ts: str | None = None

    @property
    def alertname(self) -> str | None:
        return self.labels.get("alertname")

    def context(self) -> dict[str, Any]:
        """Return the alert as templates and conditions see it (``alert.labels.service``)."""
        return {
            "source": self.source,
            "title": self.title,
            "text": self.text,
            "labels": dict(self.labels),
            "values": dict(self.values),
            "status": self.status.value,
            "link": self.link,
        }

    def lookup(self, name: str) -> Any:
        """Return a value or label by name (values first), or None."""
        if name in self.values:
            return self.values[name]
        return self.labels.get(name)
