"""Templates and conditions, rendered in Jinja2's sandbox.

Templates (``{{ inputs.reference }}``) fill adapter parameters and findings; conditions
(``failure_rate > 0.05``) are Jinja expressions over a step's result. Both run in a
``SandboxedEnvironment`` with ``StrictUndefined``: a name that does not exist is an error, not an
empty string. SQL text is never a template: values reach SQL only as bound parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from jinja2 import TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError

from agape_ops.errors import TemplateError
from agape_ops.runbooks.budget import BoundedEnvironment, budget_error, joined, within_time

#: Names every template and condition may use besides the step's own result fields.
CONTEXT_NAMES = frozenset({"inputs", "alert", "steps", "settings", "run", "row"})


def _percent(value: Any, digits: int = 1) -> str:
    """Format a ratio (0.071) as a percentage ("7.1%")."""
    try:
        return f"{float(value) * 100:.{digits}f}%"
    except (TypeError, ValueError):
        return "n/a"


def _naira(kobo: Any) -> str:
    """Format an amount in kobo as naira ("NGN 12,500.00")."""
    try:
        return f"NGN {int(kobo) / 100:,.2f}"
    except (TypeError, ValueError):
        return "n/a"


def _join_column(rows: Any, column: str, limit: int = 10) -> str:
    """Join one column of rows into "a, b, c (+N more)"."""
    values = [str(r.get(column)) for r in rows or [] if isinstance(r, Mapping)]
    shown = ", ".join(values[:limit])
    extra = len(values) - limit
    return f"{shown} (+{extra} more)" if extra > 0 else shown


def _segment(value: Any) -> str:
    """Return a value as one percent-encoded URL path segment; refuse ``.``, ``..`` and empty."""
    text = str(value)
    if not text.strip(".") or "\x00" in text:
        raise ValueError(f"{text[:60]!r} cannot be a path segment")
    return quote(text, safe="")


@lru_cache(maxsize=1)
def environment() -> BoundedEnvironment:
    """Return the one sandboxed environment used for every template and condition."""
    env = BoundedEnvironment()
    env.filters["percent"] = _percent
    env.filters["naira"] = _naira
    env.filters["join_column"] = _join_column
    env.filters["segment"] = _segment
    return env


@lru_cache(maxsize=512)
def _compiled_template(source: str) -> Any:
    return environment().from_string(source)


@lru_cache(maxsize=512)
def _compiled_expression(source: str) -> Any:
    return environment().compile_expression(source, undefined_to_none=False)


def is_template(text: str) -> bool:
    """Say whether ``text`` contains Jinja markup."""
    return "{{" in text or "{%" in text or "{#" in text


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render a template; raise TemplateError naming what was missing or unsafe."""
    if not is_template(source):
        return source
    try:
        template = _compiled_template(source)
        return within_time(lambda: joined(template.generate(**context)))
    except RecursionError as exc:
        raise TemplateError(f"template {shorten(source)!r} nests too deeply") from exc
    except UndefinedError as exc:
        raise TemplateError(f"template {source!r}: {exc.message}") from exc
    except SecurityError as exc:
        raise TemplateError(f"template {source!r} is not allowed: {exc}") from exc
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template {source!r}: {exc.message}") from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateError(f"template {source!r}: {exc}") from exc


def evaluate(condition: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a condition expression; raise TemplateError when it cannot be evaluated."""
    try:
        expression = _compiled_expression(condition)
        return within_time(lambda: expression(**context))
    except RecursionError as exc:
        raise TemplateError(f"condition `{shorten(condition)}` nests too deeply") from exc
    except UndefinedError as exc:
        raise TemplateError(f"condition `{condition}`: {exc.message}") from exc
    except SecurityError as exc:
        raise TemplateError(f"condition `{condition}` is not allowed: {exc}") from exc
    except TemplateSyntaxError as exc:
        raise TemplateError(f"condition `{condition}` does not parse: {exc.message}") from exc
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateError(f"condition `{condition}`: {exc}") from exc


def syntax_error(source: str, *, expression: bool) -> str | None:
    """Return the syntax error of a template or expression, or None when it parses.

    Its constant parts are evaluated within the budget (``budget.py``): one that would take
    more time or memory than a render may is an error too.
    """
    try:
        if expression:
            environment().compile_expression(source)
        tree = environment().parse("{{ (" + source + ") }}" if expression else source)
    except TemplateSyntaxError as exc:
        return str(exc.message)
    except RecursionError:
        return "it nests too deeply"
    if (problem := budget_error(environment(), tree)) is not None:
        return f"it would take too much: {problem}"
    return None


def shorten(text: str, limit: int = 80) -> str:
    """Return ``text`` cut to ``limit`` characters for a message, the cut marked."""
    return text if len(text) <= limit else text[:limit] + "…"


def references(source: str, *, expression: bool) -> set[tuple[str, ...]]:
    """Return the names a template or expression reads, with their attribute chains.

    ``inputs.user_id`` gives ``("inputs", "user_id")``; ``failure_rate`` gives
    ``("failure_rate",)``. Loop variables and names set inside the template are left out.
    """
    env = environment()
    tree = env.parse("{{ (" + source + ") }}" if expression else source)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    found: set[tuple[str, ...]] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        chain = _chain(node)
        if chain and chain[0] not in assigned:
            found.add(chain)
    # Keep only maximal chains: ("inputs", "x") subsumes ("inputs",).
    return {c for c in found if not any(o != c and o[: len(c)] == c for o in found)}


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            parts.append(str(node.arg.value))
            node = node.node
        elif isinstance(node, nodes.Getitem):
            parts.clear()
            node = node.node
        elif isinstance(node, nodes.Name):
            if node.ctx != "load":
                return None
            parts.append(node.name)
            return tuple(reversed(parts))
        else:
            return None
