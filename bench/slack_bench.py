"""Slack numbers, on loopback: how fast `agape-ops serve` acknowledges, how soon a thread fills.

One run (``python -m bench.slack_bench`` alone, ``--help`` for its options; ``make bench`` runs
it last), against `agape-ops serve` in HTTP mode in a subprocess, as an operator starts it:

* Alert to the first reply in its thread (the run card), and to a reply for every detection
  step of its runbook (inventory-oversell, whose check reads a scratch PostgreSQL database
  seeded so that it fires), for distinct alerts sent one every 2 s: the outbox paces
  chat.postMessage to about one a second per channel (a burst of 4) and an alert makes two
  posts, so alerts any closer would measure that pacing, not the bot.
* Acknowledgement latency of signed requests from 4 clients, each sending one request after the
  other on a keep-alive connection, from a process of their own (``bench.slack_load``, kept
  lean: the server is measured, not the client): message events in a channel that is not the
  alerts channel (acknowledged and ignored), re-fires of one alert in the alerts channel
  (intake's cost on acknowledging), and clicks on a read step's button of the bot's run card.
  The same requests go to a bare slack-bolt app that only acknowledges (``bench.slack_bare``,
  its own subprocess, served the same way); both are printed, their ratio serve/bare, and the
  CPU time per request of each server while the load ran (the bot's includes the work the
  requests started, as far as it got; read from /proc, so Linux only) and of the client.

The fake Slack (tests/integration/fake_slack.py) answers the bot's Web API calls and stamps
when each arrived, on the clock the sender reads. The bot's store is a SQLite file in a scratch
folder (``--store postgres``: a scratch PostgreSQL database). Every process started here is
stopped, the databases dropped and the folder removed, on failure too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from fake_slack import Call, FakeSlack
from psycopg import sql
from slack_fixtures import ALERTS, BOT_TOKEN, SIGNING_SECRET, free_port, header_of, words
from slack_requests import SlackSender, event_callback
from test_slack_serve import click_payload, serve_env
from test_walkthroughs import oversold
from walkthrough_seed import RESPONDER, alertmanager_event

from agape_ops.runbooks.catalog import load_catalog
from bench.postgres_bench import ADMIN_DSN

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = "inventory-oversell"
ALERT = "[FIRING:1] NegativeStock agape-backend (prod {instance} critical)"
#: A channel the bot is in but does not watch: its messages are acknowledged and ignored.
CHATTER = "C0CHATTER"
#: The button on the run card clicked in the click figures: a read step's.
READ_STEP = "Identify affected orders"
CLIENTS = 4
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
START_S = 30.0
#: How long a server may take to stop after SIGTERM before it is killed.
STOP_S = 5.0
WITHIN_S = 15.0
Request = tuple[str, str]  # content type, body


# -- what runs: the scratch database, the two servers, the load client -----------------------


@contextlib.contextmanager
def scratch_database(name: str, *statements: bytes) -> Iterator[str]:
    """A scratch PostgreSQL database, with ``statements`` run in it; dropped afterwards."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
        yield dsn
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(drop)


def scratch_backend() -> contextlib.AbstractContextManager[str]:
    """The backend's schema, seeded so that inventory-oversell's detection fires."""
    schema = resources.files("agape_ops.runbooks").joinpath("backend_schema.sql").read_bytes()
    seed = [statement.encode() for statement in oversold()]
    return scratch_database(f"agape_bench_slack_{os.getpid()}", schema, *seed)


