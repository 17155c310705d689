"""The view of what the scheduler does for a run, built with no services: the run's watch
(escalation, re-checks), each monitor step's watch (figure, trend, how it stands) and the
scheduled jobs, as every surface shows them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from watch_runbook import watch_runbook

from agape_ops.engine.records import Run, RunState, ScheduledJob, StepRecord, StepState
from agape_ops.engine.views import RunView, run_view
from agape_ops.engine.watch_views import (
    GAP,
    figure_words,
    job_line,
    monitor_view,
    run_watch,
    sparkline,
)
from agape_ops.runbooks.loader import load_team_file
from agape_ops.runbooks.team import Team

ROOT = Path(__file__).resolve().parents[2]
TEAM = load_team_file(ROOT / "team.yaml")
T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
RUNBOOK = watch_runbook()


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def drain(state: str, figures: list[float | None], **more: object) -> StepRecord:
    samples = [[at(i), f, "failed" if f else "passed"] for i, f in enumerate(figures)]
    monitor = {
        "round": 1,
        "started_at": at(0),
        "ends_at": at(60),
        "state": state,
        "samples": samples,
        **more,
    }
    return StepRecord("INC-7", "drain", StepState.FAILED, attempts=1, monitor=monitor)


def view_of(watch: dict[str, object], records: dict[str, StepRecord]) -> RunView:
    run = Run("INC-7", 7, RUNBOOK.id, RUNBOOK.title, "sev1", RunState.OPEN, "U1", T0)
    run.watch = watch
    return run_view(run, RUNBOOK, records, [], TEAM, now=T0 + timedelta(minutes=20))


def test_a_trend_scales_figures_between_their_least_and_greatest_with_gaps() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([10, None, 0]) == f"█{GAP}▁"
    assert sparkline([3, 3, 3]) == "▄▄▄"  # flat: a middle line, not a floor
    assert sparkline([None, None]) == ""
    assert sparkline([]) == ""
    assert len(sparkline(list(range(100)), width=20)) == 20  # the newest 20


def test_a_figure_is_said_with_its_unit_and_a_missing_one_is_said_missing() -> None:
    assert figure_words(12.0, "webhooks") == "12 webhooks"
    assert figure_words(0.12345, "s") == "0.123 s"
    assert figure_words(None, "s") == "no figure"
    assert figure_words(3, "") == "3"


def test_a_watching_monitor_shows_its_latest_figure_trend_and_end() -> None:
    view = monitor_view(RUNBOOK.step("drain"), drain("watching", [40, 30, None, 10]))  # type: ignore[arg-type]
    assert view is not None
    assert view.watching
    assert view.latest == "10 webhooks"
    assert view.trend == f"█▆{GAP}▁"
    assert view.state_words == "watching until 04:00 UTC"
    assert view.settings == "every 30 s for 1 h until pending == 0"
    assert view.line == f"10 webhooks █▆{GAP}▁ · watching until 04:00 UTC"


def test_a_monitor_that_recovered_or_ran_out_of_time_says_which() -> None:
    step = RUNBOOK.step("drain")
    assert step is not None
    met = monitor_view(step, drain("met", [5, 0], stopped_at=at(2)))
    expired = monitor_view(step, drain("expired", [5, 6], stopped_at=at(60)))
    assert met is not None
    assert expired is not None
    assert met.state_words == "recovered at 03:02 UTC: the condition holds"
    assert expired.state_words == "stopped at 04:00 UTC: time ran out before it recovered"
    assert not met.watching
    assert not expired.watching


def test_a_monitor_whose_last_sample_failed_says_so_and_shows_a_gap() -> None:
    record = drain("watching", [5])
    record.monitor["samples"].append([at(1), None, "error"])  # type: ignore[index]
    view = monitor_view(RUNBOOK.step("drain"), record)  # type: ignore[arg-type]
    assert view is not None
    assert view.latest == "no figure"
    assert view.state_words.endswith("(the last sample failed)")


def test_a_step_that_is_no_monitor_has_no_monitor_view_and_one_not_run_yet_says_so() -> None:
    assert monitor_view(RUNBOOK.step("backlog"), None) is None  # type: ignore[arg-type]
    fresh = monitor_view(RUNBOOK.step("drain"), None)  # type: ignore[arg-type]
    assert fresh is not None
    assert fresh.state == ""
    assert fresh.line.startswith("not watching yet")


def test_the_run_view_holds_the_watch_and_the_monitor_of_each_step() -> None:
    view = view_of(
        {
            "escalated": 2,
            "escalated_at": at(15),
            "clear": True,
            "cleared_at": at(18),
            "rechecked_at": at(18),
        },
        {"drain": drain("watching", [3, 2])},
    )
    assert view.watch.escalation_words == "paged level 2 of 3 at 03:15 UTC"
    assert view.watch.recheck_words == "re-checks: clear since 03:18 UTC (last re-check 03:18 UTC)"
    assert view.step("drain").monitor is not None
    assert view.step("drain").monitor.latest == "2 webhooks"  # type: ignore[union-attr]
    assert view.step("backlog").monitor is None


def test_a_flapping_run_shows_the_problem_back_since_and_how_often() -> None:
    watch = run_watch(
        {"clear": False, "flaps": 3, "returned_at": at(30), "rechecked_at": at(31)},
        "sev1",
        RUNBOOK,
        TEAM,
    )
    assert watch.recheck_words == (
        "re-checks: problem back since 03:30 UTC, flapping (came back 3 times) "
        "(last re-check 03:31 UTC)"
    )
    assert watch.escalation_words == ""
    assert watch.recheck_every == "1h"


def test_a_run_the_scheduler_has_not_touched_has_an_empty_watch_line() -> None:
    view = view_of({}, {})
    assert view.watch.line == ""
    assert view.watch.levels == 3
    assert run_watch({}, "sev3", None, Team()).levels == 0


def test_a_job_says_what_it_does_next_and_when() -> None:
    job = ScheduledJob(
        "escalate:INC-7:2",
        "INC-7",
        "escalate",
        "page level 2 (S0000DEVOPS) unless acknowledged",
        T0 + timedelta(minutes=40),
    )
    assert job_line(job) == "next: page level 2 (S0000DEVOPS) unless acknowledged at 03:40 UTC"
    paused = ScheduledJob("x", "INC-7", "recheck", "re-check", None)
    assert job_line(paused) == "next: re-check (paused)"
    late = dataclasses.replace(job, overdue=True)
    assert job_line(late) == (
        "overdue: page level 2 (S0000DEVOPS) unless acknowledged, due at 03:40 UTC; no bot "
        "process is scheduling (start `serve`)"
    )
