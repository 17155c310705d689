"""What is wrong in the demo world: the trouble each of the seven runbooks is there to find.

One shop, minutes into a bad day: Paystack webhooks failing (a 20% failure rate over the last
15 minutes), orders paid at Paystack but stuck in ``pending_payment``, stock sold below zero, a
burst of failed logins from one address, an email queue 150 jobs deep, a backend whose health
check says its database pool is exhausted, and a 5xx rate of 7.1% in Prometheus. The stand-ins
answer for the same world (the references Paystack knows, the webhooks the admin API can
reprocess), so every step finds something and every button has something to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agape_ops.demo.rows import (
    CUSTOMERS,
    PRODUCT,
    attempts,
    order,
    order_line,
    webhooks,
)
from agape_ops.demo.standins import StatusPage

#: The person the demo console acts as (a responder and an approver), and a second approver
#: for two-person steps.
ACTOR = "alice"
SECOND_APPROVER = "bob"

PAYSTACK_KEY = "sk_test_demo_not_a_real_key"
ADMIN_TOKEN = "demo-admin-token"  # noqa: S105 - the stand-in's own token, guarding nothing

WEBHOOK_PAID = "5b0e6c1a-1f0e-4c55-9d7e-000000000001"
WEBHOOK_DECLINED = "5b0e6c1a-1f0e-4c55-9d7e-000000000002"
WEBHOOK_DONE = "5b0e6c1a-1f0e-4c55-9d7e-000000000003"

VICTIM = "00000000-0000-4000-8000-00000000000b"
STAFF = "00000000-0000-4000-8000-00000000000c"

#: One alert per runbook, as Alertmanager's default Slack template titles them (the error
#: rate's alert also says its figure, as Grafana's and people's do).
ALERTS = {
    "payment-gateway-outage": "[FIRING:1] PaymentGatewayOutage agape-backend (prod api-1 critical)",
    "failed-webhook-processing": (
        "[FIRING:1] WebhookProcessingFailed agape-backend (prod api-1 critical)"
    ),
    "database-failover": "[FIRING:1] PostgresDown agape-backend (prod api-1 critical)",
    "inventory-oversell": "[FIRING:1] NegativeStock agape-backend (prod api-1 critical)",
    "security-incident": "[FIRING:1] FailedLoginSpike agape-backend (prod api-1 critical)",
    "high-error-rate": (
        "[FIRING:1] HighErrorRate agape-backend (prod api-1 critical) — 5xx error rate 7.1%"
    ),
    "queue-backlog": "[FIRING:1] EmailQueueBacklog agape-backend (prod api-1 critical)",
}


_WEBHOOKS = (
    "INSERT INTO webhook_events (id, event_type, reference, status, error_message, retry_count,"
    " created_at) VALUES"
    f" ('{WEBHOOK_PAID}', 'charge.success', 'PSK-1001', 'failed', 'order lookup timed out', 3,"
    "  now() - interval '4 minutes'),"
    f" ('{WEBHOOK_DECLINED}', 'charge.success', 'PSK-1002', 'failed', 'signature mismatch', 1,"
    "  now() - interval '9 minutes'),"
    f" ('{WEBHOOK_DONE}', 'charge.success', 'PSK-0999', 'failed', 'duplicate key', 5,"
    "  now() - interval '3 hours')"
)

_STOCK = (
    f"INSERT INTO products (id, name) VALUES ('{PRODUCT}', 'Agape tee')",
    "INSERT INTO product_variants (product_id, sku, stock) VALUES"
    f" ('{PRODUCT}', 'TEE-RED-M', -3), ('{PRODUCT}', 'CAP-BLK', -1),"
    f" ('{PRODUCT}', 'TEE-BLU-L', 12)",
    order("AG-1001", "paid", None, "50 minutes"),
    order("AG-1002", "paid", None, "40 minutes"),
    order_line("AG-1001", "TEE-RED-M", 2),
    order_line("AG-1002", "TEE-RED-M", 1),
    order_line("AG-1002", "CAP-BLK", 1),
)

_INTRUSION = (
    "INSERT INTO users (id, email, name, role, password_hash) VALUES"
    f" ('{VICTIM}', 'jane@example.com', 'Jane', 'customer', 'h1'),"
    f" ('{STAFF}', 'ops@agapelooks.com', 'Ops', 'staff', 'h2')",
    "INSERT INTO sessions (user_id, ip, user_agent, created_at, expires_at)"
    f" SELECT '{VICTIM}', ('41.58.12.' || n)::inet, 'Mozilla/5.0',"
    " now() - n * interval '5 minutes', now() + interval '1 day' FROM generate_series(1, 5) n",
    "INSERT INTO audit_logs (action, ip, created_at) SELECT 'auth.login_failed',"
    " '185.220.101.7', now() - n * interval '1 minute' FROM generate_series(1, 40) n",
    "INSERT INTO audit_logs (action, ip, created_at) SELECT 'auth.login_failed',"
    " '41.58.12.9', now() - n * interval '3 minutes' FROM generate_series(1, 3) n",
    "INSERT INTO audit_logs (actor_id, action, target_type, target_id, ip, created_at) VALUES"
    f" ('{STAFF}', 'admin.refund', 'order', 'AG-1001', '10.0.0.5', now() - interval '2 hours')",
)

#: The rows, in the order they go in (orders before their lines and attempts).
ROWS: tuple[str, ...] = (
    CUSTOMERS,
    order("AG-0990", "paid", "PSK-0990", "2 days"),
    *_STOCK,
    order("AG-2001", "pending_payment", "PSK-1001", "30 minutes"),
    order("AG-2002", "pending_payment", "PSK-1002", "2 hours"),
    order("AG-2003", "pending_payment", "PSK-0999", "1 day"),
    order("AG-2004", "pending_payment", "PSK-1004", "2 minutes"),
    _WEBHOOKS,
    webhooks(10, "processed", "1 minute", prefix="PSK-OK"),
    webhooks(1, "failed", "6 minutes", prefix="PSK-LATE"),
    attempts(6, "initialized", "1 minute"),
    attempts(4, "init_failed", "2 minutes", "Paystack: 503 Service Unavailable"),
    *_INTRUSION,
)

#: What Paystack says of each reference (others: "Transaction reference not found").
TRANSACTIONS = {
    "PSK-0990": "success",
    "PSK-1001": "success",
    "PSK-1002": "failed",
    "PSK-1004": "ongoing",
}

STATUS_PAGE = StatusPage(
    indicator="major",
    description="Partial System Outage",
    incidents=("Card payments failing for some Nigerian banks",),
)

#: The 5xx share the HighErrorRate rule alerts on, and the scrape targets' health.
PROMETHEUS = {'status=~"5..': 0.071, "up": 1.0, "process_resident_memory_bytes": 612_000_000.0}

HEALTH = {"db": "timeout acquiring a connection (pool exhausted)", "redis": "ok"}


@dataclass(frozen=True)
class Queue:
    """One BullMQ queue's state: waiting jobs, the oldest one's age, active jobs, failures."""

    name: str
    waiting: int
    oldest_age_s: int
    active: int
    failed: dict[str, str] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        """Return the admin API's ``queues/stats`` entry for this queue."""
        return {
            "waiting": self.waiting,
            "active": self.active,
            "delayed": 0,
            "failed": len(self.failed),
            "completed": 9812 if self.name == "email" else 1200,
            "paused": False,
        }


QUEUES = (
    Queue(
        "email",
        waiting=150,
        oldest_age_s=25 * 60,
        active=2,
        failed={
            "email-f1": "Resend: 429 Too Many Requests",
            "email-f2": "Resend: 429 Too Many Requests",
            "email-f3": "connect ETIMEDOUT api.resend.com:443",
        },
    ),
    Queue("invoice", waiting=3, oldest_age_s=40, active=1),
)
