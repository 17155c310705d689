"""Check runbook SQL against the backend's schema: tables and columns that surely do not exist.

The schema is ``backend_schema.sql``, shipped beside this module and parsed with pglast. The
check is deliberately conservative: it flags only a table or column it is sure the backend does
not have (an unknown table in FROM, ``alias.col`` not in that table, an unqualified column when
every table in scope is known), never one it merely cannot see (CTEs, subqueries, functions and
the pg_catalog views a monitoring role reads are taken on trust).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from pglast import ast, parse_sql

#: pg_catalog views the bot may read (as ``pg_monitor``); any column on them is accepted.
CATALOG_VIEWS = frozenset(
    {"pg_stat_activity", "pg_stat_replication", "pg_settings", "pg_stat_database"}
)


@lru_cache(maxsize=1)
def backend_schema() -> dict[str, frozenset[str]]:
    """Return the backend's tables and their columns, read from the shipped schema file."""
    source = resources.files("agape_ops.runbooks").joinpath("backend_schema.sql")
    return tables_of(source.read_text(encoding="utf-8"))


def tables_of(schema_sql: str) -> dict[str, frozenset[str]]:
    """Return {table: columns} for every CREATE TABLE in ``schema_sql``."""
    tables: dict[str, frozenset[str]] = {}
    for raw in parse_sql(schema_sql):
        if isinstance(raw.stmt, ast.CreateStmt):
            elements = raw.stmt.tableElts or ()
            columns = {e.colname for e in elements if isinstance(e, ast.ColumnDef) and e.colname}
            if raw.stmt.relation is not None and raw.stmt.relation.relname:
                tables[raw.stmt.relation.relname] = frozenset(columns)
    return tables


@dataclass
class _Scope:
    """The relations one query level can see: visible name -> columns (None: unknown)."""

    parent: _Scope | None
    relations: dict[str, frozenset[str] | None] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    outputs: frozenset[str] = frozenset()
    opaque: bool = False


