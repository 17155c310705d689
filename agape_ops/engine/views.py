"""The surface-neutral view of a run: what every surface shows, decided once.

Plain frozen dataclasses built by a pure function of the run's records: the headline, the steps
in walkthrough order with their numbers, states, findings and the buttons each offers (label,
style, whether it changes anything, the confirmation, who may press it and the command it
sends), row actions, the input form a step needs, pending approvals, contacts and dashboards.
The console formats it for a terminal; the Slack surface formats the same view as Block Kit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from agape_ops.alerts.model import Alert
from agape_ops.engine.commands import (
    Acknowledge,
    Command,
    MarkItemDone,
    RunStep,
    SetState,
)
from agape_ops.engine.context import validate_value
from agape_ops.engine.headline import Headline, Problem, incident_down, problems, shown_state
from agape_ops.engine.records import ACTIVE_STATES, Approval, Run, RunState, StepRecord, StepState
from agape_ops.engine.resolving import resolve_question, unsettled_now
from agape_ops.engine.results import StepResult
from agape_ops.engine.steps import confirm_text, written_command
from agape_ops.engine.watch_views import MonitorView, WatchView, monitor_view, run_watch
from agape_ops.errors import InputError, UnknownStep
from agape_ops.runbooks.model import SECTION_TITLES, Risk, Runbook, Step
from agape_ops.runbooks.team import Contact, Dashboard, Team

#: Letters that pick among several row actions on one row: the second action on row 2 is r2b.
ROW_LETTERS = "abcdefghij"


class Verb(StrEnum):
    """What pressing a button asks for."""

    RUN = "run"  # run the step (a write asks its confirmation first)
    CHECKLIST = "checklist"  # open a manual step's items to mark them done
    ACK = "ack"
    MITIGATED = "mitigated"
    RESOLVE = "resolve"
    CLOSE = "close"


class Style(StrEnum):
    PRIMARY = "primary"
    DANGER = "danger"
    DEFAULT = "default"


@dataclass(frozen=True)
class Action:
    """The command a button sends, less who pressed it and the click's key."""

    verb: Verb
    run_id: str
    step_id: str | None = None

    def command(
        self,
        actor: str,
        key: str,
        *,
        inputs: Mapping[str, str] | None = None,
        confirmed: bool = False,
        item: int | None = None,
        note: str = "",
    ) -> Command:
        """Return the engine command of this press (``item`` for a checklist's item, 0-based)."""
        if self.verb is Verb.RUN and self.step_id:
            return RunStep(
                self.run_id,
                self.step_id,
                actor,
                key,
                inputs=dict(inputs or {}),
                confirmed=confirmed,
            )
        if self.verb is Verb.CHECKLIST and self.step_id and item is not None:
            return MarkItemDone(self.run_id, self.step_id, item, actor, key)
        if self.verb is Verb.ACK:
            return Acknowledge(self.run_id, actor, key)
        if self.verb in _STATE_OF:
            return SetState(self.run_id, _STATE_OF[self.verb], actor, key, note=note)
        raise ValueError(f"a {self.verb} button needs a step (and an item for a checklist)")


_STATE_OF = {Verb.MITIGATED: "mitigated", Verb.RESOLVE: "resolved", Verb.CLOSE: "closed"}


@dataclass(frozen=True)
class Button:
    """One button: what it says, how it looks, what it asks first, who may press it."""

    label: str
    action: Action
    style: Style = Style.DEFAULT
    changes: bool = False
    confirm: str | None = None
    role: str = "anyone"


@dataclass(frozen=True)
class RowAction:
    """A follow-up a result offers on each of its rows (Reprocess this webhook)."""

    letter: str
    button: str
    step_id: str
    columns: Mapping[str, str]  # the action step's input name -> the row's column

    def inputs_from(self, row: Mapping[str, object]) -> dict[str, str]:
        """Return the action step's inputs filled from a row; raise when a column is missing."""
        missing = [column for column in self.columns.values() if column not in row]
        if missing:
            raise InputError(f"the row has no column {', '.join(missing)}")
        return {name: str(row[column]) for name, column in self.columns.items()}


