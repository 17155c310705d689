"""The surface-neutral view of what the scheduler does for a run: its escalation and re-checks
(``Run.watch``), each monitor step's watch (``StepRecord.monitor``), and its scheduled jobs.

Pure functions of the records, like ``engine/views.py`` (which holds them on ``RunView`` and
``StepView``): every surface says the same thing in its own way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agape_ops.engine.records import ScheduledJob, StepRecord
from agape_ops.runbooks.model import Runbook, Step
from agape_ops.runbooks.team import Team
from agape_ops.runbooks.timing import duration_seconds, interval_words

#: The bars of a trend, lowest first; a sample without a figure is a gap.
BARS = "▁▂▃▄▅▆▇█"
GAP = " "
#: Samples a trend shows at most (the newest).
TREND_WIDTH = 20


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _hhmm(at: datetime | None) -> str:
    return f"{at:%H:%M} UTC" if at is not None else ""


def sparkline(figures: Sequence[float | None], width: int = TREND_WIDTH) -> str:
    """Draw the newest ``width`` figures as bars scaled between their least and greatest; a
    missing figure is a gap, and figures that are all equal are a flat middle line."""
    shown = list(figures)[-width:]
    known = [f for f in shown if f is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    top = len(BARS) - 1
    bars = []
    for figure in shown:
        if figure is None:
            bars.append(GAP)
        elif high == low:
            bars.append(BARS[top // 2])
        else:
            bars.append(BARS[round((figure - low) / (high - low) * top)])
    return "".join(bars)


def figure_words(figure: float | None, unit: str = "") -> str:
    """Say a figure with its unit: 12.5 s, 3%, 1200 (no unit); "no figure" when missing."""
    if figure is None:
        return "no figure"
    shown = f"{figure:.0f}" if figure == int(figure) and abs(figure) < 1e15 else f"{figure:.3g}"
    if not unit:
        return shown
    return f"{shown}{unit}" if unit == "%" else f"{shown} {unit}"


@dataclass(frozen=True)
class MonitorView:
    """A monitor step's watch: its settings, where it stands, its latest figure and trend."""

    every: str
    for_: str
    until: str | None
    unit: str
    state: str  # "" (not started), watching, met, expired
    round: int = 0
    figures: tuple[float | None, ...] = ()
    started_at: datetime | None = None
    ends_at: datetime | None = None
    stopped_at: datetime | None = None
    last_state: str | None = None  # the step state of the latest sample (error shows)

    @property
    def watching(self) -> bool:
        return self.state == "watching"

    @property
    def figure(self) -> float | None:
        return self.figures[-1] if self.figures else None

    @property
    def latest(self) -> str:
        """The latest figure with its unit ("no figure" before a sample has one)."""
        return figure_words(self.figure, self.unit)

    @property
    def trend(self) -> str:
        return sparkline(self.figures)

    @property
    def settings(self) -> str:
        """What it watches for: every 30 s for 10 min until <condition>."""
        until = f" until {self.until}" if self.until else ""
        every = interval_words(duration_seconds(self.every))
        return f"every {every} for {interval_words(duration_seconds(self.for_))}{until}"

    @property
    def state_words(self) -> str:
        """Where the watch stands, as a person says it."""
        if self.state == "watching":
            failing = " (the last sample failed)" if self.last_state == "error" else ""
            return f"watching until {_hhmm(self.ends_at)}{failing}"
        if self.state == "met":
            at = f" at {_hhmm(self.stopped_at)}" if self.stopped_at else ""
            return f"recovered{at}: the condition holds"
        if self.state == "expired":
            return f"stopped at {_hhmm(self.stopped_at)}: time ran out before it recovered"
        if self.state:
            return f"stopped ({self.state})"
        return f"not watching yet: runs {self.settings} once run"

    @property
    def line(self) -> str:
        """One line for a step: latest figure, trend, where the watch stands."""
        if not self.state:
            return self.state_words
        trend = f" {self.trend}" if self.trend.strip() else ""
        return f"{self.latest}{trend} · {self.state_words}"


