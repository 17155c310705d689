"""Rows in the backend's PostgreSQL, as SQL statements: customers, orders, webhooks, payments.

Times are relative to the server's ``now()``, so a world laid out a moment ago shows the
failure rates and ages its runbooks look for ("in the last 15 minutes"). The tests arrange
their rows with the same statements.
"""

from __future__ import annotations

CUSTOMER = "00000000-0000-4000-8000-000000000001"
PRODUCT = "00000000-0000-4000-8000-0000000000a1"

CUSTOMERS = (
    "INSERT INTO users (id, email, name, password_hash) VALUES"
    f" ('{CUSTOMER}', 'ada@example.com', 'Ada', 'h')"
)


def webhooks(count: int, status: str, age: str, *, prefix: str = "T-WH") -> str:
    """Insert ``count`` charge.success webhooks in ``status``, about ``age`` old."""
    error = "'order lookup timed out'" if status == "failed" else "NULL"
    return (
        "INSERT INTO webhook_events (event_type, reference, status, error_message, retry_count,"
        " created_at)"
        f" SELECT 'charge.success', '{prefix}-' || n, '{status}', {error},"
        f" {3 if status == 'failed' else 0}, now() - interval '{age}' - n * interval '10 seconds'"
        f" FROM generate_series(1, {count}) n"
    )


def order(number: str, status: str, reference: str | None, age: str) -> str:
    """Insert one order of the first customer, ``age`` old, with its Paystack reference."""
    ref = f"'{reference}'" if reference else "NULL"
    return (
        "INSERT INTO orders (order_number, user_id, status, total_kobo, payment_reference,"
        f" created_at) VALUES ('{number}', '{CUSTOMER}', '{status}', 2500000, {ref},"
        f" now() - interval '{age}')"
    )


def attempts(count: int, status: str, age: str, error: str | None = None) -> str:
    """Insert ``count`` payment attempts for the first order, ``age`` old."""
    message = f"'{error}'" if error else "NULL"
    return (
        "INSERT INTO payment_attempts (order_id, reference, status, error_message, created_at)"
        " SELECT (SELECT id FROM orders ORDER BY created_at LIMIT 1), 'T-PA-{status}-' || n,"
        f" '{status}', {message}, now() - interval '{age}' - n * interval '10 seconds'"
        f" FROM generate_series(1, {count}) n"
    )


def order_line(order_number: str, sku: str, quantity: int) -> str:
    """Insert one line of ``quantity`` of variant ``sku`` into order ``order_number``."""
    return (
        "INSERT INTO order_items (order_id, product_id, variant_id, quantity, unit_price_kobo)"
        f" SELECT o.id, v.product_id, v.id, {quantity}, 2500000 FROM orders o, product_variants v"
        f" WHERE o.order_number = '{order_number}' AND v.sku = '{sku}'"
    )
