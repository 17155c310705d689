"""Read BullMQ's Redis layout (v5 and v6): queue counts, the oldest waiting job, recent failures.

Keys are ``<prefix>:<queue>:<suffix>``: lists ``wait``, ``paused`` (v5 keeps a paused queue's
jobs there; v6 keeps them in ``wait`` and sets ``meta.paused``) and ``active``; sorted sets
``prioritized``, ``delayed``, ``failed`` and ``completed`` (scored by finishedOn, ms); the hash
``meta`` (``version`` = ``bullmq:<semver>``, ``paused``); and one hash per job. Only reads, in
as few round trips as possible: one pipeline per question, never MULTI, never KEYS.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from agape_ops.adapters.pgvalues import truncate

#: A failure reason (often a stack trace) is cut to this many characters.
MAX_REASON = 300

_GLOB = re.compile(r"([*?\[\]\\])")


class LayoutError(Exception):
    """A key holds something other than what BullMQ keeps there (e.g. WRONGTYPE)."""

    def __init__(self, key: str, error: Exception) -> None:
        super().__init__(f"{key}: {error}")
        self.key = key


def text(value: Any) -> str | None:
    """Return a Redis reply as text whether or not the client decodes responses."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _int(value: Any) -> int | None:
    try:
        return int(text(value) or "")
    except ValueError:
        return None


def _key(prefix: str, queue: str, suffix: str) -> str:
    return f"{prefix}:{queue}:{suffix}"


async def _run(pipe: Any, keys: list[str]) -> list[Any]:
    """Execute a pipeline; raise LayoutError naming the first key whose command failed."""
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    for key, reply in zip(keys, replies, strict=True):
        if isinstance(reply, Exception):
            raise LayoutError(key, reply)
    return replies


async def discover(client: Redis, prefix: str) -> list[str]:
    """Return the queue names under ``prefix``, found with SCAN over ``<prefix>:*:meta``."""
    pattern = _GLOB.sub(r"\\\1", prefix) + ":*:meta"
    names = set()
    async for key in client.scan_iter(match=pattern, count=1000):
        name = text(key) or ""
        names.add(name[len(prefix) + 1 : -len(":meta")])
    return sorted(n for n in names if n)


async def describe_queues(client: Redis, prefix: str, queues: list[str]) -> list[dict[str, Any]]:
    """Return each queue's BullMQ version and whether it is paused."""
    pipe = client.pipeline(transaction=False)
    keys: list[str] = []
    for queue in queues:
        pipe.hgetall(_key(prefix, queue, "meta"))
        pipe.llen(_key(prefix, queue, "paused"))
        keys += [_key(prefix, queue, "meta"), _key(prefix, queue, "paused")]
    replies = await _run(pipe, keys)
    rows = []
    for index, queue in enumerate(queues):
        meta, paused_len = replies[2 * index : 2 * index + 2]
        meta = {text(k): text(v) for k, v in meta.items()}
        rows.append(
            {"queue": queue, "version": _version(meta), "paused": _paused(meta, paused_len)}
        )
    return rows


_COUNTS = (
    ("llen", "wait"),
    ("llen", "paused"),
    ("llen", "active"),
    ("zcard", "prioritized"),
    ("zcard", "delayed"),
    ("zcard", "failed"),
    ("zcard", "completed"),
    ("hgetall", "meta"),
    ("lindex", "wait"),
    ("lindex", "paused"),
)
_EVERY = (
    "wait",
    "paused",
    "active",
    "prioritized",
    "delayed",
    "failed",
    "completed",
    "meta",
    "id",
    "events",
)


