"""Check a runbook step's SQL before it reaches PostgreSQL, and derive a write's preview.

Deny by default: a read step and a preview run exactly one plain SELECT; a write step runs
exactly one UPDATE, DELETE (both with a WHERE) or INSERT on one of the backend's own tables.
Nothing else reaches the server: no second statement, no COMMIT, SET, LISTEN or COPY, no write
hidden inside WITH, no function but the built-ins known to have no side effects
(``runbooks.sql_effects`` lists them; the linter asks the same list). For an UPDATE or DELETE
the rows it will touch are selected with the statement's own target, FROM/USING list and WHERE,
so the count shown before confirming is the count the write changes. pglast parses with
PostgreSQL's own parser, and placeholders are read with psycopg's own grammar, so the text
checked here is the text the server runs (the adapter also pins ``standard_conforming_strings``,
the one setting that changes how PostgreSQL reads a string).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from pglast import ast, parse_sql, parser
from pglast.stream import RawStream

from agape_ops.errors import AdapterResponseError, UnsafeOperation
from agape_ops.runbooks.sql_effects import MAX_SQL_CHARS, describe, hidden_effect, writes_of
from agape_ops.runbooks.sql_schema import backend_schema

#: What the SQL is for: a read step's query, a write's preview, or a write step's change.
Use = Literal["read", "preview", "write"]

#: psycopg's own placeholder grammar (psycopg/_queries.py), so both read the same text.
_PLACEHOLDER = re.compile(r"%(?:\(([^)]+)\).|.)")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Statements that would step outside the transaction (or the database) the adapter opened.
_FORBIDDEN = {
    "TransactionStmt": "control the transaction (BEGIN, COMMIT, ROLLBACK)",
    "VariableSetStmt": "change session settings (SET, RESET)",
    "CopyStmt": "run COPY",
}
_WRITES = (ast.UpdateStmt, ast.DeleteStmt, ast.InsertStmt)
_DATA_CHANGES = (*_WRITES, ast.MergeStmt)


@dataclass(frozen=True)
class Statement:
    """What the adapter needs to know about one step's SQL."""

    kind: str  # the parse node's name: SelectStmt, UpdateStmt, DeleteStmt, InsertStmt
    derived_preview: str | None  # a SELECT of the rows an UPDATE/DELETE touches (psycopg style)
    binds: bool  # the SQL has %(name)s placeholders, so the derived preview binds them too


def analyse(sql: str, params: dict[str, Any], *, use: Use, step_id: str | None = None) -> Statement:
    """Parse ``sql`` (psycopg placeholders when ``params`` is given); refuse all but ``use``.

    Raise UnsafeOperation for SQL the step may not run, AdapterResponseError when it does not
    parse; nothing has reached the server either way.
    """
    if len(sql) > MAX_SQL_CHARS:
        _refuse(
            f"a step's SQL is {len(sql)} characters, more than the {MAX_SQL_CHARS} the bot checks",
            step_id,
        )
    try:
        return _analyse(sql, params, use=use, step_id=step_id)
    except RecursionError:
        _refuse("a step's SQL nests too deeply to check", step_id)


def _analyse(sql: str, params: dict[str, Any], *, use: Use, step_id: str | None) -> Statement:
    text, names = _to_dollars(sql, step_id) if params else (sql, [])
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
        _refuse(f"a step runs exactly one SQL statement; this one has {len(statements)}", step_id)
    node = statements[0].stmt
    kind = type(node).__name__
    if kind in _FORBIDDEN:
        _refuse(
            f"a step's SQL may not {_FORBIDDEN[kind]}: the adapter runs it in its own "
            "transaction with its own timeouts",
            step_id,
        )
    if use == "write":
        _check_write(node, step_id)
    else:
        _check_read(node, use, step_id)
    derived = _derive_preview(node) if use == "write" else None
    return Statement(
        kind=kind,
        derived_preview=_to_psycopg(derived, names) if derived is not None else None,
        binds=bool(names),
    )


def _check_read(node: Any, use: Use, step_id: str | None) -> None:
    """Let through a plain SELECT only: no write, lock, INTO or refused function anywhere."""
    subject = "read step" if use == "read" else "preview"
    if not isinstance(node, ast.SelectStmt):
        if use == "read" and isinstance(node, _DATA_CHANGES):
            raise UnsafeOperation(
                f"read step tried to write: it runs {describe(node)}; nothing was changed. Mark "
                "the step `risk: write` with a confirmation if it is meant to change data",
                adapter="postgres",
                step_id=step_id,
            )
        what = "a read step" if use == "read" else "a write's preview"
        _refuse(f"{what} runs a single SELECT; this one is {describe(node)}", step_id)
    effect = writes_of(node)
    if effect is not None:
        _refuse(f"{subject} refused: it runs {effect}", step_id)


def _check_write(node: Any, step_id: str | None) -> None:
    """Let through one UPDATE, DELETE or INSERT of a backend table that changes only its rows."""
    if not isinstance(node, _WRITES):
        _refuse(
            f"a write step runs a single UPDATE, DELETE or INSERT; this one is {describe(node)}",
            step_id,
        )
    relation: Any = node.relation
    tables = backend_schema()
    if relation.schemaname not in (None, "public") or relation.relname not in tables:
        name = ".".join(part for part in (relation.schemaname, relation.relname) if part)
        _refuse(
            f"a write step changes only the backend's own tables ({', '.join(sorted(tables))}); "
            f"this one changes {name}",
            step_id,
        )
    if not isinstance(node, ast.InsertStmt) and node.whereClause is None:
        _refuse(
            f"{describe(node)} without WHERE would change every row of {relation.relname}; "
            "add a WHERE",
            step_id,
        )
    effect = hidden_effect(node)
    if effect is not None:
        _refuse(f"write step refused: it runs {effect}, beyond the rows max_rows counts", step_id)


def _refuse(reason: str, step_id: str | None) -> NoReturn:
    raise UnsafeOperation(f"{reason}; nothing was run", adapter="postgres", step_id=step_id)


def _to_dollars(sql: str, step_id: str | None) -> tuple[str, list[str]]:
    """Turn ``%(name)s`` into ``$n`` (and ``%%`` into ``%``) as psycopg will, for the parser.

    Refuse any other use of ``%``: psycopg would reject most of it, and a name that is not an
    identifier could read differently here and there.
    """
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        text, name = match.group(0), match.group(1)
        if text == "%%":
            return "%"
        if name is None or text[-1] not in "sbt" or not _IDENTIFIER.fullmatch(name):
            _refuse(
                f"placeholder {text!r}: values go in as %(name)s and a literal % is written %%",
                step_id,
            )
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