class SchemaCheck:
    """Find tables and columns a statement names that the schema surely does not have."""

    def __init__(
        self, tables: dict[str, frozenset[str]], *, place: str = "the backend schema"
    ) -> None:
        self.tables = tables
        self.place = place
        self.messages: list[str] = []
        #: Where in the statement's text each message's table or column is (0-based), if known.
        self.locations: dict[str, int] = {}
        self._at: int | None = None

    def _say(self, message: str) -> None:
        self.messages.append(message)
        if self._at is not None and self._at >= 0:
            self.locations.setdefault(message, self._at)

    def statement(self, node: Any) -> list[str]:
        """Return one message per unknown table or column in ``node``."""
        self._statement(node, None, frozenset())
        return list(dict.fromkeys(self.messages))

    def _statement(self, node: Any, parent: _Scope | None, ctes: frozenset[str]) -> None:
        if isinstance(node, ast.SelectStmt):
            self._select(node, parent, ctes)
        elif isinstance(node, (ast.UpdateStmt, ast.DeleteStmt, ast.InsertStmt)):
            self._change(node, parent, ctes)

    def _with(self, clause: Any, parent: _Scope | None, ctes: frozenset[str]) -> frozenset[str]:
        if clause is None:
            return ctes
        names = set(ctes)
        for cte in clause.ctes:
            if clause.recursive:
                names.add(cte.ctename)
            self._statement(cte.ctequery, parent, frozenset(names))
            names.add(cte.ctename)
        return frozenset(names)

    def _select(self, node: Any, parent: _Scope | None, ctes: frozenset[str]) -> None:
        ctes = self._with(node.withClause, parent, ctes)
        if node.larg is not None:
            self._select(node.larg, parent, ctes)
            self._select(node.rarg, parent, ctes)
            return
        outputs = frozenset(t.name for t in node.targetList or () if t.name)
        scope = _Scope(parent, outputs=outputs)
        later: list[Any] = []
        for item in node.fromClause or ():
            self._from(item, scope, ctes, later)
        for part in (
            later,
            node.targetList,
            node.whereClause,
            node.groupClause,
            node.havingClause,
            node.sortClause,
            node.windowClause,
            node.distinctClause,
            node.valuesLists,
            node.limitCount,
            node.limitOffset,
        ):
            self._expression(part, scope, ctes)

    def _change(self, node: Any, parent: _Scope | None, ctes: frozenset[str]) -> None:
        ctes = self._with(node.withClause, parent, ctes)
        scope = _Scope(parent)
        target = self._relation(node.relation, scope, ctes)
        columns = scope.relations[target]
        later: list[Any] = []
        for item in getattr(node, "fromClause", None) or getattr(node, "usingClause", None) or ():
            self._from(item, scope, ctes, later)
        self._expression(later, scope, ctes)
        assigned = list(getattr(node, "targetList", None) or ())
        if isinstance(node, ast.InsertStmt):
            assigned = list(node.cols or ())
            if node.selectStmt is not None:
                self._select(node.selectStmt, parent, ctes)
            conflict = node.onConflictClause
            if conflict is not None:
                scope.relations["excluded"] = columns
                if target in scope.tables:
                    scope.tables["excluded"] = scope.tables[target]
                assigned += list(conflict.targetList or ())
                self._expression(conflict.whereClause, scope, ctes)
        for target_column in assigned:
            if columns is not None and target_column.name not in columns:
                self._at = target_column.location
                table = scope.tables[target]
                self._unknown_column(target_column.name, [table])
            self._expression(target_column.val, scope, ctes)
        self._expression(getattr(node, "whereClause", None), scope, ctes)
        if node.returningClause is not None:
            self._expression(node.returningClause.exprs, scope, ctes)

    def _from(self, item: Any, scope: _Scope, ctes: frozenset[str], later: list[Any]) -> None:
        if isinstance(item, ast.RangeVar):
            self._relation(item, scope, ctes)
        elif isinstance(item, ast.JoinExpr):
            self._from(item.larg, scope, ctes, later)
            self._from(item.rarg, scope, ctes, later)
            later.append(item.quals)
            if item.alias is not None and item.alias.aliasname:
                scope.relations[item.alias.aliasname] = None
        elif isinstance(item, ast.RangeSubselect):
            later.append(item.subquery)
            if item.alias is not None and item.alias.aliasname:
                scope.relations[item.alias.aliasname] = None
        elif isinstance(item, ast.RangeFunction):
            later.append(item.functions)
            name = item.alias.aliasname if item.alias is not None else None
            for call, *_ in item.functions or ():
                if name is None and isinstance(call, ast.FuncCall):
                    name = last_name(call.funcname)
            if name:
                scope.relations[name] = None
        else:
            scope.opaque = True

    def _relation(self, node: Any, scope: _Scope, ctes: frozenset[str]) -> str:
        self._at = node.location
        name, schema = node.relname, node.schemaname
        visible = node.alias.aliasname if node.alias is not None else name
        columns: frozenset[str] | None = None
        if schema is None and name in ctes:
            pass
        elif schema in (None, "public") and name in self.tables:
            columns = self.tables[name]
            scope.tables[visible] = name
        elif schema in (None, "pg_catalog") and name in CATALOG_VIEWS:
            pass
        else:
            qualified = f"{schema}.{name}" if schema else name
            hint = _hint(name, [*self.tables, *CATALOG_VIEWS])
            if not hint and name.startswith("pg_"):
                hint = f" (the pg_catalog views allowed are {', '.join(sorted(CATALOG_VIEWS))})"
            elif not hint and self.tables:
                hint = f" (its tables: {', '.join(sorted(self.tables))})"
            self._say(f"table {qualified} is not in {self.place}{hint}")
        scope.relations[visible] = columns
        return str(visible)

    def _expression(self, node: Any, scope: _Scope, ctes: frozenset[str]) -> None:
        if isinstance(node, (list, tuple)):
            for item in node:
                self._expression(item, scope, ctes)
        elif isinstance(node, ast.SelectStmt):
            self._select(node, scope, ctes)
        elif isinstance(node, ast.ColumnRef):
            self._column(node, scope)
        elif isinstance(node, ast.Node):
            for attribute in node:
                self._expression(getattr(node, attribute), scope, ctes)

    def _column(self, node: Any, scope: _Scope) -> None:
        self._at = node.location
        parts = node.fields or ()
        if not parts or (len(parts) == 1 and isinstance(parts[0], ast.A_Star)):
            return
        names = [(p.sval or "") if isinstance(p, ast.String) else "*" for p in parts]
        if len(names) == 1:
            self._bare(names[0], scope)
        elif len(names) == 2:
            self._qualified(names[0], names[1], scope)

    def _qualified(self, qualifier: str, column: str, scope: _Scope) -> None:
        level: _Scope | None = scope
        while level is not None:
            if qualifier in level.relations:
                columns = level.relations[qualifier]
                if columns is not None and column != "*" and column not in columns:
                    self._unknown_column(column, [level.tables[qualifier]])
                return
            if level.opaque:
                return
            level = level.parent
        self._say(f"{qualifier}.{column}: no table or alias named {qualifier} in the FROM clause")

    def _bare(self, column: str, scope: _Scope) -> None:
        if not scope.relations:
            return
        level: _Scope | None = scope
        while level is not None:
            if level.opaque or any(c is None for c in level.relations.values()):
                return
            if column in level.outputs or column in level.relations:
                return
            if any(column in c for c in level.relations.values() if c is not None):
                return
            level = level.parent
        self._unknown_column(column, list(scope.tables.values()))

    def _unknown_column(self, column: str, tables: list[str]) -> None:
        known = set().union(*(self.tables[t] for t in tables))
        if len(tables) == 1:
            where = f"table {tables[0]} has no column {column}"
        else:
            where = f"column {column} is in none of {', '.join(tables)}"
        self._say(where + _hint(column, known))


def last_name(parts: Any) -> str | None:
    """Return the last plain name of a dotted pglast name list (``pg_catalog.count``)."""
    last = parts[-1] if parts else None
    return last.sval if isinstance(last, ast.String) else None


def _hint(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
