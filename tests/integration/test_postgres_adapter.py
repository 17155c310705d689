"""The PostgreSQL adapter against a real scratch copy of the backend's database."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from agape_ops.adapters.postgres import PostgresAdapter, open_pool
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import (
    AdapterAuthError,
    AdapterError,
    AdapterNotConfigured,
    AdapterResponseError,
    AdapterTimeout,
    UnsafeOperation,
)
from agape_ops.runbooks.fields import FIELDS
from agape_ops.runbooks.model import PostgresCall, Risk, Step

pytestmark = pytest.mark.integration


def request(
    sql: str, *, risk: Risk = Risk.READ, step_id: str = "check", **call: Any
) -> AdapterRequest:
    params = call.pop("params", {})
    step = Step(id=step_id, title="a step", risk=risk, postgres=PostgresCall(sql=sql, **call))
    return AdapterRequest(
        run_id="INC-1", step=step, call=step.call, idempotency_key="k", params=params
    )


@pytest.fixture
async def pool(backend_db: str) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(backend_db)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def adapter(pool: AsyncConnectionPool) -> PostgresAdapter:
    return PostgresAdapter(pool)


async def add_user(conn: psycopg.AsyncConnection[Any], email: str = "ada@example.com") -> str:
    cur = await conn.execute(
        "INSERT INTO users (email, name, password_hash) VALUES (%s, 'Ada', 'x') RETURNING id",
        (email,),
    )
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


async def add_variants(conn: psycopg.AsyncConnection[Any], stocks: list[int]) -> None:
    cur = await conn.execute("INSERT INTO products (name) VALUES ('Ankara dress') RETURNING id")
    row = await cur.fetchone()
    assert row is not None
    for number, stock in enumerate(stocks):
        await conn.execute(
            "INSERT INTO product_variants (product_id, sku, stock) VALUES (%s, %s, %s)",
            (row[0], f"SKU-{number:03d}", stock),
        )


async def stocks(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    cur = await conn.execute("SELECT stock FROM product_variants ORDER BY sku")
    return [r[0] for r in await cur.fetchall()]


# --- reads -------------------------------------------------------------------------------------


async def test_read_renders_uuid_timestamptz_jsonb_and_interval_as_json_safe_values(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await backend_conn.execute(
        "INSERT INTO webhook_events (event_type, reference, status, error_message, retry_count,"
        " payload, created_at) VALUES ('charge.success', 'T123', 'failed', 'order not found', 3,"
        " '{\"data\": {\"amount\": 500000}}', '2026-01-02T03:04:05Z')"
    )
    result = await adapter.execute(
        request(
            "SELECT id, event_type, status, error_message, retry_count, payload, created_at,"
            " interval '2 hours 5 minutes' AS stuck_for, 12.50::numeric AS ratio"
            " FROM webhook_events WHERE status = 'failed' ORDER BY created_at DESC"
        )
    )
    assert result.summary == "1 row"
    assert result.columns[:3] == ["id", "event_type", "status"]
    row = result.rows[0]
    assert uuid.UUID(row["id"])
    assert row["payload"] == {"data": {"amount": 500000}}
    assert row["created_at"].startswith("2026-01-02T03:04:05")
    assert row["stuck_for"] == "2 h 05 min"
    assert row["ratio"] == 12.5
    assert row["retry_count"] == 3
    assert result.values["column_types"]["payload"] == "jsonb"
    assert set(result.values) == FIELDS[("postgres", "read")]
    assert result.total_rows == 1


async def test_read_renders_inet_of_sessions_and_audit_logs_as_text(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    user_id = await add_user(backend_conn)
    await backend_conn.execute(
        "INSERT INTO sessions (user_id, ip, expires_at)"
        " VALUES (%s, '41.58.12.9', now() + interval '1 day')",
        (user_id,),
    )
    await backend_conn.execute(
        "INSERT INTO audit_logs (action, ip, metadata)"
        " VALUES ('auth.login_failed', '10.0.0.0/8', '[1, 2]')"
    )
    sessions = await adapter.execute(
        request(
            "SELECT user_id, ip, revoked_at FROM sessions WHERE user_id = %(user_id)s",
            params={"user_id": user_id},
        )
    )
    assert sessions.rows == [{"user_id": user_id, "ip": "41.58.12.9", "revoked_at": None}]
    audit = await adapter.execute(request("SELECT id, ip, metadata FROM audit_logs"))
    assert audit.rows == [{"id": 1, "ip": "10.0.0.0/8", "metadata": [1, 2]}]


async def test_read_keeps_limit_rows_and_states_the_total(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await add_variants(backend_conn, [-1] * 120)
    result = await adapter.execute(
        request("SELECT sku, stock FROM product_variants WHERE stock < 0 ORDER BY sku", limit=50)
    )
    assert len(result.rows) == 50
    assert result.total_rows == 120
    assert result.truncated
    assert result.summary == "120 rows (first 50 shown)"
    assert result.context()["row_count"] == 120


async def test_read_binds_parameters_as_values_never_as_sql(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    user_id = await add_user(backend_conn)
    await backend_conn.execute(
        "INSERT INTO orders (order_number, user_id, status, total_kobo, payment_reference)"
        " VALUES ('AG-1001', %s, 'pending_payment', 2500000, 'ref-1')",
        (user_id,),
    )
    found = await adapter.execute(
        request(
            "SELECT order_number, total_kobo FROM orders WHERE payment_reference = %(ref)s"
            " AND status LIKE 'pending%%'",
            params={"ref": "ref-1"},
        )
    )
    assert found.rows == [{"order_number": "AG-1001", "total_kobo": 2500000}]
    hostile = await adapter.execute(
        request(
            "SELECT order_number FROM orders WHERE payment_reference = %(ref)s",
            params={"ref": "x'; DELETE FROM orders; --"},
        )
    )
    assert hostile.summary == "no rows"
    cur = await backend_conn.execute("SELECT count(*) FROM orders")
    assert await cur.fetchone() == (1,)


async def test_repeated_column_names_keep_every_value(adapter: PostgresAdapter) -> None:
    result = await adapter.execute(request("SELECT 1 AS id, 2 AS id"))
    assert result.columns == ["id", "id_2"]
    assert result.rows == [{"id": 1, "id_2": 2}]


async def test_read_step_that_tries_to_write_is_refused_and_changes_nothing(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await add_variants(backend_conn, [-2, 5])
    with pytest.raises(UnsafeOperation, match="read step tried to write") as caught:
        await adapter.execute(request("UPDATE product_variants SET stock = 0 WHERE stock < 0"))
    assert "nothing was changed" in caught.value.message
    assert caught.value.step_id == "check"
    assert await stocks(backend_conn) == [-2, 5]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; UPDATE product_variants SET stock = 0",
        "COMMIT",
        "SET default_transaction_read_only = off",
    ],
)
async def test_sql_that_escapes_the_adapters_transaction_is_refused(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any], sql: str
) -> None:
    await add_variants(backend_conn, [-2])
    with pytest.raises(UnsafeOperation, match="nothing was run"):
        await adapter.execute(request(sql))
    assert await stocks(backend_conn) == [-2]


async def test_statement_past_its_timeout_is_cancelled_within_a_second(
    pool: AsyncConnectionPool,
) -> None:
    adapter = PostgresAdapter(pool, statement_timeout_ms=200)
    started = time.monotonic()
    with pytest.raises(AdapterTimeout, match="200 ms statement timeout") as caught:
        await adapter.execute(request("SELECT pg_sleep(5)"))
    assert time.monotonic() - started < 1.0
    assert caught.value.step_id == "check"


async def test_a_steps_timeout_ms_overrides_the_default(adapter: PostgresAdapter) -> None:
    with pytest.raises(AdapterTimeout, match="150 ms"):
        await adapter.execute(request("SELECT pg_sleep(3)", timeout_ms=150))


async def test_syntax_error_reports_postgresqls_message_and_the_step(
    adapter: PostgresAdapter,
) -> None:
    with pytest.raises(AdapterResponseError, match='syntax error at or near "orders"') as caught:
        await adapter.execute(request("SELECT id FORM orders", step_id="failed_webhooks"))
    assert caught.value.step_id == "failed_webhooks"
    assert "step failed_webhooks" in caught.value.message


async def test_undefined_column_reports_postgresqls_message_and_the_step(
    adapter: PostgresAdapter,
) -> None:
    with pytest.raises(AdapterResponseError) as caught:
        await adapter.execute(request("SELECT nope FROM orders", step_id="orders"))
    assert 'column "nope" does not exist' in caught.value.message
    assert "step orders" in caught.value.message


@pytest.fixture
def limited_role(backend_db: str) -> Iterator[str]:
    """Create a login role with no rights on the backend's tables; return its DSN."""
    role = f"agape_t_role_{secrets.token_hex(4)}"
    admin = make_conninfo(backend_db, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield make_conninfo(backend_db, user=role)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


async def test_missing_privilege_is_an_auth_error(limited_role: str) -> None:
    limited = await open_pool(limited_role)
    try:
        with pytest.raises(AdapterAuthError, match="permission denied for table users"):
            await PostgresAdapter(limited).execute(request("SELECT email FROM users"))
    finally:
        await limited.close()


# --- writes ------------------------------------------------------------------------------------

CORRECT_STOCK = "UPDATE product_variants SET stock = 0 WHERE stock < %(below)s"


async def test_preview_lists_the_rows_a_write_would_change_and_changes_nothing(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await add_variants(backend_conn, [-3, -1, 4])
    preview = await adapter.preview(
        request(CORRECT_STOCK, risk=Risk.WRITE, max_rows=5, params={"below": 0})
    )
    assert preview is not None
    assert preview.values["preview_count"] == 2
    assert sorted(r["sku"] for r in preview.rows) == ["SKU-000", "SKU-001"]
    assert preview.summary == "would change 2 rows"
    assert await stocks(backend_conn) == [-3, -1, 4]


async def test_preview_of_a_read_step_is_none(adapter: PostgresAdapter) -> None:
    assert await adapter.preview(request("SELECT 1")) is None


async def test_write_touching_more_than_max_rows_is_refused_and_changes_nothing(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await add_variants(backend_conn, [-3, -1, -7, 4])
    with pytest.raises(UnsafeOperation) as caught:
        await adapter.execute(
            request(CORRECT_STOCK, risk=Risk.WRITE, max_rows=2, params={"below": 0})
        )
    assert caught.value.message == (
        "step check would change 3 rows, more than its limit of 2 (max_rows); nothing was changed"
    )
    assert await stocks(backend_conn) == [-3, -1, -7, 4]


async def test_write_within_max_rows_reports_the_rows_it_changed(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await add_variants(backend_conn, [-3, -1, 4])
    result = await adapter.execute(
        request(CORRECT_STOCK, risk=Risk.WRITE, max_rows=5, params={"below": 0})
    )
    assert result.values["rows_changed"] == 2
    assert result.values["preview_count"] == 2
    assert result.summary == "changed 2 rows"
    assert sorted(r["stock"] for r in result.rows) == [-3, -1]
    assert await stocks(backend_conn) == [0, 0, 4]


async def test_write_whose_statement_changes_more_than_its_preview_allowed_is_rolled_back(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await add_variants(backend_conn, [-3, -1, -7])
    with pytest.raises(UnsafeOperation, match="rolled back; nothing was changed"):
        await adapter.execute(
            request(
                "UPDATE product_variants SET stock = 0 WHERE stock < 0",
                risk=Risk.WRITE,
                max_rows=1,
                preview="SELECT sku FROM product_variants WHERE stock < -5",
            )
        )
    assert await stocks(backend_conn) == [-3, -1, -7]


async def test_session_revocation_previews_with_the_statements_own_where(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    victim = await add_user(backend_conn, "victim@example.com")
    other = await add_user(backend_conn, "other@example.com")
    for user in (victim, victim, other):
        await backend_conn.execute(
            "INSERT INTO sessions (user_id, expires_at) VALUES (%s, now() + interval '1 day')",
            (user,),
        )
    step = request(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = %(user_id)s AND revoked_at IS NULL",
        risk=Risk.DANGEROUS,
        max_rows=50,
        params={"user_id": victim},
    )
    result = await adapter.execute(step)
    assert result.values == {"rows_changed": 2, "preview_count": 2}
    cur = await backend_conn.execute(
        "SELECT user_id::text, count(*) FROM sessions WHERE revoked_at IS NOT NULL GROUP BY 1"
    )
    assert await cur.fetchall() == [(victim, 2)]
    again = await adapter.execute(step)
    assert again.values["rows_changed"] == 0
    assert again.summary == "changed no rows"


async def test_delete_with_using_previews_only_the_joined_rows(
    adapter: PostgresAdapter, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    victim = await add_user(backend_conn, "victim@example.com")
    await add_user(backend_conn, "other@example.com")
    await backend_conn.execute(
        "INSERT INTO sessions (user_id, expires_at) VALUES (%s, now())", (victim,)
    )
    preview = await adapter.preview(
        request(
            "DELETE FROM sessions s USING users u WHERE s.user_id = u.id AND u.email = %(email)s",
            risk=Risk.WRITE,
            params={"email": "victim@example.com"},
        )
    )
    assert preview is not None
    assert preview.values["preview_count"] == 1
    assert preview.rows[0]["user_id"] == victim


async def test_write_waiting_on_a_held_lock_gives_up_at_the_lock_timeout(
    pool: AsyncConnectionPool, backend_db: str, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await add_variants(backend_conn, [-3])
    adapter = PostgresAdapter(pool, lock_timeout_ms=200)
    async with await psycopg.AsyncConnection.connect(backend_db) as holder:
        await holder.execute("SELECT * FROM product_variants FOR UPDATE")
        with pytest.raises(AdapterTimeout, match="200 ms lock timeout"):
            await adapter.execute(
                request(
                    "UPDATE product_variants SET stock = 0 WHERE stock < 0",
                    risk=Risk.WRITE,
                    max_rows=5,
                )
            )
        await holder.rollback()
    assert await stocks(backend_conn) == [-3]


def test_describe_says_the_sql_its_parameters_and_the_row_guard() -> None:
    adapter = PostgresAdapter(None, statement_timeout_ms=4000)
    text = adapter.describe(
        request(CORRECT_STOCK, risk=Risk.WRITE, max_rows=5, params={"below": 0})
    )
    assert CORRECT_STOCK in text
    assert "below = 0" in text
    assert "statement timeout 4000 ms" in text
    assert "SELECT product_variants.* FROM product_variants WHERE stock < %(below)s" in text
    assert "more than 5 rows" in text
    read = adapter.describe(request("SELECT 1"))
    assert read.startswith("Runs in a read-only transaction")
    assert "max_rows" not in read


# --- configuration and health ------------------------------------------------------------------


async def test_unconfigured_adapter_says_which_setting_to_set() -> None:
    adapter = PostgresAdapter(None)
    with pytest.raises(AdapterNotConfigured, match="set DATABASE_URL"):
        await adapter.execute(request("SELECT 1"))
    probe = await adapter.probe()
    assert (probe.ok, probe.configured) == (False, False)
    assert probe.detail == "PostgreSQL is not configured: set DATABASE_URL"


async def test_probe_reports_a_reachable_database_with_its_latency(
    adapter: PostgresAdapter,
) -> None:
    probe = await adapter.probe()
    assert probe.ok
    assert probe.name == "postgres"
    assert probe.latency_ms is not None
    assert probe.detail == f"answered in {probe.latency_ms} ms"


def given(url: str, sql: str = "SELECT pg_is_in_recovery() AS in_recovery", **step: Any) -> Any:
    """A read of the database a person named (a failover's new primary) through dsn_input."""
    call = PostgresCall(sql=sql, dsn_input="new_primary_url")
    built = Step(id="verify_database", title="Test", postgres=call, **step)
    return AdapterRequest(
        run_id="INC-1", step=built, call=call, idempotency_key="k", extra={"dsn": url}
    )


async def test_a_dsn_input_read_connects_to_the_url_given_not_the_configured_database(
    backend_db: str,
) -> None:
    unconfigured = PostgresAdapter(None)  # DATABASE_URL unset (or naming the old primary)

    result = await unconfigured.execute(given(backend_db))

    assert result.rows == [{"in_recovery": False}]
    assert result.summary == "1 row from 127.0.0.1:5432 (the URL given as new_primary_url)"


async def test_a_dsn_input_read_is_read_only_and_says_why_a_url_fails_without_its_password(
    backend_db: str,
) -> None:
    adapter = PostgresAdapter(None, connect_timeout_s=2)
    with pytest.raises(AdapterError) as refused:
        await adapter.execute(given("postgresql://agape:n3w-s3cret@127.0.0.1:1/agape"))
    assert refused.value.message == "PostgreSQL: unreachable (connection refused) at 127.0.0.1:1"
    with pytest.raises(AdapterError) as written:
        await adapter.execute(given(backend_db, "CREATE TABLE stolen (id int)"))
    assert "n3w-s3cret" not in str(refused.value)
    assert written.value.step_id == "verify_database"
    for url in (
        "host=127.0.0.1 dbname=agape",
        "http://127.0.0.1:5432/agape",
        f"{backend_db}?options=-c%20default_transaction_read_only%3Doff",
        f"{backend_db}?sslkey=/etc/shadow",
    ):
        with pytest.raises(UnsafeOperation, match="must be a postgresql://"):
            await adapter.execute(given(url))
