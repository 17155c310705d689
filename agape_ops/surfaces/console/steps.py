"""Acting on a run's steps from the console: the typed equivalents of Slack's buttons.

A number runs a step; a write first shows the engine's plan and waits for a typed ``yes``;
missing inputs are asked for and validated; a checklist shows its items as numbered choices;
``r2`` applies a result's row action to row 2, filling the step's inputs from that row. What a
step is, what its button does and what it asks is read from the engine's view of the run.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from agape_ops.engine.commands import (
    PRECONDITION_UNMET,
    Command,
    MarkItemDone,
    Outcome,
    SetState,
    Status,
)
from agape_ops.engine.engine import Engine
from agape_ops.engine.resolving import rehearsal_refusal
from agape_ops.engine.results import StepResult
from agape_ops.engine.views import ROW_LETTERS, RunView, StepView
from agape_ops.surfaces.console import render
from agape_ops.surfaces.console.terminal import Cancelled, Terminal
from agape_ops.surfaces.ops_actions import commands_for
from agape_ops.surfaces.ops_command import OpsCommand

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
    step: StepView
    result: StepResult


@dataclass
class StepActions:
    """Runs steps, checklists and row actions for one person, through the engine only."""

    engine: Engine
    terminal: Terminal
    call: Call
    actor: str
    dry_run: bool = False
    last: LastResult | None = None

    def execute(self, command: Command) -> Outcome:
        """Send a command to the engine and report what the timeline did not already say."""
        terminal = self.terminal
        before = terminal.events
        outcome = self.call(self.engine.execute(command))
        quiet = terminal.events > before
        asking = outcome.status in (Status.NEEDS_INPUTS, Status.NEEDS_CONFIRMATION)
        if outcome.error == PRECONDITION_UNMET:  # nothing to do is an answer, not a failure
            if not quiet:
                terminal.show(render.note_line(outcome.message))
        elif not outcome.ok and outcome.error:
            terminal.failed = True
            if not quiet:
                terminal.fail(outcome.message, refusal=outcome.error == "PermissionDenied")
        elif not quiet and not asking:
            terminal.show(render.ok_line(outcome.message))
        return outcome

    def change(self, command: Command) -> Outcome:
        """Send a command typed as `/ops`; a resolve the engine questions (a check still shows
        the problem, an approval waits) is said and needs a typed yes."""
        outcome = self.execute(command)
        if outcome.needs_confirmation and isinstance(command, SetState):
            self.terminal.show(render.warning_line(outcome.message))
            answer = self.terminal.ask("Type yes to resolve it anyway (anything else cancels): ")
            if answer.strip().lower() != "yes":
                raise Cancelled
            outcome = self.execute(dataclasses.replace(command, key=new_key(), confirmed=True))
        return outcome

    def view(self, run_id: str) -> RunView:
        return self.call(self.engine.view(run_id))

    def activate(self, run_id: str, typed: str, inputs: dict[str, str]) -> None:
        """Do what clicking the step's button does: run it, or open its checklist."""
        view = self.view(run_id)
        step = view.step(typed)
        if step.is_checklist:
            self.checklist(view, step)
        else:
            self.run_step(view, step, inputs)

    def run_step(self, view: RunView, step: StepView, inputs: dict[str, str]) -> None:
        """Run a step: ask for missing inputs, show a write's plan and take a typed yes."""
        run = view.run
        given = dict(inputs)
        refusal = rehearsal_refusal(run, step, rehearsing=self.dry_run)
        if refusal is not None:
            plan = self.call(self.engine.plan(run.id, step.id, given))
            self.terminal.show(render.plan_view(plan))
            self.terminal.fail(refusal)
            return
        confirmed = False
        while True:
            press = step.buttons[0].action
            command = press.command(self.actor, new_key(), inputs=given, confirmed=confirmed)
            outcome = self.execute(command)
            if outcome.status is Status.NEEDS_INPUTS:
                fields = [f for f in step.inputs if f.name in outcome.needs_inputs]
                given.update(self.terminal.ask_inputs(fields))
                continue
            if outcome.status is Status.NEEDS_CONFIRMATION:
                plan = self.call(self.engine.plan(run.id, step.id, given))
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

    def show_result(self, run_id: str, step: StepView, result: StepResult) -> None:
        """Print a result; when its step has row actions, offer them as ``r<N>`` choices.

        An empty table is not printed: the step's finding, already on screen, says so.
        """
        if not (result.rows or result.values or result.text):
            return
        actionable = bool(step.row_actions and result.rows)
        title = f"{step.title}: {result.summary}"
        if step.changes and result.columns:
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
        index = ROW_LETTERS.index(letter) if letter else 0
        if index >= len(actions):
            terminal.fail(f"“{last.step.title}” offers {len(actions)} row action(s)")
            return
        if not 1 <= row <= len(last.result.rows):
            terminal.fail(f"no row {row}: the last result has rows 1-{len(last.result.rows)}")
            return
        action = actions[index]
        inputs = action.inputs_from(last.result.rows[row - 1])
        view = self.view(last.run_id)
        step = view.step(action.step_id)
        shown = ", ".join(f"{name}={value}" for name, value in inputs.items())
        terminal.show(render.note_line(f"{action.button} row {row}: {shown}"))
        self.run_step(view, step, inputs)

    def checklist(self, view: RunView, step: StepView) -> None:
        """Show a checklist's items as numbered choices and mark the chosen ones done."""
        self.terminal.show(render.checklist(step))
        count = len(step.items)
        numbers = "1" if count == 1 else f"1-{count}"
        answer = self.terminal.ask(
            f"Mark done which items ({numbers}, `all`; empty leaves them): ", empty_ok=True
        ).strip()
        if not answer:
            return
        if answer.lower() == "all":
            self.mark_done(view, step, ())
            return
        words = answer.replace(",", " ").split()
        if not all(word.isascii() and word.isdigit() and len(word) <= 4 for word in words):
            self.terminal.fail(f"item numbers are {numbers} or `all`")
            return
        self.mark_done(view, step, tuple(int(word) for word in words))

    def mark_done(self, view: RunView, step: StepView, items: tuple[int, ...]) -> None:
        """Mark checklist items done (numbers as typed, 1-based); none given means all."""
        done = OpsCommand("done", run_id=view.run.id, target=step.id, items=items)
        for command in commands_for(done, view, self.actor, new_key):
            outcome = self.execute(command)
            if outcome.status is Status.NEEDS_CONFIRMATION and isinstance(command, MarkItemDone):
                # A guarded checklist (a dangerous manual step): confirmed like any change.
                self.terminal.show(render.guarded(step))
                answer = self.terminal.ask("Type yes to go ahead (anything else cancels): ")
                if answer.strip().lower() != "yes":
                    raise Cancelled
                again = dataclasses.replace(command, key=new_key(), confirmed=True)
                if not self.execute(again).ok:
                    return
            elif not outcome.ok:
                return
