"""What the scheduler's events look like in Slack, against the fake Slack on loopback.

The scheduler itself is not running here: the test issues the commands its jobs issue
(``Escalate``, ``Recheck``, ``Remind``, a monitor's next sample), through the engine's one entry
point, and reads the thread: a page mentions who is paged and its Acknowledge button works; a
cleared problem offers Resolve; a monitor keeps one message, edited in place, that ends saying
why it stopped; a re-check's result changes the card and posts nothing; reminders are told.
The runbook is ``watch_runbook``'s: its figure is the count of unprocessed webhooks in the
test's scratch copy of the backend's database.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import slack_fixtures
import walkthrough_http
from fake_slack import FakeSlack
from slack_fixtures import ALERTS, World, alert_event, header_of, serving, slack_settings, words
from walkthrough_http import FakeBackend
from walkthrough_seed import RESPONDER
from watch_runbook import ALERTNAME, write_runbook

from agape_ops.bootstrap import build
from agape_ops.engine.commands import Escalate, Recheck, Remind, RunStep, SetState
from agape_ops.engine.records import Run, RunState, ScheduledJob, SchedulerState
from agape_ops.engine.steps import BOT

pytestmark = pytest.mark.integration

fake = walkthrough_http.fake
fake_slack = slack_fixtures.fake_slack
#: A monitor message's header: "👁️ Watching 3. …" while it watches, "✅ Watched …" after.
WATCHING = re.compile(r"(Watching|Watched) \d+\. ")


@pytest.fixture
async def world(
    backend_db: str, redis_db: str, tmp_path: Path, fake: FakeBackend, fake_slack: FakeSlack
) -> AsyncIterator[World]:
    """The served bot over the monitored runbook alone."""
    fake.router.route(host="127.0.0.1").pass_through()
    folder = write_runbook(tmp_path / "runbooks")
    config = slack_settings(backend_db, redis_db, tmp_path, fake_slack, runbooks_dir=folder)
    async with serving(config, fake_slack) as served:
        yield served


def backlog(dsn: str, waiting: int) -> None:
    """Leave exactly ``waiting`` received (unprocessed) webhooks in the backend's database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM webhook_events")
        for n in range(waiting):
            conn.execute(
                "INSERT INTO webhook_events (event_type, reference, status) "
                "VALUES ('charge.success', %s, 'received')",
                (f"ref-{n}",),
            )


async def opened(world: World, backend_db: str, waiting: int = 3) -> tuple[str, Run]:
    """Fire the alert with ``waiting`` webhooks unprocessed; return its thread and run once
    the detection finding is on the card."""
    backlog(backend_db, waiting)
    event = alert_event(ALERTNAME)
    await world.alert(event)
    thread = str(event["ts"])
    await world.card_saying(thread, f"{waiting} webhooks waiting")
    return thread, await world.run_of(thread)


def monitor_messages(world: World, thread: str) -> list[dict[str, Any]]:
    return [m for m in world.replies(thread) if WATCHING.search(header_of(m))]


def showing(world: World, thread: str, text: str) -> Callable[[FakeSlack], bool]:
    """Whether the thread's monitor message shows ``text`` now."""
    return lambda _: any(text in words(m) for m in monitor_messages(world, thread))


# --- escalation -------------------------------------------------------------------------------