@dataclass
class Server:
    """A server process started for the bench: where it listens and where it logs."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, why: str) -> RuntimeError:
        tail = self.log.read_text(errors="replace")[-3000:]
        return RuntimeError(f"{self.name}: {why}; its log ends:\n{tail}")

    async def connectable(self) -> None:
        deadline = time.monotonic() + START_S
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if self.process.returncode is not None or time.monotonic() > deadline:
                    raise self.fail("did not come up") from None
                await asyncio.sleep(0.05)
            else:
                writer.close()
                await writer.wait_closed()
                return

    async def healthy(self) -> None:
        await self.connectable()
        async with httpx.AsyncClient(base_url=self.url) as client:
            deadline = time.monotonic() + START_S
            while (await client.get("/healthz")).status_code != 200:
                if time.monotonic() > deadline:
                    raise self.fail("/healthz stayed down")
                await asyncio.sleep(0.1)


async def ended(process: asyncio.subprocess.Process) -> None:
    """Stop a process started here: SIGTERM, then SIGKILL if it lingers."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_S)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def running(
    name: str, argv: list[str], env: dict[str, str], port: int, folder: Path
) -> AsyncIterator[Server]:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=str(ROOT), stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        yield Server(name, process, port, log)
    finally:
        await ended(process)


@dataclass(frozen=True)
class Load:
    """What the load client measured: each timed request's milliseconds, and its own cost."""

    samples: list[float]
    seconds: float
    cpu_seconds: float


