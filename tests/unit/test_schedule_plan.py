"""Which jobs a run calls for, worked out from the run alone (no scheduler, no services).

The scheduler keeps its jobs equal to this plan, so what is proved here is what gets paged,
re-checked, watched and reminded, and that planning again moves nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agape_ops.engine.handlers.watching import monitor_round
from agape_ops.engine.records import Event, Run, RunState, StepRecord, StepState
from agape_ops.engine.schedule import JobPlan, job_kind, plan
from agape_ops.engine.steps import Reading, Verdict
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.team import Team
from agape_ops.scheduler.runner import may_change_plan

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog([ROOT / "runbooks"])
FAILOVER = CATALOG.runbooks["database-failover"]  # sev1, recheck 2m, a replication-lag monitor
T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
TEAM = Team.model_validate(
    {
        "escalation": [
            {"after": "5m", "notify": ["S0ONCALL"]},
            {"after": "15m", "notify": ["U0DEVOPS"]},
            {"after": "30m", "notify": ["U0CTO"], "severities": ["sev1"]},
        ],
        "reminders": {"status_update": {"sev1": "30m"}, "post_incident": "24h"},
    }
)


def run_of(runbook: Runbook = FAILOVER, state: RunState = RunState.OPEN, **changes: object) -> Run:
    run = Run("INC-7", 7, runbook.id, runbook.title, runbook.severity.value, state, "U1", T0)
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def by_id(jobs: list[JobPlan]) -> dict[str, JobPlan]:
    return {job.id: job for job in jobs}


def test_an_open_sev1_run_pages_three_levels_rechecks_and_asks_for_status() -> None:
    jobs = by_id(plan(run_of(), FAILOVER, {}, TEAM))
    assert sorted(jobs) == [
        "INC-7:escalate:1",
        "INC-7:escalate:2",
        "INC-7:escalate:3",
        "INC-7:recheck",
        "INC-7:status",
    ]
    pages = [jobs[f"INC-7:escalate:{n}"] for n in (1, 2, 3)]
    assert [job.at for job in pages] == [T0 + timedelta(minutes=m) for m in (5, 15, 30)]
    assert "S0ONCALL" in pages[0].what
    recheck = jobs["INC-7:recheck"]
    assert (recheck.every_s, recheck.start) == (120.0, T0 + timedelta(minutes=2))
    assert jobs["INC-7:status"].every_s == 1800.0


def test_a_level_paged_drops_out_and_a_lower_severity_skips_the_level_meant_for_sev1() -> None:
    paged = plan(run_of(watch={"escalated": 2}), FAILOVER, {}, TEAM)
    assert [job.id for job in paged if job.kind == "escalate"] == ["INC-7:escalate:3"]
    backlog = CATALOG.runbooks["queue-backlog"]  # sev3: two levels, no status reminders
    jobs = plan(run_of(backlog), backlog, {}, TEAM)
    assert sorted(j.id for j in jobs if j.kind == "escalate") == [
        "INC-7:escalate:1",
        "INC-7:escalate:2",
    ]
    assert not [job for job in jobs if job.kind == "status"]


def test_acknowledging_stops_escalation_but_not_rechecks() -> None:
    acknowledged = run_of(state=RunState.ACKNOWLEDGED, acknowledged_at=T0, acknowledged_by="U2")
    kinds = {job.kind for job in plan(acknowledged, FAILOVER, {}, TEAM)}
    assert kinds == {"recheck", "status"}


def test_a_rehearsal_pages_nobody_and_asks_nobody_for_updates() -> None:
    kinds = {job.kind for job in plan(run_of(rehearsal=True), FAILOVER, {}, TEAM)}
    assert kinds == {"recheck"}


def test_a_watching_monitor_samples_until_one_interval_past_its_end() -> None:
    started = T0 + timedelta(minutes=20)
    record = StepRecord(
        "INC-7",
        "replication_lag",
        state=StepState.PASSED,
        attempts=2,
        monitor={
            "round": 2,
            "started_at": started.isoformat(),
            "ends_at": (started + timedelta(minutes=15)).isoformat(),
            "state": "watching",
            "samples": [],
        },
    )
    run = run_of(state=RunState.MITIGATED, acknowledged_at=T0)
    job = by_id(plan(run, FAILOVER, {"replication_lag": record}, TEAM))[
        "INC-7:monitor:replication_lag"
    ]
    assert (job.every_s, job.arg) == (30.0, "replication_lag:2")
    assert job.start == started + timedelta(seconds=30)
    assert job.end == started + timedelta(minutes=15, seconds=30)
    assert record.monitor is not None
    record.monitor["state"] = "met"
    assert not [
        j for j in plan(run, FAILOVER, {"replication_lag": record}, TEAM) if j.kind == "monitor"
    ]


def test_a_resolved_run_is_reminded_of_its_follow_up_until_the_checklist_is_done() -> None:
    resolved_at = T0 + timedelta(hours=1)
    run = run_of(state=RunState.RESOLVED, acknowledged_at=T0, resolved_at=resolved_at)
    [job] = plan(run, FAILOVER, {}, TEAM)
    assert (job.id, job.start) == ("INC-7:post_incident", resolved_at + timedelta(hours=24))
    done = StepRecord("INC-7", "post_failover", state=StepState.DONE, items_done=[0, 1, 2, 3])
    assert plan(run, FAILOVER, {"post_failover": done}, TEAM) == []
    assert plan(run_of(state=RunState.CLOSED), FAILOVER, {}, TEAM) == []


def test_planning_again_gives_the_same_jobs_and_each_repetition_one_key() -> None:
    assert plan(run_of(), FAILOVER, {}, TEAM) == plan(run_of(), FAILOVER, {}, TEAM)
    recheck = by_id(plan(run_of(), FAILOVER, {}, TEAM))["INC-7:recheck"]
    first = T0 + timedelta(minutes=2)
    # Fired on time, a little late, or twice: one key per repetition.
    assert recheck.key(first) == recheck.key(first + timedelta(seconds=40)) == "recheck:INC-7:0"
    assert recheck.key(first + timedelta(minutes=2)) == "recheck:INC-7:1"
    page = by_id(plan(run_of(), FAILOVER, {}, TEAM))["INC-7:escalate:2"]
    assert page.key(T0 + timedelta(hours=5)) == "escalate:INC-7:2"


def test_an_unknown_runbook_plans_nothing() -> None:
    assert plan(run_of(), None, {}, TEAM) == []


def test_only_events_that_can_change_a_plan_make_the_scheduler_plan_again() -> None:
    def event(kind: str, **detail: object) -> Event:
        return Event("INC-7", T0, "agape-ops", kind, "s", detail=dict(detail))

    assert may_change_plan(event("run.acknowledged"))
    assert may_change_plan(event("monitor.stopped"))
    assert may_change_plan(event("step.finished"))  # a person's run may start a monitor
    assert not may_change_plan(event("step.finished", purpose="recheck"))
    assert not may_change_plan(event("step.error", purpose="monitor"))
    assert not may_change_plan(event("run.reminded", what="status"))


def test_a_recheck_of_a_monitored_step_neither_starts_nor_feeds_its_watch() -> None:
    step = FAILOVER.step("replication_lag")
    assert step is not None
    assert step.monitor is not None
    record = StepRecord("INC-7", "replication_lag", attempts=3)
    verdict = Verdict(StepState.PASSED, "step.finished", "lag 0 s", reading=Reading(0.0, True))
    assert monitor_round(step, record, verdict, "recheck", T0) is None
    assert record.monitor is None
    started = monitor_round(step, record, dataclasses.replace(verdict, reading=None), "", T0)
    assert started is not None
    assert started[0] == "monitor.started"
    assert record.monitor is not None
    assert record.monitor["state"] == "watching"


def test_a_job_id_names_its_kind_for_its_retry_too() -> None:
    assert job_kind("INC-7:escalate:2") == "escalate"
    assert job_kind("INC-7:escalate:2:retry") == "escalate"
    assert job_kind("INC-7:monitor:replication_lag") == "monitor"
    assert job_kind("INC-7:recheck") == "recheck"
    assert job_kind("INC-7") == ""
