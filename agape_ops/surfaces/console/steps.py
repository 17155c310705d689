"""Acting on a run's steps from the console: the typed equivalents of Slack's buttons.

A number runs a step; a write first shows the engine's plan and waits for a typed ``yes``;
missing inputs are asked for and validated; a checklist shows its items as numbered choices;
``r2`` applies a result's row action to row 2, filling the step's inputs from that row.
"""

from __future__ import annotations

import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from agape_ops.bootstrap import Container
from agape_ops.engine.commands import Command, MarkItemDone, Outcome, RunStep, SkipStep
from agape_ops.engine.records import Run
from agape_ops.engine.results import StepResult
from agape_ops.errors import UnknownStep
from agape_ops.runbooks.model import Runbook, Step
from agape_ops.surfaces.console import render
from agape_ops.surfaces.console.terminal import Cancelled, Terminal

T = TypeVar("T")


class Call(Protocol):
    """Run one coroutine to completion on the session's event loop (``asyncio.Runner.run``)."""

    def __call__(self, coro: Coroutine[Any, Any, T], /) -> T: ...


def new_key() -> str:
    """Return a fresh idempotency key: each typed command is a new click."""
    return f"console:{uuid.uuid4().hex}"


@dataclass
class LastResult:
    """The result whose rows ``r<N>`` choices act on."""

    run_id: str
    step: Step
    result: StepResult