async def test_a_page_mentions_the_group_and_its_acknowledge_button_acknowledges(
    world: World, backend_db: str
) -> None:
    thread, run = await opened(world, backend_db)
    engine = world.container.engine

    await engine.execute(Escalate(run.id, 1, BOT, f"escalate:{run.id}:1"))
    page = await world.reply_saying(thread, "level 1 of 3")

    text = words(page)
    assert "<!subteam^S0000ONCALL>" in text
    assert f"*{run.id}*" in text
    assert "has not been acknowledged for" in text
    assert "&lt;b&gt;" in text  # the runbook's title is data: escaped
    await world.card_saying(thread, "paged level 1 of 3")

    await world.press(page, RESPONDER, "Acknowledge")
    await world.card_saying(thread, f"acknowledged by {RESPONDER}")
    acknowledged = await engine.get_run(run.id)
    assert acknowledged.state is RunState.ACKNOWLEDGED
    assert acknowledged.acknowledged_by == RESPONDER

    # Acknowledged: the next level pages nobody, and nothing more is said.
    outcome = await engine.execute(Escalate(run.id, 2, BOT, f"escalate:{run.id}:2"))
    assert outcome.message.startswith("no page")
    await world.settle()
    assert [m for m in world.replies(thread) if "level 2 of" in words(m)] == []


async def test_a_page_of_two_levels_due_together_is_told_once_each_to_each_level(
    world: World, backend_db: str
) -> None:
    thread, run = await opened(world, backend_db)
    engine = world.container.engine

    await engine.execute(Escalate(run.id, 2, BOT, f"escalate:{run.id}:2"))
    await engine.execute(Escalate(run.id, 2, BOT, f"escalate:{run.id}:2"))  # fired twice
    second = await world.reply_saying(thread, "level 2 of 3")
    await world.settle()

    assert "<@U0000DEVOPS>" in words(second)
    pages = [m for m in world.replies(thread) if "has not been acknowledged" in words(m)]
    assert len(pages) == 2
    assert "<!subteam^S0000ONCALL>" in words(pages[0])


# --- re-checks --------------------------------------------------------------------------------


async def test_a_cleared_problem_is_told_with_resolve_and_the_recheck_posts_no_result(
    world: World, backend_db: str
) -> None:
    thread, run = await opened(world, backend_db)
    engine = world.container.engine
    await world.settle()
    before = len(world.replies(thread))

    backlog(backend_db, 0)
    await engine.execute(Recheck(run.id, BOT, f"recheck:{run.id}:1"))
    cleared = await world.reply_saying(thread, "every re-checked condition is clear now")
    await world.card_saying(thread, "0 webhooks waiting")
    await world.card_saying(thread, "re-checks: clear since")
    await world.settle()

    assert len(world.replies(thread)) == before + 1  # the clear; the result itself is not told
    assert not any("0 webhooks waiting" in words(m) for m in world.replies(thread) if m != cleared)

    await world.press(cleared, RESPONDER, "Resolve")
    await world.card_saying(thread, "*Resolved*")
    assert (await engine.get_run(run.id)).state is RunState.RESOLVED


async def test_a_flapping_problem_is_told_once_back_then_shown_on_the_card_only(
    world: World, backend_db: str
) -> None:
    thread, run = await opened(world, backend_db)
    engine = world.container.engine
    for tick, waiting in enumerate([0, 2, 0, 4, 0], start=1):
        backlog(backend_db, waiting)
        await engine.execute(Recheck(run.id, BOT, f"recheck:{run.id}:{tick}"))
    await world.card_saying(thread, "flapping (came back 2 times)")
    await world.settle()

    said = [words(m) for m in world.replies(thread)]
    assert len([w for w in said if "every re-checked condition is clear now" in w]) == 1
    assert len([w for w in said if "the problem is back" in w]) == 1


# --- monitors ---------------------------------------------------------------------------------


