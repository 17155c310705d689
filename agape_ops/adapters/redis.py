"""The backend's Redis: reachability, memory and clients, and its BullMQ job queues. Reads only.

The client comes from the composition root (``open_client`` builds it with short socket
timeouts and at most two retries), so an unreachable Redis is reported in seconds. Nothing here
writes: no command changes the keyspace, and there is nothing to preview.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from agape_ops.adapters import bullmq
from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult, table
from agape_ops.errors import (
    AdapterAuthError,
    AdapterError,
    AdapterNotConfigured,
    AdapterResponseError,
    AdapterTimeout,
    AdapterUnavailable,
)
from agape_ops.runbooks.fields import (
    REDIS_FAILURE_COLUMNS,
    REDIS_INFO_COLUMNS,
    REDIS_QUEUE_COLUMNS,
)
from agape_ops.runbooks.model import RedisCall

NAME = "redis"
NOT_CONFIGURED = "Redis is not configured: set REDIS_URL"


#: How redis-py words a failed connection, and how we say it.
_REASONS = (
    ("error 111 ", "connection refused"),
    ("connection refused", "connection refused"),
    ("connect call failed", "connection refused"),
    ("name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("temporary failure in name resolution", "host name not found"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network unreachable"),
    ("connection reset", "connection reset by the server"),
    ("closed by server", "connection closed by the server"),
)


def open_client(url: str, *, timeout_s: float = 2.0) -> Redis:
    """Build a client that gives up within seconds: short socket timeouts, two quick retries."""
    return Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        decode_responses=True,
        client_name="agape-ops",
    )


class RedisAdapter:
    """Answer runbook steps about Redis and its BullMQ queues, with reads only."""

    name = NAME

    def __init__(self, client: Redis | None, *, deadline_s: float = 5.0) -> None:
        self._client = client
        self._deadline_s = deadline_s
        kwargs: dict[str, Any] = client.connection_pool.connection_kwargs if client else {}
        path = kwargs.get("path")
        self._where = (
            str(path) if path else f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        )

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Run the step's Redis command and return its figures."""
        call = _call(request)
        async with self._translated(request.step.id) as client:
            if call.command == "ping":
                return await self._ping(client)
            if call.command == "info":
                return await self._info(client)
            if call.command == "queue_stats":
                return await self._queue_stats(client, call)
            if call.command == "queue_failures":
                return await self._queue_failures(client, call)
            return await self._discover(client, call)

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """Return None: every Redis step only reads."""
        return None

    def describe(self, request: AdapterRequest) -> str:
        """Say which reads the step makes."""
        call = _call(request)
        queues = (
            ", ".join(call.queues)
            if call.queues
            else f"every queue found by SCAN MATCH {call.prefix}:*:meta"
        )
        if call.command == "ping":
            return "Sends PING and times the answer."
        if call.command == "info":
            return "Reads INFO memory, clients and server."
        if call.command == "queue_stats":
            return (
                "Reads BullMQ counts (LLEN wait, paused, active; ZCARD prioritized, delayed, "
                "failed, completed; HGETALL meta) and the oldest waiting job's timestamp for "
                f"{queues}, in one pipeline; changes nothing."
            )
        if call.command == "queue_failures":
            return (
                f"Reads the {call.count} most recent failed jobs (ZREVRANGE failed, then each "
                f"job's hash) for {queues}; changes nothing."
            )
        return (
            f"Lists BullMQ queues with SCAN MATCH {call.prefix}:*:meta (never KEYS) and reads "
            "each one's meta; changes nothing."
        )

    async def probe(self) -> Probe:
        """Send PING and time it; report, never raise."""
        if self._client is None:
            return Probe(self.name, ok=False, detail=NOT_CONFIGURED, configured=False)
        started = time.monotonic()
        try:
            async with self._translated(None) as client:
                await client.ping()
        except AdapterError as exc:
            return Probe(self.name, ok=False, detail=exc.message, latency_ms=_ms_since(started))
        latency = _ms_since(started)
        return Probe(
            self.name, ok=True, detail=f"answered PING in {latency} ms", latency_ms=latency
        )

    # --- commands ----------------------------------------------------------------------------

    async def _ping(self, client: Redis) -> StepResult:
        started = time.monotonic()
        await client.ping()
        latency = _ms_since(started)
        return StepResult(
            summary=f"Redis answered PING in {latency} ms",
            values={"reachable": True, "latency_ms": latency},
        )

    async def _info(self, client: Redis) -> StepResult:
        pipe = client.pipeline(transaction=False)
        for section in ("memory", "clients", "server"):
            pipe.info(section)
        memory, clients, server = await pipe.execute()
        used = int(memory.get("used_memory", 0))
        maxmemory = int(memory.get("maxmemory", 0))
        ratio = round(used / maxmemory, 4) if maxmemory else None
        values = {
            "used_memory": used,
            "used_memory_human": str(memory.get("used_memory_human", "")),
            "maxmemory": maxmemory,
            "memory_ratio": ratio,
            "connected_clients": int(clients.get("connected_clients", 0)),
            "blocked_clients": int(clients.get("blocked_clients", 0)),
            "redis_version": str(server.get("redis_version", "")),
        }
        limit = f"{ratio:.0%} of maxmemory" if ratio is not None else "no maxmemory set"
        summary = (
            f"Redis {values['redis_version']}: {values['used_memory_human']} used ({limit}), "
            f"{values['connected_clients']} clients, {values['blocked_clients']} blocked"
        )
        return table(summary, list(REDIS_INFO_COLUMNS), [values], values=values)

    async def _queues(self, client: Redis, call: RedisCall) -> list[str]:
        return list(call.queues) if call.queues else await bullmq.discover(client, call.prefix)

    async def _queue_stats(self, client: Redis, call: RedisCall) -> StepResult:
        queues = await self._queues(client, call)
        rows, missing = await bullmq.queue_stats(client, call.prefix, queues)
        for row in rows:  # a queue with no keys must not read as an empty one
            row["exists"] = row["queue"] not in missing
        backlogs = [row["backlog"] for row in rows]
        values = {
            "queues": {
                row["queue"]: {k: v for k, v in row.items() if k != "queue"} for row in rows
            },
            "total_backlog": sum(backlogs),
            "max_backlog": max(backlogs, default=0),
        }
        if not queues:
            summary = f"no BullMQ queues found under prefix {call.prefix!r}"
        else:
            summary = "; ".join(_queue_words(row, row["queue"] in missing) for row in rows)
        return table(summary, list(REDIS_QUEUE_COLUMNS), rows, values=values, limit=len(rows) or 1)

    async def _queue_failures(self, client: Redis, call: RedisCall) -> StepResult:
        queues = await self._queues(client, call)
        rows, total = await bullmq.recent_failures(client, call.prefix, queues, call.count)
        if total == 0:
            summary = "no failed jobs"
        else:
            summary = f"{total} failed jobs"
            if total > len(rows):
                summary += f" ({len(rows)} most recent shown)"
        return table(
            summary,
            list(REDIS_FAILURE_COLUMNS),
            rows,
            total=total,
            values={"failure_count": total},
            limit=call.count,
        )

    async def _discover(self, client: Redis, call: RedisCall) -> StepResult:
        names = await bullmq.discover(client, call.prefix)
        rows = await bullmq.describe_queues(client, call.prefix, names)
        summary = (
            f"{len(names)} BullMQ queues: {', '.join(names)}"
            if names
            else f"no BullMQ queues found under prefix {call.prefix!r}"
        )
        return table(
            summary,
            ["queue", "version", "paused"],
            rows,
            values={"queue_names": names},
            limit=len(rows) or 1,
        )

    # --- errors ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _translated(self, step_id: str | None) -> AsyncIterator[Redis]:
        """Yield the client; turn redis-py's errors into ones that say what to do."""
        if self._client is None:
            raise AdapterNotConfigured(NOT_CONFIGURED, adapter=NAME, step_id=step_id)
        try:
            async with asyncio.timeout(self._deadline_s):
                yield self._client
        except TimeoutError as exc:
            raise AdapterTimeout(
                f"Redis: no answer from {self._where} within the {self._deadline_s:g} s deadline",
                adapter=NAME,
                step_id=step_id,
            ) from exc
        except bullmq.LayoutError as exc:
            raise AdapterResponseError(
                f"Redis: {exc}; this is not the BullMQ v5/v6 layout the bot reads",
                adapter=NAME,
                step_id=step_id,
            ) from exc
        except (rx.AuthenticationError, rx.AuthorizationError, rx.NoPermissionError) as exc:
            raise AdapterAuthError(
                f"Redis at {self._where} rejected the bot's credentials or rights ({exc}); "
                "check REDIS_URL",
                adapter=NAME,
                step_id=step_id,
            ) from exc
        except rx.TimeoutError as exc:
            raise AdapterTimeout(
                f"Redis: {self._where} did not answer in time ({_first_line(exc)})",
                adapter=NAME,
                step_id=step_id,
            ) from exc
        except rx.BusyLoadingError as exc:
            raise AdapterUnavailable(
                f"Redis: {self._where} is loading its dataset into memory; try again shortly",
                adapter=NAME,
                step_id=step_id,
            ) from exc
        except rx.ConnectionError as exc:
            raise AdapterUnavailable(
                f"Redis: unreachable ({_reason(exc)}) at {self._where}",
                adapter=NAME,
                step_id=step_id,
            ) from exc
        except rx.RedisError as exc:
            raise AdapterResponseError(
                f"Redis answered with an error: {_first_line(exc)}", adapter=NAME, step_id=step_id
            ) from exc


def _queue_words(row: dict[str, Any], missing: bool) -> str:
    name = row["queue"]
    if missing:
        return f"{name}: no such queue"
    words = f"{name}: {row['waiting']} waiting, backlog {row['backlog']}, {row['failed']} failed"
    if row["oldest_waiting_age_s"] is not None:
        words += f", oldest waiting {row['oldest_waiting_age_s']} s"
    if row["paused"]:
        words += " (paused)"
    return words


def _reason(exc: Exception) -> str:
    message = str(exc).lower()
    return next((said for words, said in _REASONS if words in message), _first_line(exc))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _call(request: AdapterRequest) -> RedisCall:
    call = request.call
    if not isinstance(call, RedisCall):
        raise TypeError(f"the redis adapter was given a {type(call).__name__}")
    return call


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
