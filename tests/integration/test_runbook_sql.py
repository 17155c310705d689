"""Every PostgreSQL step of every runbook runs against the backend's schema and does its job.

A scratch copy of the backend's database is seeded with rows that make each detection and
diagnosis check fire (failed webhooks, negative stock, a burst of failed logins ...). Each read
must succeed, produce the fields its ``when:`` and ``finding:`` read, and fire; each write must
preview, refuse when its preview exceeds ``max_rows`` (changing nothing), and then change
exactly the rows it previewed. A step this file does not know how to check fails, naming it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agape_ops.adapters.postgres import PostgresAdapter, open_pool
from agape_ops.engine.ports import AdapterRequest
from agape_ops.engine.results import StepResult
from agape_ops.errors import AgapeError, UnsafeOperation
from agape_ops.runbooks.loader import load_runbook_file
from agape_ops.runbooks.model import PostgresCall, Risk, Runbook, Step
from agape_ops.runbooks.templating import (
    CONTEXT_NAMES,
    environment,
    evaluate,
    references,
    render,
)

pytestmark = pytest.mark.integration

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"

VICTIM = "8d3c2f1a-6b7e-4c9d-a0b1-2e3f4a5b6c7d"
STAFF = "5b0f2a8e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
ADMIN = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PRODUCT = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2910"
VARIANTS = (
    "11111111-2222-4333-8444-555555555551",
    "11111111-2222-4333-8444-555555555552",
    "11111111-2222-4333-8444-555555555553",
)
ORDERS = ("22222222-3333-4444-8555-666666666661", "22222222-3333-4444-8555-666666666662")
WEBHOOK = "3f2b8c1e-5d4a-4b6f-9c2e-7a1d0e9f8b3c"

#: Plausible values for every input a runbook's SQL may bind; a missing one fails loudly.
INPUTS = {
    "user_id": VICTIM,
    "email": "jane@example.com",
    "webhook_id": WEBHOOK,
    "reference": "T685312322670591",
    "new_primary_url": "postgresql://the-seeded-database",  # a dsn_input: the pool's own
}

IDS = {
    "victim": VICTIM,
    "staff": STAFF,
    "admin": ADMIN,
    "product": PRODUCT,
    "v1": VARIANTS[0],
    "v2": VARIANTS[1],
    "v3": VARIANTS[2],
    "o1": ORDERS[0],
    "o2": ORDERS[1],
    "webhook": WEBHOOK,
}

SEED = [
    # people: a customer under attack, a staff member doing admin things, an admin, shoppers
    "INSERT INTO users (id, email, name, role, password_hash) VALUES"
    " (%(victim)s, 'jane@example.com', 'Jane', 'customer', 'h1'),"
    " (%(staff)s, 'ops@agapelooks.com', 'Ops', 'staff', 'h2'),"
    " (%(admin)s, 'admin@agapelooks.com', 'Admin', 'admin', 'h3')",
    "INSERT INTO users (email, name, password_hash)"
    " SELECT 'shopper' || n || '@example.com', 'Shopper', 'h' FROM generate_series(1, 6) n",
    # the victim signed in from five addresses in the last hour
    "INSERT INTO sessions (user_id, ip, user_agent, created_at, expires_at)"
    " SELECT %(victim)s, ('41.58.12.' || n)::inet, 'Mozilla/5.0',"
    " now() - n * interval '5 minutes', now() + interval '1 day' FROM generate_series(1, 5) n",
    # six shoppers behind one address today
    "INSERT INTO sessions (user_id, ip, created_at, expires_at)"
    " SELECT id, '102.89.1.1', now() - interval '2 hours', now() + interval '1 day'"
    " FROM users WHERE email LIKE 'shopper%%'",
    # a burst of failed logins from one address, admin actions by a non-admin, the victim's trail
    "INSERT INTO audit_logs (action, ip, metadata, created_at)"
    " SELECT 'auth.login_failed', '185.220.101.7', '{\"email\": \"jane@example.com\"}',"
    " now() - n * interval '1 minute' FROM generate_series(1, 12) n",
    "INSERT INTO audit_logs (actor_id, action, target_type, target_id, ip, created_at) VALUES"
    " (%(staff)s::uuid, 'admin.refund', 'order', 'AG-1001', '10.0.0.5',"
    " now() - interval '3 hours'),"
    " (%(admin)s::uuid, 'admin.role_changed', 'user', %(victim)s::text, '10.0.0.6',"
    " now() - interval '2 hours'),"
    " (%(victim)s::uuid, 'user.email_changed', 'user', %(victim)s::text, '41.58.12.1',"
    " now() - interval '20 minutes')",
    # stock went below zero on two variants, and orders were taken on them
    "INSERT INTO products (id, name) VALUES (%(product)s, 'Ankara dress')",
    "INSERT INTO product_variants (id, product_id, sku, stock, version, updated_at) VALUES"
    " (%(v1)s, %(product)s, 'ANK-S', -2, 7, now() - interval '1 day'),"
    " (%(v2)s, %(product)s, 'ANK-M', -1, 3, now() - interval '1 day'),"
    " (%(v3)s, %(product)s, 'ANK-L', 4, 5, now() - interval '1 day')",
    "INSERT INTO orders (id, order_number, user_id, status, total_kobo, payment_reference,"
    " created_at) VALUES"
    " (%(o1)s, 'AG-1001', %(victim)s, 'pending_payment', 2500000, 'T685312322670591',"
    " now() - interval '30 minutes'),"
    " (%(o2)s, 'AG-1002', %(victim)s, 'paid', 1200000, 'T685312322670592',"
    " now() - interval '2 hours')",
    "INSERT INTO order_items (order_id, product_id, variant_id, quantity, unit_price_kobo) VALUES"
    " (%(o1)s, %(product)s, %(v1)s, 1, 2500000), (%(o2)s, %(product)s, %(v2)s, 2, 600000)",
    # Paystack initialisation failing, and webhooks failing: 3 of the last 10 minutes' 10
    "INSERT INTO payment_attempts (order_id, reference, status, error_message, created_at)"
    " SELECT %(o1)s, 'T68531232267059' || n, 'init_failed', 'Paystack: 503 Service Unavailable',"
    " now() - n * interval '2 minutes' FROM generate_series(1, 3) n",
    "INSERT INTO webhook_events (event_type, reference, status, error_message, retry_count,"
    " payload, created_at)"
    " SELECT 'charge.success', 'T10' || n, CASE WHEN n <= 3 THEN 'failed' ELSE 'processed' END,"
    " CASE WHEN n <= 3 THEN 'order not found' END, CASE WHEN n <= 3 THEN 3 ELSE 0 END,"
    " '{\"event\": \"charge.success\"}', now() - n * interval '1 minute'"
    " FROM generate_series(1, 10) n",
    "INSERT INTO webhook_events (id, event_type, reference, status, error_message, created_at)"
    " VALUES (%(webhook)s, 'charge.success', 'T685312322670591', 'failed',"
    " 'timeout updating order', now() - interval '2 hours')",
]

#: What each write must leave behind: a query and its expected single value.
WRITE_EFFECTS: dict[str, tuple[str, Any]] = {
    # stock to 0, and a new version (checkout's optimistic lock) and updated_at on those rows only
    "correct_stock": (
        "SELECT string_agg(sku || ' ' || stock || ' v' || version || ' '"
        " || CASE WHEN updated_at > now() - interval '1 hour' THEN 'updated' ELSE 'old' END,"
        " ', ' ORDER BY sku) FROM product_variants",
        "ANK-L 4 v5 old, ANK-M 0 v4 updated, ANK-S 0 v8 updated",
    ),
    "revoke_sessions": (
        "SELECT count(*) FROM sessions WHERE user_id = %(victim)s AND revoked_at IS NULL",
        0,
    ),
    "force_password_reset": (
        "SELECT password_hash FROM users WHERE id = %(victim)s",
        "REVOKED",
    ),
}


def runbooks() -> list[Runbook]:
    return [load_runbook_file(path)[0] for path in sorted(RUNBOOKS.glob("*.yaml"))]


def postgres_steps() -> list[tuple[Runbook, Step]]:
    return [
        (runbook, step)
        for runbook in runbooks()
        for step in runbook.steps()
        if step.postgres is not None
    ]


def reads_by_runbook() -> list[Any]:
    """One case per runbook: its reads share a seeded database, since none changes it."""
    steps: dict[str, tuple[Runbook, list[Step]]] = {}
    for runbook, step in postgres_steps():
        if step.risk is Risk.READ:
            steps.setdefault(runbook.id, (runbook, []))[1].append(step)
    return [pytest.param(runbook, found, id=rid) for rid, (runbook, found) in steps.items()]


def writes() -> list[Any]:
    """One case per write: each gets a fresh seeded database."""
    return [
        pytest.param(runbook, step, id=f"{runbook.id}:{step.id}")
        for runbook, step in postgres_steps()
        if step.risk is not Risk.READ
    ]


def test_the_runbooks_have_postgres_reads_and_writes_to_check() -> None:
    """Guard against checking nothing: the runbooks exist and their steps use SQL."""
    assert len(postgres_steps()) >= 10
    assert writes()


@pytest.fixture
async def pool(backend_db: str) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(backend_db)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def seeded(backend_conn: psycopg.AsyncConnection[Any]) -> psycopg.AsyncConnection[Any]:
    for statement in SEED:
        await backend_conn.execute(statement, IDS)
    return backend_conn


def make_request(runbook: Runbook, step: Step, dsn: str = "") -> AdapterRequest:
    """Render the step's parameters as the engine does, from plausible inputs (a ``dsn_input``
    read is given ``dsn``, the seeded database's)."""
    call = step.call
    assert isinstance(call, PostgresCall)
    for name in step.inputs:
        assert name in INPUTS, f"{runbook.id}:{step.id} needs input {name!r}: add it to INPUTS"
    context = {"inputs": INPUTS}
    params = {k: render(v, context) if isinstance(v, str) else v for k, v in call.params.items()}
    extra = {"dsn": dsn} if call.dsn_input else {}
    return AdapterRequest(
        run_id="INC-1", step=step, call=call, idempotency_key="k", params=params, extra=extra
    )


