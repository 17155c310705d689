"""The Slack surface served in-process over real HTTP, against the fake Slack on loopback.

``serving`` builds the bot exactly as ``agape-ops serve`` does (``bootstrap.build`` and the
CLI's ``compose``), serves it on a free port, and hands the test a ``World``: the fake Slack
that records every Web API call, a sender that posts what Slack posts (signed with the signing
secret), and the container for checking the store and the backend. Paystack, its status page,
the admin API and Prometheus are respx fakes (``walkthrough_http``); requests to loopback pass
through to the real servers.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_slack import FakeSlack
from slack_requests import SlackSender, find_element, new_action_ts
from walkthrough_http import FakeBackend
from walkthrough_seed import alertmanager_event, settings

from agape_ops.bootstrap import Container, build
from agape_ops.engine.records import Run
from agape_ops.settings import Settings
from agape_ops.surfaces.slack.bot import SlackBot
from agape_ops.surfaces.slack.server import Served, compose, serve

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test"
ALERTS = "C0ALERTS"
#: Seconds within which a thread shows what a test waits for (the acceptance run allows more).
WITHIN = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def slack_settings(
    backend_db: str, redis_db: str, tmp_path: Path, slack: FakeSlack, **overrides: Any
) -> Settings:
    """The walkthrough's settings plus Slack's: the fake's API URL, a token, the secret."""
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "alerts_channel": ALERTS,
    }
    values.update(overrides)
    return settings(backend_db, redis_db, tmp_path, **values)


def alert_event(
    alertname: str, instance: str = "api-1", *, status: str = "FIRING"
) -> dict[str, Any]:
    """An Alertmanager notification as #alerts delivers it (a fresh ts per call)."""
    title = f"[{status}:1] {alertname} agape-backend (prod {instance} critical)"
    if status == "RESOLVED":
        title = f"[RESOLVED] {alertname} agape-backend (prod {instance} critical)"
    event = alertmanager_event(title)
    event["channel"] = ALERTS
    event["ts"] = event["event_ts"] = next_ts()
    return event


_TS = iter(range(1, 10**9))


def next_ts() -> str:
    return f"1722500{next(_TS):03d}.000100"


def header_of(message: dict[str, Any]) -> str:
    blocks = message.get("blocks") or []
    first = blocks[0] if blocks else {}
    text = first.get("text") if isinstance(first, dict) else None
    return str(text.get("text", "")) if isinstance(text, dict) else ""