@dataclass
class StepActions:
    """Runs steps, checklists and row actions for one person, through the engine only."""

    container: Container
    terminal: Terminal
    call: Call
    actor: str
    dry_run: bool = False
    last: LastResult | None = None

    def execute(self, command: Command) -> Outcome:
        """Send a command to the engine and report what the timeline did not already say."""
        terminal = self.terminal
        before = terminal.events
        outcome = self.call(self.container.engine.execute(command))
        quiet = terminal.events > before
        if not outcome.ok and outcome.error:
            terminal.failed = True
            if not quiet:
                terminal.fail(outcome.message, refusal=outcome.error == "PermissionDenied")
        elif not quiet and not (outcome.needs_inputs or outcome.needs_confirmation):
            terminal.show(render.ok_line(outcome.message))
        return outcome

    def step(self, runbook: Runbook, typed: str) -> Step:
        """Return the step a person named by its number in the walkthrough or by its id."""
        if typed.isdigit():
            numbered = render.numbered_steps(runbook)
            index = int(typed)
            if not 1 <= index <= len(numbered):
                raise UnknownStep(
                    f"no step {index}: {runbook.id}'s steps are numbered 1-{len(numbered)}"
                )
            return numbered[index - 1].step
        return self.container.engine.step_of(runbook, typed)

    def activate(self, run: Run, typed: str, inputs: dict[str, str]) -> None:
        """Do what clicking the step's button does: run it, or open its checklist."""
        runbook = self.container.engine.runbook_of(run)
        step = self.step(runbook, typed)
        if step.manual is not None:
            self.checklist(run, step)
        else:
            self.run_step(run, runbook, step, inputs)

    def skip(self, run: Run, typed: str, reason: str) -> None:
        """Skip a step (by number or id), keeping the reason on the timeline."""
        step = self.step(self.container.engine.runbook_of(run), typed)
        self.execute(SkipStep(run.id, step.id, self.actor, new_key(), reason=reason))

    def run_step(self, run: Run, runbook: Runbook, step: Step, inputs: dict[str, str]) -> None:
        """Run a step: ask for missing inputs, show a write's plan and take a typed yes."""
        engine = self.container.engine
        given = dict(inputs)
        if self.dry_run and not run.rehearsal and step.changes_things:
            self.terminal.show(render.plan_view(self.call(engine.plan(run.id, step.id, given))))
            self.terminal.fail(
                f"not executed: this console is a rehearsal (--dry-run) and {run.id} is a real "
                "run; open a rehearsal run to walk its writes"
            )
            return
        confirmed = False
        while True:
            outcome = self.execute(
                RunStep(run.id, step.id, self.actor, new_key(), inputs=given, confirmed=confirmed)
            )
            if outcome.needs_inputs:
                given.update(self.terminal.ask_inputs(runbook, outcome.needs_inputs))
                continue
            if outcome.needs_confirmation:
                plan = self.call(engine.plan(run.id, step.id, given))
                self.terminal.show(render.plan_view(plan))
                if plan.error:
                    self.terminal.failed = True
                    return
                answer = self.terminal.ask("Type yes to go ahead (anything else cancels): ")
                if answer.strip().lower() != "yes":
                    raise Cancelled
                confirmed = True
                continue
            if outcome.result is not None and outcome.step is not None:
                self.show_result(run.id, step, outcome.result)
            return

    def show_result(self, run_id: str, step: Step, result: StepResult) -> None:
        """Print a result; when its step has row actions, offer them as ``r<N>`` choices."""
        if not (result.columns or result.values or result.text):
            return
        actionable = bool(step.row_actions and result.rows)
        title = f"{step.title}: {result.summary}"
        if step.changes_things and result.columns:
            title += " (rows as they were before the change)"
        self.terminal.show(render.result_view(result, title=title, numbered=actionable))
        if actionable:
            self.last = LastResult(run_id, step, result)
            self.terminal.show(render.row_choices(step, result))

    def row_action(self, row: int, letter: str) -> None:
        """Apply row action ``letter`` (a, b ...; none means the first) to a row of the last
        result, filling the action step's inputs from the row's columns."""
        last, terminal = self.last, self.terminal
        if last is None:
            terminal.fail("no result with row actions yet: run a step that lists rows first")
            return
        actions = last.step.row_actions
        index = render.ROW_LETTERS.index(letter) if letter else 0
        if index >= len(actions):
            terminal.fail(f"“{last.step.title}” offers {len(actions)} row action(s)")
            return
        if not 1 <= row <= len(last.result.rows):
            terminal.fail(f"no row {row}: the last result has rows 1-{len(last.result.rows)}")
            return
        action, values = actions[index], last.result.rows[row - 1]
        missing = [column for column in action.inputs.values() if column not in values]
        if missing:
            terminal.fail(f"row {row} has no column {', '.join(missing)}")
            return
        engine = self.container.engine
        run = self.call(engine.get_run(last.run_id))
        runbook = engine.runbook_of(run)
        step = engine.step_of(runbook, action.step)
        inputs = {name: str(values[column]) for name, column in action.inputs.items()}
        shown = ", ".join(f"{name}={value}" for name, value in inputs.items())
        terminal.show(render.note_line(f"{action.button} row {row}: {shown}"))
        self.run_step(run, runbook, step, inputs)

    def checklist(self, run: Run, step: Step) -> None:
        """Show a checklist's items as numbered choices and mark the chosen ones done."""
        assert step.manual is not None  # noqa: S101 - only checklists come here
        record = self.call(self.container.store.get_steps(run.id)).get(step.id)
        self.terminal.show(render.checklist(step, record))
        count = len(step.manual.items)
        numbers = "1" if count == 1 else f"1-{count}"
        answer = self.terminal.ask(
            f"Mark done which items ({numbers}, `all`; empty leaves them): ", empty_ok=True
        ).strip()
        if not answer:
            return
        if answer.lower() == "all":
            self.mark_done(run, step, ())
            return
        words = answer.replace(",", " ").split()
        if not all(word.isdigit() for word in words):
            self.terminal.fail(f"item numbers are {numbers} or `all`")
            return
        self.mark_done(run, step, tuple(int(word) for word in words))

    def mark_done(self, run: Run, step: Step | str, items: tuple[int, ...]) -> None:
        """Mark checklist items done (numbers as typed, 1-based); none given means all."""
        if isinstance(step, str):
            step = self.step(self.container.engine.runbook_of(run), step)
        if step.manual is None:
            self.terminal.fail(f"“{step.title}” is not a checklist; run it with its number")
            return
        for item in items or tuple(range(1, len(step.manual.items) + 1)):
            self.execute(MarkItemDone(run.id, step.id, item - 1, self.actor, new_key()))
