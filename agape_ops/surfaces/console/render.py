"""Turn the engine's view of a run, results, plans and events into rich renderables.

Pure functions: no engine calls, no I/O. The walkthrough, its numbers, states, findings and
buttons come from the engine's view (``engine/views.py``), which the Slack surface renders too;
this module only decides how they look in a terminal. Every piece of data is wrapped in
``Text`` (so ``[FIRING:1]`` is shown as typed, never read as markup) after control characters
are removed (so a terminal escape in an alert or an error is never obeyed).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from agape_ops.engine.headline import Rank
from agape_ops.engine.ports import Probe
from agape_ops.engine.records import Event, Run, ScheduledJob, StepState
from agape_ops.engine.results import StepResult, cell_text
from agape_ops.engine.steps import Plan
from agape_ops.engine.views import RunView, StepView
from agape_ops.engine.watch_views import checked_for, figure_words, job_lines
from agape_ops.runbooks.model import Risk, Runbook
from agape_ops.runbooks.team import Contact, Dashboard

#: Rows of a result shown at once; the rest are counted ("showing 20 of 143").
SHOWN_ROWS = 20
CELL_WIDTH = 60
#: C0 and C1 control characters (and DEL), tab and newline excepted: never sent to a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

STATE_STYLES: dict[StepState, str] = {
    StepState.PENDING: "",
    StepState.RUNNING: "cyan",
    StepState.PASSED: "green",
    StepState.FAILED: "bold yellow",
    StepState.ERROR: "bold red",
    StepState.DONE: "green",
    StepState.SKIPPED: "dim",
    StepState.HANDED_OVER: "cyan",
}
EVENT_MARKS: dict[str, tuple[str, str]] = {
    "passed": ("✓", "green"),
    "done": ("✓", "green"),
    "failed": ("!", "yellow"),
    "error": ("✗", "red"),
    "refused": ("✗", "red"),
    "skipped": ("↷", "dim"),
    "handed_over": ("⇢", "cyan"),
}

#: How the scheduler's events are marked (they have no outcome).
WATCH_MARKS: dict[str, tuple[str, str]] = {
    "run.escalated": ("⚑", "magenta"),
    "run.cleared": ("✓", "green"),
    "run.returned": ("!", "yellow"),
    "run.reminded": ("⏰", "cyan"),
    "monitor.started": ("◔", "cyan"),
    "monitor.stopped": ("◉", "cyan"),
}


def clean(text: str) -> str:
    """Remove control characters (terminal escapes among them), keeping tabs and newlines."""
    return _CONTROL.sub("", text)


def plain(text: str, style: str = "") -> Text:
    """Return data as terminal text: shown as typed, never as markup or a control sequence."""
    return Text(clean(text), style=style)


def cell(value: Any) -> Text:
    """Show one value of a result in a table cell, cleaned and cut to the cell's width."""
    shown = clean(cell_text(value))
    if len(shown) > CELL_WIDTH:
        shown = shown[: CELL_WIDTH - 1] + "…"
    return Text(shown)


def run_header(run: Run) -> Text:
    """Say which run this is, of what, how bad, in what state, and whether it is a rehearsal."""
    header = Text()
    header.append(run.id, style="bold")
    header.append(f"  {clean(run.title)}", style="bold")
    header.append(f"  [{run.severity}]  ", style="magenta")
    header.append(run.state.value, style="bold cyan")
    header.append(
        f"  opened {run.created_at:%Y-%m-%d %H:%M} UTC by {clean(run.created_by)}", style="dim"
    )
    if run.rehearsal:
        header.append("  REHEARSAL: writes are shown, not executed", style="bold magenta")
    return header


#: How each rank of the headline is marked: the likely cause stands out, warnings recede.
PROBLEM_MARKS: dict[Rank, tuple[str, str, str]] = {
    Rank.FOUND: ("!", "", "bold yellow"),
    Rank.CAUSE: ("→", "Likely cause: ", "bold red"),
    Rank.FINDING: ("•", "", "yellow"),
    Rank.WARNING: ("⚠", "Warning: ", "dim"),
}


