"""An alert, as every source (Alertmanager, Grafana, Datadog, Sentry, UptimeRobot, a person)
is reduced to before matching: a title, a text, labels, values and whether it fires."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agape_ops.values import clean_text

#: The longest title, text and link kept; longer ones are cut, the cut marked.
_TEXT_LIMITS = {
    "title": 1_000,
    "text": 20_000,
    "link": 2_000,
    "source": 100,
    "channel": 100,
    "ts": 100,
}
MAX_KEY_CHARS = 200
MAX_LABEL_CHARS = 1_000
#: The most labels and the most values kept.
MAX_ENTRIES = 200
_DROP = object()


def _plain(value: Any) -> Any:
    """Return a value fit to keep (a 64-bit or finite number, a boolean, a text), or _DROP."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # beyond 64 bits a figure is noise, and JSON readers choke on it
        return value if -(2**63) <= value < 2**63 else _DROP
    if isinstance(value, float):
        return value if math.isfinite(value) else _DROP
    if isinstance(value, str):
        return clean_text(value, limit=MAX_LABEL_CHARS)
    return _DROP


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

    @model_validator(mode="before")
    @classmethod
    def _fit_to_store(cls, data: Any) -> Any:
        """Clean and bound every text (no NUL, control codes or surrogates), keep plain values.

        Alerts come from outside and cannot be sent back, so they are cleaned rather than
        refused; ``values`` keep only figures and short texts, never nested objects.
        """
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, limit in _TEXT_LIMITS.items():
            if isinstance(out.get(key), str):
                out[key] = clean_text(out[key], limit=limit)
        labels = out.get("labels")
        if isinstance(labels, dict):
            out["labels"] = {
                clean_text(str(k), limit=MAX_KEY_CHARS): clean_text(str(v), limit=MAX_LABEL_CHARS)
                for k, v in list(labels.items())[:MAX_ENTRIES]
            }
        values = out.get("values")
        if isinstance(values, dict):
            out["values"] = {
                clean_text(str(k), limit=MAX_KEY_CHARS): _plain(v)
                for k, v in list(values.items())[:MAX_ENTRIES]
                if _plain(v) is not _DROP
            }
        return out

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