@dataclass(frozen=True)
class InputField:
    """One value a step asks for: label, example, validation, and what is already known."""

    name: str
    label: str
    pattern: str
    example: str | None = None
    secret: bool = False
    prefilled: str | None = None

    def validate(self, value: str) -> str:
        """Return the value as the step will get it, or raise InputError saying what is wrong."""
        return validate_value(
            self.name,
            value,
            pattern=self.pattern,
            label=self.label,
            example=self.example,
            secret=self.secret,
        )


@dataclass(frozen=True)
class ChecklistItem:
    number: int  # 1-based, as typed
    text: str
    command: str | None
    done: bool


@dataclass(frozen=True)
class StepView:
    """One step as a person sees it in the walkthrough."""

    number: int
    section: str
    section_title: str
    id: str
    title: str
    description: str | None
    kind: str  # postgres, redis, ..., or checklist
    risk: Risk
    state: StepState
    state_words: str
    finding: str | None
    error: str | None
    result: StepResult | None
    buttons: tuple[Button, ...]
    items: tuple[ChecklistItem, ...] = ()
    row_actions: tuple[RowAction, ...] = ()
    inputs: tuple[InputField, ...] = ()
    confirm: str | None = None
    lock: str | None = None
    two_person: bool = False
    attempts: int = 0  # how many times it has run: a press says which state it saw
    by_hand: str | None = None  # shell off: the command to copy; a press only hands it over
    monitor: MonitorView | None = None  # a monitor step's watch (engine/watch_views.py)

    @property
    def changes(self) -> bool:
        """Say whether pressing it changes anything (a command handed over changes nothing)."""
        return self.risk is not Risk.READ and self.by_hand is None

    @property
    def is_checklist(self) -> bool:
        return self.kind == "checklist"

    @property
    def label(self) -> str:
        """Return what the step's main button says."""
        return self.buttons[0].label if self.buttons else self.title


@dataclass(frozen=True)
class ApprovalView:
    """A two-person step waiting for its second approver: who approved which values."""

    step_id: str
    step_title: str
    approvers: tuple[str, ...]
    values: Mapping[str, str]


@dataclass(frozen=True)
class RunView:
    """Everything a surface shows of one run."""

    run: Run
    headline: Headline
    steps: tuple[StepView, ...]
    buttons: tuple[Button, ...]
    approvals: tuple[ApprovalView, ...] = ()
    contacts: tuple[Contact, ...] = ()
    dashboards: tuple[Dashboard, ...] = ()
    runbook_loaded: bool = True
    watch: WatchView = field(default_factory=WatchView)  # escalation, re-checks (watch_views)

    @property
    def active(self) -> bool:
        return self.run.state in ACTIVE_STATES

    def step(self, typed: str) -> StepView:
        """Return the step a person named by its number in the walkthrough or by its id."""
        typed = typed.strip()
        if typed.isascii() and typed.isdigit() and len(typed) <= 4:
            index = int(typed)
            if not 1 <= index <= len(self.steps):
                raise UnknownStep(
                    f"no step {index}: {self.run.runbook_id}'s steps are numbered "
                    f"1-{len(self.steps)}"
                )
            return self.steps[index - 1]
        for step in self.steps:
            if step.id == typed:
                return step
        known = ", ".join(s.id for s in self.steps)
        raise UnknownStep(f"{self.run.runbook_id} has no step {typed!r} (steps: {known})")


def role_of(step: Step) -> str:
    """Say who may run a step."""
    if step.risk is Risk.DANGEROUS:
        return "an approver"
    if step.risk is Risk.WRITE:
        return "a responder"
    return "anyone"


def kind_of(step: Step) -> str:
    return "checklist" if step.manual is not None else step.kind


