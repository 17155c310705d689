"""Lay out the demo world on the local servers, start the stand-ins, and open the console on it.

The world lives in a sandbox database (``OPS_DEMO_DATABASE_URL``, marked as the demo's by a
comment on the database) and a spare Redis logical database (``OPS_DEMO_REDIS_URL``, marked by
a key); the demo refuses to use a database that is not its own and never touches
``DATABASE_URL`` or ``REDIS_URL``. A world is kept between sessions, so a game day can stop and
go on; ``reset`` lays it out afresh, with the trouble's clocks started now. The console is
``agape-ops console`` in a child process, given the sandbox's settings in its environment,
exactly as a person would start it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TextIO

import psycopg
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agape_ops.demo import world
from agape_ops.demo.queues import bullmq_queue
from agape_ops.demo.standins import (
    FakeService,
    admin_api_route,
    paystack_route,
    prometheus_route,
    serve,
)
from agape_ops.errors import DemoUnavailable
from agape_ops.settings import Settings, child_environment, default_store_file

#: The comment on the sandbox database and the key in the Redis database that say "the demo's".
MARKER = "agape-ops demo sandbox"
REDIS_MARKER = "agape-ops:demo"

START_POSTGRES = (
    "start it (`sudo service postgresql start`, or `docker run -d -p 5432:5432 "
    "-e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`) or point OPS_DEMO_DATABASE_URL at one"
)
START_REDIS = (
    "start it (`sudo service redis-server start`, or `docker run -d -p 6379:6379 redis:7`) "
    "or point OPS_DEMO_REDIS_URL at one"
)


@dataclass(frozen=True)
class Sandbox:
    """Where the demo world lives: its database, its Redis database, its own store file."""

    database_url: str
    redis_url: str
    store_file: Path
    fresh: bool


def _where(parts: Mapping[str, object]) -> str:
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"


def _same_database(one: str, other: str) -> bool:
    a, b = conninfo_to_dict(one), conninfo_to_dict(other)
    keys = ("host", "port", "dbname")
    defaults = {"host": "localhost", "port": "5432"}
    return all(str(a.get(k) or defaults.get(k)) == str(b.get(k) or defaults.get(k)) for k in keys)


def _database(settings: Settings, *, reset: bool) -> tuple[str, bool]:
    """Create (or keep) the sandbox database; return its DSN and whether it was laid out now."""
    dsn = settings.ops_demo_database_url.get_secret_value()
    parts = conninfo_to_dict(dsn)
    name = str(parts.get("dbname") or "")
    if settings.database_url is not None and _same_database(
        dsn, settings.database_url.get_secret_value()
    ):
        raise DemoUnavailable(
            "OPS_DEMO_DATABASE_URL names the same database as DATABASE_URL; the demo never "
            "touches the backend: give it another database name"
        )
    if name in ("", "postgres", "template0", "template1"):
        raise DemoUnavailable(
            "OPS_DEMO_DATABASE_URL must name a database of its own, e.g. .../agape_ops_demo"
        )
    admin = make_conninfo(dsn, dbname="postgres", connect_timeout=3)
    try:
        conn = psycopg.connect(admin, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DemoUnavailable(
            f"the demo needs PostgreSQL and none is answering at {_where(parts)} ({reason}): "
            f"{START_POSTGRES}"
        ) from exc
    with conn:
        row = conn.execute(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database"
            " WHERE datname = %s",
            (name,),
        ).fetchone()
        if row is not None and not str(row[0]).startswith(MARKER):
            raise DemoUnavailable(
                f"database {name} at {_where(parts)} exists and is not the demo's sandbox; "
                "set OPS_DEMO_DATABASE_URL to a database name the demo may create"
            )
        if row is not None and not reset:
            return dsn, False
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(MARKER)))
    schema = resources.files("agape_ops.runbooks").joinpath("backend_schema.sql").read_bytes()
    with psycopg.connect(make_conninfo(dsn, connect_timeout=3), autocommit=True) as sandbox:
        sandbox.execute(schema)
        for statement in world.ROWS:
            sandbox.execute(statement.encode())
    return dsn, True


def _redis(settings: Settings, *, fresh: bool) -> str:
    """Claim the spare Redis database and lay the queues out in it when the world is new."""
    url = settings.ops_demo_redis_url
    if settings.redis_url is not None and settings.redis_url.get_secret_value() == url:
        raise DemoUnavailable(
            "OPS_DEMO_REDIS_URL is REDIS_URL; the demo never touches the backend's Redis: "
            "give it a spare logical database (e.g. redis://127.0.0.1:6379/15)"
        )
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        try:
            ours = bool(client.exists(REDIS_MARKER))
            used = int(client.dbsize())
        except redis.RedisError as exc:
            raise DemoUnavailable(
                f"the demo needs Redis and none is answering at {url} ({exc}): {START_REDIS}"
            ) from exc
        if used and not ours:
            raise DemoUnavailable(
                f"the Redis database at {url} holds {used} keys that are not the demo's; "
                "set OPS_DEMO_REDIS_URL to an empty logical database"
            )
        if fresh or not ours:
            client.flushdb()
            for queue in world.QUEUES:
                bullmq_queue(
                    url,
                    queue.name,
                    waiting=queue.waiting,
                    oldest_age_s=queue.oldest_age_s,
                    active=queue.active,
                    failed=queue.failed,
                )
            client.set(REDIS_MARKER, MARKER)
    finally:
        client.close()
    return url


def store_file() -> Path:
    """Return the demo's own run store, beside the bot's default one."""
    return default_store_file().with_name("demo.db")


def prepare(settings: Settings, *, reset: bool) -> Sandbox:
    """Lay the world out (or keep the one there); raise DemoUnavailable saying what to do."""
    database_url, fresh = _database(settings, reset=reset)
    redis_url = _redis(settings, fresh=fresh)
    store = store_file()
    store.parent.mkdir(parents=True, exist_ok=True)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            store.with_name(store.name + suffix).unlink(missing_ok=True)
    return Sandbox(database_url, redis_url, store, fresh)


@dataclass(frozen=True)
class StandIns:
    """The running stand-ins' origins."""

    paystack: FakeService
    admin: FakeService
    prometheus: FakeService