async def queue_stats(
    client: Redis, prefix: str, queues: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return one row per queue (counts, backlog, paused, version, oldest waiting age).

    Also return the queues that have no keys at all: their rows hold zeros and version None.
    """
    pipe = client.pipeline(transaction=False)
    keys: list[str] = ["TIME"]
    pipe.time()
    for queue in queues:
        for command, suffix in _COUNTS:
            key = _key(prefix, queue, suffix)
            if command == "lindex":
                pipe.lindex(key, -1)  # BullMQ LPUSHes: the oldest job is at the right end
            else:
                getattr(pipe, command)(key)
            keys.append(key)
        every = [_key(prefix, queue, s) for s in _EVERY]
        pipe.exists(*every)
        keys.append(_key(prefix, queue, "*"))
    replies = await _run(pipe, keys)
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000

    per_queue = len(_COUNTS) + 1
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    oldest_ids: list[tuple[int, str]] = []
    for index, queue in enumerate(queues):
        start = 1 + index * per_queue
        wait, paused_len, active, prioritized, delayed, failed, completed = (
            int(v) for v in replies[start : start + 7]
        )
        meta = {text(k): text(v) for k, v in replies[start + 7].items()}
        for job in replies[start + 8 : start + 10]:
            if job is not None:
                oldest_ids.append((index, _key(prefix, queue, text(job) or "")))
        waiting = wait + paused_len
        rows.append(
            {
                "queue": queue,
                "waiting": waiting,
                "active": active,
                "prioritized": prioritized,
                "delayed": delayed,
                "failed": failed,
                "completed": completed,
                "paused": _paused(meta, paused_len),
                "backlog": waiting + prioritized,
                "oldest_waiting_age_s": None,
                "version": _version(meta),
            }
        )
        if int(replies[start + 10]) == 0:
            missing.append(queue)
    await _oldest_ages(client, rows, oldest_ids, now_ms)
    return rows, missing


async def _oldest_ages(
    client: Redis, rows: list[dict[str, Any]], jobs: list[tuple[int, str]], now_ms: int
) -> None:
    """Fill in each queue's oldest waiting job's age from the jobs' ``timestamp`` (ms)."""
    if not jobs:
        return
    pipe = client.pipeline(transaction=False)
    for _, job_key in jobs:
        pipe.hget(job_key, "timestamp")
    replies = await _run(pipe, [job_key for _, job_key in jobs])
    for (index, _), stamp in zip(jobs, replies, strict=True):
        created = _int(stamp)
        if created is None:
            continue
        age = max(0, round((now_ms - created) / 1000))
        current = rows[index]["oldest_waiting_age_s"]
        rows[index]["oldest_waiting_age_s"] = age if current is None else max(current, age)


async def recent_failures(
    client: Redis, prefix: str, queues: list[str], count: int
) -> tuple[list[dict[str, Any]], int]:
    """Return the ``count`` most recent failed jobs across ``queues``, and all failures' count."""
    pipe = client.pipeline(transaction=False)
    keys: list[str] = []
    for queue in queues:
        failed = _key(prefix, queue, "failed")
        pipe.zrevrange(failed, 0, count - 1, withscores=True)
        pipe.zcard(failed)
        keys += [failed, failed]
    replies = await _run(pipe, keys)
    total = sum(int(replies[2 * i + 1]) for i in range(len(queues)))
    newest: list[tuple[float, str, str]] = []
    for index, queue in enumerate(queues):
        for member, score in replies[2 * index]:
            newest.append((float(score), queue, text(member) or ""))
    newest.sort(key=lambda item: item[0], reverse=True)
    newest = newest[:count]
    if not newest:
        return [], total

    fields = ("name", "failedReason", "attemptsMade", "atm", "finishedOn")
    pipe = client.pipeline(transaction=False)
    for _, queue, job_id in newest:
        pipe.hmget(_key(prefix, queue, job_id), list(fields))
    job_keys = [_key(prefix, queue, job_id) for _, queue, job_id in newest]
    jobs = await _run(pipe, job_keys)
    rows = []
    for (score, queue, job_id), values in zip(newest, jobs, strict=True):
        name, reason, attempts_made, atm, finished_on = (text(v) for v in values)
        attempts = _int(attempts_made) if attempts_made is not None else _int(atm)
        rows.append(
            {
                "queue": queue,
                "job_id": job_id,
                "name": name,
                "failed_reason": truncate(reason, MAX_REASON) if reason else None,
                "finished_at": _iso(_int(finished_on) or score),
                "attempts": attempts,
            }
        )
    return rows, total


def _iso(ms: float) -> str | None:
    """Return a BullMQ time (ms since the epoch) in ISO 8601, or None when it is no real time."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return None


def _version(meta: dict[str | None, str | None]) -> str | None:
    """Return ``meta.version`` as BullMQ wrote it ("bullmq:5.7.0"), or None when absent."""
    return meta.get("version") or None


def _paused(meta: dict[str | None, str | None], paused_len: Any) -> bool:
    """A v6 queue is paused when ``meta.paused`` is set; a v5 one when its paused list has jobs."""
    flag = (meta.get("paused") or "").strip().lower()
    return flag not in {"", "0", "false"} or int(paused_len) > 0
