"""The scheduler's overhead: 1,000 open runs, each re-checked every 30 s, on one process.

The store is a scratch PostgreSQL database on the local server; each re-check runs one detection
step whose adapter answers in-process at once (no backend call), so the numbers are the
scheduler's own cost plus the engine's (a claimed step, its result and the run's watch written
to the store per re-check). Reported: CPU seconds of this process per minute of wall time while
the runs are re-checked, and the lateness of jobs (scheduled time to dispatch, and to the end of
the re-check), p50 / p99. The database server's CPU is not counted.

``BENCH_SCHEDULER_S`` sets how long it measures (default 120 s; `make bench` runs it).
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED, JobEvent
from psycopg import sql

from agape_ops.engine.commands import StartRun
from agape_ops.engine.engine import Engine
from agape_ops.engine.permissions import Permissions
from agape_ops.runbooks.model import Runbook
from agape_ops.scheduler.service import SchedulerService
from agape_ops.store import open_store
from bench.instant import InstantAdapter
from bench.postgres_bench import ADMIN_DSN

RUNS = 1000
RUNBOOK: dict[str, Any] = {
    "id": "bench-recheck",
    "title": "Bench re-check",
    "severity": "sev3",  # no status reminders
    "summary": "benchmark",
    "owner": "ops",
    "recheck": "30s",
    "detection": [
        {
            "id": "failed_jobs",
            "title": "Failed jobs",
            "postgres": {"sql": "SELECT 3 AS failed"},
            "when": "failed > 0",
            "finding": "{{ failed }} failed",
        }
    ],
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(url: str, seconds: float) -> None:
    store = await open_store(url)
    engine = Engine(
        runbooks={"bench-recheck": Runbook.model_validate(RUNBOOK)},
        store=store,
        adapters={"postgres": InstantAdapter()},
        permissions=Permissions.of(["U1"], ["U2"]),
    )
    started = time.perf_counter()
    for n in range(RUNS):
        outcome = await engine.execute(StartRun("bench-recheck", actor="U1", key=f"open-{n}"))
        assert outcome.ok, outcome.message
    print(f"{'open 1,000 runs (re-check every 30 s)':<44} {time.perf_counter() - started:8.1f} s")

    dispatched: list[float] = []
    finished: list[float] = []

    def on_event(event: JobEvent) -> None:
        now = datetime.now(UTC)
        if event.code == EVENT_JOB_SUBMITTED:
            times = event.scheduled_run_times
            dispatched.extend((now - at).total_seconds() * 1000 for at in times)
        else:
            at = event.scheduled_run_time
            finished.append((now - at).total_seconds() * 1000)

    service = SchedulerService(engine, store.target)
    started = time.perf_counter()
    await service.start()
    assert service.leading
    assert service.scheduler.aps is not None
    print(
        f"{'take the scheduler over: plan 1,000 runs':<44} {time.perf_counter() - started:8.1f} s"
    )
    service.scheduler.aps.add_listener(on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED)
    cpu_before, wall_before = cpu_s(), time.perf_counter()
    await asyncio.sleep(seconds)  # the measurement window: real time passing is the point
    cpu = cpu_s() - cpu_before
    wall = time.perf_counter() - wall_before
    fired, failed = service.scheduler.fired, service.scheduler.failed
    await service.close()
    await store.close()

    print(
        f"{'scheduler: CPU per minute (1,000 runs)':<44} {cpu / wall * 60:8.2f} s/min"
        f"   over {wall:.0f} s, {fired} jobs fired, {failed} failed"
    )
    for name, samples in (("dispatch", dispatched), ("done", finished)):
        print(
            f"{'scheduler: job lateness to ' + name:<44} p50 {percentile(samples, 0.5):8.1f} ms"
            f"   p99 {percentile(samples, 0.99):8.1f} ms   n={len(samples)}"
            f"   mean {statistics.fmean(samples) if samples else 0:.1f} ms"
        )


async def bench_scheduler(seconds: float | None = None) -> None:
    """Run the measurement on a scratch PostgreSQL store, dropped afterwards."""
    seconds = seconds or float(os.environ.get("BENCH_SCHEDULER_S", "120"))
    name = f"agape_bench_sched_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        await measure(f"{base}/{name}", seconds)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


if __name__ == "__main__":
    asyncio.run(bench_scheduler())
