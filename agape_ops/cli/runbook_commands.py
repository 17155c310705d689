"""Commands about the runbooks themselves: lint, schema, runbooks, show.

Output is plain text (one problem per line, aligned columns) so it reads the same in a terminal,
a CI log or a pipe. Problems go to stdout for ``lint`` (they are its output) and to stderr
everywhere else (they are a warning beside the output).
"""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import click
from pydantic import ValidationError

from agape_ops.cli.startup import settings_problem
from agape_ops.runbooks.catalog import Catalog, load_catalog
from agape_ops.runbooks.loader import runbook_files
from agape_ops.runbooks.model import SECTION_TITLES, Runbook, Step
from agape_ops.runbooks.team import Team
from agape_ops.settings import Settings

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _settings() -> Settings:
    """Return the settings, or stop with the names of the malformed ones (never their values)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise click.ClickException(settings_problem(exc)) from exc


def _default_team_file(settings: Settings) -> Path | None:
    if settings.ops_team_file is not None:
        return settings.ops_team_file
    local = Path("team.yaml")
    return local if local.exists() else None


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--team",
    "team_file",
    type=click.Path(path_type=Path),
    help="Also check this team file (default with no PATH: OPS_TEAM_FILE or ./team.yaml).",
)
def lint(paths: tuple[Path, ...], team_file: Path | None) -> None:
    """Check runbooks (default: RUNBOOKS_DIR) and print one file:line:col: message per problem.

    Exits 1 when anything is wrong, so CI can run it.
    """
    from agape_ops.runbooks.lint import lint_paths

    if not paths:
        settings = _settings()
        paths = (settings.runbooks_dir,)
        team_file = team_file or _default_team_file(settings)
    problems = lint_paths(list(paths), team_file=team_file)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        files = len({p.path for p in problems})
        click.echo(f"{_count(len(problems), 'problem')} in {_count(files, 'file')}", err=True)
        raise SystemExit(1)
    checked = _count(len(runbook_files(paths)), "runbook")
    click.echo(f"{checked} OK" + (f" (and team file {team_file})" if team_file else ""), err=True)


@click.command("schema")
@click.option("--team", is_flag=True, help="The team file's schema instead of a runbook's.")
def schema(team: bool) -> None:
    """Print the JSON Schema of a runbook file (or of the team file), for editors and CI."""
    model: type[Runbook] | type[Team] = Team if team else Runbook
    document = {
        "$schema": JSON_SCHEMA_DIALECT,
        **model.model_json_schema(),
        "title": "agape-ops team file" if team else "agape-ops runbook",
    }
    click.echo(json.dumps(document, indent=2))


def _load(settings: Settings) -> Catalog:
    catalog = load_catalog([settings.runbooks_dir])
    if catalog.problems:
        click.echo(
            f"INVALID: {_count(len(catalog.problems), 'problem')} kept runbooks out of "
            f"{settings.runbooks_dir} (fix them; `agape-ops lint` lists them too):",
            err=True,
        )
        for problem in catalog.problems:
            click.echo(f"  {problem}", err=True)
    return catalog


@click.command("runbooks")
def runbooks() -> None:
    """List the runbooks that load: id, severity, steps, title and the alerts that start them."""
    settings = _settings()
    catalog = _load(settings)
    rows = [("ID", "SEVERITY", "STEPS", "TITLE", "ALERTS")]
    for runbook in catalog:
        alerts = ", ".join(t.alertname for t in runbook.triggers if t.alertname) or "-"
        rows.append(
            (runbook.id, runbook.severity.value, str(len(runbook.steps())), runbook.title, alerts)
        )
    if len(rows) == 1:
        click.echo(f"no runbooks loaded from {settings.runbooks_dir}", err=True)
        raise SystemExit(1)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]))
    if catalog.problems:
        raise SystemExit(1)


@click.command("show")
@click.argument("runbook_id")
def show(runbook_id: str) -> None:
    """Print one runbook as an outline: triggers, inputs, and each section's steps."""
    settings = _settings()
    catalog = load_catalog([settings.runbooks_dir])
    runbook = catalog.get(runbook_id)
    if runbook is None:
        own = [p for p in catalog.problems if Path(p.path).stem == runbook_id]
        if own:
            click.echo(f"runbook {runbook_id} does not load:", err=True)
            for problem in own:
                click.echo(f"  {problem}", err=True)
        else:
            known = ", ".join(r.id for r in catalog) or "none"
            click.echo(
                f"no runbook {runbook_id!r} in {settings.runbooks_dir} (known: {known})", err=True
            )
        raise SystemExit(1)
    for line in outline(runbook):
        click.echo(line)