async def test_a_monitor_keeps_one_message_edited_in_place_and_ends_saying_why(
    world: World, backend_db: str
) -> None:
    thread, run = await opened(world, backend_db)
    engine = world.container.engine

    await engine.execute(RunStep(run.id, "drain", RESPONDER, "press-drain"))
    first = await world.slack.wait_for(
        lambda _: monitor_messages(world, thread), what="the monitor's message"
    )
    (message,) = first
    assert "3 webhooks" in words(message)
    assert "every 30 s for 1 h until pending == 0" in words(message)

    for tick, waiting in enumerate([2, 1], start=1):
        backlog(backend_db, waiting)
        await engine.execute(RunStep(run.id, "drain", BOT, f"monitor:{tick}", purpose="monitor"))
        await world.slack.wait_for(showing(world, thread, f"{waiting} webhooks"), what=f"{waiting}")
    await world.card_saying(thread, "📈 1 webhooks █▅▁ · watching until")

    backlog(backend_db, 0)
    await engine.execute(RunStep(run.id, "drain", BOT, "monitor:3", purpose="monitor"))
    stopped = await world.reply_saying(thread, "recovered (pending == 0)")
    final = await world.slack.wait_for(
        lambda _: [m for m in monitor_messages(world, thread) if "recovered at" in words(m)],
        what="the monitor's final update",
    )
    await world.settle()

    (edited,) = final
    assert edited["ts"] == message["ts"]  # one message, edited in place
    assert len(monitor_messages(world, thread)) == 1
    assert "0 webhooks" in words(edited)
    assert "✅" in header_of(edited)
    assert stopped["ts"] != message["ts"]
    posted = [c for c in world.slack.calls("chat.postMessage") if WATCHING.search(str(c.params))]
    assert len(posted) == 1
    # The samples are not told: only the press's own result says "still waiting".
    said = [words(m) for m in world.replies(thread) if not WATCHING.search(header_of(m))]
    assert len([w for w in said if "3 webhooks still waiting" in w]) == 1
    assert not any("2 webhooks still waiting" in w or "1 webhooks" in w for w in said)
    assert "4 samples" in words(edited)
    assert not WATCHING.search(str((await engine.get_run(run.id)).surface.get("card")))
    assert "monitor:drain:1" in (await engine.get_run(run.id)).surface


async def test_a_monitor_whose_time_runs_out_says_so_in_its_message_and_the_thread(
    world: World, backend_db: str
) -> None:
    thread, run = await opened(world, backend_db)
    engine = world.container.engine
    await engine.execute(RunStep(run.id, "drain", RESPONDER, "press-drain"))
    (message,) = await world.slack.wait_for(
        lambda _: monitor_messages(world, thread), what="the monitor's message"
    )

    later = datetime.now(UTC) + timedelta(hours=1, minutes=1)
    engine.clock = lambda: later  # the controllable clock: past the monitor's hour
    await engine.execute(RunStep(run.id, "drain", BOT, "monitor:1", purpose="monitor"))
    said = await world.reply_saying(thread, "without it recovering")
    final = await world.slack.wait_for(showing(world, thread, "time ran out"), what="expired")
    await world.settle()

    assert final
    (edited,) = monitor_messages(world, thread)
    assert edited["ts"] == message["ts"]
    assert "⌛" in header_of(edited)
    assert "⌛" in words(said)
    outcome = await engine.execute(RunStep(run.id, "drain", BOT, "monitor:2", purpose="monitor"))
    assert "not being watched" in outcome.message  # stopped: no more samples


# --- reminders --------------------------------------------------------------------------------


async def test_a_status_reminder_hints_at_ops_note_and_post_incident_lists_what_is_left(
    world: World, backend_db: str
) -> None:
    thread, run = await opened(world, backend_db)
    engine = world.container.engine
    later = datetime.now(UTC) + timedelta(minutes=31)
    engine.clock = lambda: later  # the controllable clock: half an hour without an update

    await engine.execute(Remind(run.id, "status", BOT, f"status:{run.id}:1"))
    status = await world.reply_saying(thread, "a status update is due")
    assert f"`/ops note {run.id} &lt;what changed&gt;`" in words(status)

    await engine.execute(SetState(run.id, "resolved", RESPONDER, "resolve", confirmed=True))
    await engine.execute(Remind(run.id, "post_incident", BOT, f"post_incident:{run.id}:1"))
    left = await world.reply_saying(thread, "Post-incident work")
    text = words(left)
    assert "• Write the timeline" in text
    assert "• Book the review &lt;!channel&gt;" in text  # data is escaped, never obeyed


