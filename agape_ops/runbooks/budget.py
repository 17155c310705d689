"""Keep every template and condition within a small budget of time and memory.

Jinja folds constant expressions while it compiles, so ``{{ 9 ** (9 ** 9) }}`` used to run
(forever) when a runbook was linted or loaded, and ``('a' * 10 ** 10) | length`` took 10 GB.
Here nothing is folded at compile time; at run time the operators and calls that can build
something huge (``*``, ``**``, ``%``, ``+``, padding and formatting methods and filters) refuse
before they allocate more than ``MAX_ITEMS`` characters or items or ``MAX_INT_BITS`` bits, output
is counted as it is produced, and a render that runs past ``TIME_BUDGET_S`` is stopped.
``budget_error`` lets the linter evaluate a template's constant parts under the same rules.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial, wraps
from types import FrameType
from typing import Any, TypeVar

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

#: The most characters (or items) one value or one rendered text may have.
MAX_ITEMS = 100_000
#: The largest integer a template may build, in bits (about 3,000 decimal digits).
MAX_INT_BITS = 10_000
#: The widest padding or field a template may ask for.
MAX_WIDTH = 1_000
#: How long one render or evaluation may run, in seconds.
TIME_BUDGET_S = 1.0
#: The most items ``range()`` may produce in a template.
MAX_RANGE = 10_000

_T = TypeVar("_T")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
_NESTED_SPEC = re.compile(r"\{[^{}]*:[^{}]*\{")
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})


class BudgetExceeded(SecurityError):
    """A template or condition would take more time or memory than it is allowed."""


class _NoFolding(CodeGenerator):
    """Compile without evaluating anything: no output part is computed at compile time."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> str:
        raise nodes.Impossible


class BoundedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, compiling without folding and refusing values past the budget."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _NoFolding

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, optimized=False)
        self.globals["range"] = _range
        self.globals.pop("lipsum", None)  # lipsum(n=10**9) would write for ever
        for name, guard in _FILTER_GUARDS.items():
            self.filters[name] = _guarded(self.filters[name], guard)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Compute an intercepted operator, refusing a result past the budget first."""
        check_binop(operator, left, right)
        result = self.binop_table[operator](left, right)
        _check_size(result)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Call a method or function, refusing padding or formats past the budget first."""
        _check_method(__obj, args)
        return super().call(__context, __obj, *args, **kwargs)


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Raise BudgetExceeded when ``left <operator> right`` would be too big to build."""
    check = _BINOP_CHECKS.get(operator)
    if check is not None:
        check(left, right)


def _check_times(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if _sized(seq) and _integer(times) and weight(seq) * times > MAX_ITEMS:
            _refuse(f"repeating {len(seq)} items {times} times")
    bits = abs(left).bit_length() + abs(right).bit_length() if _integers(left, right) else 0
    if bits > MAX_INT_BITS:
        _refuse("a product of that many digits")


def _check_power(left: Any, right: Any) -> None:
    if _integers(left, right) and abs(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS:
        _refuse(f"a power with about {int(right * math.log10(abs(left))) + 1} digits")


def _check_modulo(left: Any, right: Any) -> None:
    if isinstance(left, str):
        _check_percent_format(left)


def _check_plus(left: Any, right: Any) -> None:
    if _sized(left) and _sized(right) and weight(left) + weight(right) > MAX_ITEMS:
        _refuse(f"joining {len(left)} and {len(right)} items")


_BINOP_CHECKS: dict[str, Callable[[Any, Any], None]] = {
    "*": _check_times,
    "**": _check_power,
    "%": _check_modulo,
    "+": _check_plus,
}


def _check_method(obj: Any, args: tuple[Any, ...]) -> None:
    method = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format in a function
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str):
        return
    name = getattr(method, "__name__", "")
    if name in _PADDING_METHODS and any(_integer(a) and a > MAX_WIDTH for a in args):
        _refuse(f"padding to more than {MAX_WIDTH}")
    elif name in ("format", "format_map"):
        _check_brace_format(owner)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    elif name == "join" and args:
        _join(args[0], owner)


def _check_percent_format(text: str) -> None:
    for width, precision in _PERCENT_SPEC.findall(text):
        for number in (width, precision):
            if number == "*" or (number and int(number[:6]) > MAX_WIDTH):
                _refuse(f"a %-format wider than {MAX_WIDTH}")


def _check_brace_format(text: str) -> None:
    if _NESTED_SPEC.search(text):
        _refuse("a format field whose width is itself a value")
    for spec in _BRACE_SPEC.findall(text):
        if any(int(n[:6]) > MAX_WIDTH for n in re.findall(r"\d+", spec)) or "{" in spec:
            _refuse(f"a format field wider than {MAX_WIDTH}")


def _check_replace(text: str, old: Any, new: Any) -> None:
    if isinstance(old, str) and isinstance(new, str):
        grows = (text.count(old) if old else len(text) + 1) * len(new)
        if len(text) + grows > MAX_ITEMS:
            _refuse("a replacement that long")


def _center(value: Any, width: Any = 80, *_: Any) -> None:
    if _integer(width) and width > MAX_WIDTH:
        _refuse(f"centring to {width}")


def _indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    if _integer(width) and width > MAX_WIDTH:
        _refuse(f"indenting by {width}")
    if isinstance(width, str) and len(width) > MAX_WIDTH:
        _refuse(f"indenting by {len(width)} characters")


def _format(value: Any, *_: Any, **__: Any) -> None:
    if isinstance(value, str):
        _check_percent_format(value)


def _replace(value: Any, old: Any = "", new: Any = "", *_: Any) -> None:
    _check_replace(str(value), old, new)


def _join(value: Any, separator: Any = "", *_: Any) -> None:
    if _sized(value) and weight(value) + len(value) * len(str(separator)) > MAX_ITEMS:
        _refuse(f"joining {len(value)} items that long")


def _slice(value: Any, slices: Any = 1, *_: Any) -> None:
    if _integer(slices) and slices > MAX_ITEMS:
        _refuse(f"slicing into {slices} parts")


_FILTER_GUARDS: dict[str, Callable[..., None]] = {
    "center": _center,
    "indent": _indent,
    "format": _format,
    "replace": _replace,
    "slice": _slice,
    "join": _join,
}


def _guarded(function: Callable[..., Any], guard: Callable[..., None]) -> Callable[..., Any]:
    @wraps(function)
    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        guard(value, *args, **kwargs)
        return function(value, *args, **kwargs)

    return bounded


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        _refuse(f"a range of {len(numbers)} numbers")
    return numbers


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integers(*values: Any) -> bool:
    return all(_integer(value) for value in values)


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _check_size(value: Any) -> None:
    if _sized(value) and weight(value) > MAX_ITEMS:
        _refuse(f"a value of {len(value)} items")


def weight(value: Any, limit: int = MAX_ITEMS) -> int:
    """Return the characters and items in ``value``, counted through nested lists and tuples.

    A list holding one long text a thousand times is short but prints a thousand texts, so each
    item counts with its own weight. Counting stops just past ``limit``, so it is cheap even
    when the same list is nested in itself many times over.
    """
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, list | tuple):
            total += len(item)
            stack.extend(item[: limit - total + 1])
        else:
            total += 1
    return total


def _refuse(what: str) -> None:
    raise BudgetExceeded(
        f"{what} is past what a template may build ({MAX_ITEMS:,} characters or items, "
        f"{MAX_INT_BITS:,}-bit numbers, widths of {MAX_WIDTH:,})"
    )


def within_time(work: Callable[[], _T], budget_s: float = TIME_BUDGET_S) -> _T:
    """Run ``work`` (a render or an evaluation), stopping it once it runs past ``budget_s``.

    Only the compiled template's own frames are watched, line by line, so the rest of the
    program runs untraced; a debugger's or profiler's trace function is put back afterwards.
    """
    deadline = time.monotonic() + budget_s

    def watch_line(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise BudgetExceeded(f"it ran past its {budget_s:g} s budget")
        return watch_line

    def watch_call(frame: FrameType, event: str, arg: Any) -> Any:
        return watch_line if frame.f_code.co_filename == "<template>" else None

    previous = sys.gettrace()
    sys.settrace(watch_call)
    try:
        return work()
    finally:
        sys.settrace(previous)


def joined(chunks: Iterable[str]) -> str:
    """Join rendered output, refusing it once it passes ``MAX_ITEMS`` characters."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_ITEMS:
            _refuse(f"output of more than {MAX_ITEMS:,} characters")
        out.append(chunk)
    return "".join(out)


