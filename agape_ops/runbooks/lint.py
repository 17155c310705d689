"""Find the mistakes in a runbook that its schema cannot see, each located at file:line:col.

The schema (pydantic) says what a runbook may contain; the linter checks that what it says holds
together: step ids are unique, templates read names that will exist, SQL is one statement of the
right kind on tables the backend has, writes are confirmed and bounded, regexes compile. Every
message says what to change. SQL analysis lives in ``sql.py``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from agape_ops.errors import Problem, RunbookError, RunbookValidationError
from agape_ops.runbooks import lint_watch, sql
from agape_ops.runbooks.fields import COMMON, FIELDS, action_of, prometheus_labels
from agape_ops.runbooks.hazards import (
    ADMIN_PREFIX,
    dsn_input_hazard,
    shell_hazard,
    template_hazard,
    url_origin,
)
from agape_ops.runbooks.lint_guards import guard_problems
from agape_ops.runbooks.loader import (
    Loc,
    Located,
    load_runbook_file,
    load_team_file,
    parse_yaml,
    runbook_files,
)
from agape_ops.runbooks.model import SECTIONS, Risk, Runbook, Step
from agape_ops.runbooks.templating import (
    CONTEXT_NAMES,
    environment,
    is_template,
    references,
    syntax_error,
)

#: Settings a template may read (origins only; never a secret).
SETTINGS_NAMES = frozenset({"admin_api_url", "paystack_api_url", "paystack_status_url"})
#: What a parameter template may read: it is rendered before the step runs, so no result.
PARAMETER_NAMES = frozenset({"inputs", "alert", "steps", "settings", "run"})
#: Names Jinja itself provides in every template.
_JINJA_GLOBALS = frozenset({"range", "loop", "namespace", "dict", "cycler", "joiner"})
JINJA_NAMES = _JINJA_GLOBALS | {"true", "false", "none", "True", "False", "None"}
SHELL_OPERATORS = frozenset({"|", "||", "&&", ";", ">", ">>", "<", "&", "2>", "2>&1", "<<"})
STRING_COMMAND = (
    "shell command must be an argument list, e.g. [pm2, restart, agape-backend], not a string"
)
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_VARIABLE = re.compile(r"\$(?:\{[A-Za-z_]\w*\}|[A-Za-z_]\w*)")


def lint_runbook(runbook: Runbook, located: Located) -> list[Problem]:
    """Return every semantic problem of a schema-valid runbook, in file order."""
    return _Linter(runbook, located).run()


def lint_paths(paths: Iterable[Path], *, team_file: Path | None = None) -> list[Problem]:
    """Load and lint every runbook under ``paths`` (and the team file); return all problems."""
    paths = list(paths)
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for given in paths:
        if given.is_dir() and not runbook_files([given]):
            problems.append(Problem(str(given), 1, 1, "no runbook files (*.yaml) in this folder"))
    for path in runbook_files(paths):
        try:
            runbook, located = load_runbook_file(path)
        except RunbookValidationError as exc:
            problems.extend(_reworded(exc.problems, path))
            continue
        except RunbookError as exc:
            problems.append(Problem(str(path), 1, 1, exc.message.removeprefix(f"{path}: ")))
            continue
        problems.extend(lint_runbook(runbook, located))
        if runbook.id in seen:
            problems.append(
                located.problem(("id",), f"runbook id {runbook.id!r} is also in {seen[runbook.id]}")
            )
        seen.setdefault(runbook.id, str(path))
    if team_file is not None:
        try:
            load_team_file(team_file)
        except RunbookValidationError as exc:
            problems.extend(exc.problems)
        except RunbookError as exc:
            problems.append(
                Problem(str(team_file), 1, 1, exc.message.removeprefix(f"{team_file}: "))
            )
    return problems


def _reworded(problems: list[Problem], path: Path) -> list[Problem]:
    """Say plainly that a shell command given as one string must be an argument list."""
    try:
        located = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, RunbookError):
        return problems
    data = located.data if isinstance(located.data, dict) else {}
    spots = set()
    for section in SECTIONS:
        steps = data.get(section)
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            shell = step.get("shell") if isinstance(step, dict) else None
            if isinstance(shell, dict) and isinstance(shell.get("command"), str):
                spots.add(located.where((section, i, "shell", "command")))
    return [
        Problem(p.path, p.line, p.column, STRING_COMMAND)
        if (p.line, p.column) in spots and "shell.command" in p.message
        else p
        for p in problems
    ]


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


class _Linter:
    """One pass over one runbook, collecting located problems."""

    def __init__(self, runbook: Runbook, located: Located) -> None:
        self.runbook = runbook
        self.located = located
        self.problems: list[Problem] = []
        self.order: dict[str, int] = {}
        self.first: dict[str, Loc] = {}
        self.columns: dict[str, frozenset[str] | None] = {}
        self.known: dict[str, frozenset[str] | None] = {}
        self.current: tuple[Step, int, frozenset[str] | None]

    def add(self, loc: Loc, message: str, *, offset: int | None = None) -> None:
        self.problems.append(self.located.problem(loc, message, offset=offset))

    def run(self) -> list[Problem]:
        self.triggers_and_inputs()
        located_steps = [
            ((section, i), step)
            for section, steps in self.runbook.sections()
            for i, step in enumerate(steps)
        ]
        for index, (loc, step) in enumerate(located_steps):
            if step.id in self.order:
                line, _ = self.located.where((*self.first[step.id], "id"))
                self.add((*loc, "id"), f"duplicate step id `{step.id}` (first used on line {line})")
            else:
                self.order[step.id] = index
                self.first[step.id] = loc
        for index, (loc, step) in enumerate(located_steps):
            self.step(step, loc, index)
        unique = {str(p): p for p in self.problems}.values()
        return sorted(unique, key=lambda p: (p.line, p.column, p.message))

    def triggers_and_inputs(self) -> None:
        for where, message in lint_watch.recheck_problems(self.runbook):
            self.add(where, message)
        for j, trigger in enumerate(self.runbook.triggers):
            if trigger.text is not None and (error := _regex_error(trigger.text)):
                self.add(("triggers", j, "text"), f"trigger text is not a valid regex: {error}")
        for name, spec in self.runbook.inputs.items():
            if error := _regex_error(spec.pattern):
                self.add(("inputs", name, "pattern"), f"pattern is not a valid regex: {error}")
                continue
            for key in ("example", "default"):
                value = getattr(spec, key)
                if value is not None and not re.fullmatch(spec.pattern, value):
                    message = f"{key} {value!r} does not match the input's pattern"
                    self.add(("inputs", name, key), f"{message} {spec.pattern!r}")

    def step(self, step: Step, loc: Loc, index: int) -> None:
        for j, name in enumerate(step.inputs):
            if name not in self.runbook.inputs:
                self.add(
                    (*loc, "inputs", j),
                    f"step input `{name}` is not declared under the runbook's `inputs:`"
                    + _hint(name, self.runbook.inputs),
                )
        self.risk(step, loc)
        for where, message in guard_problems(self.runbook, step, loc, self.order):
            self.add(where, message)
        for where, message in lint_watch.watch_problems(self.runbook, step, loc):
            self.add(where, message)
        columns: frozenset[str] | None = None
        if step.postgres is not None:
            analysis = sql.analyse(step.postgres, writes=step.changes_things)
            for finding in analysis.findings:
                where = (*loc, "postgres", *finding.key)
                self.add(where, finding.message, offset=finding.offset)
            columns = analysis.columns
        self.columns[step.id] = columns
        known = self.known.setdefault(step.id, self.known_fields(step, columns))
        self.current = (step, index, known)
        for key in ("when", "finding"):
            if (text := getattr(step, key)) is not None:
                self.template((*loc, key), text, label=key)
        for where, label, text in lint_watch.watch_expressions(step, loc):
            self.template(where, text, label=label)
        for where, text in _parameters(step, loc):
            label = ".".join(str(p) for p in where[2:])
            self.template(where, text, label=label, parameter=True)
        if step.shell is not None:
            self.shell(step.shell.command, (*loc, "shell", "command"))
        if step.prometheus is not None and is_template(step.prometheus.query):
            self.add(
                (*loc, "prometheus", "query"),
                "a prometheus query is used as written, never rendered: write the PromQL "
                "without {{ }} or {% %}",
            )
        self.urls(step, loc)
        self.row_actions(step, loc, known)
        if step.paystack is not None and step.paystack.references_from:
            self.references_from(step.paystack.references_from, loc, index)

    def risk(self, step: Step, loc: Loc) -> None:
        writes, call = step.changes_things, step.admin_api
        if writes and not step.confirm:
            self.add(
                (*loc, "risk"),
                f"a `risk: {step.risk.value}` step needs `confirm:`, the question a person "
                "answers before it runs",
            )
        if step.postgres is not None and writes and step.postgres.max_rows is None:
            self.add((*loc, "postgres"), "a postgres write needs `max_rows` (most rows to change)")
        if not writes and call is not None and call.action in ("reprocess_webhook", "call"):
            what = call.method if call.action == "call" else call.action
            if what != "GET":
                self.add(
                    (*loc, "admin_api", "action"),
                    f"this step changes things ({what}) but is `risk: read`; "
                    "mark it `risk: write` and give it a `confirm:`",
                )
        if writes and step.prometheus is not None:
            self.add(
                (*loc, "risk"),
                f"a prometheus query only reads; it cannot be `risk: {step.risk.value}`",
            )
        if step.two_person and step.risk is not Risk.DANGEROUS:
            self.add((*loc, "two_person"), "`two_person` only makes sense on a dangerous step")
        if step.lock is not None and not writes:
            self.add((*loc, "lock"), "`lock` only makes sense on a write or dangerous step")
        if step.shell is not None and not writes:
            self.add(
                (*loc, "risk"),
                "a shell step may change anything, whatever it runs: mark it `risk: write` (or "
                "dangerous) with a `confirm:`, so only a responder runs it",
            )
        if (hazard := dsn_input_hazard(self.runbook, step)) is not None:
            self.add((*loc, "postgres", "dsn_input"), hazard)
        if step.unreachable is not None and (writes or step.kind in ("manual", "alert")):
            self.add((*loc, "unreachable"), "`unreachable` is for a read that calls a system")
        if step.shell is not None and step.auto:
            self.add((*loc, "auto"), "a shell step never runs by itself: remove `auto: true`")

    def known_fields(self, step: Step, columns: frozenset[str] | None) -> frozenset[str] | None:
        """Return the names ``when``/``finding`` may read, or None when they cannot be known."""
        base = COMMON | CONTEXT_NAMES | JINJA_NAMES
        if step.postgres is not None:
            if columns is None:
                return None
            extra = FIELDS[("postgres", "write" if step.changes_things else "read")]
            return base | extra | columns
        if step.alert is not None:  # the engine adds `missing`: the values the alert lacked
            return base | frozenset(step.alert.values) | {"missing"}
        fields = FIELDS.get((step.kind, action_of(step.kind, step.call)))
        if fields is not None and step.prometheus is not None:
            fields |= prometheus_labels(step.prometheus.query)
        return None if fields is None else base | fields

    def template(self, loc: Loc, source: str, *, label: str, parameter: bool = False) -> None:
        """Check one template or condition of the step being linted (``self.current``)."""
        step, index, known = self.current
        expression = label in lint_watch.EXPRESSIONS
        try:
            error = syntax_error(source, expression=expression) or _unknown_filter(
                source, expression=expression
            )
            chains = sorted(references(source, expression=expression)) if not error else []
        except TemplateSyntaxError as exc:
            error = exc.message
        if error:
            self.add(loc, f"{label} does not parse: {error}")
            return
        for chain in chains:
            root = chain[0]
            name = chain[1] if len(chain) > 1 else None
            if root == "inputs" and name is not None:
                self.input_reference(step, loc, name, label)
            elif root == "steps" and name is not None:
                what = f"{label} reads `steps.{'.'.join(chain[1:3])}`"
                if self.step_reference(loc, name, index, what) and len(chain) > 2:
                    fields = self.known.get(name)
                    if fields is not None and chain[2] not in fields:
                        self.add(
                            loc,
                            f"{what}, but step `{name}` does not produce `{chain[2]}`"
                            + _hint(chain[2], fields - JINJA_NAMES),
                        )
            elif root == "settings" and name is not None and name not in SETTINGS_NAMES:
                self.add(
                    loc,
                    f"{label} reads `settings.{name}`; templates may read only "
                    f"{_listing('settings.' + s for s in SETTINGS_NAMES)}",
                )
            elif parameter and root not in PARAMETER_NAMES | JINJA_NAMES:
                self.add(
                    loc,
                    f"{label} reads `{root}`, but parameters are rendered before the step runs: "
                    f"they may read only {_listing(PARAMETER_NAMES)}",
                )
            elif known is not None and root not in known:
                self.add(
                    loc,
                    f"{label} reads `{root}`, which this {step.kind} step does not produce"
                    + (
                        _hint(root, known - JINJA_NAMES)
                        or f" (it has: {_listing(known - COMMON - CONTEXT_NAMES - JINJA_NAMES)})"
                    )
                    + (
                        "; a label the query does not name in by(...) or a matcher is read "
                        "from `rows`"
                        if step.prometheus is not None
                        else ""
                    ),
                )

    def input_reference(self, step: Step, loc: Loc, name: str, label: str) -> None:
        if name not in self.runbook.inputs:
            self.add(
                loc,
                f"{label} reads `inputs.{name}`, which is not declared under `inputs:`"
                + _hint(name, self.runbook.inputs),
            )
        elif name not in step.inputs:
            self.add(
                loc,
                f"{label} reads `inputs.{name}`, but the step does not ask for it: add `{name}` "
                "to the step's `inputs:`",
            )

    def step_reference(self, loc: Loc, name: str, index: int, what: str) -> bool:
        """Report a read of a step that is unknown or not earlier; say whether it is fine."""
        position = self.order.get(name)
        if position is None:
            self.add(loc, f"{what}, which is not a step of this runbook" + _hint(name, self.order))
        elif position >= index:
            self.add(
                loc,
                f"{what}, which does not run before this step; only earlier steps' "
                "results can be read",
            )
        return position is not None and position < index

    def urls(self, step: Step, loc: Loc) -> None:
        """Hold an http URL and an admin API path to a declared origin and encoded inputs."""
        if step.http is not None and not syntax_error(step.http.url, expression=False):
            where = (*loc, "http", "url")
            origin, rest = url_origin(step.http.url, dict.fromkeys(SETTINGS_NAMES, "x"))
            if origin is None:
                self.add(
                    where,
                    "http url must start with an origin: a literal https://host or one of "
                    f"{_listing('{{ settings.' + s + ' }}' for s in SETTINGS_NAMES)}",
                )
            elif problem := template_hazard(rest, what="http url"):
                self.add(where, problem)
        call = step.admin_api
        if call is not None and call.path is not None:
            where = (*loc, "admin_api", "path")
            if not call.path.startswith(ADMIN_PREFIX):
                self.add(where, f"admin_api path must start with {ADMIN_PREFIX}")
            elif problem := template_hazard(call.path, what="admin_api path"):
                self.add(where, problem)

    def shell(self, command: list[str], loc: Loc) -> None:
        if hazard := shell_hazard(command):
            self.add((*loc, hazard[0]), hazard[1])
        bare = [_TEMPLATE.sub("x", arg) for arg in command]
        if len(command) == 1 and len(bare[0].split()) > 1:
            self.add(
                (*loc, 0),
                "shell command is one argument holding a whole command line; write it as an "
                f"argument list, e.g. [{', '.join(command[0].split())}]",
            )
        elif bare[0] != bare[0].strip() or len(bare[0].split()) > 1:
            self.add((*loc, 0), f"program name {command[0]!r} has spaces; split its arguments")
        for k, arg in enumerate(bare):
            if arg.strip() in SHELL_OPERATORS or "$(" in arg or "`" in arg:
                self.add(
                    (*loc, k),
                    f"argument {command[k]!r} is shell syntax, but the command runs without a "
                    "shell; run one program per step (or a script that does the rest)",
                )
            elif variable := _VARIABLE.search(arg):
                self.add(
                    (*loc, k),
                    f"argument {command[k]!r} reads {variable.group(0)}, but the command runs "
                    "without a shell, so nothing expands it; write the value in with a template "
                    "or give it to the program under `env:`",
                )

    def row_actions(self, step: Step, loc: Loc, known: frozenset[str] | None) -> None:
        for j, action in enumerate(step.row_actions):
            where = (*loc, "row_actions", j)
            target = self.runbook.step(action.step)
            if target is None:
                self.add(
                    (*where, "step"),
                    f"row action runs step `{action.step}`, which is not a step of this runbook"
                    + _hint(action.step, self.order),
                )
                continue
            for name, column in action.inputs.items():
                if name not in target.inputs:
                    self.add(
                        (*where, "inputs", name),
                        f"step `{target.id}` does not take input `{name}` (its inputs: "
                        f"{_listing(target.inputs)})",
                    )
                elif known is not None and column not in known:
                    self.add(
                        (*where, "inputs", name),
                        f"column `{column}` is not in this step's result" + _hint(column, known),
                    )

    def references_from(self, reference: str, loc: Loc, index: int) -> None:
        where = (*loc, "paystack", "references_from")
        name, column = reference.split(".", 1)
        fine = self.step_reference(where, name, index, f"references_from names step `{name}`")
        if fine and (columns := self.columns.get(name)) is not None and column not in columns:
            self.add(where, f"step `{name}` has no column `{column}` ({_listing(columns)})")


def _parameters(step: Step, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Yield (location, text) of every parameter template of a step's call."""
    if step.postgres is not None:
        for name, value in step.postgres.params.items():
            if isinstance(value, str):
                yield (*loc, "postgres", "params", name), value
    if step.paystack is not None and step.paystack.reference is not None:
        yield (*loc, "paystack", "reference"), step.paystack.reference
    if step.admin_api is not None:
        for key in ("webhook_id", "path"):
            if (value := getattr(step.admin_api, key)) is not None:
                yield (*loc, "admin_api", key), value
        yield from _strings(step.admin_api.json_body, (*loc, "admin_api", "json"))
    if step.http is not None:
        yield (*loc, "http", "url"), step.http.url
    if step.shell is not None:
        for k, arg in enumerate(step.shell.command):
            yield (*loc, "shell", "command", k), arg
        for name, value in step.shell.env.items():
            yield (*loc, "shell", "env", name), value


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*loc, i))


def _regex_error(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return str(exc)
    return None


def _unknown_filter(source: str, *, expression: bool) -> str | None:
    """Name a filter or test the sandbox does not have (parsing alone does not catch it)."""
    env = environment()
    tree = env.parse("{{ (" + source + ") }}" if expression else source)
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        table = env.filters if isinstance(node, nodes.Filter) else env.tests
        if node.name not in table:
            kind = "filter" if isinstance(node, nodes.Filter) else "test"
            return f"no {kind} named {node.name!r}" + _hint(node.name, table)
    return None
