"""Serve the Slack surface: HTTP (``POST /slack/events``) or Socket Mode, with health and metrics.

``GET /healthz`` answers within a few seconds whatever hangs: every dependency is probed at
once, each with its own deadline, and named with its state. It is 200 when Slack and the store
answer, 503 otherwise; it never calls Slack (the bot makes no Slack calls while idle): Slack's
state is what the last call to it said, or the Socket Mode connection's. ``GET /metrics`` is
Prometheus text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from agape_ops.engine.engine import Engine
from agape_ops.engine.ports import Probe
from agape_ops.settings import Settings
from agape_ops.surfaces.slack.bot import Identity, SlackBot
from agape_ops.surfaces.slack.listeners import build_app
from agape_ops.surfaces.slack.metrics import Metrics
from agape_ops.surfaces.slack.outbox import Outbox, web_client
from agape_ops.surfaces.slack.relay import Relay

log = logging.getLogger(__name__)

#: How long one dependency may take to answer a health probe.
PROBE_S = 3.0
#: Health names of the adapters (what an operator calls each system).
NAMES = {"postgres": "database"}
#: How often the store is tidied (expired step leases reaped, old idempotency keys pruned).
HOUSEKEEP_S = 30.0


@dataclass
class Served:
    """A running bot: what to stop, in order."""

    bot: SlackBot
    runner: web.AppRunner | None = None
    socket: AsyncSocketModeHandler | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.socket is not None:
            with contextlib.suppress(Exception):
                await self.socket.close_async()  # type: ignore[no-untyped-call]
        if self.runner is not None:
            await self.runner.cleanup()
        await self.bot.settle(within_s=10)
        with contextlib.suppress(TimeoutError):
            await self.bot.relay.drained(within_s=10)
        await self.bot.relay.close()


def _state(probe: Probe) -> dict[str, Any]:
    if not probe.configured:
        return {"state": "not configured", "detail": probe.detail}
    state: dict[str, Any] = {"state": "up" if probe.ok else "down", "detail": probe.detail}
    if probe.latency_ms is not None:
        state["latency_ms"] = probe.latency_ms
    return state


async def _store(engine: Engine) -> dict[str, Any]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(engine.last_position(), PROBE_S)
    except TimeoutError:
        return {"state": "down", "detail": f"no answer within {PROBE_S:.0f} s"}
    except Exception as exc:  # noqa: BLE001 - said in the answer, not raised
        return {"state": "down", "detail": type(exc).__name__}
    return {"state": "up", "latency_ms": round((time.monotonic() - started) * 1000)}


def _slack(bot: SlackBot, socket: AsyncSocketModeHandler | None) -> dict[str, Any]:
    if socket is not None:
        client = socket.client
        connected = bool(getattr(client, "current_session", None)) and not client.closed
        return {"state": "up" if connected else "down", "mode": "socket"}
    health = bot.outbox.health
    if health.ok is None:
        return {"state": "up", "mode": "http", "detail": health.detail}
    return {"state": "up" if health.ok else "down", "mode": "http", "detail": health.detail}


async def health(
    bot: SlackBot, socket: AsyncSocketModeHandler | None = None
) -> tuple[int, dict[str, Any]]:
    """Return the status code and the body of ``/healthz``."""
    found, store = await asyncio.gather(bot.engine.probes(PROBE_S), _store(bot.engine))
    probes = [(NAMES.get(name, name), _state(probe)) for name, probe in found.items()]
    slack = _slack(bot, socket)
    body: dict[str, Any] = {"slack": slack["state"], "store": store["state"]}
    body.update({name: state["state"] for name, state in probes})
    scheduler = bot.engine.scheduler_state()
    body["scheduler"] = scheduler.role  # leading, standby or off: never makes the bot down
    body["runbooks"] = len(bot.engine.runbooks)
    body["runbooks_loaded"] = sorted(bot.engine.runbooks)
    body["details"] = {"slack": slack, "store": store, **dict(probes)}
    body["details"]["scheduler"] = {
        "state": scheduler.role,
        "jobs_fired": scheduler.fired,
        "jobs_failed": scheduler.failed,
    }
    ok = slack["state"] == "up" and store["state"] == "up"
    body["status"] = "ok" if ok else "down"
    return (200 if ok else 503), body


def web_app(
    bot: SlackBot, app: AsyncApp | None, socket: AsyncSocketModeHandler | None = None
) -> web.Application:
    """The HTTP app: Slack's requests (in HTTP mode), ``/healthz`` and ``/metrics``."""

    async def slack_events(request: web.Request) -> web.Response:
        if app is None:  # Socket Mode: Slack's requests come over the socket
            return web.Response(status=404)
        bolt_request = await to_bolt_request(request)
        response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    async def healthz(_request: web.Request) -> web.Response:
        status, body = await health(bot, socket)
        return web.json_response(body, status=status)

    async def metrics(_request: web.Request) -> web.Response:
        try:
            runs = await asyncio.wait_for(bot.engine.runs(limit=1000), PROBE_S)
        except Exception:  # noqa: BLE001 - metrics still answer with what counts as it goes
            runs = None
        if runs is not None:
            counts: dict[str, int] = {}
            for run in runs:
                counts[run.state.value] = counts.get(run.state.value, 0) + 1
            for state in ("open", "acknowledged", "mitigated", "resolved", "closed"):
                bot.metrics.runs.labels(state=state).set(counts.get(state, 0))
        scheduler = bot.engine.scheduler_state()
        bot.metrics.scheduler_leading.set(1 if scheduler.role == "leading" else 0)
        bot.metrics.scheduler_jobs.labels(outcome="fired").set(scheduler.fired)
        bot.metrics.scheduler_jobs.labels(outcome="failed").set(scheduler.failed)
        return web.Response(
            body=bot.metrics.render(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    application = web.Application()
    if app is not None:
        application.router.add_post("/slack/events", slack_events)
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/metrics", metrics)
    return application


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else None


def compose(engine: Engine, settings: Settings) -> tuple[SlackBot, AsyncApp]:
    """Build the Slack surface over an engine: its client, outbox, relay and bolt app."""
    token = _secret(settings.slack_bot_token) or ""
    app_token = _secret(settings.slack_app_token)
    signing_secret = _secret(settings.slack_signing_secret)
    metrics = Metrics()
    outbox = Outbox(
        web_client(token, settings.slack_api_url, timeout_s=settings.ops_http_timeout_s),
        on_error=metrics.slack_error,
    )
    bot = SlackBot(
        engine=engine,
        outbox=outbox,
        relay=Relay(engine, outbox, metrics),
        metrics=metrics,
        identity=Identity(token),
        alerts_channel=settings.alerts_channel,
        run_prefix=settings.ops_run_prefix,
    )
    return bot, build_app(bot, signing_secret=None if app_token else signing_secret)


async def _housekeep(engine: Engine) -> None:
    while True:
        try:
            await engine.housekeep()
        except Exception:  # noqa: BLE001 - the store may be away; try again next time
            log.warning("housekeeping failed; trying again in %.0f s", HOUSEKEEP_S)
        await asyncio.sleep(HOUSEKEEP_S)


async def serve(
    bot: SlackBot,
    app: AsyncApp,
    *,
    host: str,
    port: int,
    app_token: str | None,
) -> Served:
    """Start the bot: Socket Mode when there is an app token, else HTTP; health either way."""
    served = Served(bot)
    bot.engine.subscribe(bot.relay.publish)
    served.tasks.append(asyncio.create_task(bot.keep_learning_identity()))
    served.tasks.append(asyncio.create_task(bot.relay.follow()))
    served.tasks.append(asyncio.create_task(_housekeep(bot.engine)))
    if app_token:
        served.socket = AsyncSocketModeHandler(app, app_token)
        await served.socket.connect_async()  # type: ignore[no-untyped-call]
    application = web_app(bot, None if app_token else app, served.socket)
    served.runner = web.AppRunner(application, access_log=None)
    await served.runner.setup()
    site = web.TCPSite(served.runner, host, port)
    await site.start()
    mode = "Socket Mode" if app_token else f"HTTP on {host}:{port} (POST /slack/events)"
    log.info("agape-ops serving Slack in %s; /healthz and /metrics on port %d", mode, port)
    return served