def outline(runbook: Runbook) -> list[str]:
    """Return the lines of a runbook's outline."""
    lines = [
        f"{runbook.title} ({runbook.id})",
        f"severity {runbook.severity.value} · owner {runbook.owner}",
        *_wrapped(runbook.summary, "  "),
    ]
    if runbook.triggers:
        lines += ["", "Triggers"]
        for trigger in runbook.triggers:
            parts = [f"alertname {trigger.alertname}"] if trigger.alertname else []
            parts += [f"{key}={value}" for key, value in sorted(trigger.labels.items())]
            parts += [f"text /{trigger.text}/"] if trigger.text else []
            lines.append("  - " + ", ".join(parts))
    if runbook.inputs:
        lines += ["", "Inputs"]
        for name, spec in runbook.inputs.items():
            extra = [f"pattern {spec.pattern}"]
            extra += [f"e.g. {spec.example}"] if spec.example else []
            extra += [f"from alert {spec.from_alert}"] if spec.from_alert else []
            extra += ["secret"] if spec.secret else []
            lines.append(f"  {name}: {spec.description} ({'; '.join(extra)})")
    number = 0
    for section, steps in runbook.sections():
        lines += ["", SECTION_TITLES[section]]
        for step in steps:
            number += 1
            lines += _step_lines(step, number, auto=step in runbook.auto_steps())
    return lines


def _step_lines(step: Step, number: int, *, auto: bool) -> list[str]:
    tags = [step.kind, f"risk {step.risk.value}"]
    tags += ["runs by itself"] if auto else []
    tags += ["two-person"] if step.two_person else []
    tags += [f"lock {step.lock}"] if step.lock else []
    tags += [f"unreachable: {step.unreachable.value}"] if step.unreachable else []
    lines = [f"  {number}. {step.title} [{step.id}] ({', '.join(tags)})"]
    pad = "       "
    for label, value in (
        ("button", step.button),
        ("confirm", step.confirm),
        ("inputs", ", ".join(step.inputs)),
        ("when", step.when),
    ):
        if value:
            lines.append(f"{pad}{label}: {value}")
    if step.requires is not None:
        lines.append(
            f"{pad}requires: {step.requires.step} finds the problem first "
            f"(otherwise: {step.requires.otherwise})"
        )
    if step.verifies:
        lines.append(f"{pad}verifies: runs {', '.join(step.verifies)} again after it succeeds")
    lines += _call_lines(step, pad)
    if step.finding:
        lines.append(f"{pad}finding: {' '.join(step.finding.split())}")
    for action in step.row_actions:
        mapping = ", ".join(f"{k} <- {v}" for k, v in action.inputs.items())
        lines.append(f"{pad}per row: [{action.button}] runs {action.step} ({mapping})")
    return lines


def _call_lines(step: Step, pad: str) -> list[str]:
    if step.postgres is not None:
        call = step.postgres
        lines = [f"{pad}sql:", *_wrapped(call.sql, pad + "  ", keep_lines=True)]
        if call.dsn_input:
            lines.insert(0, f"{pad}connects to the URL given as {call.dsn_input}, not DATABASE_URL")
        if call.preview:
            lines += [f"{pad}preview:", *_wrapped(call.preview, pad + "  ", keep_lines=True)]
        if call.params:
            lines.append(f"{pad}params: " + ", ".join(f"{k}={v}" for k, v in call.params.items()))
        if call.max_rows is not None:
            lines.append(f"{pad}max_rows: {call.max_rows}")
        return lines
    if step.redis is not None:
        queues = f" ({', '.join(step.redis.queues)})" if step.redis.queues else ""
        return [f"{pad}redis: {step.redis.command}{queues}"]
    if step.paystack is not None:
        call_p = step.paystack
        target = call_p.reference or call_p.references_from or call_p.status or ""
        return [f"{pad}paystack: {call_p.action} {target}".rstrip()]
    if step.admin_api is not None:
        api = step.admin_api
        detail = f"{api.method} {api.path}" if api.action == "call" else api.webhook_id or ""
        body = f" {json.dumps(api.json_body)}" if api.json_body else ""
        return [f"{pad}admin api: {api.action} {detail}{body}".rstrip()]
    if step.prometheus is not None:
        prom = step.prometheus
        shape = (
            f"range over the last {prom.range.start}, every {prom.range.step}"
            if prom.range is not None
            else "instant"
        )
        return [f"{pad}promql ({shape}):", *_wrapped(prom.query, pad + "  ", keep_lines=True)]
    if step.http is not None:
        return [f"{pad}http: {step.http.method} {step.http.url} (expect {step.http.expect_status})"]
    if step.shell is not None:
        return [f"{pad}command: {shlex.join(step.shell.command)}"]
    if step.alert is not None:
        return [f"{pad}alert values: {', '.join(step.alert.values)}"]
    if step.manual is not None:
        return [
            f"{pad}[ ] {item.text}" + (f"\n{pad}      $ {item.command}" if item.command else "")
            for item in step.manual.items
        ]
    return []


def _wrapped(text: str, pad: str, *, keep_lines: bool = False) -> list[str]:
    if keep_lines:
        return [pad + line for line in text.strip().splitlines()]
    return textwrap.wrap(
        " ".join(text.split()), width=100, initial_indent=pad, subsequent_indent=pad
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


COMMANDS: list[click.Command] = [lint, schema, runbooks, show]