# --- /ops status --------------------------------------------------------------------------------


class Board:
    """The engine's job board port, as the scheduler would fill it."""

    def __init__(self, jobs: list[ScheduledJob]) -> None:
        self.listed = jobs
        self.asked: list[str | None] = []

    async def jobs(self, run_id: str | None = None) -> list[ScheduledJob]:
        self.asked.append(run_id)
        return [job for job in self.listed if run_id in (None, job.run_id)]

    def state(self) -> SchedulerState:
        return SchedulerState("standby")


async def test_ops_status_lists_the_runs_scheduled_jobs(world: World, backend_db: str) -> None:
    _thread, run = await opened(world, backend_db)
    at = world.container.engine.clock().replace(second=0, microsecond=0) + timedelta(minutes=10)
    board = Board(
        [
            ScheduledJob(
                f"escalate:{run.id}:2",
                run.id,
                "escalate",
                "page level 2 (U0000DEVOPS) unless acknowledged",
                at,
            ),
            ScheduledJob("escalate:INC-999:1", "INC-999", "escalate", "someone else's", at),
        ]
    )
    world.container.engine.job_board = board

    response = await world.sender.command(f"status {run.id}", user=RESPONDER, channel=ALERTS)
    assert response.status_code == 200, response.text
    answer = await world.ephemeral_to(RESPONDER, "next: page level 2")

    text = words(answer)
    assert f"next: page level 2 (U0000DEVOPS) unless acknowledged at {at:%H:%M} UTC" in text
    assert "someone else's" not in text
    assert board.asked == [run.id]


async def test_a_page_committed_while_no_bot_served_is_told_once_when_one_starts(
    backend_db: str, redis_db: str, tmp_path: Path, fake: FakeBackend, fake_slack: FakeSlack
) -> None:
    fake.router.route(host="127.0.0.1").pass_through()
    folder = write_runbook(tmp_path / "runbooks")
    config = slack_settings(backend_db, redis_db, tmp_path, fake_slack, runbooks_dir=folder)
    async with serving(config, fake_slack) as first:
        thread, run = await opened(first, backend_db)
    # The bot is down; a process with no Slack surface (`agape-ops schedule`) pages.
    elsewhere = await build(config, configure_logs=False)
    try:
        await elsewhere.engine.execute(Escalate(run.id, 1, BOT, f"escalate:{run.id}:1"))
    finally:
        await elsewhere.aclose()
    assert [m for m in fake_slack.messages(thread_ts=thread) if "level 1 of" in words(m)] == []

    async with serving(config, fake_slack) as restarted:
        page = await restarted.reply_saying(thread, "level 1 of 3")
        assert "<!subteam^S0000ONCALL>" in words(page)
    async with serving(config, fake_slack) as again:  # told once: a later start skips it
        await again.settle()
        assert len([m for m in again.replies(thread) if "level 1 of" in words(m)]) == 1


class BrokenBoard(Board):
    """A job board whose table cannot be read (a store hiccup, a table another version wrote)."""

    async def jobs(self, run_id: str | None = None) -> list[ScheduledJob]:
        raise RuntimeError("relation ops_scheduler_jobs does not exist")


async def test_ops_status_still_shows_the_run_when_its_jobs_cannot_be_read(
    world: World, backend_db: str
) -> None:
    _thread, run = await opened(world, backend_db)
    world.container.engine.job_board = BrokenBoard([])

    response = await world.sender.command(f"status {run.id}", user=RESPONDER, channel=ALERTS)
    assert response.status_code == 200, response.text
    answer = await world.ephemeral_to(RESPONDER, "could not be read")

    text = words(answer)
    assert "the scheduled jobs could not be read (RuntimeError)" in text
    assert run.id in text  # the card is there all the same
    assert "ops_scheduler_jobs" not in text  # the detail stays in the log
