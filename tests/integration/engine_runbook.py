"""The runbook the engine's integration tests walk, the alert that opens it, and the results
the fake adapters answer with (shaped as ``agape_ops.runbooks.fields`` says).

It has a check of each kind (SQL, the alert's own figure, queue depth), diagnosis that needs an
input or an earlier result, a write with a lock, a dangerous two-person step, a write taking a
secret input, and manual checklists.
"""

from __future__ import annotations

from typing import Any

from agape_ops.alerts.model import Alert
from agape_ops.engine.results import StepResult, table
from agape_ops.runbooks.model import Runbook

RUNBOOK_ID = "stock-incident"
SECRET_TOKEN = "tok-very-secret-123"  # a fake secret the tests prove is never shown

RUNBOOK: dict[str, Any] = {
    "id": RUNBOOK_ID,
    "title": "Inventory Oversell",
    "severity": "sev2",
    "summary": "Stock went below zero on some product variants.",
    "owner": "devops",
    "triggers": [{"alertname": "NegativeStock"}],
    "inputs": {
        "sku": {
            "description": "Product variant SKU",
            "pattern": r"^[A-Z]+-[0-9]+$",
            "example": "TEE-042",
            "from_alert": "sku",
        },
        "reference": {
            "description": "Paystack transaction reference",
            "pattern": r"^[A-Za-z0-9.=-]+$",
            "example": "T123456789",
        },
        "user_id": {"description": "User id", "pattern": r"^[a-z0-9-]+$", "example": "u-1"},
        "token": {
            "description": "Admin session token",
            "pattern": r"^[A-Za-z0-9-]{8,}$",
            "secret": True,
        },
    },
    "detection": [
        {
            "id": "negative_stock",
            "title": "SKUs with stock below zero",
            "when": "row_count > 0",
            "finding": "{{ row_count }} SKUs have stock below zero: {% for r in rows %}"
            "{{ r.sku }} ({{ r.stock }}){{ ', ' if not loop.last }}{% endfor %}",
            "postgres": {"sql": "SELECT sku, stock FROM product_variants WHERE stock < 0"},
        },
        {
            "id": "error_rate",
            "title": "5xx error rate",
            "when": "error_rate > 0.02",
            "finding": "5xx error rate is {{ error_rate | percent }} (threshold 2.0%)",
            "alert": {"values": ["error_rate"]},
        },
        {
            "id": "queue_depth",
            "title": "Jobs waiting",
            "when": "total_backlog > 1000",
            "finding": "{{ total_backlog }} jobs waiting across {{ row_count }} queues",
            "redis": {"command": "queue_stats", "queues": ["email", "invoice"]},
        },
        {
            "id": "complaints",
            "title": "Customer complaints",
            "manual": {"items": ["Check support channels for complaints"]},
        },
    ],
    "diagnosis": [
        {
            "id": "verify_payment",
            "title": "Verify a payment",
            "inputs": ["reference"],
            "when": "not paid",
            "finding": "{{ reference }} is {{ status }}",
            "paystack": {"action": "verify", "reference": "{{ inputs.reference }}"},
        },
        {
            "id": "orders_on_sku",
            "title": "Orders on the worst SKU",
            "finding": "{{ row_count }} orders on {{ steps.negative_stock.first.sku }}",
            "postgres": {
                "sql": "SELECT order_number FROM order_items WHERE sku = %(sku)s",
                "params": {"sku": "{{ steps.negative_stock.first.sku }}"},
            },
        },
        {
            "id": "health",
            "title": "Backend health",
            "http": {"url": "{{ settings.admin_api_url }}/healthz"},
        },
    ],
    "actions": [
        {
            "id": "restock_sku",
            "title": "Set one SKU's stock to zero",
            "risk": "write",
            "button": "Zero stock",
            "confirm": "Set the stock of this SKU to 0?",
            "inputs": ["sku"],
            "lock": "stock",
            "finding": "Stock set to 0 on {{ rows_changed }} variants",
            "postgres": {
                "sql": "UPDATE product_variants SET stock = 0 WHERE sku = %(sku)s",
                "params": {"sku": "{{ inputs.sku }}"},
            },
        },
        {
            "id": "correct_stock",
            "title": "Correct stock levels",
            "risk": "dangerous",
            "two_person": True,
            "button": "Correct stock",
            "confirm": "Set every negative stock to 0?",
            "finding": "Stock set to 0 on {{ rows_changed }} product variants",
            "postgres": {"sql": "UPDATE product_variants SET stock = 0 WHERE stock < 0"},
        },
        {
            "id": "revoke_sessions",
            "title": "Revoke the user's sessions",
            "risk": "write",
            "button": "Revoke sessions",
            "confirm": "Revoke every session of this user?",
            "inputs": ["user_id", "token"],
            "finding": "Sessions revoked ({{ http_status }})",
            "admin_api": {
                "action": "call",
                "method": "POST",
                "path": "/api/v1/admin/sessions/revoke",
                "json": {"userId": "{{ inputs.user_id }}", "token": "{{ inputs.token }}"},
            },
        },
        {
            "id": "contact_customers",
            "title": "Contact customers",
            "manual": {
                "items": [
                    "Email affected customers",
                    "Offer refund or alternative product",
                    "Provide discount for inconvenience",
                ]
            },
        },
        {
            "id": "isolate",
            "title": "Isolate the checkout",
            "risk": "write",
            "manual": {"items": ["Disable the checkout endpoint"]},
        },
        {
            "id": "promote",
            "title": "Promote the replica",
            "risk": "dangerous",
            "two_person": True,
            "lock": "failover",
            "confirm": "The old primary must stay out of service. Promote?",
            "manual": {"items": ["pg_ctl promote on the replica", "Point DATABASE_URL at it"]},
        },
    ],
    "post_incident": [
        {
            "id": "follow_up",
            "title": "Follow-up",
            "manual": {"items": ["Add monitoring for negative stock", "Review locking"]},
        }
    ],
}


