"""What the loaded runbooks need of the backend's PostgreSQL, and whether the database has it.

`agape-ops check` calls PostgreSQL `ok` only when the tables and columns the runbooks' SQL names
exist and the bot's role may do what the runbooks do: SELECT what they read, UPDATE (or DELETE,
INSERT) what they write, and read the monitoring views (``pg_stat_activity``,
``pg_stat_replication``) as a member of ``pg_monitor``. A database that answers ``SELECT 1`` but
lacks the schema would otherwise pass, and the first step would fail at 3 a.m.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError

from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.sql_schema import CATALOG_VIEWS, SchemaCheck

_PLACEHOLDER = re.compile(r"%\(\w+\)s")
_PRIVILEGE = {"UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "InsertStmt": "INSERT"}
#: Monitoring views whose rows a role sees only with pg_monitor (or as a superuser).
_MONITORING = frozenset({"pg_stat_activity", "pg_stat_replication"})


@dataclass(frozen=True)
class Need:
    """One statement a runbook step runs, parsed, and where it comes from."""

    where: str
    statement: Any
    privilege: str  # SELECT, or what the write needs on its target


@dataclass(frozen=True)
class Requirements:
    """The statements of every loaded runbook's PostgreSQL steps."""

    needs: tuple[Need, ...]

    @classmethod
    def of(cls, runbooks: Iterable[Runbook]) -> Requirements:
        """Collect the SQL (and previews) of every postgres step of ``runbooks``."""
        needs: list[Need] = []
        for runbook in runbooks:
            for step in runbook.steps():
                call = step.postgres
                if call is None:
                    continue
                where = f"{runbook.id} step {step.id}"
                for text in (call.sql, call.preview):
                    statement = _parse(text) if text else None
                    if statement is not None:
                        privilege = _PRIVILEGE.get(type(statement).__name__, "SELECT")
                        needs.append(Need(where, statement, privilege))
        return cls(tuple(needs))

    def __len__(self) -> int:
        return len(self.needs)


def _parse(sql: str) -> Any | None:
    try:
        statements = parse_sql(_PLACEHOLDER.sub("NULL", sql).replace("%%", "%"))
    except ParseError:
        return None  # the linter reports it; a runbook that does not parse is not loaded
    return statements[0].stmt if len(statements) == 1 else None


def _relations(node: Any) -> Iterator[Any]:
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _relations(item)
    elif isinstance(node, ast.RangeVar):
        yield node
    elif isinstance(node, ast.Node):
        for attribute in node:
            yield from _relations(getattr(node, attribute))


async def _live_tables(conn: psycopg.AsyncConnection[Any]) -> dict[str, frozenset[str]]:
    cursor = await conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public'"
    )
    tables: dict[str, set[str]] = {}
    for table, column in await cursor.fetchall():
        tables.setdefault(str(table), set()).add(str(column))
    return {name: frozenset(columns) for name, columns in tables.items()}


async def _allowed(conn: psycopg.AsyncConnection[Any], table: str, privilege: str) -> bool:
    cursor = await conn.execute(
        "SELECT has_table_privilege(current_user, %s, %s)", (f"public.{table}", privilege)
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def _monitor(conn: psycopg.AsyncConnection[Any]) -> bool:
    cursor = await conn.execute(
        "SELECT rolsuper OR pg_has_role(current_user, 'pg_monitor', 'USAGE')"
        " FROM pg_roles WHERE rolname = current_user"
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def first_missing(
    conn: psycopg.AsyncConnection[Any], requirements: Requirements, *, role: str
) -> str | None:
    """Return, in words, the first table, column or right the runbooks need and lack."""
    live = await _live_tables(conn)
    database = "the database"
    for need in requirements.needs:
        messages = SchemaCheck(live, place=database).statement(need.statement)
        if messages:
            return f"{messages[0]} (used by {need.where})"
    checked: set[tuple[str, str]] = set()
    monitor: bool | None = None
    for need in requirements.needs:
        target = getattr(need.statement, "relation", None)
        for relation in _relations(need.statement):
            name = relation.relname
            if relation.schemaname in (None, "pg_catalog") and name in _MONITORING:
                monitor = await _monitor(conn) if monitor is None else monitor
                if not monitor:
                    return (
                        f"role {role} is not a member of pg_monitor, so {name} hides other "
                        f"sessions (used by {need.where}); GRANT pg_monitor TO {role}"
                    )
                continue
            if name in CATALOG_VIEWS or name not in live:
                continue
            privilege = need.privilege if relation is target else "SELECT"
            if (name, privilege) in checked:
                continue
            checked.add((name, privilege))
            if not await _allowed(conn, name, privilege):
                return (
                    f"role {role} may not {privilege} {name} (used by {need.where}); "
                    f"GRANT {privilege} ON {name} TO {role}"
                )
    return None
