"""Check a runbook step's SQL before it reaches PostgreSQL, and derive a write's preview.

A step runs exactly one statement inside a transaction the adapter controls, so the SQL may not
carry a second statement or its own COMMIT, SET or COPY. For an UPDATE or DELETE without an
explicit ``preview:``, the rows it will touch are selected with the statement's own target,
FROM/USING list and WHERE, so the count shown before confirming is the count the write changes.
pglast parses with PostgreSQL's own parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pglast import ast, parse_sql, parser
from pglast.stream import RawStream

from agape_ops.errors import AdapterResponseError, UnsafeOperation
from agape_ops.runbooks.sql import writes_of

_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)[sbt]")

#: Statements that would step outside the transaction (or the database) the adapter opened.
_FORBIDDEN = {
    "TransactionStmt": "control the transaction (BEGIN, COMMIT, ROLLBACK)",
    "VariableSetStmt": "change session settings (SET, RESET)",
    "CopyStmt": "run COPY",
}


@dataclass(frozen=True)
class Statement:
    """What the adapter needs to know about one step's SQL."""

    kind: str  # the parse node's name: SelectStmt, UpdateStmt, DeleteStmt, InsertStmt ...
    derived_preview: str | None  # a SELECT of the rows an UPDATE/DELETE touches (psycopg style)
    binds: bool  # the SQL has %(name)s placeholders, so the derived preview binds them too


def analyse(
    sql: str, params: dict[str, Any], *, step_id: str | None = None, read: bool = False
) -> Statement:
    """Parse ``sql`` (psycopg placeholders when ``params`` is given); refuse unsafe shapes.

    For a ``read`` step, also refuse a SELECT that changes the server or locks rows (e.g.
    ``pg_terminate_backend()``), which a READ ONLY transaction alone would let through.
    """
    text, names = _to_dollars(sql) if params else (sql, [])
    try:
        statements = parse_sql(text)
    except parser.ParseError as exc:
        message, index = (*exc.args, None)[:2]
        where = f" (character {int(index) + 1})" if isinstance(index, int) else ""
        step = f"step {step_id}" if step_id else "the step"
        raise AdapterResponseError(
            f"PostgreSQL rejected {step}: {message}{where}",
            adapter="postgres",
            step_id=step_id,
        ) from exc
    if len(statements) != 1:
        raise UnsafeOperation(
            f"a step runs exactly one SQL statement; this one has {len(statements)}; "
            "nothing was run",
            adapter="postgres",
            step_id=step_id,
        )
    node = statements[0].stmt
    kind = type(node).__name__
    if kind in _FORBIDDEN:
        raise UnsafeOperation(
            f"a step's SQL may not {_FORBIDDEN[kind]}: the adapter runs it in its own "
            "transaction with its own timeouts; nothing was run",
            adapter="postgres",
            step_id=step_id,
        )
    if read and kind == "SelectStmt":
        what = writes_of(node)
        if what is not None:
            raise UnsafeOperation(
                f"read step tried to write: it runs {what}; nothing was changed",
                adapter="postgres",
                step_id=step_id,
            )
    derived = _derive_preview(node)
    return Statement(
        kind=kind,
        derived_preview=_to_psycopg(derived, names) if derived is not None else None,
        binds=bool(names),
    )


def _to_dollars(sql: str) -> tuple[str, list[str]]:
    """Turn ``%(name)s`` into ``$n`` (and ``%%`` into ``%``) so PostgreSQL's parser reads it."""
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(replace, sql), names


def _to_psycopg(sql: str, names: list[str]) -> str:
    """Turn ``$n`` back into ``%(name)s``, escaping literal ``%`` when parameters are bound."""
    if not names:
        return sql
    out: list[str] = []
    position = 0
    for token in parser.scan(sql):
        if token.name != "PARAM":
            continue
        out.append(sql[position : token.start].replace("%", "%%"))
        number = int(sql[token.start + 1 : token.end + 1])
        out.append(f"%({names[number - 1]})s")
        position = token.end + 1
    out.append(sql[position:].replace("%", "%%"))
    return "".join(out)


def _derive_preview(node: Any) -> str | None:
    """Return a SELECT of the rows an UPDATE or DELETE would touch, or None for other kinds."""
    if isinstance(node, ast.UpdateStmt):
        extra = tuple(node.fromClause or ())
    elif isinstance(node, ast.DeleteStmt):
        extra = tuple(node.usingClause or ())
    else:
        return None
    relation = node.relation
    target = relation.alias.aliasname if relation.alias else relation.relname
    select = ast.SelectStmt(
        targetList=(
            ast.ResTarget(val=ast.ColumnRef(fields=(ast.String(sval=target), ast.A_Star()))),
        ),
        fromClause=(relation, *extra),
        whereClause=node.whereClause,
        withClause=node.withClause,
    )
    return str(RawStream()(select))
