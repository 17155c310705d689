"""The scheduler over real stores, on a clock the test moves: escalation, re-checks, monitors,
reminders, a restart mid-escalation, a job that raises, and the job list.

Every test moves the clock, wakes the scheduler and waits (with a deadline) for the events it
expects in the store; none sleeps to synchronise.
"""

from __future__ import annotations

from collections import Counter

import scheduler_fixtures
import store_fixtures
from scheduler_fixtures import Drill

store_url = store_fixtures.store_url
fake_time = scheduler_fixtures.fake_time
drill = scheduler_fixtures.drill


def levels(events: list[object]) -> Counter[int]:
    return Counter(int(e.detail["level"]) for e in events)  # type: ignore[attr-defined]


async def test_escalation_pages_three_levels_in_turn(drill: Drill) -> None:
    run = await drill.open_run()
    await drill.start_scheduler()
    jobs = await drill.wait_jobs(run.id, lambda j: len(j) >= 3, "three escalation jobs")
    assert {f"{run.id}:escalate:{n}" for n in (1, 2, 3)} <= set(jobs)

    drill.advance(minutes=4)
    drill.advance(minutes=1, seconds=1)  # 5m01s: level 1
    await drill.wait_events(run.id, "run.escalated", 1)
    paged = await drill.events(run.id, "run.escalated")
    assert paged[0].detail["notify"] == ["U0ONCALL1"]

    drill.advance(minutes=5)  # 10m01s: level 2
    await drill.wait_events(run.id, "run.escalated", 2)
    drill.advance(minutes=5)  # 15m01s: level 3
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
    drill.advance(minutes=5, seconds=1)
    await drill.wait_events(run.id, "run.escalated", 1)

    await drill.acknowledge(run.id)
    jobs = await drill.wait_jobs(
        run.id, lambda j: not [i for i in j if ":escalate:" in i], "escalation jobs removed"
    )
    assert f"{run.id}:recheck" in jobs  # the run is still watched, just not escalated

    drill.advance(minutes=20)  # past levels 2 and 3
    # Something that fires afterwards (a re-check) proves the scheduler ran past those times.
    await drill.wait_rechecked(run.id)
    assert levels(await drill.events(run.id, "run.escalated")) == Counter({1: 1})
