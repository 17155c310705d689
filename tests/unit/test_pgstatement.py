"""A step's SQL is checked before it runs, and a write's preview is derived from its own WHERE."""

from __future__ import annotations

import pytest

from agape_ops.adapters.pgstatement import analyse
from agape_ops.errors import AdapterResponseError, UnsafeOperation
from agape_ops.runbooks.sql_effects import function_effect


def test_an_update_is_previewed_with_its_own_target_and_where() -> None:
    statement = analyse(
        "UPDATE product_variants SET stock = 0 WHERE stock < 0",
        {},
        use="write",
        step_id="correct_stock",
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
        use="write",
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
        use="write",
    )
    assert statement.derived_preview == (
        "WITH bad AS (SELECT id FROM users WHERE email = %(email)s)"
        " SELECT sessions.* FROM sessions, bad WHERE sessions.user_id = bad.id"
    )


def test_a_select_or_insert_has_no_derived_preview() -> None:
    assert analyse("SELECT 1", {}, use="read").derived_preview is None
    insert = analyse("INSERT INTO products (name) VALUES ('x')", {}, use="write")
    assert insert.derived_preview is None


def test_sql_without_parameters_keeps_its_percent_signs() -> None:
    statement = analyse("SELECT * FROM audit_logs WHERE action LIKE 'admin.%'", {}, use="read")
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
        analyse(sql, {}, use="read", step_id="s1")
    assert caught.value.step_id == "s1"
    assert caught.value.message.endswith("nothing was run")


def test_sql_that_does_not_parse_reports_the_parsers_message_and_position() -> None:
    with pytest.raises(AdapterResponseError) as caught:
        analyse("SELECT id FORM orders", {}, use="read", step_id="failed_webhooks")
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
    with pytest.raises(UnsafeOperation, match="read step refused: it runs"):
        analyse(sql, {}, use="read", step_id="s1")
    with pytest.raises(UnsafeOperation, match="preview refused: it runs"):
        analyse(sql, {}, use="preview", step_id="s1")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT %(a b)s",  # psycopg would bind a parameter named "a b"; the parser would not
        "SELECT %(a')s, 'x'",
        "SELECT %(a--)s",
        "SELECT %s",
        "SELECT %(a)d",
        "SELECT 5 % 2",
        "SELECT %(",
    ],
)
def test_a_placeholder_psycopg_and_the_parser_could_read_differently_is_refused(sql: str) -> None:
    with pytest.raises(UnsafeOperation, match="placeholder") as caught:
        analyse(sql, {"a": 1}, use="read", step_id="s1")
    assert caught.value.message.endswith("nothing was run")


def test_placeholders_are_read_as_psycopg_reads_them() -> None:
    statement = analyse(
        "UPDATE sessions SET revoked_at = now() WHERE user_agent LIKE 'Mozilla%%'"
        " AND user_id = %(user_id)s AND ip = %(ip)b",
        {"user_id": "u", "ip": "1.2.3.4"},
        use="write",
    )
    assert statement.derived_preview == (
        "SELECT sessions.* FROM sessions WHERE user_agent LIKE 'Mozilla%%'"
        " AND user_id = %(user_id)s AND ip = %(ip)s"
    )


@pytest.mark.parametrize(
    ("name", "effect"),
    [
        ("pg_try_advisory_xact_lock_shared", "advisory lock"),
        ("PG_ADVISORY_UNLOCK_ALL", "advisory lock"),
        ("lo_export", "large object"),
        ("dblink_connect_u", "connection of its own"),
        ("pg_read_binary_file", "server's files"),
        ("pg_stat_reset_shared", "resets statistics"),
        ("pg_stat_statements_reset", "resets server state"),
        ("pg_logical_slot_get_changes", "changes the server"),
        ("database_to_xml", "SQL given as text"),
        ("set_config", "changes a setting"),
    ],
)
def test_functions_that_reach_beyond_a_read_are_named(name: str, effect: str) -> None:
    assert effect in (function_effect(name) or "")


@pytest.mark.parametrize(
    "name", ["count", "now", "current_setting", "pg_is_in_recovery", "pg_sleep", "lower"]
)
def test_the_functions_runbooks_read_with_are_harmless(name: str) -> None:
    assert function_effect(name) is None


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT 1", "this one is a SELECT"),
        ("TRUNCATE sessions", "this one is a TRUNCATE"),
        (
            "MERGE INTO sessions s USING users u ON s.user_id = u.id WHEN MATCHED THEN DELETE",
            "MERGE",
        ),
        ("DELETE FROM sessions", "a DELETE without WHERE would change every row of sessions"),
        ("UPDATE pg_authid SET rolsuper = true WHERE true", "this one changes pg_authid"),
        ("UPDATE audit.users SET role = 'admin' WHERE true", "this one changes audit.users"),
        (
            "WITH x AS (DELETE FROM sessions WHERE true RETURNING 1)"
            " UPDATE users SET role = 'admin' WHERE false",
            "it runs a DELETE inside WITH",
        ),
        (
            "INSERT INTO audit_logs (action) SELECT 'x' FROM pg_advisory_lock(1)",
            "it runs pg_advisory_lock()",
        ),
    ],
)
def test_a_write_step_is_one_update_delete_or_insert_of_a_backend_table(
    sql: str, words: str
) -> None:
    with pytest.raises(UnsafeOperation, match="nothing was run") as caught:
        analyse(sql, {}, use="write", step_id="w1")
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("LISTEN agape", "a read step runs a single SELECT; this one is a LISTEN"),
        ("SELECT id INTO loot FROM orders", "SELECT ... INTO"),
        ("WITH d AS (DELETE FROM sessions RETURNING 1) SELECT 1", "a DELETE inside WITH"),
    ],
)
def test_a_read_step_is_one_plain_select(sql: str, words: str) -> None:
    with pytest.raises(UnsafeOperation, match="nothing was run") as caught:
        analyse(sql, {}, use="read")
    assert words in caught.value.message


def test_a_preview_is_one_plain_select() -> None:
    with pytest.raises(UnsafeOperation, match="a write's preview runs a single SELECT"):
        analyse("DELETE FROM sessions WHERE true", {}, use="preview")
    assert analyse("SELECT id FROM sessions", {}, use="preview").derived_preview is None


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT " + "+".join(["1"] * 30000), "more than the 10000 the bot checks"),
        (
            "UPDATE product_variants SET stock = 0 WHERE stock < " + "+".join(["1"] * 4000),
            "nests too deeply to check",
        ),
    ],
)
def test_sql_too_long_or_too_deep_to_check_is_refused_without_crashing(
    sql: str, words: str
) -> None:
    """pglast, in-process C, would crash the bot on the first; Python would recurse on both."""
    with pytest.raises(UnsafeOperation, match=words):
        analyse(sql, {}, use="write" if sql.startswith("UPDATE") else "read")


def test_a_long_chain_is_checked_all_the_way_down() -> None:
    with pytest.raises(UnsafeOperation, match="pg_advisory_lock"):
        analyse("SELECT " + "+".join(["1"] * 3000) + " + pg_advisory_lock(1)", {}, use="read")
