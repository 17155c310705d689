"""Lint what the scheduler repeats: a read step's ``monitor:`` and a runbook's ``recheck:``.

A monitor runs its step again and again once it has run, so it must be a read that calls a
system (never a checklist, a shell command or a check over the alert, whose figures do not
change) and must be able to run without anyone there: no secret input, which is never kept.
Its ``until:`` and ``figure:`` are expressions over the step's result, read in the scope of
the step's ``when:``; ``lint.py`` checks their syntax and the names they read (``EXPRESSIONS``).
Each run of a monitor is shown, so it needs something to show: a ``figure:`` (a number with its
trend) or a ``finding:``; ``until:`` is optional (without it the monitor watches for its time).

``recheck:`` runs the runbook's automatic detection checks again (``Runbook.recheck_steps``),
so it needs at least one.
"""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import TemplateSyntaxError, nodes

from agape_ops.runbooks.loader import Loc
from agape_ops.runbooks.model import Runbook, Step
from agape_ops.runbooks.templating import environment

#: The labels of the keys ``lint.py`` checks as expressions (not templates), ``when`` included.
EXPRESSIONS = frozenset({"when", "monitor.until", "monitor.figure"})
#: The kinds of step a monitor cannot repeat: they call no system or their answer never changes.
UNWATCHABLE = {
    "manual": "a checklist calls no system",
    "shell": "a shell command may change anything and runs only when a person asks",
    "alert": "a check over the alert reads figures that do not change after it fired",
}
_TRUTH = (nodes.Compare, nodes.And, nodes.Or, nodes.Not, nodes.Test)


def watch_expressions(step: Step, loc: Loc) -> Iterator[tuple[Loc, str, str]]:
    """Yield (location, label, source) for a monitor's ``until:`` and ``figure:``."""
    if step.monitor is None:
        return
    for key in ("until", "figure"):
        if (source := getattr(step.monitor, key)) is not None:
            yield (*loc, "monitor", key), f"monitor.{key}", source


def watch_problems(runbook: Runbook, step: Step, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Yield (location, message) for each problem of where a ``monitor:`` is and what it has."""
    monitor = step.monitor
    if monitor is None:
        return
    where = (*loc, "monitor")
    if step.changes_things:
        yield where, f"only a read can be monitored: this step is `risk: {step.risk.value}`"
        return
    if step.kind in UNWATCHABLE:
        yield where, f"only a read that calls a system can be monitored: {UNWATCHABLE[step.kind]}"
        return
    secret = [name for name in step.inputs if _secret(runbook, name)]
    if step.postgres is not None and step.postgres.dsn_input and not secret:
        secret = [step.postgres.dsn_input]
    if secret:
        yield (
            where,
            f"a monitor runs the step again by itself, but its input `{secret[0]}` is secret "
            "and never kept, so there is nothing to run it with; monitor a read without it",
        )
    if monitor.figure is None and step.finding is None:
        yield (
            where,
            "a monitor shows each reading: give it `figure:` (the number shown with its trend) "
            "or give the step a `finding:`",
        )
    if monitor.unit and monitor.figure is None:
        yield (*where, "unit"), "`unit` is shown after the figure: give the monitor `figure:`"
    if monitor.figure is not None and _is_condition(monitor.figure):
        yield (
            (*where, "figure"),
            "monitor.figure is a condition (true or false); give the number to show, e.g. "
            "the lag or the rate the condition compares",
        )
    if monitor.until is not None and step.when is not None and _same(monitor.until, step.when):
        yield (
            (*where, "until"),
            "monitor.until says the same as `when:`, but `when:` is true while the problem is "
            "present and `until:` when it is over (recovered); write the recovered condition",
        )


def recheck_problems(runbook: Runbook) -> Iterator[tuple[Loc, str]]:
    """Yield (location, message) when ``recheck:`` has nothing to run again."""
    if runbook.recheck is None or runbook.recheck_steps():
        return
    yield (
        ("recheck",),
        f"`recheck: {runbook.recheck}` runs the automatic detection checks with a `when:` "
        "again (not checks over the alert, not checklists), and this runbook has none; give a "
        "detection read a `when:` or remove `recheck:`",
    )


def _secret(runbook: Runbook, name: str) -> bool:
    spec = runbook.inputs.get(name)
    return spec is not None and spec.secret


def _is_condition(source: str) -> bool:
    """Say whether an expression's outermost operation gives true or false."""
    try:
        tree = environment().parse("{{ (" + source + ") }}")
    except TemplateSyntaxError:
        return False  # lint.py reports the syntax
    output = tree.body[0]
    top = output.nodes[0] if isinstance(output, nodes.Output) and output.nodes else None
    return isinstance(top, _TRUTH)


def _same(one: str, other: str) -> bool:
    return " ".join(one.split()) == " ".join(other.split())
