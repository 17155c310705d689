"""Unreachable or silent PostgreSQL and Redis are reported within seconds, in plain words."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from agape_ops.adapters.postgres import PostgresAdapter, open_pool
from agape_ops.adapters.redis import RedisAdapter, open_client
from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.errors import AdapterTimeout, AdapterUnavailable
from agape_ops.runbooks.model import PostgresCall, RedisCall, Step

pytestmark = pytest.mark.integration

#: Every failure must be reported within this many seconds.
BUDGET_S = 6.0
CLOSED_PORT = 1
PASSWORD = "s3cret-Passw0rd"


def pg_request() -> AdapterRequest:
    step = Step(id="db_alive", title="Database answers", postgres=PostgresCall(sql="SELECT 1"))
    return AdapterRequest(run_id="INC-1", step=step, call=step.call, idempotency_key="k")


def redis_request() -> AdapterRequest:
    step = Step(id="queues", title="Queue depth", redis=RedisCall(command="queue_stats"))
    return AdapterRequest(run_id="INC-1", step=step, call=step.call, idempotency_key="k")


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """Listen on a port but never accept: connections open and then nothing ever answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server
    finally:
        server.close()


async def test_unreachable_postgres_is_reported_as_refused_within_seconds() -> None:
    pool = await open_pool(f"postgresql://agape:{PASSWORD}@127.0.0.1:{CLOSED_PORT}/agape")
    adapter = PostgresAdapter(pool)
    try:
        started = time.monotonic()
        # the step and a health probe wait on the same pool at once, as they would in the bot
        failure, probe = await asyncio.gather(
            adapter.execute(pg_request()), adapter.probe(), return_exceptions=True
        )
        assert time.monotonic() - started < BUDGET_S
        assert isinstance(failure, AdapterUnavailable)
        assert failure.message == (
            f"PostgreSQL: unreachable (connection refused) at 127.0.0.1:{CLOSED_PORT}"
        )
        assert failure.step_id == "db_alive"
        assert isinstance(probe, Probe)
        assert not probe.ok
        assert "unreachable (connection refused)" in probe.detail
        assert PASSWORD not in probe.detail
    finally:
        await pool.close()


async def test_postgres_that_never_answers_is_reported_within_seconds(
    silent_server: socket.socket,
) -> None:
    port = silent_server.getsockname()[1]
    pool = await open_pool(f"postgresql://agape:{PASSWORD}@127.0.0.1:{port}/agape")
    try:
        started = time.monotonic()
        with pytest.raises((AdapterUnavailable, AdapterTimeout)) as caught:
            await PostgresAdapter(pool).execute(pg_request())
        assert time.monotonic() - started < BUDGET_S
        assert caught.value.message.startswith("PostgreSQL: ")
        assert PASSWORD not in caught.value.message
    finally:
        silent_server.close()  # refuse the pool's pending attempt so closing it is quick
        await pool.close()


async def test_unreachable_redis_is_reported_as_refused_within_seconds() -> None:
    client = open_client(f"redis://:{PASSWORD}@127.0.0.1:{CLOSED_PORT}/0")
    adapter = RedisAdapter(client)
    try:
        started = time.monotonic()
        with pytest.raises(AdapterUnavailable) as caught:
            await adapter.execute(redis_request())
        assert time.monotonic() - started < BUDGET_S
        assert caught.value.message == (
            f"Redis: unreachable (connection refused) at 127.0.0.1:{CLOSED_PORT}"
        )
        assert caught.value.step_id == "queues"
        probe = await adapter.probe()
        assert not probe.ok
        assert PASSWORD not in probe.detail
    finally:
        await client.aclose()


async def test_redis_that_never_answers_is_reported_within_seconds(
    silent_server: socket.socket,
) -> None:
    port = silent_server.getsockname()[1]
    client = open_client(f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
    try:
        started = time.monotonic()
        with pytest.raises((AdapterUnavailable, AdapterTimeout)) as caught:
            await RedisAdapter(client).execute(redis_request())
        assert time.monotonic() - started < BUDGET_S
        assert caught.value.message.startswith("Redis")
        assert PASSWORD not in caught.value.message
    finally:
        await client.aclose()
