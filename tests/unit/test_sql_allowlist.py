"""Read SQL may call only built-ins known to have no side effects; lint and adapter agree.

The red team's read step hid ``pg_terminate_backend`` inside the SQL *text* that ``ts_rewrite``
runs, past a list of banned names. Now a function is allowed by being on the list of harmless
built-ins, and a function that runs SQL given as text is refused by name.
"""

from __future__ import annotations

import pytest

from agape_ops.adapters.pgstatement import analyse as adapter_analyse
from agape_ops.errors import UnsafeOperation
from agape_ops.runbooks.model import PostgresCall
from agape_ops.runbooks.sql import analyse as lint_analyse
from agape_ops.runbooks.sql_effects import function_effect

TS_REWRITE = (
    "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery FROM "
    "pg_stat_activity WHERE pg_terminate_backend(pid)') AS q"
)


def lint_messages(sql: str) -> list[str]:
    return [f.message for f in lint_analyse(PostgresCall(sql=sql), writes=False).findings]


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        (TS_REWRITE, "ts_rewrite(), which runs SQL given as text"),
        ("SELECT query_to_xml('SELECT pg_reload_conf()', true, true, '') AS x", "given as text"),
        ("SELECT ts_stat('SELECT 1') AS s", "given as text"),
        ("SELECT xpath_table('a', 'b', 'users', 'c', 'true') AS t", "given as text"),
        ("SELECT take_lock() AS n", "take_lock(), which is not one of the built-in functions"),
        ("SELECT public.lower('A') AS n", "lower(), which is a function of schema public"),
        ("SELECT 1 OPERATOR(public.+) 1 AS n", "OPERATOR(public.+)"),
        ("SELECT count(*) FROM users WHERE pg_catalog.pg_terminate_backend(1)", "changes the"),
    ],
)
def test_lint_and_the_adapter_refuse_the_same_functions(sql: str, words: str) -> None:
    assert any(words in message for message in lint_messages(sql)), lint_messages(sql)
    with pytest.raises(UnsafeOperation, match="nothing was run") as caught:
        adapter_analyse(sql, {}, use="read", step_id="s")
    assert words in caught.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FILTER (WHERE status = 'failed') AS failed, max(created_at) AS last"
        " FROM webhook_events WHERE created_at > now() - make_interval(mins => 15)",
        "SELECT pg_catalog.timezone('UTC', now()) AS t, coalesce(nullif('', ''), 'x') AS c",
        "SELECT to_char(now(), 'HH24:MI') AS t, pg_is_in_recovery() AS r, greatest(1, 2) AS g",
        "SELECT sum(1) OVER (ORDER BY 1) AS s, string_agg(sku, ', ') AS l FROM product_variants",
    ],
)
def test_reads_of_known_built_ins_pass_both_checks(sql: str) -> None:
    assert lint_messages(sql) == []
    assert adapter_analyse(sql, {}, use="read").kind == "SelectStmt"


def test_the_allowlist_is_the_rule_and_the_names_only_explain() -> None:
    assert function_effect("ts_rewrite") is not None
    assert function_effect("definitely_not_a_builtin") is not None
    assert function_effect("COUNT") is None
    assert function_effect("count", "pg_catalog") is None
    assert function_effect("count", "public") is not None
