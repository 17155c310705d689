"""The scheduler over real stores, on a clock the test moves: escalation, re-checks, monitors,
reminders, a restart mid-escalation, a job that raises, and the job list.

Every test moves the clock, wakes the scheduler and waits (with a deadline) for the events it
expects in the store; none sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import scheduler_fixtures
import store_fixtures
from click.testing import CliRunner
from engine_fixtures import poll_until
from scheduler_fixtures import Drill

from agape_ops.cli import build
from agape_ops.engine.commands import Escalate
from agape_ops.engine.records import Event

store_url = store_fixtures.store_url
fake_time = scheduler_fixtures.fake_time
drill = scheduler_fixtures.drill


def levels(events: list[Event]) -> Counter[int]:
    """How often each level was paged."""
    return Counter(int(e.detail["level"]) for e in events)


async def test_escalation_pages_three_levels_in_turn(drill: Drill) -> None:
    run = await drill.open_run()
    await drill.start_scheduler()
    jobs = await drill.wait_jobs(run.id, lambda j: len(j) >= 3, "three escalation jobs")
    assert {f"{run.id}:escalate:{n}" for n in (1, 2, 3)} <= set(jobs)

    await drill.advance(minutes=4)
    await drill.advance(minutes=1, seconds=1)  # 5m01s: level 1
    await drill.wait_events(run.id, "run.escalated", 1)
    paged = await drill.events(run.id, "run.escalated")
    assert paged[0].detail["notify"] == ["U0ONCALL1"]

    await drill.advance(minutes=5)  # 10m01s: level 2
    await drill.wait_events(run.id, "run.escalated", 2)
    await drill.advance(minutes=5)  # 15m01s: level 3
    await drill.wait_events(run.id, "run.escalated", 3)

    paged = await drill.events(run.id, "run.escalated")
    assert levels(paged) == Counter({1: 1, 2: 1, 3: 1})
    assert [e.detail["notify"] for e in paged] == [["U0ONCALL1"], ["U0DEVOPS1"], ["U0CTO0001"]]
    assert "nobody has acknowledged" in paged[2].summary
    await drill.wait_jobs(
        run.id, lambda j: not [i for i in j if ":escalate:" in i], "no escalation left"
    )


async def test_acknowledging_stops_the_escalation(drill: Drill) -> None:
    run = await drill.open_run()
    await drill.start_scheduler()
    await drill.advance(minutes=5, seconds=1)
    await drill.wait_events(run.id, "run.escalated", 1)

    await drill.acknowledge(run.id)
    jobs = await drill.wait_jobs(
        run.id, lambda j: not [i for i in j if ":escalate:" in i], "escalation jobs removed"
    )
    assert f"{run.id}:recheck" in jobs  # the run is still watched, just not escalated

    await drill.advance(minutes=20)  # past levels 2 and 3
    # Something that fires afterwards (a re-check) proves the scheduler ran past those times.
    await drill.wait_rechecked(run.id)
    assert levels(await drill.events(run.id, "run.escalated")) == Counter({1: 1})


async def test_recheck_tells_the_first_clear_and_return_then_only_counts_flapping(
    drill: Drill,
) -> None:
    run = await drill.open_run()  # the check finds stock below zero
    await drill.start_scheduler()
    await drill.acknowledge(run.id)
    await drill.wait_jobs(run.id, lambda j: f"{run.id}:recheck" in j, "the re-check job")

    await drill.set_stock(0)  # the problem clears in the backend's database
    await drill.advance(minutes=1)
    await drill.wait_events(run.id, "run.cleared", 1)
    cleared = (await drill.events(run.id, "run.cleared"))[0]
    assert cleared.detail == {"told": True, "flaps": 0}
    assert "every re-checked condition is clear" in cleared.summary

    await drill.set_stock(-2)  # back
    await drill.advance(minutes=1)
    await drill.wait_events(run.id, "run.returned", 1)
    returned = (await drill.events(run.id, "run.returned"))[0]
    assert returned.detail == {"told": True, "flaps": 1}
    assert "the problem is back" in returned.summary

    await drill.set_stock(0)  # clears again: flapping, counted but not told
    await drill.advance(minutes=1)
    await drill.wait_events(run.id, "run.cleared", 2)
    again = (await drill.events(run.id, "run.cleared"))[1]
    assert again.detail == {"told": False, "flaps": 1}

    await drill.advance(minutes=1)  # no change: nothing more on the timeline
    found = await drill.wait_rechecked(run.id)
    assert found.watch["clear"] is True
    assert len(await drill.events(run.id, "run.cleared")) == 2


async def test_monitor_stops_when_its_condition_holds(drill: Drill) -> None:
    run = await drill.open_run()
    await drill.start_scheduler()
    await drill.watch_backlog(run.id)

    await drill.advance(seconds=30)
    await drill.wait_samples(run.id, 2)
    drill.set_backlog(4)  # below the `until: depth < 10`
    await drill.advance(seconds=30)
    await drill.wait_events(run.id, "monitor.stopped", 1)

    stopped = (await drill.events(run.id, "monitor.stopped"))[0]
    assert "recovered (depth < 10)" in stopped.summary
    record = (await drill.store.get_steps(run.id))["backlog"]
    assert record.monitor is not None
    assert record.monitor["state"] == "met"
    assert [s[1] for s in record.monitor["samples"]] == [50, 50, 4]
    await drill.wait_jobs(run.id, lambda j: f"{run.id}:monitor:backlog" not in j, "no monitor")


async def test_monitor_stops_when_its_time_runs_out_and_keeps_going_past_errors(
    drill: Drill,
) -> None:
    run = await drill.open_run()
    await drill.start_scheduler()
    await drill.watch_backlog(run.id)

    drill.backlog.failures["backlog"] = ConnectionError("redis went away")
    await drill.advance(seconds=30)
    await drill.wait_samples(run.id, 2)
    record = (await drill.store.get_steps(run.id))["backlog"]
    assert record.monitor is not None
    assert record.monitor["state"] == "watching"  # an adapter fault does not end the watch
    assert record.monitor["samples"][-1][1:] == [None, "error"]

    drill.set_backlog(60)
    for samples in (3, 4, 5):  # 1m, 1m30s, 2m: the last is at the end of `for: 2m`
        await drill.advance(seconds=30)
        await drill.wait_samples(run.id, samples)
    await drill.wait_events(run.id, "monitor.stopped", 1)
    stopped = (await drill.events(run.id, "monitor.stopped"))[0]
    assert "after 2 min without it recovering" in stopped.summary
    record = (await drill.store.get_steps(run.id))["backlog"]
    assert record.monitor is not None
    assert record.monitor["state"] == "expired"
    assert [s[2] for s in record.monitor["samples"]].count("error") == 1


async def test_status_reminders_for_sev1_but_not_after_a_recent_note(drill: Drill) -> None:
    run = await drill.open_run()  # sev1: a status update every 30m
    await drill.start_scheduler()
    await drill.acknowledge(run.id)
    await drill.wait_jobs(run.id, lambda j: f"{run.id}:status" in j, "the status reminder")

    await drill.advance(minutes=30)
    await drill.wait_events(run.id, "run.reminded", 1)
    reminded = (await drill.events(run.id, "run.reminded"))[0]
    assert reminded.detail == {"what": "status"}
    assert "a status update is due" in reminded.summary

    drill.clock.advance(minutes=15)
    await drill.note(run.id, "stock corrected on TEE-042; watching")  # at 45m
    fired = drill.fired()
    await drill.advance(minutes=15)  # 60m: the reminder's tick, 15m after the note
    await drill.wait_fired(fired + 2)  # the status reminder and the re-check ran
    assert len(await drill.events(run.id, "run.reminded")) == 1

    await drill.advance(minutes=30)  # 90m: 45m after the note, an update is due again
    await drill.wait_events(run.id, "run.reminded", 2)
    again = (await drill.events(run.id, "run.reminded"))[1]
    assert "since the last one" in again.summary


async def test_post_incident_reminder_until_the_checklist_is_done(drill: Drill) -> None:
    run = await drill.open_run()
    await drill.start_scheduler()
    await drill.acknowledge(run.id)
    drill.clock.advance(minutes=10)
    await drill.resolve(run.id)
    await drill.wait_jobs(
        run.id, lambda j: j == [f"{run.id}:post_incident"], "only the post-incident reminder"
    )

    await drill.advance(hours=24)
    await drill.wait_events(run.id, "run.reminded", 1)
    reminded = (await drill.events(run.id, "run.reminded"))[0]
    assert reminded.detail["what"] == "post_incident"
    assert reminded.detail["left"] == ["Write the postmortem", "File the tickets"]

    await drill.tick_item(run.id, 0)
    await drill.advance(hours=24)
    await drill.wait_events(run.id, "run.reminded", 2)
    assert (await drill.events(run.id, "run.reminded"))[1].detail["left"] == ["File the tickets"]

    await drill.tick_item(run.id, 1)
    await drill.wait_jobs(run.id, lambda j: not j, "no job once the checklist is done")
    fired = drill.fired()
    await drill.advance(hours=24)
    assert drill.fired() == fired
    assert len(await drill.events(run.id, "run.reminded")) == 2


async def test_restart_mid_escalation_pages_each_level_exactly_once(drill: Drill) -> None:
    run = await drill.open_run()
    await drill.start_scheduler()
    await drill.advance(minutes=5, seconds=1)
    await drill.wait_events(run.id, "run.escalated", 1)

    await drill.stop_scheduler()  # the bot stops...
    drill.clock.advance(minutes=6)  # ...while level 2 falls due (11m01s)
    await drill.start_scheduler()  # a new process on the same store
    await drill.wait_events(run.id, "run.escalated", 2)

    await drill.stop_scheduler()
    drill.clock.advance(minutes=30)  # level 3 falls due while nothing runs
    await drill.start_scheduler()
    await drill.wait_events(run.id, "run.escalated", 3)
    await drill.wait_jobs(
        run.id, lambda j: not [i for i in j if ":escalate:" in i], "no escalation left"
    )
    assert levels(await drill.events(run.id, "run.escalated")) == Counter({1: 1, 2: 1, 3: 1})


async def test_restart_after_two_levels_fell_due_pages_both_in_order(drill: Drill) -> None:
    run = await drill.open_run()
    await drill.start_scheduler()
    await drill.advance(minutes=5, seconds=1)
    await drill.wait_events(run.id, "run.escalated", 1)
    await drill.stop_scheduler()
    drill.clock.advance(minutes=20)  # levels 2 and 3 both fall due while nothing runs
    await drill.start_scheduler()
    await drill.wait_events(run.id, "run.escalated", 3)
    await drill.wait_jobs(
        run.id, lambda j: not [i for i in j if ":escalate:" in i], "no escalation left"
    )
    paged = await drill.events(run.id, "run.escalated")
    assert [e.detail["level"] for e in paged] == [1, 2, 3]


async def test_a_job_that_raises_is_logged_and_retried(
    drill: Drill, caplog: pytest.LogCaptureFixture
) -> None:
    run = await drill.open_run()
    service = await drill.start_scheduler()
    outage = drill.store_outage(Escalate, times=1)  # the store is away for the first page

    with caplog.at_level(logging.ERROR, logger="agape_ops.scheduler.runner"):
        await drill.advance(minutes=5, seconds=1)
        await poll_until(
            lambda: _true(service.scheduler.failed == 1), within_s=10, what="the job failed"
        )
    assert outage.raised == 1
    assert any(f"job {run.id}:escalate:1 failed" in r.getMessage() for r in caplog.records)
    assert await drill.events(run.id, "run.escalated") == []
    jobs = await drill.wait_jobs(
        run.id, lambda j: f"{run.id}:escalate:1:retry" in j, "the retry is scheduled"
    )
    assert f"{run.id}:escalate:1:retry" in jobs

    await drill.advance(seconds=30)  # the retry
    await drill.wait_events(run.id, "run.escalated", 1)
    await drill.wait_jobs(run.id, lambda j: not [i for i in j if "retry" in i], "retry done")
    assert levels(await drill.events(run.id, "run.escalated")) == Counter({1: 1})


async def _true(value: bool) -> bool:
    return value


async def test_jobs_lists_what_is_scheduled(
    drill: Drill, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = await drill.open_run()
    await drill.start_scheduler()
    await drill.wait_jobs(run.id, lambda j: len(j) == 5, "five jobs")
    found = await drill.engine.jobs(run.id)
    assert sorted(job.kind for job in found) == [
        "escalate",
        "escalate",
        "escalate",
        "recheck",
        "status",
    ]
    assert [job.next_at for job in found] == sorted(job.next_at for job in found if job.next_at)
    assert found[0].next_at == drill.clock.now + timedelta(minutes=1)  # the first re-check

    # `agape-ops jobs` reads the same job store from another process's point of view.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPS_DATABASE_URL", drill.url)
    result = await asyncio.to_thread(CliRunner().invoke, build(), ["jobs", run.id])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 5
    assert all(line.startswith(run.id) for line in lines)
    assert "page level 3 (U0CTO0001) unless acknowledged" in result.output