def headline(view: RunView) -> RenderableType | None:
    """Return "What is wrong now": the problems found, the likely cause, then warnings."""
    if not view.headline.items:
        return None
    text = Text("What is wrong now", style="bold")
    for problem in view.headline.items:
        mark, lead, style = PROBLEM_MARKS[problem.rank]
        text.append(f"\n  {mark} ", style=style)
        text.append(lead, style=style)
        text.append(clean(problem.text), style="" if problem.rank is Rank.FINDING else style)
    return text


def _kind(step: StepView) -> Text:
    if step.is_checklist:
        return Text("checklist", style="dim")
    kind = Text(step.kind)
    if step.risk is Risk.WRITE:
        kind.append(" write", style="yellow")
    elif step.risk is Risk.DANGEROUS:
        kind.append(" dangerous", style="bold red")
    return kind


def _state(step: StepView) -> Text:
    if step.is_checklist and step.state is StepState.PENDING and "/" in step.state_words:
        return Text(step.state_words, style="cyan")
    return Text(step.state_words, style=STATE_STYLES[step.state])


def _finding(step: StepView) -> Text:
    if step.finding:
        found = plain(step.finding)
    elif step.by_hand:  # shell off: the command is there to copy from the start
        found = plain(f"run by hand: {step.by_hand}", style="cyan")
    else:
        found = plain(step.description or "", style="dim")
    if step.monitor is not None and step.monitor.state:  # a monitor: its figure and trend
        found.append("\n")
        found.append(clean(f"monitor: {step.monitor.line}"), style="cyan")
    return found


def watch_line(view: RunView) -> Text | None:
    """The run's watch: pages sent, re-checks clear or showing the problem, flapping."""
    if not view.watch.line:
        return None
    return Text(clean(f"watch: {view.watch.line}"), style="cyan")


def jobs_lines(jobs: Sequence[ScheduledJob]) -> Text | None:
    """The jobs scheduled for a run: what each does next, and when."""
    if not jobs:
        return None
    text = Text("Scheduled", style="bold")
    for line in job_lines(jobs):
        text.append(f"\n  {clean(line)}")
    return text


def jobs_unreadable(message: str) -> Text:
    """Say the scheduled jobs could not be read, and why."""
    return Text("Scheduled", style="bold").append(f"\n  {clean(message)}")