def state_words(step: Step, record: StepRecord | None) -> str:
    """Say a step's state as a person reads it ("problem", "2/3 done", "to do")."""
    if record is None:
        return StepState.PENDING.words
    if incident_down(step, record.state):  # its system down is the problem it found
        return StepState.FAILED.words
    if step.manual is not None and record.state is StepState.PENDING and record.items_done:
        return f"{len(record.items_done)}/{len(step.manual.items)} done"
    return record.state.words


def repeat_note(step: Step, record: StepRecord | None) -> str:
    """Say that a change without inputs was already made, when and by whom, else nothing."""
    if record is None or not step.changes_things or step.inputs or step.manual is not None:
        return ""
    if record.state is not StepState.DONE or record.finished_at is None:
        return ""
    return (
        f"Already done at {record.finished_at:%H:%M} UTC by {record.actor}; "
        "this would do it again. "
    )


def step_buttons(
    run_id: str, step: Step, record: StepRecord | None = None, *, by_hand: bool = False
) -> tuple[Button, ...]:
    """Return the button a step offers: one place decides its label, style and confirmation."""
    if by_hand:  # shell off: the press shows the command to copy and asks nothing
        return (Button("Show command", Action(Verb.RUN, run_id, step.id), role=role_of(step)),)
    if step.manual is not None:
        return (Button("Mark done", Action(Verb.CHECKLIST, run_id, step.id), role=role_of(step)),)
    if step.risk is Risk.READ:
        return (Button(step.button or "Run", Action(Verb.RUN, run_id, step.id)),)
    style = Style.DANGER if step.risk is Risk.DANGEROUS else Style.PRIMARY
    return (
        Button(
            step.button or step.title,
            Action(Verb.RUN, run_id, step.id),
            style=style,
            changes=True,
            confirm=repeat_note(step, record) + confirm_text(step),
            role=role_of(step),
        ),
    )


def input_fields(runbook: Runbook, step: Step, run: Run) -> tuple[InputField, ...]:
    """Return the form a step's inputs need, prefilled with what the run knows (never secrets)."""
    fields = []
    alert = Alert.model_validate(run.alert) if run.alert else None
    for name in step.inputs:
        spec = runbook.inputs[name]
        known = run.inputs.get(name)
        if known is None and alert is not None and spec.from_alert:
            found = alert.lookup(spec.from_alert)
            known = str(found) if found is not None else None
        known = None if spec.secret else known if known is not None else spec.default
        fields.append(
            InputField(
                name=name,
                label=spec.description,
                pattern=spec.pattern,
                example=spec.example,
                secret=spec.secret,
                prefilled=known,
            )
        )
    return tuple(fields)


def _step_view(
    number: int,
    section: str,
    run: Run,
    runbook: Runbook,
    step: Step,
    *,
    record: StepRecord | None,
    allow_shell: bool = True,
) -> StepView:
    by_hand = None if allow_shell or run.rehearsal else written_command(step)
    items: tuple[ChecklistItem, ...] = ()
    if step.manual is not None:
        done = set(record.items_done) if record else set()
        finished = record is not None and record.state is StepState.DONE
        items = tuple(
            ChecklistItem(i + 1, item.text, item.command, finished or i in done)
            for i, item in enumerate(step.manual.items)
        )
    result = None
    if record is not None and record.result:
        result = StepResult.model_validate(record.result)
    actions = tuple(
        RowAction(
            ROW_LETTERS[i] if len(step.row_actions) > 1 else "",
            action.button,
            action.step,
            dict(action.inputs),
        )
        for i, action in enumerate(step.row_actions[: len(ROW_LETTERS)])
    )
    return StepView(
        number=number,
        section=section,
        section_title=SECTION_TITLES[section],
        id=step.id,
        title=step.title,
        description=step.description,
        kind=kind_of(step),
        risk=step.risk,
        state=shown_state(step, record.state) if record else StepState.PENDING,
        state_words=state_words(step, record),
        finding=record.finding if record else None,
        error=record.error if record else None,
        result=result,
        buttons=step_buttons(run.id, step, record, by_hand=by_hand is not None),
        items=items,
        row_actions=actions,
        inputs=input_fields(runbook, step, run),
        confirm=(
            repeat_note(step, record) + confirm_text(step)
            if step.changes_things and by_hand is None
            else None
        ),
        lock=step.lock,
        two_person=step.two_person,
        attempts=record.attempts if record else 0,
        by_hand=by_hand,
        monitor=monitor_view(step, record),
    )


