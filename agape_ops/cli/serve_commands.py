"""`agape-ops serve`: the Slack bot (Socket Mode with SLACK_APP_TOKEN, else HTTP on PORT)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click

from agape_ops.cli.startup import CANNOT_START, load_settings, settle_heap, stop
from agape_ops.errors import AgapeError
from agape_ops.settings import Settings


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else None


async def _serve(settings: Settings, host: str, port: int) -> None:
    from agape_ops.bootstrap import build
    from agape_ops.surfaces.slack.server import compose, serve

    container = await build(settings)
    try:
        bot, app = compose(container.engine, settings)
        app_token = _secret(settings.slack_app_token)
        served = await serve(bot, app, host=host, port=port, app_token=app_token)
        if settings.ops_scheduler:
            await container.scheduler.start()
        settle_heap()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stopping.set)
        try:
            await stopping.wait()
        finally:
            await served.close()
    finally:
        await container.aclose()


@click.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104 - a server in a container listens on every interface
@click.option("--port", type=int, default=None, help="Port for HTTP (default: PORT, else 3000).")
def serve_command(host: str, port: int | None) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT.

    HTTP mode serves POST /slack/events (events, interactivity and /ops); both modes serve
    GET /healthz and GET /metrics.
    """
    settings = load_settings()
    if settings.slack_bot_token is None:
        stop(
            "SLACK_BOT_TOKEN is not set: `agape-ops serve` needs the bot token (xoxb-...); "
            "without Slack, `agape-ops console` runs the same walkthrough",
            CANNOT_START,
        )
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        stop(
            "SLACK_SIGNING_SECRET is not set: HTTP mode verifies every request with it (or set "
            "SLACK_APP_TOKEN for Socket Mode)",
            CANNOT_START,
        )
    if settings.alerts_channel is None:
        click.echo(
            "agape-ops: ALERTS_CHANNEL is not set: no channel is watched for alerts; "
            "/ops and buttons still work",
            err=True,
        )
    try:
        asyncio.run(_serve(settings, host, port or settings.port))
    except AgapeError as exc:
        stop(exc.message, CANNOT_START)
    except OSError as exc:
        stop(f"could not listen on {host}:{port or settings.port}: {exc.strerror}", CANNOT_START)


async def _schedule(settings: Settings) -> None:
    from agape_ops.bootstrap import build

    container = await build(settings)
    try:
        await container.scheduler.start()
        settle_heap()
        if not container.scheduler.leading:
            click.echo(
                "agape-ops: another process runs the scheduler now; this one takes over when "
                "it stops",
                err=True,
            )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
    finally:
        await container.aclose()


@click.command("schedule")
def schedule_command() -> None:
    """Run only the scheduler (escalation, re-checks, monitors, reminders), without Slack.

    `serve` runs it too; of several processes on one store, exactly one schedules.
    """
    settings = load_settings()
    try:
        asyncio.run(_schedule(settings))
    except AgapeError as exc:
        stop(exc.message, CANNOT_START)


COMMANDS = [serve_command, schedule_command]