def words(message: dict[str, Any]) -> str:
    """Every text a message shows (its blocks' texts, its buttons' labels), one string."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str):
                found.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(found)


def button_action(message: dict[str, Any], text: str, action_ts: str) -> dict[str, Any]:
    """The action Slack reports when the button of ``message`` labelled ``text`` is pressed."""
    block_id, element = find_element(message, "button", text=text)
    return {
        "action_id": element["action_id"],
        "block_id": block_id,
        "text": element["text"],
        "value": element.get("value"),
        "type": "button",
        "action_ts": action_ts,
    }


@dataclass
class World:
    """A served bot and what a test drives it with."""

    slack: FakeSlack
    sender: SlackSender
    container: Container
    bot: SlackBot
    served: Served
    url: str

    async def alert(self, event: dict[str, Any], **options: Any) -> httpx.Response:
        response = await self.sender.event(event, **options)
        assert response.status_code == 200, response.text
        return response

    async def press(
        self, message: dict[str, Any], user: str, text: str, *, action_ts: str | None = None
    ) -> httpx.Response:
        """Click a button on ``message`` as it was when the person saw it (a snapshot: a
        double click presses the same rendering twice)."""
        action = button_action(message, text, action_ts or new_action_ts())
        thread = message.get("thread_ts")
        response = await self.sender.block_actions(
            user,
            [action],
            channel=message.get("channel", ALERTS),
            message_ts=message["ts"],
            thread_ts=thread if thread != message["ts"] else None,
            message=message,
        )
        assert response.status_code == 200, response.text
        return response

    async def card(self, thread_ts: str, within: float = WITHIN) -> dict[str, Any]:
        """Wait for the run card in an alert's thread and return it as the fake holds it."""

        def found(slack: FakeSlack) -> dict[str, Any]:
            for message in slack.messages(ALERTS, thread_ts=thread_ts):
                if " · " in header_of(message) and message.get("ts") != thread_ts:
                    return dict(message)
            return {}

        return await self.slack.wait_for(found, within, what=f"a run card under {thread_ts}")

    async def run_of(self, thread_ts: str) -> Run:
        card = await self.card(thread_ts)
        run_id = header_of(card).split(" · ")[0].split()[-1]
        return await self.container.engine.get_run(run_id)

    def top_level(self) -> list[dict[str, Any]]:
        """The bot's messages at the top of #alerts (not in a thread)."""
        return [
            dict(m)
            for m in self.slack.messages(ALERTS)
            if m.get("bot_id") and m.get("thread_ts") in (None, m.get("ts"))
        ]

    def replies(self, thread_ts: str) -> list[dict[str, Any]]:
        return [
            dict(m)
            for m in self.slack.messages(ALERTS, thread_ts=thread_ts)
            if m.get("ts") != thread_ts and " · " not in header_of(m)
        ]

    async def reply_saying(
        self, thread_ts: str, text: str, within: float = WITHIN
    ) -> dict[str, Any]:
        """Wait for a reply in the thread whose words contain ``text``."""

        def found(slack: FakeSlack) -> dict[str, Any]:
            for message in self.replies(thread_ts):
                if text in words(message):
                    return message
            return {}

        return await self.slack.wait_for(found, within, what=f"a reply saying {text!r}")

    async def card_saying(
        self, thread_ts: str, text: str, within: float = WITHIN
    ) -> dict[str, Any]:
        """Wait until the run card (updated in place) shows ``text``."""

        def found(slack: FakeSlack) -> dict[str, Any]:
            for message in slack.messages(ALERTS, thread_ts=thread_ts):
                if " · " in header_of(message) and text in words(message):
                    return dict(message)
            return {}

        return await self.slack.wait_for(found, within, what=f"the card saying {text!r}")

    async def ephemeral_to(self, user: str, text: str, within: float = WITHIN) -> dict[str, Any]:
        def found(slack: FakeSlack) -> dict[str, Any]:
            for message in slack.ephemerals(user=user):
                if text in words(message) or text in str(message.get("text", "")):
                    return dict(message)
            return {}

        return await self.slack.wait_for(found, within, what=f"{user} told {text!r}")

    async def settle(self) -> None:
        """Wait for the work clicks and alerts started, and the events they committed."""
        await self.bot.settle()
        await self.bot.relay.drained()


@asynccontextmanager
async def serving(config: Settings, slack: FakeSlack) -> AsyncIterator[World]:
    """Serve the bot in HTTP mode on a free port; stop it and release everything after."""
    container = await build(config, configure_logs=False)
    try:
        bot, app = compose(container.engine, config)
        port = free_port()
        served = await serve(bot, app, host="127.0.0.1", port=port, app_token=None)
        url = f"http://127.0.0.1:{port}"
        try:
            async with SlackSender(url, SIGNING_SECRET, fake=slack) as sender:
                yield World(slack, sender, container, bot, served, url)
        finally:
            await served.close()
    finally:
        await container.aclose()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(bot_token=BOT_TOKEN) as slack:
        yield slack


@pytest.fixture
async def world(
    backend_db: str, redis_db: str, tmp_path: Path, fake: FakeBackend, fake_slack: FakeSlack
) -> AsyncIterator[World]:
    """The bot served over the test's PostgreSQL and Redis, the faked HTTP systems and Slack."""
    fake.router.route(host="127.0.0.1").pass_through()
    config = slack_settings(backend_db, redis_db, tmp_path, fake_slack)
    async with serving(config, fake_slack) as served:
        yield served
