"""Read runbook SQL with PostgreSQL's own parser: what it runs, what it touches, what it returns.

pglast is the server's grammar, so a statement either parses here as PostgreSQL would parse it
or the parser's own message is reported. Placeholders (``%(name)s``) are swapped for ``$n``
parameters of the same length before parsing, so the parser's positions still point into the
runbook's text. Tables and columns are checked against the backend's schema by ``sql_schema``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError

from agape_ops.runbooks.model import PostgresCall
from agape_ops.runbooks.sql_effects import MAX_SQL_CHARS, describe, hidden_effect, writes_of
from agape_ops.runbooks.sql_schema import SchemaCheck, backend_schema, last_name

_PERCENT = re.compile(r"%(?:\((?P<name>[^)]*)\)(?P<fmt>[sbt])?|(?P<other>.?))", re.DOTALL)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: What a write step may run.
_WRITES = ("UpdateStmt", "DeleteStmt", "InsertStmt")


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a postgres call, at ``key`` under its ``postgres:`` mapping.

    ``offset`` is where in that key's SQL text the trouble is (0-based), when known, so the
    problem can point at the line and column inside the block rather than at the key.
    """

    key: tuple[str, ...]
    message: str
    offset: int | None = None


@dataclass
class Analysis:
    """What the linter learns from a postgres call: its findings and its result's columns."""

    findings: list[Finding] = field(default_factory=list)
    columns: frozenset[str] | None = None

    def add(self, message: str, *key: str, offset: int | None = None) -> None:
        self.findings.append(Finding(key or ("sql",), message, offset))


def analyse(call: PostgresCall, *, writes: bool) -> Analysis:
    """Check a postgres call's SQL, preview and params; return findings and output columns."""
    try:
        return _analyse(call, writes=writes)
    except RecursionError:
        out = Analysis()
        out.add("sql nests too deeply to check; write it plainly", "sql")
        return out


def _analyse(call: PostgresCall, *, writes: bool) -> Analysis:
    out = Analysis()
    bound = bool(call.params)
    used: list[str] = []
    main = _statement(call.sql, "sql", out, used, bound=bound)
    preview = _statement(call.preview, "preview", out, used, bound=bound)
    for name in dict.fromkeys(used):
        if name not in call.params:
            out.add(f"placeholder %({name})s has no value: add `{name}` under `params`", "sql")
    for name in call.params:
        if name not in used:
            out.add(f"param `{name}` is not used: the SQL has no %({name})s", "params", name)
    if main is not None:
        (_check_write if writes else _check_read)(main, "sql", out)
    if preview is not None:
        _check_read(preview, "preview", out)
    if writes:
        out.columns = output_columns(preview) if preview is not None else _target_columns(main)
    elif main is not None:
        out.columns = output_columns(main)
    return out


def _statement(
    sql: str | None, key: str, out: Analysis, used: list[str], *, bound: bool
) -> Any | None:
    if sql is None:
        return None
    if "{{" in sql or "{%" in sql:
        out.add(
            f"{key} contains a template; SQL is never templated: "
            "write %(name)s and give the value under `params`",
            key,
        )
        return None
    if len(sql) > MAX_SQL_CHARS:
        out.add(f"{key} is {len(sql)} characters, more than the {MAX_SQL_CHARS} allowed", key)
        return None
    text = _prepare(sql, key, out, used, bound=bound)
    try:
        statements = parse_sql(text)
    except ParseError as exc:
        message, index = (*exc.args, None)[:2]
        offset = index if isinstance(index, int) and 0 <= index <= len(sql) else None
        out.add(f"{key} does not parse: {message}", key, offset=offset)
        return None
    if not statements:
        out.add(f"{key} is empty", key)
        return None
    if len(statements) > 1:
        out.add(f"{key} holds {len(statements)} statements; a step runs exactly one", key)
        return None
    statement = statements[0].stmt
    check = SchemaCheck(backend_schema())
    for message in check.statement(statement):
        out.add(f"{key}: {message}", key, offset=check.locations.get(message))
    return statement


