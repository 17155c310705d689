"""The Redis adapter against a real Redis holding BullMQ-shaped keys (v5 and v6 layouts)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from agape_ops.adapters.redis import RedisAdapter, open_client
from agape_ops.engine.ports import AdapterRequest
from agape_ops.engine.results import StepResult
from agape_ops.errors import AdapterNotConfigured, AdapterResponseError
from agape_ops.runbooks.fields import COMMON, FIELDS
from agape_ops.runbooks.model import RedisCall, Step

pytestmark = pytest.mark.integration

COMMANDS = ("ping", "info", "queue_stats", "queue_failures", "discover_queues")


def request(command: str, **call: Any) -> AdapterRequest:
    step = Step(id="queues", title="a step", redis=RedisCall(command=command, **call))
    return AdapterRequest(run_id="INC-1", step=step, call=step.call, idempotency_key="k")


@pytest.fixture
async def client(redis_db: str) -> AsyncIterator[Redis]:
    opened = open_client(redis_db)
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
def adapter(client: Redis) -> RedisAdapter:
    return RedisAdapter(client)


def now_ms() -> int:
    return int(time.time() * 1000)


async def add_job(client: Redis, queue: str, job_id: str, **fields: Any) -> None:
    """Write a job hash the way BullMQ does (name, data, timestamp ...)."""
    values = {"name": "send-email", "data": "{}", "timestamp": now_ms(), **fields}
    for field, value in values.items():
        await client.hset(f"bull:{queue}:{job_id}", field, value)


async def bullmq_queue(
    client: Redis,
    queue: str,
    *,
    version: str,
    wait: list[str] = (),  # type: ignore[assignment]  # read-only default
    paused_list: list[str] = (),  # type: ignore[assignment]
    active: list[str] = (),  # type: ignore[assignment]
    prioritized: int = 0,
    delayed: int = 0,
    completed: int = 0,
    paused_flag: bool = False,
) -> None:
    """Lay out a queue as BullMQ does: jobs LPUSHed oldest first, so the oldest is rightmost."""
    await client.hset(f"bull:{queue}:meta", mapping={"version": f"bullmq:{version}"})
    if paused_flag:
        await client.hset(f"bull:{queue}:meta", "paused", "1")
    for key, ids in (("wait", wait), ("paused", paused_list), ("active", active)):
        for job_id in ids:
            await client.lpush(f"bull:{queue}:{key}", job_id)
    for key, count in (
        ("prioritized", prioritized),
        ("delayed", delayed),
        ("completed", completed),
    ):
        if count:
            await client.zadd(f"bull:{queue}:{key}", {f"{key}-{n}": n for n in range(count)})
    await client.set(f"bull:{queue}:id", "100")


async def snapshot(client: Redis) -> dict[str, Any]:
    """Return every key with its type, value and TTL, to prove nothing changed."""
    state: dict[str, Any] = {}
    async for key in client.scan_iter(count=1000):
        kind = await client.type(key)
        if kind == "string":
            value: Any = await client.get(key)
        elif kind == "list":
            value = await client.lrange(key, 0, -1)
        elif kind == "hash":
            value = await client.hgetall(key)
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        else:
            raise AssertionError(f"unexpected {kind!r} at {key!r}")
        state[key] = (kind, value, await client.ttl(key))
    return state


@pytest.fixture
async def two_queues(client: Redis) -> None:
    """An email queue (v6, busy) and an invoice queue (v5, paused with its jobs in `paused`)."""
    for job_id, minutes_ago in (("1", 10), ("2", 5), ("3", 1)):
        await add_job(client, "email", job_id, timestamp=now_ms() - minutes_ago * 60_000)
    await bullmq_queue(
        client,
        "email",
        version="6.3.0",
        wait=["1", "2", "3"],
        active=["4"],
        prioritized=2,
        delayed=1,
        completed=5,
    )
    for job_id, finished, reason, attempts in (
        ("5", now_ms() - 3000, "SMTP 421 try again later", {"attemptsMade": "3"}),
        ("6", now_ms() - 1000, "Resend API 429", {"atm": "2"}),
    ):
        await add_job(client, "email", job_id, failedReason=reason, finishedOn=finished, **attempts)
        await client.zadd("bull:email:failed", {job_id: finished})
    await add_job(client, "invoice", "7", timestamp=now_ms() - 120_000, name="render-invoice")
    await add_job(client, "invoice", "8", timestamp=now_ms() - 60_000, name="render-invoice")
    await bullmq_queue(client, "invoice", version="5.34.1", paused_list=["7", "8"])
    failed_at = now_ms() - 2000
    await add_job(
        client,
        "invoice",
        "9",
        name="render-invoice",
        failedReason="PDF renderer crashed: " + "x" * 1000,
        finishedOn=failed_at,
        attemptsMade="1",
    )
    await client.zadd("bull:invoice:failed", {"9": failed_at})


# --- BullMQ queues -----------------------------------------------------------------------------


@pytest.mark.usefixtures("two_queues")
async def test_queue_stats_reads_a_v6_queue_counting_prioritized_in_the_backlog(
    adapter: RedisAdapter,
) -> None:
    result = await adapter.execute(request("queue_stats", queues=["email"]))
    (row,) = result.rows
    assert {k: v for k, v in row.items() if k != "oldest_waiting_age_s"} == {
        "queue": "email",
        "waiting": 3,
        "active": 1,
        "prioritized": 2,
        "delayed": 1,
        "failed": 2,
        "completed": 5,
        "paused": False,
        "backlog": 5,
        "version": "bullmq:6.3.0",
        "exists": True,
    }
    assert 598 <= row["oldest_waiting_age_s"] <= 602  # job 1, queued ten minutes ago
    assert result.values["total_backlog"] == 5
    assert result.values["queues"]["email"]["backlog"] == 5
    assert result.summary.startswith("email: 3 waiting, backlog 5, 2 failed, oldest waiting")


@pytest.mark.usefixtures("two_queues")
async def test_queue_stats_reads_a_paused_v5_queue_from_its_paused_list(
    adapter: RedisAdapter,
) -> None:
    result = await adapter.execute(request("queue_stats", queues=["invoice"]))
    (row,) = result.rows
    assert row["paused"] is True
    assert (row["waiting"], row["backlog"], row["failed"]) == (2, 2, 1)
    assert row["version"] == "bullmq:5.34.1"
    assert 118 <= row["oldest_waiting_age_s"] <= 122
    assert result.summary.endswith("(paused)")


async def test_a_v6_queue_is_paused_when_its_meta_says_so(
    adapter: RedisAdapter, client: Redis
) -> None:
    await add_job(client, "email", "1")
    await bullmq_queue(client, "email", version="6.0.0", wait=["1"], paused_flag=True)
    result = await adapter.execute(request("queue_stats", queues=["email"]))
    assert result.rows[0]["paused"] is True
    assert result.rows[0]["waiting"] == 1


@pytest.mark.usefixtures("two_queues")
async def test_queue_stats_discovers_queues_with_scan_when_none_are_named(
    adapter: RedisAdapter, client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_keys(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("KEYS must never be used")

    monkeypatch.setattr(client, "keys", no_keys)
    result = await adapter.execute(request("queue_stats"))
    assert [row["queue"] for row in result.rows] == ["email", "invoice"]
    assert result.values["total_backlog"] == 7
    assert result.values["max_backlog"] == 5
    assert set(result.values["queues"]) == {"email", "invoice"}


@pytest.mark.usefixtures("two_queues")
async def test_a_queue_that_does_not_exist_is_flagged_not_read_as_an_empty_queue(
    adapter: RedisAdapter,
) -> None:
    result = await adapter.execute(request("queue_stats", queues=["email", "sms"]))
    sms = result.rows[1]
    assert sms == {
        "queue": "sms",
        "waiting": 0,
        "active": 0,
        "prioritized": 0,
        "delayed": 0,
        "failed": 0,
        "completed": 0,
        "paused": False,
        "backlog": 0,
        "oldest_waiting_age_s": None,
        "version": None,
        "exists": False,
    }
    assert result.rows[0]["exists"] is True
    assert result.values["queues"]["sms"]["exists"] is False
    assert "sms: no such queue" in result.summary


async def test_a_custom_prefix_is_honoured(adapter: RedisAdapter, client: Redis) -> None:
    await client.hset("agape:email:meta", "version", "bullmq:6.1.0")
    await client.lpush("agape:email:wait", "1", "2")
    result = await adapter.execute(request("queue_stats", prefix="agape"))
    assert [(r["queue"], r["waiting"]) for r in result.rows] == [("email", 2)]


@pytest.mark.usefixtures("two_queues")
async def test_discover_queues_lists_each_queue_with_version_and_paused(
    adapter: RedisAdapter,
) -> None:
    result = await adapter.execute(request("discover_queues"))
    assert result.rows == [
        {"queue": "email", "version": "bullmq:6.3.0", "paused": False},
        {"queue": "invoice", "version": "bullmq:5.34.1", "paused": True},
    ]
    assert result.values["queue_names"] == ["email", "invoice"]
    assert result.summary == "2 BullMQ queues: email, invoice"


async def test_an_empty_redis_has_no_queues(adapter: RedisAdapter) -> None:
    stats = await adapter.execute(request("queue_stats"))
    assert stats.rows == []
    assert stats.values == {"queues": {}, "total_backlog": 0, "max_backlog": 0}
    assert stats.summary == "no BullMQ queues found under prefix 'bull'"
    found = await adapter.execute(request("discover_queues"))
    assert found.values["queue_names"] == []


@pytest.mark.usefixtures("two_queues")
async def test_queue_failures_lists_the_newest_failures_across_queues_with_reasons(
    adapter: RedisAdapter,
) -> None:
    result = await adapter.execute(request("queue_failures", count=2))
    assert [(r["queue"], r["job_id"]) for r in result.rows] == [("email", "6"), ("invoice", "9")]
    newest, second = result.rows
    assert newest["failed_reason"] == "Resend API 429"
    assert newest["attempts"] == 2  # from `atm`
    assert newest["name"] == "send-email"
    assert datetime.fromisoformat(newest["finished_at"]).tzinfo is not None
    assert second["failed_reason"].startswith("PDF renderer crashed: xxx")
    assert len(second["failed_reason"]) == 300
    assert second["attempts"] == 1
    assert result.values["failure_count"] == 3
    assert result.total_rows == 3
    assert result.summary == "3 failed jobs (2 most recent shown)"


@pytest.mark.usefixtures("two_queues")
async def test_queue_failures_reads_attempts_made_and_finished_on(adapter: RedisAdapter) -> None:
    result = await adapter.execute(request("queue_failures", queues=["email"]))
    oldest = result.rows[-1]
    assert (oldest["job_id"], oldest["attempts"]) == ("5", 3)
    assert oldest["failed_reason"] == "SMTP 421 try again later"
    finished = datetime.fromisoformat(oldest["finished_at"])
    assert abs((datetime.now(UTC) - finished).total_seconds() - 3) < 5


async def test_a_failure_with_an_impossible_finish_time_is_listed_without_one(
    adapter: RedisAdapter, client: Redis
) -> None:
    await bullmq_queue(client, "email", version="6.0.0")
    await add_job(client, "email", "5", failedReason="boom", finishedOn="9" * 30)
    await client.zadd("bull:email:failed", {"5": float("inf")})
    result = await adapter.execute(request("queue_failures"))
    assert [(r["job_id"], r["finished_at"]) for r in result.rows] == [("5", None)]
    assert result.rows[0]["failed_reason"] == "boom"


async def test_no_failures_says_so(adapter: RedisAdapter, client: Redis) -> None:
    await bullmq_queue(client, "email", version="6.0.0")
    result = await adapter.execute(request("queue_failures"))
    assert result.rows == []
    assert result.values == {"failure_count": 0}
    assert result.summary == "no failed jobs"


async def test_a_key_of_the_wrong_type_is_reported_by_name(
    adapter: RedisAdapter, client: Redis
) -> None:
    await client.hset("bull:email:meta", "version", "bullmq:6.0.0")
    await client.set("bull:email:wait", "not a list")
    with pytest.raises(AdapterResponseError, match="bull:email:wait") as caught:
        await adapter.execute(request("queue_stats", queues=["email"]))
    assert "WRONGTYPE" in caught.value.message
    assert caught.value.step_id == "queues"


# --- health and memory -------------------------------------------------------------------------


async def test_ping_reports_reachable_with_latency(adapter: RedisAdapter) -> None:
    result = await adapter.execute(request("ping"))
    assert result.values["reachable"] is True
    assert isinstance(result.values["latency_ms"], int)
    assert result.summary.startswith("Redis answered PING in")


async def test_info_reports_memory_clients_and_version(adapter: RedisAdapter) -> None:
    result = await adapter.execute(request("info"))
    values = result.values
    assert values["used_memory"] > 0
    assert values["used_memory_human"].endswith(("K", "M", "G", "B"))
    assert values["connected_clients"] >= 1
    assert values["redis_version"].count(".") == 2
    if values["maxmemory"] == 0:
        assert values["memory_ratio"] is None
    else:
        assert 0 < values["memory_ratio"] < 1
    assert result.rows == [values]


# --- the contract ------------------------------------------------------------------------------


@pytest.mark.usefixtures("two_queues")
@pytest.mark.parametrize("command", COMMANDS)
async def test_every_command_produces_exactly_the_fields_runbooks_may_read(
    adapter: RedisAdapter, command: str
) -> None:
    result = await adapter.execute(request(command))
    produced = set(result.columns) | set(result.values) | {k for r in result.rows for k in r}
    assert produced == FIELDS[("redis", command)]
    assert set(result.context()) >= COMMON


@pytest.mark.usefixtures("two_queues")
async def test_no_command_changes_the_keyspace(adapter: RedisAdapter, client: Redis) -> None:
    before = await snapshot(client)
    assert len(before) > 10
    for command in COMMANDS:
        result: StepResult = await adapter.execute(request(command))
        assert result.summary
        assert await adapter.preview(request(command)) is None
    await adapter.execute(request("queue_stats", queues=["email", "sms"]))
    await adapter.probe()
    assert await snapshot(client) == before


def test_describe_names_the_reads_and_never_keys() -> None:
    adapter = RedisAdapter(None)
    text = adapter.describe(request("queue_stats"))
    assert "SCAN MATCH bull:*:meta" in text
    assert "changes nothing" in text
    assert "KEYS" not in adapter.describe(request("discover_queues")).replace("never KEYS", "")
    assert "email, invoice" in adapter.describe(
        request("queue_failures", queues=["email", "invoice"])
    )


async def test_unconfigured_adapter_says_which_setting_to_set() -> None:
    adapter = RedisAdapter(None)
    with pytest.raises(AdapterNotConfigured, match="set REDIS_URL"):
        await adapter.execute(request("ping"))
    probe = await adapter.probe()
    assert (probe.ok, probe.configured) == (False, False)


async def test_probe_reports_a_reachable_redis_with_its_latency(adapter: RedisAdapter) -> None:
    probe = await adapter.probe()
    assert probe.ok
    assert probe.latency_ms is not None
    assert probe.detail == f"answered PING in {probe.latency_ms} ms"
