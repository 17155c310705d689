"""The slack-bolt app: one listener per kind of request, each acknowledging first.

Events, clicks, modal submissions and `/ops` are acknowledged within Slack's three seconds
before any work (a form is checked first, so its errors show in the modal); the work runs after
(``SlackBot.later``). The bot's own buttons all have action ids starting ``ops.``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult

from agape_ops.errors import AgapeError
from agape_ops.surfaces.ops_command import OpsUsage, parse
from agape_ops.surfaces.slack import ids
from agape_ops.surfaces.slack.bot import SlackBot
from agape_ops.surfaces.slack.clicks import Clicks
from agape_ops.surfaces.slack.commands import Commands

_OURS = re.compile(r"^ops\.")


class _QuietBolt(logging.Filter):
    """Drop bolt's start-up notes about the token: the bot passes its own client on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token`" not in record.getMessage()


def build_app(bot: SlackBot, *, signing_secret: str | None) -> AsyncApp:
    """Build the slack-bolt app: every listener acknowledges first, then hands over."""
    clicks = Clicks(bot)
    commands = Commands(bot, clicks)

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return bot.authorization(enterprise_id, team_id)

    bolt_log = logging.getLogger("agape_ops.slack.bolt")
    bolt_log.addFilter(_QuietBolt())
    app = AsyncApp(
        logger=bolt_log,
        client=bot.outbox.client,
        signing_secret=signing_secret,
        authorize=authorize,
        request_verification_enabled=signing_secret is not None,
        # Every listener acknowledges and hands its work to ``later``: answering after the
        # listener returns skips bolt's 10 ms polling for the acknowledgement.
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )

    @app.event("message")
    async def message(body: dict[str, Any], event: dict[str, Any]) -> None:
        bot.metrics.events.labels(kind="event", outcome="received").inc()
        bot.later(bot.on_message(body, event))

    @app.event("app_home_opened")
    async def home(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and isinstance(event.get("user"), str):
            bot.later(bot.on_home(event["user"]))

    @app.action({"action_id": _OURS})
    async def action(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        bot.metrics.events.labels(kind="action", outcome="received").inc()
        bot.later(clicks.on_action(body, action))

    @app.view(ids.STEP_FORM)
    async def step_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        bot.metrics.events.labels(kind="view", outcome="received").inc()
        try:
            errors = await asyncio.wait_for(clicks.check_step_form(view), 2.0)
        except (AgapeError, TimeoutError):
            errors = {}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        bot.later(clicks.on_step_form(body, view))

    @app.view(ids.CHECKLIST_FORM)
    async def checklist_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        bot.metrics.events.labels(kind="view", outcome="received").inc()
        bot.later(clicks.on_checklist_form(body, view))

    @app.command("/ops")
    async def ops(ack: AsyncAck, command: dict[str, Any]) -> None:
        bot.metrics.events.labels(kind="command", outcome="received").inc()
        parsed = parse(str(command.get("text", "")), run_prefix=bot.run_prefix)
        instant = commands.instant_answer(parsed)
        if instant is not None or isinstance(parsed, OpsUsage):
            await ack(response_type="ephemeral", text=instant or "")
            return
        await ack()
        bot.later(commands.on_command(command, parsed))

    return app
