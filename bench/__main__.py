"""Measure what an on-call engineer waits for: loading runbooks, matching alerts, engine steps.

Run with `make bench`. Numbers go to the README and the closing note; they are not asserted.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from agape_ops.alerts.model import Alert
from agape_ops.alerts.normalise import from_slack_event
from agape_ops.engine.commands import RunStep, StartRun
from agape_ops.engine.engine import Engine
from agape_ops.engine.permissions import Permissions
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.triggers import match_alert
from agape_ops.store import open_store
from bench.instant import InstantAdapter
from bench.postgres_bench import ADMIN_DSN, bench_postgres
from bench.scheduler_bench import bench_scheduler
from bench.slack_bench import bench_slack

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Return the wall time of each of ``repeat`` calls, in milliseconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(name: str, samples: list[float], unit: str = "ms") -> None:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(f"{name:<44} median {statistics.median(samples):8.3f} {unit}   p95 {p95:8.3f} {unit}")


def bench_catalog() -> None:
    samples = timed(lambda: load_catalog([ROOT / "runbooks"]), 20)
    report("load + lint the 7 runbooks", samples)


def bench_alerts() -> None:
    catalog = load_catalog([ROOT / "runbooks"])
    runbooks = list(catalog.runbooks.values())
    titles = [
        "[FIRING:1] HighErrorRate agape-backend (prod api-1 critical)",
        "[FIRING:2] KubePodCrashLooping payments (prod-eu-1 api critical)",
        "paystack is down, checkouts failing",
        "Triggered: Email queue backlog above 100",
        "disk almost full on db-2",
    ]
    alerts = [Alert(title=t) for t in titles] * 200
    started = time.perf_counter()
    for alert in alerts:
        match_alert(alert, runbooks)
    per_alert_us = (time.perf_counter() - started) / len(alerts) * 1e6
    print(f"{'match one alert against 7 runbooks':<44} mean   {per_alert_us:8.1f} µs")
    events = [
        json.loads(p.read_text())["event"]
        for p in sorted((ROOT / "tests" / "fixtures" / "alerts").glob("*.json"))
    ] * 200
    started = time.perf_counter()
    for event in events:
        from_slack_event(event)
    per_event_us = (time.perf_counter() - started) / len(events) * 1e6
    print(f"{'normalise one Slack alert event':<44} mean   {per_event_us:8.1f} µs")


BENCH_RUNBOOK: dict[str, Any] = {
    "id": "bench",
    "title": "Bench",
    "severity": "sev3",
    "summary": "benchmark",
    "owner": "ops",
    "detection": [
        {
            "id": f"check_{i}",
            "title": f"Check {i}",
            "postgres": {"sql": "SELECT 3 AS failed"},
            "when": "failed > 0",
            "finding": "{{ failed }} failed",
        }
        for i in range(3)
    ],
    "diagnosis": [{"id": "look", "title": "Look", "postgres": {"sql": "SELECT 3 AS failed"}}],
}


async def bench_engine(runs: int, *, url: str | None = None, quiet: bool = False) -> None:
    """Open runs and click a step on each, over a SQLite file or (``url``) PostgreSQL."""
    label = "PostgreSQL" if url else "SQLite"
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(url or f"sqlite+aiosqlite:///{tmp}/bench.db")
        runbook = Runbook.model_validate(BENCH_RUNBOOK)
        engine = Engine(
            runbooks={"bench": runbook},
            store=store,
            adapters={"postgres": InstantAdapter()},
            permissions=Permissions.of(["U1"], ["U2"]),
        )
        opens, steps = [], []
        for _ in range(runs):
            started = time.perf_counter()
            outcome = await engine.execute(
                StartRun(runbook_id="bench", actor="U1", key=uuid.uuid4().hex)
            )
            opens.append((time.perf_counter() - started) * 1000)
            assert outcome.run is not None
            started = time.perf_counter()
            await engine.execute(
                RunStep(run_id=outcome.run.id, step_id="look", actor="U1", key=uuid.uuid4().hex)
            )
            steps.append((time.perf_counter() - started) * 1000)
        await store.close()
    if not quiet:
        report(f"open a run + 3 detection checks ({label})", opens)
        report(f"one step click, end to end ({label})", steps)


async def bench_engine_on_postgres(runs: int) -> None:
    """The same over a scratch PostgreSQL database for the store (dropped afterwards)."""
    name = f"agape_bench_store_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        await bench_engine(runs, url=f"{base}/{name}")
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


def bench_memory() -> None:
    tracemalloc.start()
    load_catalog([ROOT / "runbooks"])
    asyncio.run(bench_engine(50, quiet=True))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{'peak Python memory: catalog + 50 runs':<44} {peak / 1024 / 1024:8.1f} MiB")


def main() -> None:
    bench_catalog()
    bench_alerts()
    asyncio.run(bench_engine(200))
    asyncio.run(bench_engine_on_postgres(200))
    bench_memory()
    bench_postgres(str(ROOT / "runbooks"))
    asyncio.run(bench_slack())
    asyncio.run(bench_scheduler())


if __name__ == "__main__":
    main()