def check_templates(runbook: Runbook, step: Step, result: StepResult) -> None:
    """The step's when: and finding: read only fields the result has, and render."""
    context = {**result.context(), "inputs": INPUTS}
    builtins = {"loop", *environment().globals}
    for source, expression in ((step.when, True), (step.finding, False)):
        if source is None:
            continue
        for chain in references(source, expression=expression):
            name = chain[0]
            assert name in context or name in CONTEXT_NAMES or name in builtins, (
                f"{runbook.id}:{step.id} reads {name!r}, which the result does not have "
                f"(columns: {result.columns})"
            )
    if step.finding is not None:
        assert render(step.finding, context).strip()
    if step.when is not None:
        fired = evaluate(step.when, context)
        sql = step.call.sql  # type: ignore[attr-defined]
        reads_server_state = "pg_stat_" in sql or "pg_is_in_recovery()" in sql
        if reads_server_state:
            # connection usage, replication lag and whether the server is a standby come from
            # the server, not from seeded rows
            assert fired in (True, False)
        else:
            assert fired, f"{runbook.id}:{step.id}: `{step.when}` did not fire on the seeded rows"


@pytest.mark.parametrize(("runbook", "steps"), reads_by_runbook())
async def test_runbook_reads_run_and_fire_on_the_backend_schema(
    runbook: Runbook,
    steps: list[Step],
    pool: AsyncConnectionPool,
    seeded: psycopg.AsyncConnection[Any],
) -> None:
    adapter = PostgresAdapter(pool)
    dsn = pool.conninfo if isinstance(pool.conninfo, str) else ""
    failures: list[str] = []
    for step in steps:
        try:
            result = await adapter.execute(make_request(runbook, step, dsn))
            assert result.columns, f"{runbook.id}:{step.id} returned no columns"
            check_templates(runbook, step, result)
        except AssertionError as exc:
            failures.append(str(exc))
        except AgapeError as exc:
            failures.append(f"{runbook.id}:{step.id}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("runbook", "step"), writes())
async def test_runbook_write_previews_respects_max_rows_and_changes_its_rows(
    runbook: Runbook,
    step: Step,
    pool: AsyncConnectionPool,
    seeded: psycopg.AsyncConnection[Any],
) -> None:
    adapter = PostgresAdapter(pool)
    request = make_request(runbook, step)
    assert step.postgres is not None
    assert step.id in WRITE_EFFECTS, f"{runbook.id}:{step.id}: add its effect to WRITE_EFFECTS"
    preview = await adapter.preview(request)
    assert preview is not None
    count = preview.values["preview_count"]
    assert count, f"{runbook.id}:{step.id} previews no rows on the seeded data"
    assert step.postgres.max_rows is not None, f"{runbook.id}:{step.id} writes without max_rows"
    assert count <= step.postgres.max_rows

    tight = step.postgres.model_copy(update={"max_rows": count - 1})
    with pytest.raises(UnsafeOperation, match="nothing was changed"):
        await adapter.execute(
            AdapterRequest(
                run_id="INC-1", step=step, call=tight, idempotency_key="k", params=request.params
            )
        )
    unchanged = await adapter.preview(request)
    assert unchanged is not None
    assert unchanged.values["preview_count"] == count

    result = await adapter.execute(request)
    assert result.values["rows_changed"] == count
    assert result.values["preview_count"] == count
    check_templates(runbook, step, result)
    query, expected = WRITE_EFFECTS[step.id]
    cursor = await seeded.execute(query, IDS)
    assert await cursor.fetchone() == (expected,)


def _step_of(runbook_id: str, step_id: str) -> tuple[Runbook, Step]:
    runbook = load_runbook_file(RUNBOOKS / f"{runbook_id}.yaml")[0]
    step = runbook.step(step_id)
    assert step is not None
    return runbook, step


async def test_failed_webhooks_carry_their_reference_and_the_order_they_pay_for(
    pool: AsyncConnectionPool, seeded: psycopg.AsyncConnection[Any]
) -> None:
    # a retried payment: the webhook's reference is an attempt's, not the order's latest
    await seeded.execute(
        "INSERT INTO payment_attempts (order_id, reference, status) VALUES"
        " (%(o2)s, 'T-RETRY-9', 'success')",
        IDS,
    )
    await seeded.execute(
        "INSERT INTO webhook_events (event_type, reference, status) VALUES"
        " ('charge.success', 'T-RETRY-9', 'failed')"
    )
    runbook, step = _step_of("failed-webhook-processing", "failed_webhooks")

    result = await PostgresAdapter(pool).execute(make_request(runbook, step))

    assert result.columns[:4] == ["id", "reference", "order_number", "order_status"]
    shown = [(r["reference"], r["order_number"], r["order_status"]) for r in result.rows]
    assert shown == [
        ("T-RETRY-9", "AG-1002", "paid"),
        ("T101", None, None),
        ("T102", None, None),
        ("T103", None, None),
        ("T685312322670591", "AG-1001", "pending_payment"),
    ]
    assert result.rows[-1]["id"] == WEBHOOK


async def test_pending_orders_name_the_failed_webhook_of_their_reference(
    pool: AsyncConnectionPool, seeded: psycopg.AsyncConnection[Any]
) -> None:
    runbook, step = _step_of("failed-webhook-processing", "pending_orders")
    result = await PostgresAdapter(pool).execute(make_request(runbook, step))
    assert [(r["order_number"], r["failed_webhook_id"]) for r in result.rows] == [
        ("AG-1001", WEBHOOK)
    ]
