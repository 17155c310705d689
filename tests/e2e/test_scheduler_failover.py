"""The scheduler across `agape-ops serve` processes on one PostgreSQL store: the process holding
the scheduler's lease is killed mid-escalation and the other pages the rest, each level once;
a lone bot stopped and started again mid-escalation pages each level once too.

The pages are counted in the store (``run.escalated`` events, one per level) and in the fake
Slack (one message per level in the run's thread); the team file pages
at 3 s, 6 s and 9 s, and the lease is tried every second (``OPS_SCHEDULER_POLL_S``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fake_slack import FakeSlack
from slack_fixtures import BOT_TOKEN, SIGNING_SECRET, alert_event, free_port
from slack_requests import SlackSender
from test_slack_serve import Bot, serve, serve_env
from test_walkthroughs import oversold
from walkthrough_seed import seed

pytestmark = pytest.mark.e2e

TEAM = """\
escalation:
  - {after: 3s, notify: [S0ONCALL01]}
  - {after: 6s, notify: [U0DEVOPS01]}
  - {after: 9s, notify: [U0CTO00001]}
reminders: {status_update: {}, post_incident: null}
"""
LEADS = "this process runs the scheduler now"


def env_for(tmp_path: Path, slack: FakeSlack, store: str, backend: str) -> dict[str, str]:
    env = serve_env(tmp_path, slack, store, backend, free_port())
    team = tmp_path / "team.yaml"
    team.write_text(TEAM)
    env.update(OPS_TEAM_FILE=str(team), OPS_SCHEDULER_POLL_S="1", OPS_LOG_LEVEL="INFO")
    return env


async def pages(store: str) -> Counter[int]:
    """The levels paged, as the store's timeline has them, with how often each."""
    async with await psycopg.AsyncConnection.connect(store) as conn:
        cursor = await conn.execute("SELECT detail FROM ops_events WHERE kind = 'run.escalated'")
        return Counter(int(row[0]["level"]) for row in await cursor.fetchall())


async def escalation_jobs(store: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(store) as conn:
        cursor = await conn.execute("SELECT id FROM ops_scheduler_jobs WHERE id LIKE '%escalate%'")
        return [str(row[0]) for row in await cursor.fetchall()]


async def wait_until(check: Any, within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.1)


async def paged_at_least(store: str, levels: int, within_s: float = 15) -> Counter[int]:
    async def check() -> Counter[int] | None:
        found = await pages(store)
        return found if len(found) >= levels else None

    result: Counter[int] = await wait_until(check, within_s, f"{levels} levels paged")
    return result


async def escalation_done(store: str) -> None:
    async def check() -> bool:
        return not await escalation_jobs(store)

    await wait_until(check, 15, "no escalation job left")


async def told_once_each(slack: FakeSlack, levels: int = 3) -> None:
    """Wait until Slack has each level's page in the thread, then check none is there twice."""

    def told(fake: FakeSlack) -> list[str]:
        said = [str(m.get("text", "")) for m in fake.messages()]
        return [t for t in said if "has not been acknowledged" in t]

    # A page the killed process had claimed but not sent is taken over once its 30 s lease ends.
    found = await slack.wait_for(lambda fake: told(fake) if len(told(fake)) >= levels else [], 45)
    for level in range(1, levels + 1):
        assert len([t for t in found if f"level {level} of {levels}" in t]) == 1, found
    assert len(told(slack)) == levels


def leads(bot: Bot) -> bool:
    return LEADS in bot.log.read_text(errors="replace")


async def open_run(bot: Bot) -> None:
    async with SlackSender(bot.url, SIGNING_SECRET) as sender:
        response = await sender.event(alert_event("NegativeStock"), event_id="Ev0SCHED0001")
        assert response.status_code == 200, response.text


async def test_the_other_bot_takes_over_the_escalation_when_the_leader_is_killed(
    tmp_path: Path,
    empty_db: str,
    backend_db: str,
    backend_conn: psycopg.AsyncConnection[Any],
) -> None:
    await seed(backend_conn, *oversold())
    async with FakeSlack(bot_token=BOT_TOKEN) as slack:
        env = env_for(tmp_path, slack, empty_db, backend_db)
        async with serve(env, tmp_path, "a") as a:
            await a.healthy()
            assert await wait_until(lambda: _now(leads(a)), 10, "a to lead")
            other = {**env, "PORT": str(free_port())}
            async with serve(other, tmp_path, "b") as b:
                await b.healthy()
                await open_run(b)  # the alert reaches the bot that does not schedule
                assert await paged_at_least(empty_db, 1) == Counter({1: 1})

                killed = time.monotonic()
                await a.stop(signal.SIGKILL)  # the scheduling process dies
                await wait_until(lambda: _now(leads(b)), 10, "b to take over")
                took_over_s = time.monotonic() - killed
                await paged_at_least(empty_db, 3)
                await escalation_done(empty_db)
                await told_once_each(slack)  # the pages reach the thread once each
                assert not leads(a) or a.process.returncode is not None
        assert took_over_s < 5, took_over_s
        assert await pages(empty_db) == Counter({1: 1, 2: 1, 3: 1})


async def test_a_bot_restarted_mid_escalation_pages_each_level_once(
    tmp_path: Path,
    empty_db: str,
    backend_db: str,
    backend_conn: psycopg.AsyncConnection[Any],
) -> None:
    await seed(backend_conn, *oversold())
    async with FakeSlack(bot_token=BOT_TOKEN) as slack:
        env = env_for(tmp_path, slack, empty_db, backend_db)
        async with serve(env, tmp_path, "first") as first:
            await first.healthy()
            await open_run(first)
            assert await paged_at_least(empty_db, 1) == Counter({1: 1})
            assert await first.stop(signal.SIGTERM) == 0  # a clean stop mid-escalation
        async with serve(env, tmp_path, "again") as again:
            await again.healthy()
            await paged_at_least(empty_db, 3)
            await escalation_done(empty_db)
            await told_once_each(slack)  # one stopped before telling is told on the restart
            assert leads(again)
    assert await pages(empty_db) == Counter({1: 1, 2: 1, 3: 1})


async def _now(value: bool) -> bool:
    return value
