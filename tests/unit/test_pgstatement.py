"""A step's SQL is checked before it runs, and a write's preview is derived from its own WHERE."""

from __future__ import annotations

import pytest

from agape_ops.adapters.pgstatement import analyse
from agape_ops.errors import AdapterResponseError, UnsafeOperation


def test_an_update_is_previewed_with_its_own_target_and_where() -> None:
    statement = analyse(
        "UPDATE product_variants SET stock = 0 WHERE stock < 0", {}, step_id="correct_stock"
    )
    assert statement.kind == "UpdateStmt"
    assert statement.derived_preview == (
        "SELECT product_variants.* FROM product_variants WHERE stock < 0"
    )
    assert not statement.binds


def test_placeholders_survive_the_derived_preview_and_literal_percents_stay_escaped() -> None:
    statement = analyse(
        "UPDATE sessions AS s SET revoked_at = now()"
        " WHERE s.user_id = %(user_id)s AND s.user_agent LIKE 'Mozilla%%'"
        " AND %(user_id)s IS NOT NULL",
        {"user_id": "u"},
    )
    assert statement.binds
    assert statement.derived_preview == (
        "SELECT s.* FROM sessions AS s WHERE s.user_id = %(user_id)s"
        " AND s.user_agent LIKE 'Mozilla%%' AND %(user_id)s IS NOT NULL"
    )


def test_a_delete_is_previewed_with_its_using_list_and_with_clause() -> None:
    statement = analyse(
        "WITH bad AS (SELECT id FROM users WHERE email = %(email)s)"
        " DELETE FROM sessions USING bad WHERE sessions.user_id = bad.id",
        {"email": "x@example.com"},
    )
    assert statement.derived_preview == (
        "WITH bad AS (SELECT id FROM users WHERE email = %(email)s)"
        " SELECT sessions.* FROM sessions, bad WHERE sessions.user_id = bad.id"
    )


def test_a_select_or_insert_has_no_derived_preview() -> None:
    assert analyse("SELECT 1", {}).derived_preview is None
    assert analyse("INSERT INTO products (name) VALUES ('x')", {}).derived_preview is None


def test_sql_without_parameters_keeps_its_percent_signs() -> None:
    statement = analyse("SELECT * FROM audit_logs WHERE action LIKE 'admin.%'", {})
    assert statement.kind == "SelectStmt"


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT 1; DELETE FROM orders", "exactly one SQL statement; this one has 2"),
        ("COMMIT", "control the transaction"),
        ("SET transaction_read_only = off", "change session settings"),
        ("COPY orders TO STDOUT", "run COPY"),
    ],
)
def test_sql_that_would_step_outside_the_adapters_transaction_is_refused(
    sql: str, words: str
) -> None:
    with pytest.raises(UnsafeOperation, match=words) as caught:
        analyse(sql, {}, step_id="s1")
    assert caught.value.step_id == "s1"
    assert caught.value.message.endswith("nothing was run")


def test_sql_that_does_not_parse_reports_the_parsers_message_and_position() -> None:
    with pytest.raises(AdapterResponseError) as caught:
        analyse("SELECT id FORM orders", {}, step_id="failed_webhooks")
    assert caught.value.message == (
        'PostgreSQL rejected step failed_webhooks: syntax error at or near "orders" (character 16)'
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle'",
        "SELECT id FROM product_variants WHERE stock < 0 FOR UPDATE",
    ],
)
def test_a_read_that_changes_the_server_or_locks_rows_is_refused(sql: str) -> None:
    with pytest.raises(UnsafeOperation, match="read step tried to write: it runs"):
        analyse(sql, {}, step_id="s1", read=True)
    assert analyse(sql, {}, step_id="s1").kind == "SelectStmt"