def _prepare(sql: str, key: str, out: Analysis, used: list[str], *, bound: bool) -> str:
    """Swap placeholders for same-length $n parameters; record names and misuse of %."""
    numbers: dict[str, int] = {}
    named = bool(re.search(r"%\([A-Za-z_]\w*\)s", sql))

    def swap(match: re.Match[str]) -> str:
        text = match.group(0)
        name, fmt, other = match.group("name"), match.group("fmt"), match.group("other")
        if name is not None:
            if fmt != "s" or not _IDENT.fullmatch(name):
                out.add(f"{key}: placeholder {text!r} must be written %(name)s", key)
                return text
            used.append(name)
            number = numbers.setdefault(name, len(numbers) + 1)
            return f"${number}".ljust(len(text))
        if other == "%":
            return "% "
        if other in ("s", "b", "t"):
            out.add(f"{key}: positional placeholder %{other}; use a named one, %(name)s", key)
            return "$1"
        if bound or named:
            out.add(f"{key}: write a literal % as %% (psycopg reads % as a placeholder)", key)
        return text

    return _PERCENT.sub(swap, sql)


def _check_read(statement: Any, key: str, out: Analysis) -> None:
    what = writes_of(statement)
    if what is None:
        return
    if key == "preview":
        advice = "a preview must be a single read-only SELECT of the rows the write touches"
    elif not isinstance(statement, ast.SelectStmt) and type(statement).__name__ not in _WRITES:
        advice = "a read step runs a single SELECT"
    elif "locks rows" in what:
        advice = "drop FOR UPDATE/SHARE: a read never locks"
    elif "(), which" in what:
        advice = "the bot never runs it"
    else:
        advice = "mark it `risk: write` or make it a SELECT"
    subject = "preview" if key == "preview" else "read step"
    out.add(f"{subject} runs {what}; {advice}", key)


def _check_write(statement: Any, key: str, out: Analysis) -> None:
    kind = type(statement).__name__
    if kind not in _WRITES:
        if kind == "SelectStmt" and writes_of(statement) is None:
            out.add("write step runs a SELECT, which changes nothing: make it `risk: read`", key)
        else:
            out.add(
                f"write step must run a single UPDATE, DELETE or INSERT; it runs "
                f"{describe(statement)}",
                key,
            )
        return
    if kind != "InsertStmt" and statement.whereClause is None:
        out.add(
            f"{describe(statement)} without WHERE changes every row of "
            f"{statement.relation.relname}; add a WHERE",
            key,
        )
    effect = hidden_effect(statement)
    if effect is not None:
        out.add(
            f"write step runs {effect}; a write changes only its own rows, counted against "
            "max_rows",
            key,
        )


def output_columns(statement: Any) -> frozenset[str] | None:
    """Return the names of a statement's result columns, or None when they cannot be known."""
    if isinstance(statement, ast.SelectStmt):
        if statement.larg is not None:
            return output_columns(statement.larg)
        if statement.valuesLists:
            return None
        targets = statement.targetList or ()
    elif isinstance(statement, (ast.UpdateStmt, ast.DeleteStmt, ast.InsertStmt)):
        returning = statement.returningClause
        targets = (returning.exprs if returning is not None else None) or ()
    else:
        return None
    names = set()
    for target in targets:
        name = target.name or _expression_name(target.val)
        if name is None:
            return None
        names.add(name)
    return frozenset(names)


def _target_columns(statement: Any) -> frozenset[str] | None:
    """Return the columns of the adapter's own preview (``SELECT target.*``) of a write."""
    if isinstance(statement, (ast.UpdateStmt, ast.DeleteStmt)) and statement.relation:
        relation = statement.relation
        if relation.schemaname in (None, "public") and relation.relname:
            return backend_schema().get(relation.relname)
    return None


def _expression_name(node: Any) -> str | None:
    if isinstance(node, ast.ColumnRef):
        return last_name(node.fields)
    if isinstance(node, ast.FuncCall):
        return last_name(node.funcname)
    if isinstance(node, ast.TypeCast):
        return _expression_name(node.arg)
    return None
