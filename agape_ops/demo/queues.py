"""BullMQ queues in the backend's Redis, laid out key by key as BullMQ v5 keeps them."""

from __future__ import annotations

import redis


def bullmq_queue(
    url: str,
    queue: str,
    *,
    waiting: int,
    oldest_age_s: int = 0,
    active: int = 0,
    failed: dict[str, str] | None = None,
    version: str = "bullmq:5.7.0",
) -> None:
    """Lay out one BullMQ v5 queue: waiting jobs (the oldest ``oldest_age_s`` old), failures."""
    client = redis.Redis.from_url(url)
    try:
        now_ms = int(client.time()[0]) * 1000
        client.hset(f"bull:{queue}:meta", mapping={"version": version})
        ids = [f"{queue}-w{n}" for n in range(waiting)]
        if ids:
            # BullMQ LPUSHes, so the oldest job sits at the right end of the list
            client.lpush(f"bull:{queue}:wait", *ids)
            client.hset(
                f"bull:{queue}:{ids[0]}",
                mapping={"name": "send", "timestamp": now_ms - oldest_age_s * 1000},
            )
        for n in range(active):
            client.lpush(f"bull:{queue}:active", f"{queue}-a{n}")
        for minutes, (job_id, reason) in enumerate((failed or {}).items(), start=1):
            finished = now_ms - minutes * 60_000  # the first failure given is the newest
            client.zadd(f"bull:{queue}:failed", {job_id: finished})
            client.hset(
                f"bull:{queue}:{job_id}",
                mapping={
                    "name": f"{queue}-job",
                    "failedReason": reason,
                    "finishedOn": finished,
                    "attemptsMade": 3,
                },
            )
    finally:
        client.close()
