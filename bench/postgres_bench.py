"""PostgreSQL adapter numbers: a detection read over a busy table, and an unreachable server."""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import time
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql

from agape_ops.adapters.postgres import PostgresAdapter, open_pool
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import AdapterError
from agape_ops.runbooks.catalog import load_catalog

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
WEBHOOKS = 100_000


def _scratch(name: str) -> str:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    schema = resources.files("agape_ops.runbooks").joinpath("backend_schema.sql").read_bytes()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(schema)
        conn.execute(
            "INSERT INTO webhook_events (event_type, reference, status, created_at) "
            "SELECT 'charge.success', 'T-' || g, "
            "CASE WHEN g %% 20 = 0 THEN 'failed' ELSE 'processed' END, "
            "now() - (g %% 2880) * interval '1 minute' FROM generate_series(1, %s) g",
            (WEBHOOKS,),
        )
        conn.execute("ANALYZE webhook_events")
    return dsn


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def _measure(dsn: str, runbooks_dir: str) -> tuple[list[float], float]:
    runbook = load_catalog([Path(runbooks_dir)]).runbooks["payment-gateway-outage"]
    step = runbook.step("webhook_failure_rate")
    assert step is not None
    assert step.postgres is not None
    pool = await open_pool(dsn)
    adapter = PostgresAdapter(pool)
    request = AdapterRequest(run_id="B-1", step=step, call=step.postgres, idempotency_key="b")
    samples = []
    try:
        for _ in range(30):
            started = time.perf_counter()
            await adapter.execute(request)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        await pool.close()
    down_pool = await open_pool("postgresql://postgres@127.0.0.1:1/none")
    started = time.perf_counter()
    try:
        await PostgresAdapter(down_pool).execute(request)
    except AdapterError:
        pass
    finally:
        await down_pool.close()
    return samples, time.perf_counter() - started


def bench_postgres(runbooks_dir: str) -> None:
    # The pool retries the unreachable server in the background and warns each time.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    name = f"agape_bench_{os.getpid()}"
    try:
        dsn = _scratch(name)
        samples, unreachable_s = asyncio.run(_measure(dsn, runbooks_dir))
    finally:
        _drop(name)
    print(
        f"{'webhook failure rate read, 100k webhooks':<44} median "
        f"{statistics.median(samples):8.3f} ms   max {max(samples):8.3f} ms"
    )
    print(f"{'unreachable PostgreSQL reported after':<44}        {unreachable_s:8.2f} s")