async def load(port: int, clients: list[list[Request]], warmup: int, folder: Path) -> Load:
    """Send each client's requests from the load client's process; return what it timed."""
    spec = folder / "load.json"
    spec.write_text(
        json.dumps(
            {
                "port": port,
                "path": "/slack/events",
                "secret": SIGNING_SECRET,
                "warmup": warmup,
                "clients": clients,
            }
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.slack_load",
        str(spec),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 120)
    finally:
        await ended(process)
    if process.returncode != 0:
        raise RuntimeError(f"the load client failed:\n{err.decode(errors='replace')[-3000:]}")
    found = json.loads(out)
    return Load(found["samples"], found["seconds"], found["cpu_seconds"])


# -- what Slack sends --------------------------------------------------------------------------

_TS = iter(range(1, 10**9))
_BASE = int(time.time()) - 86_400  # a day back: never a ts the fake gives its own messages


def next_ts() -> str:
    return f"{_BASE}.{next(_TS):06d}"


def event_request(event: dict[str, Any]) -> Request:
    return JSON, json.dumps(event_callback(event))


def chatter(count: int) -> list[Request]:
    """People talking in a channel the bot does not watch."""
    return [
        event_request(
            {
                "type": "message",
                "channel": CHATTER,
                "channel_type": "channel",
                "user": "U0CHATTER",
                "text": f"is the deploy {n} done?",
                "ts": next_ts(),
            }
        )
        for n in range(count)
    ]


def alert(title: str) -> dict[str, Any]:
    """An Alertmanager notification of ``title`` as #alerts delivers it (a fresh ts)."""
    event = alertmanager_event(title)
    event["channel"] = ALERTS
    event["ts"] = event["event_ts"] = next_ts()
    return event


def refires(title: str, count: int) -> list[Request]:
    return [event_request(alert(title)) for _ in range(count)]


def clicks(card: dict[str, Any], text: str, count: int) -> list[Request]:
    """Presses of a button on the card, each a fresh click (its own action_ts)."""
    return [
        (FORM, urlencode({"payload": json.dumps(click_payload(card, RESPONDER, text, f"1.{n}"))}))
        for n in range(count)
    ]


def dealt(requests: list[Request], clients: int) -> list[list[Request]]:
    """Deal the requests out to the clients, one each in turn."""
    return [requests[n::clients] for n in range(clients)]


# -- watching the bot --------------------------------------------------------------------------


def thread_posts(slack: FakeSlack, thread: str) -> list[Call]:
    return [c for c in slack.calls("chat.postMessage") if c.params.get("thread_ts") == thread]


def is_card(call: Call) -> bool:
    return " · " in header_of(call.params)


async def quiet(slack: FakeSlack, for_s: float, within_s: float = 60.0) -> None:
    """Wait until the bot has made no Slack call for ``for_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        calls = slack.calls()
        idle = time.monotonic() - (calls[-1].at if calls else 0.0)
        if idle >= for_s:
            return
        await asyncio.sleep(for_s - idle)
    raise RuntimeError(f"the bot was still calling Slack after {within_s:.0f} s")


async def open_card(slack: FakeSlack, sender: SlackSender, title: str) -> dict[str, Any]:
    """Fire an alert at the bot; return its run card once its checks have been told."""
    event = alert(title)
    await sender.event(event)
    thread = event["ts"]

    def told(s: FakeSlack) -> bool:
        return any(not is_card(c) for c in thread_posts(s, thread))

    await slack.wait_for(told, WITHIN_S, what=f"the checks' reply under {thread}")
    await quiet(slack, 0.3)
    for message in slack.messages(ALERTS, thread_ts=thread):
        if " · " in header_of(message):
            return dict(message)
    raise RuntimeError(f"no run card under {thread}")


# -- the figures ---------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    return statistics.median(ordered), rank(0.95), rank(0.99)


def report(name: str, samples: list[float], *, p99: bool = True) -> None:
    p50, p95, last = percentiles(samples)
    tail = f"   p99 {last:8.3f} ms" if p99 else ""
    print(f"{name:<44} median {p50:8.3f} ms   p95 {p95:8.3f} ms{tail}")


def report_ratio(name: str, serve: list[float], bare: list[float]) -> None:
    ratios = [a / b for a, b in zip(percentiles(serve), percentiles(bare), strict=True)]
    p50, p95, p99 = ratios
    print(f"{name:<44} median {p50:8.2f} x    p95 {p95:8.2f} x    p99 {p99:8.2f} x")


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used so far, every thread's (Linux: /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle(server: Server, within_s: float = 90.0) -> None:
    """Wait until a server has stopped working: under 5% of a CPU for 0.3 s."""
    window, deadline = 0.3, time.monotonic() + within_s
    while time.monotonic() < deadline:
        before = cpu_seconds(server.process.pid)
        await asyncio.sleep(window)
        if cpu_seconds(server.process.pid) - before < 0.05 * window:
            return
    raise RuntimeError(f"{server.name} was still busy after {within_s:.0f} s")


@dataclass
class Bench:
    """The running set-up: the fake Slack, the bot, the bare app and a scratch folder."""

    slack: FakeSlack
    serve: Server
    bare: Server
    folder: Path
    per_client: int
    warmup: int

    async def both(
        self, label: str, make: Callable[[int], list[Request]], *, settle: bool = True
    ) -> None:
        """Send the same kind of requests to the bare app, then to the bot (and with
        ``settle``, wait until the bot is idle again); report both, their ratio and each
        server's CPU time per request while the load ran (the bot's includes the work the
        requests started, as far as it got)."""
        count = CLIENTS * (self.warmup + self.per_client)
        found: dict[str, Load] = {}
        cpu: dict[str, float] = {}
        for server in (self.bare, self.serve):
            requests = dealt(make(count), CLIENTS)
            before = cpu_seconds(server.process.pid)
            found[server.name] = await load(server.port, requests, self.warmup, self.folder)
            cpu[server.name] = (cpu_seconds(server.process.pid) - before) * 1000 / count
        if settle:
            await idle(self.serve)
        serve, bare = found[self.serve.name].samples, found[self.bare.name].samples
        report(f"Slack ack, {label} (serve)", serve)
        report(f"Slack ack, {label} (bare bolt)", bare)
        report_ratio(f"Slack ack, {label}: serve/bare", serve, bare)
        client = sum(f.cpu_seconds for f in found.values()) * 1000 / (2 * count)
        cpus = (
            f"serve {cpu[self.serve.name]:8.3f} ms   bare {cpu[self.bare.name]:8.3f} ms   "
            f"client {client:6.3f} ms"
        )
        print(f"{'  CPU per request while the load ran':<44} {cpus}")

    async def acknowledgements(self, card: dict[str, Any], title: str) -> None:
        """Message events in another channel, re-fires of the card's alert, clicks on it.

        The clicks go last: each one that runs the step posts its result, and those posts are
        paced (one a second in a channel), so the bot is still posting when the bench ends."""
        await self.both("event, other channel", chatter)
        await self.both("alert re-fire", lambda n: refires(title, n))
        await self.both("click, read step", lambda n: clicks(card, READ_STEP, n), settle=False)

    async def alerts(self, sender: SlackSender, count: int, gap_s: float) -> None:
        """Distinct alerts, one every ``gap_s``: time to the run card in each one's thread,
        and to a reply for every detection step (a reply tells the checks that finished
        together)."""
        runbook = load_catalog([ROOT / "runbooks"]).runbooks[RUNBOOK]
        titles = [s.title for s in runbook.auto_steps() if runbook.section_of(s.id) == "detection"]
        firsts, detections = [], []
        sent = time.monotonic()
        for n in range(count):
            await asyncio.sleep(max(0.0, sent + gap_s - time.monotonic()))
            event = alert(ALERT.format(instance=f"api-{n}"))
            thread = event["ts"]

            def arrived(s: FakeSlack, thread: str = thread) -> tuple[float, float] | None:
                posts = thread_posts(s, thread)
                replies = [c for c in posts if not is_card(c)]
                ats = [
                    next((c.at for c in replies if f"{title}*" in words(c.params)), None)
                    for title in titles
                ]
                if not posts or None in ats:
                    return None
                if not is_card(posts[0]):
                    raise RuntimeError(f"the first reply under {thread} is not the run card")
                return posts[0].at, max(at for at in ats if at is not None)

            sent = time.monotonic()
            await sender.event(event)
            found = await self.slack.wait_for(arrived, WITHIN_S, what=f"the replies under {thread}")
            assert found is not None
            firsts.append((found[0] - sent) * 1000)
            detections.append((found[1] - sent) * 1000)
        report(f"alert to run card in thread, {count} alerts", firsts, p99=False)
        report(f"alert to every detection result, {count} alerts", detections, p99=False)


async def bench_slack(
    alerts: int = 20,
    gap_s: float = 2.0,
    per_client: int = 150,
    warmup: int = 25,
    *,
    store_on_postgres: bool = False,
) -> None:
    """Every Slack figure, in one run; everything started here is stopped and dropped."""
    async with contextlib.AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="agape-bench-")))
        backend = stack.enter_context(scratch_backend())
        store = f"sqlite:///{folder}/store.db"
        if store_on_postgres:
            dsn = stack.enter_context(scratch_database(f"agape_bench_store_{os.getpid()}"))
            store = dsn.replace("postgresql://", "postgresql+psycopg://")
        slack = await stack.enter_async_context(FakeSlack(bot_token=BOT_TOKEN))
        port, bare_port = free_port(), free_port()
        env = serve_env(folder, slack, store, backend, port)
        serve_argv = [sys.executable, "-m", "agape_ops", "serve", "--host", "127.0.0.1"]
        serve = await stack.enter_async_context(running("serve", serve_argv, env, port, folder))
        bare_argv = [sys.executable, "-m", "bench.slack_bare", str(bare_port)]
        bare_env = {**os.environ, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
        bare = await stack.enter_async_context(
            running("bare", bare_argv, bare_env, bare_port, folder)
        )
        await asyncio.gather(serve.healthy(), bare.connectable())
        sender = await stack.enter_async_context(SlackSender(serve.url, SIGNING_SECRET))
        bench = Bench(slack, serve, bare, folder, per_client, warmup)
        title = ALERT.format(instance="bench-0")
        card = await open_card(slack, sender, title)
        await bench.alerts(sender, alerts, gap_s)
        await bench.acknowledgements(card, title)
        if slack.block_errors:
            raise RuntimeError(f"Slack refused blocks: {slack.block_errors[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.slack_bench", description=__doc__)
    parser.add_argument("--alerts", type=int, default=20, help="distinct alerts (default 20)")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between alerts (default 2)")
    parser.add_argument(
        "--requests", type=int, default=150, help="timed requests per client (default 150)"
    )
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="the bot's store: a scratch SQLite file (default) or PostgreSQL database",
    )
    args = parser.parse_args()
    postgres = args.store == "postgres"
    asyncio.run(bench_slack(args.alerts, args.gap, args.requests, store_on_postgres=postgres))


if __name__ == "__main__":
    main()