def budget_error(env: BoundedEnvironment, tree: nodes.Template) -> str | None:
    """Evaluate the constant parts of a parsed template under the budget; say what exceeds it.

    Only what needs no context is evaluated (literals, operators, filters and methods of
    literals, ``range``), each under the same refusals and time budget as a render, so linting
    costs no more than rendering may.
    """
    for node in tree.find_all((nodes.BinExpr, nodes.UnaryExpr, nodes.Filter, nodes.Call)):
        try:
            _check_literal_format(node)
            within_time(partial(_fold, env, node))
        except BudgetExceeded as exc:
            return str(exc)
        except (_NotConstant, ArithmeticError, ValueError, TypeError, LookupError):
            continue  # not constant, or an error the render will report in its own words
    return None


def _check_literal_format(node: nodes.Node) -> None:
    """Check a literal format string whatever fills it: ``'%0999999d' % x``, ``'{:>99}'.format``."""
    if isinstance(node, nodes.BinExpr) and node.operator == "%":
        _check_percent_format(_literal_text(node.left))
    elif isinstance(node, nodes.Filter) and node.name == "format":
        _check_percent_format(_literal_text(node.node))
    elif isinstance(node, nodes.Call) and isinstance(method := node.node, nodes.Getattr):
        _check_brace_format(_literal_text(method.node) if method.attr.startswith("format") else "")


def _literal_text(node: nodes.Node | None) -> str:
    """Return the text of a string literal, or "" for anything else."""
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return node.value
    return ""


class _NotConstant(Exception):
    """The expression reads something only a render has."""


def _fold(env: BoundedEnvironment, node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        return [_fold(env, item) for item in node.items]
    if isinstance(node, nodes.BinExpr):
        left, right = _fold(env, node.left), _fold(env, node.right)
        if node.operator in env.intercepted_binops:
            return env.call_binop(None, node.operator, left, right)
        return env.binop_table[node.operator](left, right)
    if isinstance(node, nodes.UnaryExpr):
        return env.unop_table[node.operator](_fold(env, node.node))
    if isinstance(node, nodes.Filter) and node.node is not None and not node.dyn_args:
        return _fold_filter(env, node)
    if isinstance(node, nodes.Call) and not (node.kwargs or node.dyn_args or node.dyn_kwargs):
        return _fold_call(env, node)
    raise _NotConstant


def _fold_filter(env: BoundedEnvironment, node: nodes.Filter) -> Any:
    function = env.filters.get(node.name)
    if function is None or getattr(function, "jinja_pass_arg", None) is not None:
        raise _NotConstant
    args = [_fold(env, arg) for arg in node.args]
    kwargs: Mapping[str, Any] = {str(kw.key): _fold(env, kw.value) for kw in node.kwargs}
    assert node.node is not None  # noqa: S101 - checked by the caller
    return function(_fold(env, node.node), *args, **kwargs)


def _fold_call(env: BoundedEnvironment, node: nodes.Call) -> Any:
    args = [_fold(env, arg) for arg in node.args]
    if isinstance(node.node, nodes.Name) and node.node.name == "range":
        return _range(*args)
    if isinstance(node.node, nodes.Getattr):
        method = env.getattr(_fold(env, node.node.node), node.node.attr)
        _check_method(method, tuple(args))
        if callable(method) and env.is_safe_callable(method):
            return method(*args)
    raise _NotConstant
