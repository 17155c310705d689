"""Durations in the runbook language: Prometheus ranges, monitors and re-check intervals.

A duration is written as Prometheus writes one (``30s``, ``5m``, ``1h30m``).
"""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field, field_validator, model_validator

from agape_ops.runbooks.strict import Strict

#: A Prometheus duration: one or more ``<number><unit>``, e.g. 30s, 5m, 1h30m.
DURATION_PATTERN = r"^(\d+(ms|s|m|h|d|w|y))+$"
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31536000,
}
#: Prometheus refuses a range query with more points than this per series.
MAX_RANGE_POINTS = 11000


def duration_seconds(duration: str) -> float:
    """Return the seconds a Prometheus duration (``1h30m``) stands for."""
    return float(sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(duration)))


def unit_required(value: object) -> object:
    """Refuse a bare number where a duration belongs (``after: 10``), saying how to write it."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        # pydantic reports a ValueError as the value's problem (a TypeError would escape)
        raise ValueError(  # noqa: TRY004
            f"{value} has no unit: write {value}m for minutes, {value}s for seconds"
        )
    return value


def check_duration(value: str, *, least_s: float = 0.0, most_s: float | None = None) -> str:
    """Accept a duration (``30s``, ``10m``, ``1h30m``) within bounds, or say what is wrong."""
    if not re.fullmatch(DURATION_PATTERN, value):
        raise ValueError(
            f"{value!r} is not a duration: write a number and a unit (ms, s, m, h, d, w, y), "
            "e.g. 30s, 5m, 1h30m"
        )
    seconds = duration_seconds(value)
    if seconds < least_s:
        raise ValueError(f"{value} is too short: at least {least_s:g}s")
    if most_s is not None and seconds > most_s:
        raise ValueError(f"{value} is too long: at most {most_s:g}s")
    return value


class PrometheusRange(Strict):
    """Ask for a trend: the query evaluated every ``step`` from ``start`` ago until now."""

    start: str = Field(
        default="30m",
        json_schema_extra={"pattern": DURATION_PATTERN},
        description="How far back the range begins, as a Prometheus duration (30m, 1h).",
    )
    step: str = Field(
        default="1m",
        json_schema_extra={"pattern": DURATION_PATTERN},
        description="Time between two points of the range (30s, 1m).",
    )

    @field_validator("start", "step")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not re.fullmatch(DURATION_PATTERN, value):
            raise ValueError(
                f"{value!r} is not a Prometheus duration: write a number and a unit "
                "(ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h30m"
            )
        return value

    @model_validator(mode="after")
    def _sensible(self) -> PrometheusRange:
        start, step = duration_seconds(self.start), duration_seconds(self.step)
        if start <= 0 or step <= 0:
            raise ValueError("`start` and `step` must be longer than zero")
        if start > 7 * 86400:
            raise ValueError("`start` may reach back at most 7d")
        if start / step > MAX_RANGE_POINTS:
            raise ValueError(
                f"{self.start} in steps of {self.step} is more than {MAX_RANGE_POINTS} points; "
                "take a longer step"
            )
        return self


#: The shortest interval a monitor or a re-check may repeat at.
LEAST_INTERVAL_S = 10.0
#: The longest a monitor may watch.
LONGEST_WATCH_S = 24 * 3600.0


class Monitor(Strict):
    """Keep watching a read step once it has run: run it again every ``every`` for at most
    ``for``, until its ``until:`` condition holds. One message shows the latest figure and its
    trend, and says whether the condition was met or the time ran out."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    every: str = Field(description="How often to run the step again (30s, 1m).")
    for_: str = Field(alias="for", description="How long to watch at most (10m, 1h).")
    until: str | None = Field(
        default=None, description="Condition over the result; true means recovered: stop."
    )
    figure: str | None = Field(
        default=None, description="Expression over the result: the number shown with its trend."
    )
    unit: str = Field(default="", max_length=12, description="Shown after the figure (s, %).")

    @field_validator("every", "for_", mode="before")
    @classmethod
    def _unit(cls, value: object) -> object:
        return unit_required(value)

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        return check_duration(value, least_s=LEAST_INTERVAL_S, most_s=LONGEST_WATCH_S)

    @field_validator("for_")
    @classmethod
    def _for(cls, value: str) -> str:
        return check_duration(value, least_s=LEAST_INTERVAL_S, most_s=LONGEST_WATCH_S)

    @model_validator(mode="after")
    def _watches_more_than_once(self) -> Monitor:
        if duration_seconds(self.for_) < duration_seconds(self.every):
            raise ValueError(f"`for: {self.for_}` is shorter than `every: {self.every}`")
        return self

    @property
    def every_s(self) -> float:
        return duration_seconds(self.every)

    @property
    def for_s(self) -> float:
        return duration_seconds(self.for_)


def interval_words(seconds: float) -> str:
    """Say an interval as the team file would mean it: "30 s", "10 min", "1 h 30 min", "2 d"."""
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts[:2]) or "0 s"