def monitor_view(step: Step, record: StepRecord | None) -> MonitorView | None:
    """Return a monitor step's watch as its record says it (None for a step not a monitor)."""
    monitor = step.monitor
    if monitor is None:
        return None
    kept: Mapping[str, Any] = (record.monitor if record else None) or {}
    samples = [s for s in kept.get("samples", []) if isinstance(s, list) and len(s) >= 2]
    figures = tuple(
        float(s[1]) if isinstance(s[1], int | float) and not isinstance(s[1], bool) else None
        for s in samples
    )
    last_state = str(samples[-1][2]) if samples and len(samples[-1]) > 2 else None
    return MonitorView(
        every=monitor.every,
        for_=monitor.for_,
        until=monitor.until,
        unit=monitor.unit,
        state=str(kept.get("state", "")),
        round=int(kept.get("round", 0) or 0),
        figures=figures,
        started_at=_time(kept.get("started_at")),
        ends_at=_time(kept.get("ends_at")),
        stopped_at=_time(kept.get("stopped_at")),
        last_state=last_state,
    )


@dataclass(frozen=True)
class WatchView:
    """The run's watch: escalation (the last level paged of how many, when) and re-checks
    (clear or showing the problem, since when, how often it flapped, when last re-checked)."""

    levels: int = 0
    escalated: int = 0
    escalated_at: datetime | None = None
    recheck_every: str | None = None
    clear: bool | None = None
    since: datetime | None = None
    flaps: int = 0
    rechecked_at: datetime | None = None

    @property
    def escalation_words(self) -> str:
        if not self.escalated:
            return ""
        at = f" at {_hhmm(self.escalated_at)}" if self.escalated_at else ""
        return f"paged level {self.escalated} of {self.levels}{at}"

    @property
    def recheck_words(self) -> str:
        if self.rechecked_at is None and self.clear is None:
            return ""
        since = f" since {_hhmm(self.since)}" if self.since else ""
        if self.clear is True:
            state = f"clear{since}"
        elif self.clear is False:
            state = f"problem{' back' if self.flaps else ''}{since}"
        else:
            state = "not yet told"
        times = "once" if self.flaps == 1 else f"{self.flaps} times"
        flapping = f", flapping (came back {times})" if self.flaps else ""
        last = f" (last re-check {_hhmm(self.rechecked_at)})" if self.rechecked_at else ""
        return f"re-checks: {state}{flapping}{last}"

    @property
    def parts(self) -> list[str]:
        return [p for p in (self.escalation_words, self.recheck_words) if p]

    @property
    def line(self) -> str:
        """The run's watch in one line (empty when the scheduler has done nothing yet)."""
        return " · ".join(self.parts)


def run_watch(
    watch: Mapping[str, Any], severity: str, runbook: Runbook | None, team: Team
) -> WatchView:
    """Return the run's watch from ``Run.watch``, the team's levels and the runbook's re-check."""
    clear = watch.get("clear")
    flaps = int(watch.get("flaps", 0) or 0)
    if clear is True:
        since = _time(watch.get("cleared_at"))
    elif clear is False and flaps:
        since = _time(watch.get("returned_at"))
    else:
        since = None
    return WatchView(
        levels=len(team.escalation_for(severity)),
        escalated=int(watch.get("escalated", 0) or 0),
        escalated_at=_time(watch.get("escalated_at")),
        recheck_every=runbook.recheck if runbook else None,
        clear=clear if isinstance(clear, bool) else None,
        since=since,
        flaps=flaps,
        rechecked_at=_time(watch.get("rechecked_at")),
    )


def job_line(job: ScheduledJob) -> str:
    """One scheduled job: what it does next and when (next: page level 2 (S…) … at 03:40 UTC)."""
    when = f" at {_hhmm(job.next_at)}" if job.next_at is not None else " (paused)"
    if job.overdue:
        return f"overdue: {job.what}, due{when}; no bot process is scheduling (start `serve`)"
    return f"next: {job.what}{when}"


def job_lines(jobs: Iterable[ScheduledJob]) -> list[str]:
    return [job_line(job) for job in jobs]


#: How a check the bot ran around a write is introduced, by why it ran (``RunStep.purpose``).
_CHECKED_FOR = {"requires": "checked before", "verify": "checked again after"}


def checked_for(detail: Mapping[str, Any]) -> str | None:
    """Say which write a check's result belongs to, from its event's detail: "checked before
    “Correct stock levels”" or "checked again after …"; None for any other result."""
    said, write = _CHECKED_FOR.get(str(detail.get("purpose"))), detail.get("for")
    return f"{said} “{write}”" if said and isinstance(write, str) and write else None
