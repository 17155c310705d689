"""Say what a runbook statement does beyond the rows it names: the server, the session, files.

A READ ONLY transaction stops a SELECT from changing tables, but not from calling a function that
signals another session, takes a session lock, creates a large object, reads the server's files
or runs SQL of its own over another connection. The linter and the PostgreSQL adapter both ask
this module before any SQL runs, so such a step is refused by name; the read-only transaction,
the statement timeout and the adapter's reset of every pooled connection catch what no list can
foresee (functions the backend defines itself).
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
_TEXT_SQL = "runs SQL given as text"

#: Functions refused by exact name, with what they do that a runbook step must not.
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
    "pg_rotate_logfile_old": _SERVER,
    "pg_log_backend_memory_contexts": _SERVER,
    "pg_switch_wal": _SERVER,
    "pg_switch_xlog": _SERVER,
    "pg_promote": _SERVER,
    "pg_create_restore_point": _SERVER,
    "pg_start_backup": _SERVER,
    "pg_stop_backup": _SERVER,
    "pg_import_system_collations": _SERVER,
    "gin_clean_pending_list": _SERVER,
    "pg_stat_file": _FILES,
    "pg_logdir_ls": _FILES,
    "loread": "reads a large object",
    "lowrite": "writes a large object",
    "ts_stat": _TEXT_SQL,
}
#: Families of functions refused by the start of their name.
_PREFIXES = (
    ("pg_advisory_", "takes or releases an advisory lock"),
    ("pg_try_advisory_", "takes an advisory lock"),
    ("lo_", "creates, changes or reads a large object"),
    ("dblink", "runs SQL over a connection of its own"),
    ("pg_read_", _FILES),
    ("pg_ls_", _FILES),
    ("pg_file_", _FILES),
    ("pg_stat_reset", "resets statistics"),
    ("pg_wal_replay_", _SERVER),
    ("pg_backup_", _SERVER),
    ("pg_create_", _SERVER),
    ("pg_drop_", _SERVER),
    ("pg_copy_", _SERVER),
    ("pg_replication_", _SERVER),
    ("pg_logical_", _SERVER),
    ("brin_summarize", _SERVER),
    ("brin_desummarize", _SERVER),
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


def function_effect(name: str) -> str | None:
    """Say what the function ``name`` does that a step must not, or None when it is harmless."""
    lowered = name.lower()
    if lowered in _FUNCTIONS:
        return _FUNCTIONS[lowered]
    for prefix, effect in _PREFIXES:
        if lowered.startswith(prefix):
            return effect
    for suffix, effect in _SUFFIXES:
        if lowered.endswith(suffix):
            return effect
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
        effect = function_effect(name) if name is not None else None
        if effect is not None:
            return f"{name}(), which {effect}"
    return None


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
