"""`agape-ops serve` as a black box: processes started as an operator starts them, driven only
through Slack's contract (signed HTTP requests or Socket Mode) against the fake Slack.

Two replicas on one PostgreSQL store receive the same events, retries and clicks; one is killed
mid-run and the other carries on; a restart keeps the old buttons working; Socket Mode gets the
same walkthrough over a WebSocket.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fake_slack import FakeSlack
from slack_fixtures import (
    ALERTS,
    BOT_TOKEN,
    SIGNING_SECRET,
    alert_event,
    button_action,
    free_port,
    header_of,
    words,
)
from slack_requests import SlackSender, block_actions_payload, event_callback
from test_walkthroughs import VARIANTS, oversold, stock
from walkthrough_seed import APPROVER, RESPONDER, seed

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AGAPE = str(REPO / ".venv" / "bin" / "agape-ops")
START_S = 30.0


def serve_env(
    tmp_path: Path, slack: FakeSlack, store: str, backend: str, port: int
) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "ALERTS_CHANNEL": ALERTS,
        "PORT": str(port),
        "OPS_DATABASE_URL": store,
        "DATABASE_URL": backend,
        "RUNBOOKS_DIR": str(REPO / "runbooks"),
        "OPS_TEAM_FILE": str(REPO / "team.yaml"),
        "OPS_RESPONDERS": RESPONDER,
        "OPS_APPROVERS": APPROVER,
    }


class Bot:
    """One `agape-ops serve` process and a sender signed for it."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    async def healthy(self) -> None:
        deadline = time.monotonic() + START_S
        async with httpx.AsyncClient(base_url=self.url) as client:
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self.process.returncode is not None or time.monotonic() > deadline:
                    raise AssertionError(f"serve did not come up:\n{self.log.read_text()}")
                await asyncio.sleep(0.1)

    async def stop(self, how: signal.Signals = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            self.process.send_signal(how)
        return await asyncio.wait_for(self.process.wait(), 30)


@asynccontextmanager
async def serve(env: dict[str, str], tmp_path: Path, name: str) -> AsyncIterator[Bot]:
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            AGAPE,
            "serve",
            "--host",
            "127.0.0.1",
            env=env,
            cwd=str(tmp_path),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    bot = Bot(process, f"http://127.0.0.1:{env['PORT']}", log)
    try:
        yield bot
    finally:
        await bot.stop(signal.SIGKILL)


def card_of(slack: FakeSlack, thread: str) -> dict[str, Any]:
    """The run card in a thread as the fake holds it now, or {} while there is none."""
    for message in slack.messages(ALERTS, thread_ts=thread):
        if " · " in header_of(message):
            return dict(message)
    return {}


def click_payload(message: dict[str, Any], user: str, text: str, action_ts: str) -> dict[str, Any]:
    action = button_action(message, text, action_ts)
    return block_actions_payload(
        user,
        [action],
        channel=ALERTS,
        message_ts=message["ts"],
        thread_ts=message.get("thread_ts"),
        message=message,
    )


async def click_at(sender: SlackSender, payload: dict[str, Any]) -> None:
    response = await sender._interaction(payload, "valid")  # the very same payload, resent
    assert response.status_code == 200, response.text


def texts_in(slack: FakeSlack, thread: str) -> list[str]:
    """The words of each reply in a thread (the card excluded)."""
    return [
        words(m)
        for m in slack.messages(ALERTS, thread_ts=thread)
        if m.get("ts") != thread and " · " not in header_of(m)
    ]


async def test_two_replicas_on_one_store_act_once_and_one_carries_on_when_the_other_dies(
    tmp_path: Path,
    empty_db: str,
    backend_db: str,
    backend_conn: psycopg.AsyncConnection[Any],
) -> None:
    await seed(backend_conn, *oversold())
    async with FakeSlack(bot_token=BOT_TOKEN) as slack:
        ports = [free_port(), free_port()]
        envs = [serve_env(tmp_path, slack, empty_db, backend_db, port) for port in ports]
        async with serve(envs[0], tmp_path, "a") as a, serve(envs[1], tmp_path, "b") as b:
            await asyncio.gather(a.healthy(), b.healthy())
            async with (
                SlackSender(a.url, SIGNING_SECRET) as to_a,
                SlackSender(b.url, SIGNING_SECRET) as to_b,
            ):
                # The same alert delivered to both, and Slack's retry of it to both.
                event = alert_event("NegativeStock")
                thread = event["ts"]
                await asyncio.gather(
                    to_a.event(event, event_id="Ev0REPLICA1"),
                    to_b.event(event, event_id="Ev0REPLICA1"),
                    to_a.event(event, event_id="Ev0REPLICA1", retry_num=1),
                    to_b.event(event, event_id="Ev0REPLICA1", retry_num=1),
                )
                card = await slack.wait_for(lambda s: card_of(s, thread), 15, what="the card")
                await slack.wait_for(
                    lambda s: any(
                        "stock below zero" in t
                        for t in [words(m) for m in s.messages(ALERTS, thread_ts=thread)]
                    ),
                    15,
                    what="the detection result",
                )
                # The same click delivered to both replicas, twice each: one correction.
                payload = click_payload(card, APPROVER, "Correct stock", "1722600000.000001")
                await asyncio.gather(*(click_at(s, payload) for s in (to_a, to_b, to_a, to_b)))
                await slack.wait_for(
                    lambda s: any("Stock set to 0 on 2" in t for t in texts_in(s, thread)),
                    15,
                    what="the correction's result in the thread",
                )
                assert await stock(backend_conn) != VARIANTS

                # One replica dies; the other takes the rest of the run, and keeps the card.
                await a.stop(signal.SIGKILL)
                card = card_of(slack, thread)
                resolve = click_payload(card, RESPONDER, "Resolve", "1722600000.000002")
                await click_at(to_b, resolve)
                await slack.wait_for(
                    lambda s: "Resolved" in words(card_of(s, thread)),
                    15,
                    what="the card resolved",
                )

        cards = [m for m in slack.messages(ALERTS, thread_ts=thread) if " · " in header_of(m)]
        assert len(cards) == 1
        replies = texts_in(slack, thread)
        corrections = [t for t in replies if "Stock set to 0 on" in t]
        assert len(corrections) == 1, corrections
        top = [m for m in slack.messages(ALERTS) if m.get("thread_ts") in (None, m["ts"])]
        assert top == []  # the alert itself was never posted to the fake; the bot posted none
        assert slack.block_errors == []
    async with await psycopg.AsyncConnection.connect(empty_db) as store:
        finished = "SELECT count(*) FROM ops_events WHERE step_id = %s AND kind = %s"
        cursor = await store.execute(finished, ("correct_stock", "step.finished"))
        assert await cursor.fetchone() == (1,)
        cursor = await store.execute("SELECT count(*) FROM ops_runs")
        assert await cursor.fetchone() == (1,)


async def test_a_restart_mid_run_keeps_the_old_buttons_working(
    tmp_path: Path,
    empty_db: str,
    backend_db: str,
    backend_conn: psycopg.AsyncConnection[Any],
) -> None:
    await seed(backend_conn, *oversold())
    async with FakeSlack(bot_token=BOT_TOKEN) as slack:
        env = serve_env(tmp_path, slack, empty_db, backend_db, free_port())
        event = alert_event("NegativeStock")
        thread = event["ts"]
        async with serve(env, tmp_path, "first") as first:
            await first.healthy()
            async with SlackSender(first.url, SIGNING_SECRET) as sender:
                await sender.event(event)
                card = await slack.wait_for(lambda s: card_of(s, thread), 15, what="the card")
            assert await first.stop() == 0  # SIGTERM: a clean stop
        async with serve(env, tmp_path, "second") as second:
            await second.healthy()
            async with SlackSender(second.url, SIGNING_SECRET) as sender:
                await click_at(sender, click_payload(card, APPROVER, "Correct stock", "1.1"))
                await slack.wait_for(
                    lambda s: "Stock set to 0 on 2" in words(card_of(s, thread)),
                    15,
                    what="the old card's button to work after the restart",
                )
        assert await stock(backend_conn) == {"DRESS-RED-M": 0, "DRESS-BLU-S": 0, "DRESS-GRN-L": 4}


async def test_socket_mode_walks_an_alert_and_acknowledges_each_envelope(
    tmp_path: Path,
    empty_db: str,
    backend_db: str,
    backend_conn: psycopg.AsyncConnection[Any],
) -> None:
    await seed(backend_conn, *oversold())
    async with FakeSlack(bot_token=BOT_TOKEN) as slack:
        env = serve_env(tmp_path, slack, empty_db, backend_db, free_port())
        env["SLACK_APP_TOKEN"] = "xapp-1-A0APP-0000-socket"
        del env["SLACK_SIGNING_SECRET"]
        async with serve(env, tmp_path, "socket") as bot:
            await bot.healthy()
            await slack.wait_for(lambda s: s.socket_connections > 0, 15, what="a socket")
            event = alert_event("NegativeStock")
            thread = event["ts"]
            started = time.monotonic()
            envelope = await slack.socket_send("events_api", event_callback(event))
            await slack.wait_for_ack(envelope, 3)
            assert time.monotonic() - started < 3
            card = await slack.wait_for(lambda s: card_of(s, thread), 15, what="the card")
            payload = click_payload(card, APPROVER, "Correct stock", "2.2")
            envelope = await slack.socket_send("interactive", payload)
            await slack.wait_for_ack(envelope, 3)
            await slack.wait_for(
                lambda s: "Stock set to 0 on 2" in words(card_of(s, thread)),
                15,
                what="the correction over Socket Mode",
            )
            async with httpx.AsyncClient(base_url=bot.url) as client:
                health = (await client.get("/healthz")).json()
            assert health["slack"] == "up"
            assert health["details"]["slack"]["mode"] == "socket"
        assert await stock(backend_conn) == {"DRESS-RED-M": 0, "DRESS-BLU-S": 0, "DRESS-GRN-L": 4}