@contextmanager
def stand_ins() -> Iterator[StandIns]:
    """Run Paystack (with its status page), the admin API and Prometheus on loopback."""
    with ExitStack() as stack:
        paystack = stack.enter_context(
            serve(paystack_route(world.PAYSTACK_KEY, world.TRANSACTIONS, world.STATUS_PAGE))
        )
        admin = stack.enter_context(
            serve(
                admin_api_route(
                    world.ADMIN_TOKEN,
                    webhooks={world.WEBHOOK_PAID, world.WEBHOOK_DECLINED},
                    processed={world.WEBHOOK_DONE},
                    queues={queue.name: queue.stats() for queue in world.QUEUES},
                    health=world.HEALTH,
                )
            )
        )
        prometheus = stack.enter_context(serve(prometheus_route(world.PROMETHEUS, now=time.time)))
        yield StandIns(paystack, admin, prometheus)


def console_environment(settings: Settings, sandbox: Sandbox, services: StandIns) -> dict[str, str]:
    """Return the environment of the demo's console: the sandbox's settings over the caller's.

    Everything that would reach a real system is set here, so neither the caller's environment
    nor a `.env` file can point the demo at the backend or let it run shell commands.
    """
    runbooks = str(settings.runbooks_dir.absolute())
    overrides = {
        "DATABASE_URL": sandbox.database_url,
        "REDIS_URL": sandbox.redis_url,
        "PAYSTACK_SECRET_KEY": world.PAYSTACK_KEY,
        "PAYSTACK_API_URL": services.paystack.url,
        "PAYSTACK_STATUS_URL": services.paystack.url,
        "ADMIN_API_URL": services.admin.url,
        "ADMIN_TOKEN": world.ADMIN_TOKEN,
        "PROMETHEUS_URL": services.prometheus.url,
        "OPS_DATABASE_URL": f"sqlite:///{sandbox.store_file}",
        "RUNBOOKS_DIR": runbooks,
        "OPS_RUNBOOKS_DIR": runbooks,
        "OPS_RESPONDERS": world.ACTOR,
        "OPS_APPROVERS": f"{world.ACTOR},{world.SECOND_APPROVER}",
        "OPS_ALLOW_SHELL": "false",
        "OPS_RUN_PREFIX": "DEMO",
        "OPS_LOG_LEVEL": settings.ops_log_level,
        "PYTHONUNBUFFERED": "1",
    }
    if settings.ops_team_file is not None:
        overrides["OPS_TEAM_FILE"] = str(settings.ops_team_file.absolute())
    # The child is started as a person would start it: from the caller's environment.
    return child_environment(overrides)


def banner(settings: Settings, sandbox: Sandbox) -> list[str]:
    """Return the lines printed before the console: DEMO, where the world is, what to try."""
    db = conninfo_to_dict(sandbox.database_url)
    state = "laid out now" if sandbox.fresh else "kept from last time (--reset starts over)"
    lines = [
        f"DEMO: a sandbox Agape shop with trouble for every runbook, {state}. PostgreSQL "
        f"{db.get('dbname')} at {_where(db)}, Redis {sandbox.redis_url}, and stand-ins for "
        "Paystack, its status page, Prometheus and the admin API on 127.0.0.1; DATABASE_URL "
        "and REDIS_URL are never touched.",
        f"You are {world.ACTOR}, a responder and approver. Open a runbook with its alert "
        "(or `/ops start <runbook>`; `help` lists the rest):",
    ]
    lines += [f"  alert {text}" for text in world.ALERTS.values()]
    return lines


def open_console(
    settings: Settings, *, reset: bool, dry_run: bool = False, out: TextIO = sys.stdout
) -> int:
    """Lay out the world, start the stand-ins, run the console on them; return its exit status."""
    if not settings.runbooks_dir.is_dir():
        raise DemoUnavailable(
            f"the demo needs the runbooks and {settings.runbooks_dir.absolute()} does not exist: "
            "run it from the project folder, or set OPS_RUNBOOKS_DIR"
        )
    sandbox = prepare(settings, reset=reset)
    with stand_ins() as services:
        for line in banner(settings, sandbox):
            out.write(line + "\n")
        out.flush()
        command = [sys.executable, "-m", "agape_ops", "console", "--as", world.ACTOR]
        if dry_run:
            command.append("--dry-run")
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
            command, env=console_environment(settings, sandbox, services)
        )
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # the console has the same ^C and decides what it means
                continue