def _problems(runbook: Runbook | None, steps: Iterable[StepView]) -> tuple[Problem, ...]:
    """Return what is wrong now, ranked (``engine/headline.py``): found, cause, finding, warning."""
    if runbook is None:
        return ()
    return problems(
        (s.section, step, s.state, s.finding or f"{s.title}: {s.error or 'error'}")
        for s in steps
        if (step := runbook.step(s.id)) is not None
    )


def run_buttons(run: Run, *, unsettled: Iterable[str] = ()) -> tuple[Button, ...]:
    """Return the buttons that move the run along its life from where it is now. Resolve's
    confirmation names what is ``unsettled`` (detection checks still showing the problem,
    approvals waiting): pressing through it resolves the run anyway."""
    buttons: list[Button] = []
    if run.state is RunState.OPEN:
        buttons.append(
            Button("Acknowledge", Action(Verb.ACK, run.id), Style.PRIMARY, role="a responder")
        )
    if run.state in (RunState.OPEN, RunState.ACKNOWLEDGED):
        buttons.append(
            Button("Mitigated", Action(Verb.MITIGATED, run.id), changes=True, role="a responder")
        )
    if run.state in ACTIVE_STATES:
        buttons.append(
            Button(
                "Resolve",
                Action(Verb.RESOLVE, run.id),
                changes=True,
                confirm=resolve_question(run, list(unsettled)),
                role="a responder",
            )
        )
    if run.state is RunState.RESOLVED:
        buttons.append(
            Button("Close", Action(Verb.CLOSE, run.id), changes=True, role="a responder")
        )
    return tuple(buttons)


def run_view(
    run: Run,
    runbook: Runbook | None,
    records: Mapping[str, StepRecord],
    approvals: Iterable[Approval],
    team: Team,
    *,
    now: datetime,
    allow_shell: bool = True,
) -> RunView:
    """Build the view of a run from its records; pure, so every surface gets the same."""
    steps: list[StepView] = []
    if runbook is not None:
        for section, section_steps in runbook.sections():
            for step in section_steps:
                view = _step_view(
                    len(steps) + 1,
                    section,
                    run,
                    runbook,
                    step,
                    record=records.get(step.id),
                    allow_shell=allow_shell,
                )
                steps.append(view)
    titles = {s.id: s.title for s in steps}
    pending: dict[str, list[Approval]] = {}
    for approval in approvals:
        pending.setdefault(approval.subject, []).append(approval)
    approval_views = tuple(
        ApprovalView(
            step_id=group[0].step_id,
            step_title=titles.get(group[0].step_id, group[0].step_id),
            approvers=tuple(a.approver for a in group),
            values=dict(group[0].shown),
        )
        for group in pending.values()
    )
    headline = Headline(
        state=run.state,
        severity=run.severity,
        owner=runbook.owner if runbook else None,
        age=now - run.created_at,
        items=_problems(runbook, steps),
    )
    return RunView(
        run=run,
        headline=headline,
        steps=tuple(steps),
        buttons=run_buttons(run, unsettled=unsettled_now(steps, approval_views)),
        approvals=approval_views,
        contacts=tuple(team.contacts),
        dashboards=tuple(team.dashboards),
        runbook_loaded=runbook is not None,
        watch=run_watch(run.watch, run.severity, runbook, team),
    )
