"""The yardstick of the Slack bench: a bare slack-bolt app that only acknowledges.

The same slack-bolt as the bot, with the same signing secret and request verification on,
``process_before_response`` off, no token (so nothing to verify at start-up), an ``authorize``
that never calls Slack, and one listener each for message events, the bot's actions (``ops.*``)
and ``/ops``, each calling ``ack()`` and nothing else. It is served as ``agape-ops serve``
serves the bot: aiohttp, one route that hands the request to bolt, no access log.
``python -m bench.slack_bare PORT`` with ``SLACK_SIGNING_SECRET`` set; SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult


def bare_app(signing_secret: str) -> AsyncApp:
    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token="xoxb-bare",  # noqa: S106 - never sent anywhere: nothing calls Slack
            bot_id="B0BOT",
            bot_user_id="U0BOT",
        )

    app = AsyncApp(
        signing_secret=signing_secret,
        authorize=authorize,
        request_verification_enabled=True,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    @app.event("message")
    async def message(ack: AsyncAck) -> None:
        await ack()

    @app.action({"action_id": re.compile(r"^ops\.")})
    async def action(ack: AsyncAck) -> None:
        await ack()

    @app.command("/ops")
    async def command(ack: AsyncAck) -> None:
        await ack()

    return app


async def serve(port: int, signing_secret: str) -> None:
    app = bare_app(signing_secret)

    async def slack_events(request: web.Request) -> web.Response:
        response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    application = web.Application()
    application.router.add_post("/slack/events", slack_events)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    asyncio.run(serve(int(sys.argv[1]), os.environ["SLACK_SIGNING_SECRET"]))


if __name__ == "__main__":
    main()