def runbook(**changes: Any) -> Runbook:
    """Return the test runbook, with top-level keys replaced as given."""
    return Runbook.model_validate({**RUNBOOK, **changes})


def alert(**values: Any) -> Alert:
    """Return a firing NegativeStock alert naming a SKU and reporting an error rate."""
    return Alert(
        source="alertmanager",
        title="NegativeStock on TEE-042",
        text="stock of TEE-042 is -3",
        labels={"alertname": "NegativeStock", "sku": "TEE-042", "severity": "warning"},
        values={"error_rate": 0.071, **values},
    )


NEGATIVE_STOCK = table(
    "2 SKUs below zero",
    ["sku", "stock"],
    [{"sku": "TEE-042", "stock": -3}, {"sku": "CAP-007", "stock": -1}],
)
QUEUES = table(
    "2 queues, 12 jobs waiting",
    ["queue", "waiting", "backlog"],
    [
        {"queue": "email", "waiting": 10, "backlog": 10},
        {"queue": "invoice", "waiting": 2, "backlog": 2},
    ],
    values={"total_backlog": 12, "max_backlog": 10},
)
VERIFIED = StepResult(
    summary="T123456789: not paid",
    values={"reference": "T123456789", "status": "abandoned", "paid": False, "amount": 5000},
)
ORDERS = table("3 orders", ["order_number"], [{"order_number": f"AG-{n}"} for n in range(3)])
ZEROED = StepResult(summary="1 row changed", values={"rows_changed": 1, "preview_count": 1})
CORRECTED = StepResult(summary="2 rows changed", values={"rows_changed": 2, "preview_count": 2})
REVOKED = StepResult(summary="HTTP 200", values={"http_status": 200, "body": {"ok": True}})
HEALTHY = StepResult(summary="200 in 12 ms", values={"status_code": 200, "ok": True})

DEFAULT_RESULTS: dict[str, StepResult] = {
    "negative_stock": NEGATIVE_STOCK,
    "queue_depth": QUEUES,
    "verify_payment": VERIFIED,
    "orders_on_sku": ORDERS,
    "restock_sku": ZEROED,
    "correct_stock": CORRECTED,
    "revoke_sessions": REVOKED,
    "health": HEALTHY,
}
