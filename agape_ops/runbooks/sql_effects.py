"""Say what a runbook statement does beyond the rows it names: the server, the session, files.

A READ ONLY transaction stops a SELECT from changing tables, but not from calling a function that
signals another session, takes a session lock, creates a large object, reads the server's files
or runs SQL of its own (given as text, or over another connection). So a statement may call only
the functions listed here as known to have no side effects; every other function is refused,
those worth explaining by what they do, the rest as unknown. The linter and the PostgreSQL
adapter both ask this module before any SQL runs; the read-only transaction, the statement
timeout and the adapter's reset of every pooled connection remain behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from agape_ops.runbooks.sql_schema import last_name

#: The longest SQL a step may carry. The parser (C, in-process) crashes the whole bot on an
#: expression nested tens of thousands deep; runbook SQL is never near this long.
MAX_SQL_CHARS = 10_000

_SERVER = "changes the server"
_SESSION = "leaves state in the bot's session"
_FILES = "reaches the server's files"
_TEXT_SQL = "runs SQL given as text, which no check of this statement can see"
_UNKNOWN = (
    "is not one of the built-in functions known to have no side effects (the bot runs only "
    "those; see runbooks/sql_effects.py)"
)

#: The functions a statement may call, by kind: PostgreSQL built-ins that only compute a value
#: from their arguments or report on the server, without changing anything, leaving state in the
#: session, reading files or running SQL of their own. Anything else (the backend's own functions
#: included, whatever they are called) is refused: what a function does cannot be seen from its
#: name. ``pg_sleep`` is here because the statement timeout bounds it.
_SAFE_BY_KIND = {
    "aggregates and window functions": (
        "count sum avg min max bool_and bool_or every string_agg array_agg json_agg jsonb_agg "
        "json_object_agg jsonb_object_agg percentile_cont percentile_disc mode stddev stddev_pop "
        "stddev_samp variance var_pop var_samp corr covar_pop covar_samp bit_and bit_or "
        "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value "
        "nth_value grouping"
    ),
    "conditionals and comparison": "coalesce nullif greatest least num_nulls num_nonnulls",
    "numbers": (
        "abs ceil ceiling floor round trunc sign mod div power pow sqrt cbrt exp ln log log10 "
        "width_bucket scale random to_number numeric float8 int4 int8"
    ),
    "text": (
        "length char_length character_length octet_length lower upper initcap trim btrim ltrim "
        "rtrim lpad rpad left right substr substring position strpos replace translate split_part "
        "concat concat_ws format repeat reverse starts_with md5 sha256 encode decode quote_ident "
        "quote_literal quote_nullable to_hex regexp_replace regexp_match regexp_matches "
        "regexp_split_to_array regexp_split_to_table regexp_count regexp_like string_to_array "
        "array_to_string overlay chr ascii to_char unaccent"
    ),
    "dates and times": (
        "now current_timestamp clock_timestamp statement_timestamp transaction_timestamp "
        "timeofday date_trunc date_part extract age to_timestamp to_date make_interval make_date "
        "make_time make_timestamp make_timestamptz date_bin justify_interval justify_hours "
        "justify_days isfinite timezone"
    ),
    "arrays, ranges and JSON": (
        "array_length cardinality array_position array_positions array_remove array_append "
        "array_prepend array_cat array_dims array_lower array_upper unnest generate_series "
        "lower_inc upper_inc isempty json_build_object jsonb_build_object json_build_array "
        "jsonb_build_array to_json to_jsonb row_to_json json_array_length jsonb_array_length "
        "json_each jsonb_each json_each_text jsonb_each_text json_array_elements "
        "jsonb_array_elements json_array_elements_text jsonb_array_elements_text json_object_keys "
        "jsonb_object_keys json_extract_path jsonb_extract_path json_extract_path_text "
        "jsonb_extract_path_text json_typeof jsonb_typeof jsonb_strip_nulls jsonb_path_exists "
        "jsonb_path_query jsonb_path_query_first jsonb_pretty jsonb_set jsonb_insert"
    ),
    "network addresses and identifiers": (
        "host hostmask masklen network netmask family inet_same_family gen_random_uuid "
        "uuid_generate_v4"
    ),
    "reports on the server, the session and the database": (
        "version current_database current_schema current_user session_user current_setting "
        "pg_backend_pid pg_blocking_pids pg_is_in_recovery pg_is_wal_replay_paused "
        "pg_last_xact_replay_timestamp pg_last_wal_receive_lsn pg_last_wal_replay_lsn "
        "pg_current_wal_lsn pg_wal_lsn_diff pg_postmaster_start_time pg_conf_load_time "
        "pg_database_size pg_relation_size pg_total_relation_size pg_table_size pg_indexes_size "
        "pg_size_pretty pg_size_bytes pg_typeof pg_listening_channels inet_server_addr "
        "inet_server_port inet_client_addr has_table_privilege pg_sleep"
    ),
}
SAFE_FUNCTIONS = frozenset(name for names in _SAFE_BY_KIND.values() for name in names.split())

#: Functions whose harm is worth naming: what they do that a step must not.
_FUNCTIONS = {
    "set_config": "changes a setting",
    "setseed": _SESSION,
    "nextval": "advances a sequence",
    "setval": "sets a sequence",
    "pg_notify": "sends a notification",
    "txid_current": "assigns a transaction id",
    "pg_current_xact_id": "assigns a transaction id",
    "pg_export_snapshot": _SESSION,
    "pg_cancel_backend": _SERVER,
    "pg_terminate_backend": _SERVER,
    "pg_reload_conf": _SERVER,
    "pg_rotate_logfile": _SERVER,
    "pg_promote": _SERVER,
    "pg_switch_wal": _SERVER,
    "pg_stat_file": _FILES,
    "ts_rewrite": _TEXT_SQL,
    "ts_stat": _TEXT_SQL,
    "xpath_table": _TEXT_SQL,
}
#: Families of functions named by the start of their name.
_PREFIXES = (
    ("pg_advisory_", "takes or releases an advisory lock"),
    ("pg_try_advisory_", "takes an advisory lock"),
    ("lo_", "creates, changes or reads a large object"),
    ("dblink", "runs SQL over a connection of its own"),
    ("pg_read_", _FILES),
    ("pg_ls_", _FILES),
    ("pg_file_", _FILES),
    ("pg_stat_reset", "resets statistics"),
    ("pg_logical_", _SERVER),
    ("pg_replication_", _SERVER),
    ("query_to_xml", _TEXT_SQL),
    ("cursor_to_xml", _TEXT_SQL),
    ("table_to_xml", _TEXT_SQL),
    ("schema_to_xml", _TEXT_SQL),
    ("database_to_xml", _TEXT_SQL),
)
#: Extensions name their resets this way (pg_stat_statements_reset ...).
_SUFFIXES = (("_reset", "resets server state"),)

_STATEMENT_NAMES = {
    "SelectStmt": "SELECT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "InsertStmt": "INSERT",
    "MergeStmt": "MERGE",
    "TruncateStmt": "TRUNCATE",
    "ExplainStmt": "EXPLAIN",
    "VariableShowStmt": "SHOW",
    "VariableSetStmt": "SET",
    "TransactionStmt": "transaction command",
    "CopyStmt": "COPY",
    "CreateStmt": "CREATE TABLE",
    "CreateTableAsStmt": "CREATE TABLE AS",
    "IndexStmt": "CREATE INDEX",
    "DropStmt": "DROP",
    "AlterTableStmt": "ALTER TABLE",
    "GrantStmt": "GRANT",
    "DoStmt": "DO block",
    "CallStmt": "CALL",
    "LockStmt": "LOCK TABLE",
    "VacuumStmt": "VACUUM",
    "ListenStmt": "LISTEN",
    "NotifyStmt": "NOTIFY",
    "DeclareCursorStmt": "DECLARE CURSOR",
    "LoadStmt": "LOAD",
    "DiscardStmt": "DISCARD",
}


def function_effect(name: str, schema: str | None = None) -> str | None:
    """Say why a step may not call the function ``name``, or None when it is a known safe one.

    ``schema`` is the name's qualification, if any: only ``pg_catalog`` holds the built-ins.
    """
    lowered = name.lower()
    if lowered in _FUNCTIONS:
        return _FUNCTIONS[lowered]
    for prefix, effect in _PREFIXES:
        if lowered.startswith(prefix):
            return effect
    for suffix, effect in _SUFFIXES:
        if lowered.endswith(suffix):
            return effect
    if schema is not None and schema.lower() != "pg_catalog":
        return f"is a function of schema {schema}, not a built-in"
    if lowered not in SAFE_FUNCTIONS:
        return _UNKNOWN
    return None


def describe(statement: Any) -> str:
    """Name a statement for a person: "an UPDATE", "a SELECT", "a CREATE TABLE"."""
    kind = type(statement).__name__
    name = _STATEMENT_NAMES.get(kind) or kind.removesuffix("Stmt").upper() + " statement"
    article = "an" if name[0] in "AEIOU" else "a"
    return f"{article} {name}"


def writes_of(statement: Any) -> str | None:
    """Say what a statement changes or locks, or None when it is a plain read-only SELECT."""
    if not isinstance(statement, ast.SelectStmt):
        return describe(statement)
    for node in walk(statement):
        if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
            return "SELECT ... INTO, which creates a table"
        if isinstance(node, ast.SelectStmt) and node.lockingClause:
            return "SELECT ... FOR UPDATE/SHARE, which locks rows"
        effect = _hidden(node)
        if effect is not None:
            return effect
    return None


def hidden_effect(statement: Any) -> str | None:
    """Say what a write does beyond its own rows (a write inside WITH, a refused function)."""
    for node in walk(statement):
        effect = _hidden(node)
        if effect is not None:
            return effect
    return None


def _hidden(node: Any) -> str | None:
    if isinstance(node, ast.CommonTableExpr) and not isinstance(node.ctequery, ast.SelectStmt):
        return f"{describe(node.ctequery)} inside WITH"
    if isinstance(node, ast.FuncCall):
        name = last_name(node.funcname)
        if name is None:
            return "a function call whose name cannot be read"
        effect = function_effect(name, _qualifier(node.funcname))
        if effect is not None:
            return f"{name}(), which {effect}"
    if isinstance(node, ast.A_Expr) and node.name and len(node.name) > 1:
        schema = _qualifier(node.name)
        if schema is None or schema.lower() != "pg_catalog":
            return f"the operator OPERATOR({schema}.{last_name(node.name)}), not a built-in"
    return None


def _qualifier(names: Any) -> str | None:
    """Return the schema a function or operator name is qualified with, if any."""
    parts = [getattr(part, "sval", None) for part in names or ()]
    return parts[-2] if len(parts) > 1 and isinstance(parts[-2], str) else None


def walk(node: Any) -> Iterator[Any]:
    """Yield every pglast node under ``node`` (itself included), depth first.

    A loop, not recursion: ``1 + 1 + ... + 1`` nests as deep as it is long.
    """
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, ast.Node):
            yield item
            stack.extend(reversed([getattr(item, attribute) for attribute in item]))