def walkthrough(view: RunView) -> Table:
    """Return the run's sections with numbered steps, each with its state and finding."""
    table = Table(show_header=True, header_style="bold", expand=False, show_lines=False)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("step")
    table.add_column("kind", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("finding")
    section = ""
    for step in view.steps:
        if step.section != section:
            section = step.section
            table.add_row("", Text(step.section_title, style="bold underline"), "", "", "")
        table.add_row(
            Text(str(step.number)),
            plain(step.title),
            _kind(step),
            _state(step),
            _finding(step),
        )
    return table


def result_view(result: StepResult, *, title: str = "", numbered: bool = False) -> RenderableType:
    """Show a result: its table (with row numbers when rows can be acted on) or its figures."""
    parts: list[RenderableType] = [plain(title, style="bold")] if title else []
    if result.columns:
        table = Table(show_header=True, header_style="bold")
        if numbered:
            table.add_column("row", justify="right", style="bold cyan", no_wrap=True)
        for column in result.columns:
            table.add_column(Text(column))
        shown = result.rows[:SHOWN_ROWS]
        for index, row in enumerate(shown, start=1):
            cells = [cell(row.get(column)) for column in result.columns]
            table.add_row(*([Text(f"r{index}")] if numbered else []), *cells)
        parts.append(table)
        total = result.total_rows if result.total_rows is not None else len(result.rows)
        if total > len(shown):
            parts.append(Text(f"showing {len(shown)} of {total} rows", style="dim"))
        elif not shown:
            parts.append(Text("(no rows)", style="dim"))
    elif result.values:
        figures = Table(show_header=False)
        figures.add_column(style="bold")
        figures.add_column()
        for name, value in result.values.items():
            figures.add_row(Text(name), cell(value))
        parts.append(figures)
    if result.text:
        parts.append(plain(result.text))
    return Group(*parts)


def row_choices(step: StepView, result: StepResult) -> Text:
    """Offer a step's row actions as typed choices: ``r2`` applies the first to row 2."""
    count = min(len(result.rows), SHOWN_ROWS)
    choices = Text()
    for index, action in enumerate(step.row_actions):
        suffix = action.letter
        span = f"r1{suffix}" if count == 1 else f"r1{suffix}-r{count}{suffix}"
        if index:
            choices.append("\n")
        choices.append(
            f"“{clean(action.button)}” on a row: type r<row>{suffix} ({span})", style="cyan"
        )
    return choices


def plan_view(plan: Plan) -> RenderableType:
    """Show what a step would do, what it would touch, and what the person is asked to confirm."""
    parts: list[RenderableType] = [Text(f"“{plan.step.title}” will:", style="bold")]
    if plan.description:
        parts.append(plain(textwrap.indent(plan.description, "  ")))
    if plan.preview is not None:
        parts.append(plain(f"It would touch: {plan.preview.summary}", style="yellow"))
        parts.append(result_view(plan.preview))
    if plan.error:  # nothing to confirm: say why instead of asking
        parts.append(plain(f"Cannot run it: {plan.error}", style="bold red"))
    elif plan.confirm:
        parts.append(plain(plan.confirm, style="bold yellow"))
    return Group(*parts)


def guarded(step: StepView) -> Text:
    """Say what a step that changes things guards: who may, its lock, its question."""
    lines = Text()
    risk = "dangerous: approvers only" if step.risk is Risk.DANGEROUS else "a change: responders"
    lines.append(f"“{clean(step.title)}” is {risk}", style="bold yellow")
    if step.two_person:
        lines.append("; it needs two different approvers", style="bold yellow")
    if step.lock:
        lines.append(f"; it takes the {step.lock} lock (one run at a time)", style="bold yellow")
    if step.confirm:
        lines.append(f"\n{clean(step.confirm)}", style="bold yellow")
    return lines


def checklist(step: StepView) -> RenderableType:
    """Show a manual step's items as numbered choices, with any command to copy, and what it
    guards when it changes things (its confirmation and lock are shown before, not after)."""
    lines = Text()
    lines.append(f"{clean(step.title)}\n", style="bold")
    if step.changes:
        lines.append_text(guarded(step))
        lines.append("\n")
    for item in step.items:
        mark = "x" if item.done else " "
        lines.append(f"  {item.number}. [{mark}] {clean(item.text)}\n")
        if item.command:
            command = clean(item.command.strip()).replace("\n", "\n         ")
            lines.append(f"       $ {command}\n", style="cyan")
    return lines


def event_line(event: Event) -> Text:
    """Show one timeline event as it happens: when, who, what, how it went, how long it took."""
    mark, style = EVENT_MARKS.get(event.outcome or "", WATCH_MARKS.get(event.kind, ("·", "")))
    if event.kind == "step.rehearsed":
        mark, style = "◇", "magenta"
    line = Text()
    line.append(f"{event.at:%H:%M:%S} ", style="dim")
    line.append(f"{mark} ", style=style)
    line.append(f"{clean(event.actor)}: ", style="bold")
    line.append(clean(event.summary), style=style if style in ("red", "magenta") else "")
    if event.duration_ms is not None:
        line.append(f"  ({event.duration_ms} ms)", style="dim")
    why = event.detail.get("purpose")
    around = checked_for(event.detail)
    if around is not None:
        line.append(f"  [{clean(around)}]", style="dim")
    if why in ("recheck", "monitor"):  # the scheduler ran it: say so, and a monitor's figure
        figure = event.detail.get("figure")
        shown = f", figure {figure_words(figure)}" if isinstance(figure, int | float) else ""
        line.append(f"  [{why}{shown}]", style="dim")
    return line


def runs_table(runs: Iterable[Run]) -> Table:
    """List runs: id, state, runbook title, when opened, by whom, and rehearsals marked."""
    table = Table(show_header=True, header_style="bold")
    for column in ("run", "state", "runbook", "opened (UTC)", "by", "rehearsal"):
        table.add_column(column, no_wrap=column != "runbook")
    for run in runs:
        table.add_row(
            Text(run.id, style="bold"),
            Text(run.state.value),
            plain(run.title),
            Text(f"{run.created_at:%Y-%m-%d %H:%M}"),
            plain(run.created_by),
            Text("rehearsal" if run.rehearsal else "", style="magenta"),
        )
    return table


def runbooks_table(runbooks: Iterable[Runbook]) -> Table:
    """List the runbooks with their severity and what triggers them."""
    table = Table(show_header=True, header_style="bold")
    for column in ("runbook", "title", "severity", "triggered by"):
        table.add_column(column, overflow="fold")  # ids, emails and URLs are never cut
    for runbook in sorted(runbooks, key=lambda r: r.id):
        names = [t.alertname for t in runbook.triggers if t.alertname]
        labels = [
            " ".join(f"{k}={v}" for k, v in sorted(t.labels.items()))
            for t in runbook.triggers
            if t.labels and not t.alertname
        ]
        patterns = sum(1 for t in runbook.triggers if t.text and not (t.alertname or t.labels))
        said = [*names, *labels]
        if patterns:
            said.append(f"{patterns} text pattern{'s' if patterns > 1 else ''}")
        table.add_row(
            Text(runbook.id, style="bold"),
            Text(runbook.title),
            Text(runbook.severity.value),
            Text(", ".join(said) or "by hand only", style="" if said else "dim"),
        )
    return table


def contacts_table(contacts: Sequence[Contact]) -> RenderableType:
    """List the emergency contacts from the team file."""
    if not contacts:
        return Text("No contacts: add them to the team file (OPS_TEAM_FILE).", style="dim")
    table = Table(show_header=True, header_style="bold")
    for column in ("role", "name", "phone", "email", "slack"):
        table.add_column(column, overflow="fold")  # ids, emails and URLs are never cut
    for contact in contacts:
        table.add_row(
            *(
                cell(v)
                for v in (contact.role, contact.name, contact.phone, contact.email, contact.slack)
            )
        )
    return table


def dashboards_table(dashboards: Sequence[Dashboard]) -> RenderableType:
    """List the monitoring dashboards from the team file."""
    if not dashboards:
        return Text("No dashboards: add them to the team file (OPS_TEAM_FILE).", style="dim")
    table = Table(show_header=True, header_style="bold")
    for column in ("dashboard", "where", "note"):
        table.add_column(column, overflow="fold")  # ids, emails and URLs are never cut
    for board in dashboards:
        table.add_row(plain(board.name), plain(board.url or ""), plain(board.note or ""))
    return table


def probes_table(probes: Sequence[Probe]) -> Table:
    """Each system the bot reaches: configured or not, answering or not, and how fast."""
    table = Table("system", "status", "detail", "latency")
    for probe in probes:
        status = "not configured" if not probe.configured else "ok" if probe.ok else "FAILING"
        latency = f"{probe.latency_ms} ms" if probe.latency_ms is not None else ""
        table.add_row(plain(probe.name), plain(status), plain(probe.detail), plain(latency))
    return table


def error_line(message: str) -> Text:
    """Show something that did not work, in red."""
    return plain(f"✗ {message}", style="bold red")


def refusal_line(message: str) -> Text:
    """Show a refusal: what was refused and who may do it."""
    return plain(f"✗ refused: {message}", style="bold red")


def warning_line(message: str) -> Text:
    """Show what a person must weigh before going on, in yellow."""
    return plain(f"! {message}", style="bold yellow")


def note_line(message: str) -> Text:
    """Show a plain remark (hints, cancellations)."""
    return plain(message, style="dim")


def ok_line(message: str) -> Text:
    """Show something that worked."""
    return plain(f"✓ {message}", style="green")


def lines(items: Sequence[str], style: str = "") -> Text:
    """Show several lines of plain text as typed."""
    return plain("\n".join(items), style=style)
