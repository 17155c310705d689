"""What should be scheduled for a run, worked out from the run alone.

The scheduler keeps its jobs in step with this plan: whenever a run changes, and for every run
when a process takes the scheduler over. Every time in the plan is anchored on the run's own
timestamps (opened, resolved, a monitor's start), so planning again gives the same jobs and a
restart neither moves nor repeats them; what was already done (a level paged) is on the run and
drops out of the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from agape_ops.engine.records import ACTIVE_STATES, Run, RunState, StepRecord
from agape_ops.engine.watch import outstanding, watching
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.team import Team
from agape_ops.runbooks.timing import duration_seconds, interval_words

ESCALATE, RECHECK, MONITOR, STATUS, POST_INCIDENT = (
    "escalate",
    "recheck",
    "monitor",
    "status",
    "post_incident",
)


@dataclass(frozen=True)
class JobPlan:
    """One job: once at ``at``, or every ``every_s`` from ``start`` until ``end``."""

    id: str
    run_id: str
    kind: str
    arg: str = ""
    at: datetime | None = None
    every_s: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    what: str = ""

    def tick(self, now: datetime) -> int:
        """Return which repetition ``now`` belongs to (0 for a one-off): the same for a job
        fired late or twice, so the command it issues has one key per repetition."""
        if self.every_s is None or self.start is None:
            return 0
        return max(0, int((now - self.start).total_seconds() // self.every_s))

    def key(self, now: datetime) -> str:
        """Return the idempotency key of the command this job issues at ``now``."""
        parts = [self.kind, self.run_id]
        if self.arg:
            parts.append(self.arg)
        if self.every_s is not None:
            parts.append(str(self.tick(now)))
        return ":".join(parts)


def job_kind(job_id: str) -> str:
    """Return the kind a job's id names: ``INC-7:escalate:2`` (and its retry,
    ``INC-7:escalate:2:retry``) is an ``escalate`` job."""
    parts = job_id.split(":", 2)
    return parts[1] if len(parts) > 1 else ""


def plan(
    run: Run, runbook: Runbook | None, steps: Mapping[str, StepRecord], team: Team
) -> list[JobPlan]:
    """Return the jobs a run needs now (none for a closed run or an unknown runbook)."""
    if runbook is None or run.state is RunState.CLOSED:
        return []
    jobs: list[JobPlan] = []
    if run.state is RunState.OPEN and run.acknowledged_at is None and not run.rehearsal:
        jobs += _escalation(run, team)
    if run.state in ACTIVE_STATES:
        jobs += _recheck(run, runbook)
        jobs += _monitors(run, runbook, steps)
        jobs += _status(run, team)
    if run.state is RunState.RESOLVED:
        jobs += _post_incident(run, runbook, steps, team)
    return jobs


def _escalation(run: Run, team: Team) -> list[JobPlan]:
    levels = team.escalation_for(run.severity)
    paged = int(run.watch.get("escalated", 0))
    return [
        JobPlan(
            f"{run.id}:{ESCALATE}:{n}",
            run.id,
            ESCALATE,
            str(n),
            at=run.created_at + timedelta(seconds=level.after_s),
            what=f"page level {n} ({', '.join(level.notify)}) unless acknowledged",
        )
        for n, level in enumerate(levels, start=1)
        if n > paged
    ]


def _recheck(run: Run, runbook: Runbook) -> list[JobPlan]:
    if runbook.recheck is None or not runbook.recheck_steps():
        return []
    every = duration_seconds(runbook.recheck)
    checks = len(runbook.recheck_steps())
    return [
        JobPlan(
            f"{run.id}:{RECHECK}",
            run.id,
            RECHECK,
            every_s=every,
            start=run.created_at + timedelta(seconds=every),
            what=f"re-check {checks} detection check{'s' if checks != 1 else ''} every "
            f"{interval_words(every)}",
        )
    ]


def _monitors(run: Run, runbook: Runbook, steps: Mapping[str, StepRecord]) -> list[JobPlan]:
    jobs = []
    for step in runbook.steps():
        record = steps.get(step.id)
        if step.monitor is None or record is None or not watching(record):
            continue
        assert record.monitor is not None  # noqa: S101 - watching() says so
        started = datetime.fromisoformat(str(record.monitor["started_at"]))
        ends = datetime.fromisoformat(str(record.monitor["ends_at"]))
        every = step.monitor.every_s
        jobs.append(
            JobPlan(
                f"{run.id}:{MONITOR}:{step.id}",
                run.id,
                MONITOR,
                f"{step.id}:{record.monitor.get('round', 0)}",
                every_s=every,
                start=started + timedelta(seconds=every),
                # One sample at or after the end, which says the time ran out.
                end=ends + timedelta(seconds=every),
                what=f"sample “{step.title}” every {interval_words(every)} until {ends:%H:%M} UTC",
            )
        )
    return jobs


def _status(run: Run, team: Team) -> list[JobPlan]:
    every = team.reminders.status_every_s(run.severity)
    if every is None or run.rehearsal:
        return []
    return [
        JobPlan(
            f"{run.id}:{STATUS}",
            run.id,
            STATUS,
            every_s=every,
            start=run.created_at + timedelta(seconds=every),
            what=f"ask for a status update after {interval_words(every)} without one",
        )
    ]


def _post_incident(
    run: Run, runbook: Runbook, steps: Mapping[str, StepRecord], team: Team
) -> list[JobPlan]:
    every = team.reminders.post_incident_s
    if every is None or run.resolved_at is None or run.rehearsal:
        return []
    if not outstanding(runbook, dict(steps)):
        return []
    return [
        JobPlan(
            f"{run.id}:{POST_INCIDENT}",
            run.id,
            POST_INCIDENT,
            every_s=every,
            start=run.resolved_at + timedelta(seconds=every),
            what=f"remind of the post-incident work every {interval_words(every)}",
        )
    ]
