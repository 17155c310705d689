"""The walkthroughs of the payment, webhook, database and inventory runbooks, as on call sees them.

The real bot (``bootstrap.build``) runs against PostgreSQL seeded so each runbook's detection
fires, with Paystack and the admin API faked as the backend README documents. Each test opens
a run from an alert as #alerts delivers it, then checks that every finding is a statement with
its figures next to the words they count, and that the recovery steps do what their buttons
say: exactly once, by the right people, with the effect on the backend that was promised.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
import walkthrough_http
import walkthrough_seed
from fake_prometheus import Series
from walkthrough_http import ADMIN_TOKEN, FakeBackend
from walkthrough_seed import (
    APPROVER,
    RESPONDER,
    STRANGER,
    firing,
    open_run,
    running_bot,
    seed,
    settings,
)

from agape_ops.alerts.normalise import from_text
from agape_ops.bootstrap import Container
from agape_ops.demo.rows import CUSTOMERS, PRODUCT, attempts, order, webhooks
from agape_ops.engine.commands import SetState
from agape_ops.engine.records import StepState

pytestmark = pytest.mark.integration

fake = walkthrough_http.fake
bot = walkthrough_seed.bot

WEBHOOK_NEW = "5b0c7a52-1d1e-4a8e-9a55-0f6f3c1e0001"
WEBHOOK_OLD = "5b0c7a52-1d1e-4a8e-9a55-0f6f3c1e0002"
WEBHOOK_DONE = "5b0c7a52-1d1e-4a8e-9a55-0f6f3c1e0003"
RESPONDERS = "U_APPROVER_1, U_APPROVER_2, U_RESPONDER"
APPROVERS = "U_APPROVER_1, U_APPROVER_2"


# --- 1. Payment Gateway Outage ----------------------------------------------------------------


async def paystack_outage(conn: psycopg.AsyncConnection[Any], fake: FakeBackend) -> None:
    """Paystack down for a few minutes: failed webhooks and initialisations in the last 15
    minutes (and older ones outside the window), its status page in a major incident, payment
    requests answered 5xx more and more over the last hour."""
    await seed(
        conn,
        CUSTOMERS,
        order("AG-3001", "pending_payment", "T-P-1", "20 minutes"),
        order("AG-3002", "pending_payment", "T-P-2", "3 hours"),
        order("AG-3003", "paid", "T-P-3", "3 hours"),
        order("AG-2999", "pending_payment", "T-P-0", "2 days"),
        webhooks(12, "processed", "1 minute"),
        webhooks(2, "failed", "2 minutes", prefix="T-F"),
        webhooks(5, "failed", "2 hours", prefix="T-OLD"),  # outside the 15 minutes
        attempts(5, "initialized", "1 minute"),
        attempts(3, "init_failed", "3 minutes", "Paystack: 503 Service Unavailable"),
        attempts(2, "init_failed", "1 hour", "timeout"),  # outside the 15 minutes
    )
    fake.indicator, fake.incidents = "major", ["Card payments failing", "Delayed webhooks"]
    fake.measure(
        "payment-gateway-outage",
        "payment_failure_trend",
        Series({}, ("0.01", "0.05", "0.2", "0.35")),
    )


async def test_payment_gateway_outage_states_rates_incidents_and_init_failures_then_recovery(
    bot: Container, fake: FakeBackend, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await paystack_outage(backend_conn, fake)

    walk = await open_run(bot, firing("PaymentGatewayOutage"), "payment-gateway-outage")

    assert walk.opened.message == f"{walk.run_id} opened: Payment Gateway Outage"
    assert "Payment Gateway Outage (sev1)" in (await walk.timeline())[0]
    found = await walk.findings()
    assert found["webhook_failure_rate"] == (
        "Webhook failure rate over the last 15 minutes: 14.3% (2 of 14 webhooks failed)"
    )
    assert found["paystack_status"] == (
        "Paystack status page: Partial System Outage (indicator major); "
        "2 open incidents: Card payments failing, Delayed webhooks"
    )
    assert found["init_failures"] == (
        "3 of 8 payment initialisations failed in the last 15 minutes (37.5%); "
        "latest error: Paystack: 503 Service Unavailable"
    )
    assert found["payment_failure_trend"] == (
        "Payment requests answered 5xx over the last hour: 1.0% → 35.0% (rising; highest 35.0%)"
    )
    [asked] = fake.requests("GET", "/api/v1/query_range")
    assert asked.url.params["step"] == "5m"
    assert float(asked.url.params["end"]) - float(asked.url.params["start"]) == 3600
    for step_id in ("webhook_failure_rate", "paystack_status", "init_failures"):
        assert await walk.state(step_id) is StepState.FAILED
    assert await walk.state("payment_failure_trend") is StepState.FAILED

    await walk.tick_all("maintenance_banner", RESPONDER)
    assert await walk.state("maintenance_banner") is StepState.DONE
    pending = await walk.click("orders_awaiting_payment", RESPONDER)
    assert pending.message == (
        "2 orders placed in the last 24 hours are waiting for payment: AG-3001, AG-3002"
    )

    # Paystack recovers and the failed webhooks are reprocessed
    fake.indicator, fake.incidents = "none", []
    await backend_conn.execute("UPDATE webhook_events SET status = 'processed'")
    recheck = await walk.click("paystack_status_recheck", RESPONDER)
    assert recheck.message == (
        "Paystack status page: All Systems Operational (indicator none); no open incidents"
    )
    rate = await walk.click("webhook_failure_rate_recheck", RESPONDER)
    assert rate.message == (
        "Webhook failure rate over the last 15 minutes: 0.0% (0 of 14 webhooks failed)"
    )
    assert await walk.state("paystack_status_recheck") is StepState.PASSED
    assert await walk.state("webhook_failure_rate_recheck") is StepState.PASSED
    resolved = await bot.engine.execute(
        SetState(walk.run_id, "resolved", RESPONDER, "resolve", confirmed=True)
    )
    assert resolved.ok, resolved.message


async def test_payment_checks_pass_on_a_quiet_and_on_a_healthy_night_saying_so_with_figures(
    bot: Container, fake: FakeBackend, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    said = "Paystack outage? customers cannot pay"
    quiet = await open_run(bot, from_text(said), "payment-gateway-outage")
    found = await quiet.findings()
    assert found["webhook_failure_rate"] == (
        "Webhook failure rate over the last 15 minutes: none to measure, 0 webhooks arrived in "
        "the window"
    )
    assert found["init_failures"] == "0 payment initialisations attempted in the last 15 minutes"
    assert found["payment_failure_trend"] == (
        "Payment requests answered 5xx over the last hour: none to measure, no payment requests "
        "counted"
    )
    assert await quiet.state("payment_failure_trend") is StepState.PASSED

    fake.measure("payment-gateway-outage", "payment_failure_trend", Series({}, ("0.002",)))
    await seed(
        backend_conn,
        CUSTOMERS,
        order("AG-4001", "paid", "T-H-1", "5 minutes"),
        webhooks(20, "processed", "1 minute"),
        attempts(6, "initialized", "1 minute"),
    )
    healthy = await open_run(bot, from_text(said + " (second report)"), "payment-gateway-outage")
    found = await healthy.findings()
    assert found == {
        "webhook_failure_rate": (
            "Webhook failure rate over the last 15 minutes: 0.0% (0 of 20 webhooks failed)"
        ),
        "paystack_status": (
            "Paystack status page: All Systems Operational (indicator none); no open incidents"
        ),
        "init_failures": ("0 of 6 payment initialisations failed in the last 15 minutes (0.0%)"),
        "payment_failure_trend": (
            "Payment requests answered 5xx over the last hour: 0.2% → 0.2% (steady; highest 0.2%)"
        ),
    }
    for step_id in found:
        assert await healthy.state(step_id) is StepState.PASSED


# --- 2. Failed Webhook Processing -------------------------------------------------------------


WEBHOOK_ROWS = (
    "INSERT INTO webhook_events (id, event_type, reference, status, error_message, retry_count,"
    " created_at) VALUES"
    f" ('{WEBHOOK_NEW}', 'charge.success', 'T-PAID-1', 'failed', 'order lookup timed out', 3,"
    "  now() - interval '5 minutes'),"
    f" ('{WEBHOOK_OLD}', 'charge.success', 'T-FAILED-2', 'failed', 'signature mismatch', 1,"
    "  now() - interval '50 minutes'),"
    f" ('{WEBHOOK_DONE}', 'charge.success', 'T-GONE-3', 'failed', 'duplicate key', 5,"
    "  now() - interval '3 hours')"
)


async def stuck_webhooks(conn: psycopg.AsyncConnection[Any], fake: FakeBackend) -> None:
    """Three failed webhooks (one paid at Paystack, one failed there, one the backend already
    processed), their orders waiting in pending_payment, and orders that are no concern."""
    await seed(
        conn,
        CUSTOMERS,
        WEBHOOK_ROWS,
        webhooks(4, "processed", "10 minutes"),
        order("AG-2001", "pending_payment", "T-PAID-1", "30 minutes"),
        order("AG-2002", "pending_payment", "T-FAILED-2", "2 hours"),
        order("AG-2003", "pending_payment", "T-GONE-3", "1 day"),
        order("AG-2004", "pending_payment", "T-FRESH-4", "2 minutes"),  # may still be paying
        order("AG-2005", "pending_payment", None, "1 hour"),  # no Paystack reference
        order("AG-2006", "paid", "T-PAID-6", "1 hour"),
    )
    fake.transactions = {"T-PAID-1": "success", "T-FAILED-2": "failed"}
    fake.webhooks, fake.processed = {WEBHOOK_NEW, WEBHOOK_OLD}, {WEBHOOK_DONE}


async def test_failed_webhooks_are_counted_named_verified_and_reprocessed_once_each(
    bot: Container, fake: FakeBackend, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await stuck_webhooks(backend_conn, fake)

    walk = await open_run(bot, firing("WebhookProcessingFailed"), "failed-webhook-processing")

    assert walk.opened.message == f"{walk.run_id} opened: Failed Webhook Processing"
    found = await walk.findings()
    assert found["failed_webhook_count"] == (
        "3 webhooks are stuck in failed status (2 received in the last hour, the oldest "
        f"3 h 00 min ago): {WEBHOOK_NEW}, {WEBHOOK_OLD}, {WEBHOOK_DONE}"
    )
    assert found["pending_orders"] == (
        "3 orders with a Paystack reference are waiting in pending_payment: "
        "AG-2001, AG-2002, AG-2003"
    )
    assert found["pending_orders_paid"] == (
        "1 of 3 orders still in pending_payment are paid at Paystack: T-PAID-1 (order AG-2001, "
        f"failed webhook {WEBHOOK_NEW}: reprocess it); 1 not found at Paystack: T-GONE-3"
    )
    assert await walk.state("failed_webhook_count") is StepState.FAILED
    assert await walk.state("pending_orders_paid") is StepState.FAILED

    listed = await walk.click("failed_webhooks", RESPONDER)
    assert listed.message == (
        f"3 failed webhooks, newest first: {WEBHOOK_NEW} (T-PAID-1, order AG-2001 "
        f"pending_payment); {WEBHOOK_OLD} (T-FAILED-2, order AG-2002 pending_payment); "
        f"{WEBHOOK_DONE} (T-GONE-3, order AG-2003 pending_payment)"
    )
    inputs = await walk.row_inputs("failed_webhooks", 0)
    assert inputs == {"webhook_id": WEBHOOK_NEW}

    refused = await walk.click("reprocess_webhook", STRANGER, inputs=inputs)
    assert refused.message == f"“Reprocess” requires a responder ({RESPONDERS})"
    asked = await walk.click("reprocess_webhook", RESPONDER, confirmed=False, inputs=inputs)
    assert asked.needs_confirmation
    assert asked.message.startswith("Queue this failed webhook for reprocessing by the backend?")
    assert fake.requests("POST", "/api/v1/admin/webhooks/reprocess") == []

    reprocessed = await walk.click("reprocess_webhook", RESPONDER, inputs=inputs)
    assert reprocessed.message == f"Webhook {WEBHOOK_NEW}: queued (HTTP 202)"
    repeated = await walk.redeliver()
    assert repeated.duplicate
    posts = fake.requests("POST", "/api/v1/admin/webhooks/reprocess")
    assert len(posts) == 1
    assert posts[0].read() == f'{{"webhookId":"{WEBHOOK_NEW}"}}'.encode()
    assert posts[0].headers["idempotency-key"].startswith(f"{walk.run_id}:reprocess_webhook:")
    assert posts[0].headers["authorization"] == f"Bearer {ADMIN_TOKEN}"

    done = await walk.click("reprocess_webhook", RESPONDER, inputs={"webhook_id": WEBHOOK_DONE})
    assert done.message == (
        f"Webhook {WEBHOOK_DONE} was already processed: nothing to reprocess (HTTP 409)"
    )
    verified = await walk.click("verify_payment", RESPONDER, inputs={"reference": "T-PAID-1"})
    assert verified.message == (
        "Paystack reports T-PAID-1 as success (NGN 25,000.00, Successful): paid; if its order "
        "is still pending_payment, reprocess its webhook or update the order"
    )

    # Reprocess looks the webhook up first: an id the database does not have, or a webhook it
    # has as processed, is refused by that precondition, asking nothing and posting nothing
    posted = len(fake.requests("POST", "/api/v1/admin/webhooks/reprocess"))
    unknown = "5b0c7a52-1d1e-4a8e-9a55-0f6f3c1e0099"
    cursor = await backend_conn.execute(
        "SELECT id::text FROM webhook_events WHERE status = 'processed' ORDER BY id LIMIT 1"
    )
    row = await cursor.fetchone()
    assert row is not None
    processed = row[0]
    for webhook_id, said in (
        (unknown, f"no webhook has the id {unknown}"),
        (processed, f"webhook {processed} is processed"),
    ):
        for confirmed in (False, True):
            refused = await walk.click(
                "reprocess_webhook",
                RESPONDER,
                confirmed=confirmed,
                inputs={"webhook_id": webhook_id},
            )
            assert refused.error == "PreconditionUnmet"
            assert not refused.needs_confirmation
            assert refused.message == f"Nothing to reprocess: {said}"
    assert len(fake.requests("POST", "/api/v1/admin/webhooks/reprocess")) == posted
    assert (await walk.state("webhook_status")) is StepState.PASSED


async def test_no_failed_webhook_and_no_pending_order_is_said_with_zeros(
    bot: Container, fake: FakeBackend, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await seed(
        backend_conn,
        CUSTOMERS,
        webhooks(9, "processed", "10 minutes"),
        order("AG-5001", "paid", "T-OK-1", "1 hour"),
    )
    alert = from_text("Support says paid orders remain in pending_payment")
    walk = await open_run(bot, alert, "failed-webhook-processing")
    assert await walk.findings() == {
        "failed_webhook_count": "0 webhooks are stuck in failed status",
        "pending_orders": "0 orders with a Paystack reference are waiting in pending_payment",
        "pending_orders_paid": "0 orders waiting in pending_payment to verify with Paystack",
    }
    assert await walk.state("failed_webhook_count") is StepState.PASSED
    assert await walk.state("pending_orders_paid") is StepState.PASSED
    listed = await walk.click("failed_webhooks", RESPONDER)
    assert listed.message == "0 failed webhooks"
    assert fake.requests("GET", "/transaction/verify/T-OK-1") == []


# --- 3. Database Failover ---------------------------------------------------------------------

REACHABLE = re.compile(
    r"PostgreSQL: reachable, the primary \(accepts writes\); "
    r"server time \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
)


async def test_database_failover_confirms_the_outage_promotes_once_and_verifies_the_primary(
    bot: Container, fake: FakeBackend, backend_db: str
) -> None:
    fake.health_status = 503
    fake.health_checks = {"db": "connect ECONNREFUSED 10.0.0.5:5432", "redis": "ok"}

    walk = await open_run(bot, firing("PostgresDown", "db-1"), "database-failover")

    assert walk.opened.message == f"{walk.run_id} opened: Database Failover"
    found = await walk.findings()
    assert REACHABLE.fullmatch(found["db_reachable"]), found["db_reachable"]
    assert found["backend_health"] == (
        "Backend /healthz: error (HTTP 503); db: connect ECONNREFUSED 10.0.0.5:5432, redis: ok"
    )
    assert re.fullmatch(
        r"\d+ of \d+ connections in use \(\d+\.\d%\); \d+ active, \d+ idle in transaction",
        found["connection_usage"],
    ), found["connection_usage"]
    assert await walk.state("db_reachable") is StepState.PASSED
    assert await walk.state("backend_health") is StepState.FAILED
    assert await walk.state("connection_usage") is StepState.PASSED

    refused = await walk.click("promote_replica", RESPONDER)
    assert refused.message == f"“Promote replica” requires an approver ({APPROVERS})"
    promoted = await walk.click("promote_replica", APPROVER)
    assert promoted.message == "Promote the replica: done"
    other = await open_run(bot, firing("PostgresDown", "db-2"), "database-failover")
    second = await other.click("promote_replica", APPROVER)
    assert second.message == (
        f"the failover lock is held by {walk.run_id}; finish or resolve {walk.run_id} first"
    )

    asked = await walk.click("verify_database", RESPONDER)
    assert asked.needs_inputs == ["new_primary_url"]  # the new primary, not DATABASE_URL
    given = {"new_primary_url": backend_db}
    verified = await walk.click("verify_database", RESPONDER, inputs=given)
    assert REACHABLE.fullmatch(verified.message), verified.message
    fake.health_status, fake.health_checks = 200, {"db": "ok", "redis": "ok"}
    health = await walk.click("verify_app_health", RESPONDER)
    assert health.message == "Backend /healthz: ok (HTTP 200); db: ok, redis: ok"
    assert await walk.state("verify_app_health") is StepState.PASSED
    lag = await walk.click("replication_lag", RESPONDER)
    assert lag.message == "0 standbys streaming from this server"

    # detection last saw the outage: resolving says so and takes a confirmation
    asked = await bot.engine.execute(SetState(walk.run_id, "resolved", RESPONDER, "resolve-ask"))
    assert asked.needs_confirmation
    assert "still showed the problem" in asked.message
    resolve = SetState(walk.run_id, "resolved", RESPONDER, "resolve-db", confirmed=True)
    assert (await bot.engine.execute(resolve)).ok
    assert (await other.click("promote_replica", APPROVER)).message == "Promote the replica: done"


async def test_an_unreachable_database_is_said_plainly_and_the_run_goes_on(
    fake: FakeBackend, redis_db: str, backend_db: str, tmp_path: Path
) -> None:
    fake.health_status = 503
    fake.health_checks = {"db": "connect ECONNREFUSED 10.0.0.5:5432", "redis": "ok"}
    dead = "postgresql://agape:hunter2@127.0.0.1:1/agape"
    async with running_bot(settings(dead, redis_db, tmp_path)) as bot:
        walk = await open_run(bot, firing("PostgresDown", "db-1"), "database-failover")

        found = await walk.findings()
        assert found["db_reachable"] == (
            "Database reachability: PostgreSQL: unreachable (connection refused) at 127.0.0.1:1"
        )
        assert await walk.state("db_reachable") is StepState.ERROR
        # The database down is the incident: a problem found, first, not a step error.
        view = await bot.engine.view(walk.run_id)
        assert view.step("db_reachable").state_words == "problem"
        first = view.headline.items[0]
        assert (first.step_id, first.likely_cause, first.warning) == ("db_reachable", False, False)
        assert "PostgreSQL: unreachable (connection refused)" in found["connection_usage"]
        assert found["backend_health"] == (
            "Backend /healthz: error (HTTP 503); db: connect ECONNREFUSED 10.0.0.5:5432, redis: ok"
        )
        assert await walk.state("backend_health") is StepState.FAILED
        assert not any("hunter2" in text for text in [*found.values(), *await walk.timeline()])

        promoted = await walk.click("promote_replica", APPROVER)
        assert promoted.message == "Promote the replica: done"
        await walk.tick_all("update_connection_string", RESPONDER)
        wrong = {"new_primary_url": "postgresql://agape:n3w-s3cret@127.0.0.1:1/agape"}
        again = await walk.click("verify_database", RESPONDER, inputs=wrong)
        assert again.message == (
            "Test the connection to the new primary: PostgreSQL: unreachable (connection "
            "refused) at 127.0.0.1:1"
        )
        # The new primary's URL, with its password, tests the new primary: the configured
        # DATABASE_URL (the old primary) is still dead.
        user, rest = backend_db.split("://", 1)[1].split("@", 1)
        new_primary = f"postgresql://{user.split(':')[0]}:n3w-s3cret@{rest}"
        verified = await walk.click(
            "verify_database", RESPONDER, inputs={"new_primary_url": new_primary}
        )
        assert REACHABLE.fullmatch(verified.message), verified.message
        assert await walk.state("verify_database") is StepState.PASSED
        run = await bot.engine.get_run(walk.run_id)
        kept = [*await walk.timeline(), *(await walk.findings()).values(), str(run.inputs)]
        kept.append(await bot.engine.export(walk.run_id, "json"))
        assert not [text for text in kept if "n3w-s3cret" in text or "hunter2" in text]


# --- 4. Inventory Oversell --------------------------------------------------------------------

VARIANTS = {"DRESS-RED-M": -2, "DRESS-BLU-S": -1, "DRESS-GRN-L": 4}


def oversold() -> list[str]:
    """Two variants sold below zero, three order lines on them in two orders, one safe order."""
    variants = ", ".join(f"('{PRODUCT}', '{sku}', {n})" for sku, n in VARIANTS.items())
    line = (
        "INSERT INTO order_items (order_id, product_id, variant_id, quantity, unit_price_kobo)"
        " SELECT o.id, v.product_id, v.id, {qty}, 2500000 FROM orders o, product_variants v"
        " WHERE o.order_number = '{order}' AND v.sku = '{sku}'"
    )
    return [
        CUSTOMERS,
        f"INSERT INTO products (id, name) VALUES ('{PRODUCT}', 'Ankara dress')",
        f"INSERT INTO product_variants (product_id, sku, stock) VALUES {variants}",
        *(order(n, "paid", None, "1 hour") for n in ("AG-1001", "AG-1002", "AG-1003")),
        line.format(qty=2, order="AG-1001", sku="DRESS-RED-M"),
        line.format(qty=1, order="AG-1001", sku="DRESS-BLU-S"),
        line.format(qty=1, order="AG-1002", sku="DRESS-BLU-S"),
        line.format(qty=1, order="AG-1003", sku="DRESS-GRN-L"),
    ]


async def stock(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    cursor = await conn.execute("SELECT sku, stock FROM product_variants")
    return {str(sku): int(n) for sku, n in await cursor.fetchall()}


async def versions(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    cursor = await conn.execute("SELECT sku, version FROM product_variants")
    return {str(sku): int(n) for sku, n in await cursor.fetchall()}


async def test_inventory_oversell_names_skus_and_orders_and_an_approver_corrects_stock(
    bot: Container, fake: FakeBackend, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await seed(backend_conn, *oversold())

    walk = await open_run(bot, firing("NegativeStock"), "inventory-oversell")

    assert walk.opened.message == f"{walk.run_id} opened: Inventory Oversell"
    assert await walk.findings() == {
        "negative_stock": "2 SKUs have stock below zero: DRESS-RED-M (-2), DRESS-BLU-S (-1)"
    }
    assert await walk.state("negative_stock") is StepState.FAILED
    affected = await walk.click("affected_orders", RESPONDER)
    assert affected.message == "3 order lines are on oversold variants: orders AG-1001, AG-1002"
    await walk.tick_all("contact_customers", RESPONDER)

    refused = await walk.click("correct_stock", RESPONDER)
    assert refused.message == f"“Correct stock” requires an approver ({APPROVERS})"
    plan = await bot.engine.plan(walk.run_id, "correct_stock", {})
    assert plan.preview is not None
    assert plan.preview.summary == "would change 2 rows"
    assert [(r["sku"], r["stock"]) for r in plan.preview.rows] == [
        ("DRESS-BLU-S", -1),
        ("DRESS-RED-M", -2),
    ]
    assert await stock(backend_conn) == VARIANTS

    corrected = await walk.click("correct_stock", APPROVER)
    assert corrected.message == "Stock set to 0 on 2 product variants (version bumped)"
    # the detection check it fixes ran again at once, as the bot, and shows the cleared state
    assert [r.message for r in corrected.rechecks] == ["0 SKUs have stock below zero"]
    assert await walk.state("negative_stock") is StepState.PASSED
    assert await stock(backend_conn) == {"DRESS-RED-M": 0, "DRESS-BLU-S": 0, "DRESS-GRN-L": 4}
    # a checkout that read a corrected row before the correction now fails its version check
    assert await versions(backend_conn) == {"DRESS-RED-M": 1, "DRESS-BLU-S": 1, "DRESS-GRN-L": 0}
    assert (await walk.redeliver()).duplicate
    events = await bot.store.events(walk.run_id)
    written = [(e.actor, e.summary) for e in events if e.step_id == "correct_stock"]
    assert written == [
        (RESPONDER, f"refused {RESPONDER}: “Correct stock” requires an approver ({APPROVERS})"),
        (APPROVER, "Stock set to 0 on 2 product variants (version bumped)"),
    ]

    # the detection, run again, now finds the problem gone and says so with its figure
    recheck = await walk.click("negative_stock", RESPONDER)
    assert recheck.message == "0 SKUs have stock below zero"
    assert await walk.state("negative_stock") is StepState.PASSED
    assert (await walk.click("affected_orders", RESPONDER)).message == (
        "0 order lines are on oversold variants"
    )

    # with nothing below zero, Correct stock asks nothing and records nothing done
    for confirmed in (False, True):
        again = await walk.click("correct_stock", APPROVER, confirmed=confirmed)
        assert again.error == "PreconditionUnmet"
        assert not again.needs_confirmation
        assert again.message == "Nothing to change: 0 SKUs have stock below zero"
    assert await versions(backend_conn) == {"DRESS-RED-M": 1, "DRESS-BLU-S": 1, "DRESS-GRN-L": 0}
    done = [
        e.summary
        for e in await bot.store.events(walk.run_id)
        if e.step_id == "correct_stock" and e.kind == "step.finished"
    ]
    assert done == ["Stock set to 0 on 2 product variants (version bumped)"]
    resolved = await bot.engine.execute(SetState(walk.run_id, "resolved", APPROVER, "resolve"))
    assert resolved.ok, resolved.message
