"""The view of a run, built with no services: each of the seven runbooks in several states.

Every surface renders this view, so what a button says, whether it changes anything, what it
asks first and which command it sends is proved here once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agape_ops.engine.commands import Acknowledge, MarkItemDone, RunStep, SetState
from agape_ops.engine.records import Approval, Run, RunState, StepRecord, StepState
from agape_ops.engine.resolving import rehearsal_refusal
from agape_ops.engine.results import table
from agape_ops.engine.views import RunView, Style, Verb, run_view
from agape_ops.errors import InputError, UnknownStep
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.loader import load_team_file
from agape_ops.runbooks.model import Risk, Runbook
from agape_ops.runbooks.team import Team

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog([ROOT / "runbooks"])
TEAM = load_team_file(ROOT / "team.yaml")
T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SEVEN = sorted(CATALOG.runbooks)


def run_of(runbook: Runbook, state: RunState = RunState.OPEN, **changes: object) -> Run:
    run = Run("INC-7", 7, runbook.id, runbook.title, runbook.severity.value, state, "U1", T0)
    for name, value in changes.items():
        setattr(run, name, value)
    return run


def view_of(
    runbook: Runbook,
    records: dict[str, StepRecord] | None = None,
    state: RunState = RunState.OPEN,
    approvals: list[Approval] | None = None,
) -> RunView:
    return run_view(
        run_of(runbook, state),
        runbook,
        records or {},
        approvals or [],
        TEAM,
        now=T0 + timedelta(minutes=12),
    )


def test_the_seven_runbooks_are_loaded() -> None:
    assert len(SEVEN) == 7


@pytest.mark.parametrize("runbook_id", SEVEN)
def test_a_fresh_run_numbers_every_step_in_walkthrough_order_with_one_button_each(
    runbook_id: str,
) -> None:
    runbook = CATALOG.runbooks[runbook_id]
    view = view_of(runbook)

    assert [s.id for s in view.steps] == [s.id for s in runbook.steps()]
    assert [s.number for s in view.steps] == list(range(1, len(view.steps) + 1))
    assert all(s.state is StepState.PENDING and s.state_words == "to do" for s in view.steps)
    assert view.headline.problems == ()
    assert view.headline.age_words == "12 min 00 s"
    assert view.headline.owner == runbook.owner
    assert view.contacts  # the team file's, on every run
    assert view.dashboards
    for step in view.steps:
        (button,) = step.buttons
        assert button.action.run_id == "INC-7"
        assert button.action.step_id == step.id
        assert len(button.label) <= 75  # Slack's limit on a button's text
        if step.is_checklist:
            assert button.action.verb is Verb.CHECKLIST
            assert [i.number for i in step.items] == list(range(1, len(step.items) + 1))
        else:
            assert button.action.verb is Verb.RUN
        assert button.changes is (step.risk is not Risk.READ and not step.is_checklist)
        if button.changes:
            assert button.confirm  # every change is confirmed
            assert button.style is (Style.DANGER if step.risk is Risk.DANGEROUS else Style.PRIMARY)
        elif not step.is_checklist:
            assert button.confirm is None
            assert button.style is Style.DEFAULT


@pytest.mark.parametrize("runbook_id", SEVEN)
def test_after_detection_the_headline_says_what_is_wrong_and_each_step_its_finding(
    runbook_id: str,
) -> None:
    runbook = CATALOG.runbooks[runbook_id]
    detection = runbook.detection
    records = {
        step.id: StepRecord(
            "INC-7",
            step.id,
            StepState.FAILED if n == 0 else StepState.PASSED,
            finding=f"finding of {step.id}",
            result=table("1 row", ["x"], [{"x": 1}]).model_dump(mode="json"),
        )
        for n, step in enumerate(detection)
    }
    view = view_of(runbook, records, RunState.ACKNOWLEDGED)

    assert view.headline.problems == (f"finding of {detection[0].id}",)
    first = view.step(detection[0].id)
    assert (first.state_words, first.finding) == ("problem", f"finding of {detection[0].id}")
    assert first.result is not None
    assert first.result.rows == [{"x": 1}]
    assert [b.label for b in view.buttons] == ["Mitigated", "Resolve"]


@pytest.mark.parametrize("runbook_id", SEVEN)
@pytest.mark.parametrize(
    ("state", "labels"),
    [
        (RunState.OPEN, ["Acknowledge", "Mitigated", "Resolve"]),
        (RunState.MITIGATED, ["Resolve"]),
        (RunState.RESOLVED, ["Close"]),
        (RunState.CLOSED, []),
    ],
)
def test_the_run_offers_the_moves_its_state_allows(
    runbook_id: str, state: RunState, labels: list[str]
) -> None:
    view = view_of(CATALOG.runbooks[runbook_id], state=state)
    assert [b.label for b in view.buttons] == labels
    assert view.active is (state in (RunState.OPEN, RunState.ACKNOWLEDGED, RunState.MITIGATED))


def test_buttons_send_the_commands_they_say() -> None:
    view = view_of(CATALOG.runbooks["inventory-oversell"])
    correct = view.step("correct_stock")
    command = correct.buttons[0].action.command("U2", "k1", confirmed=True)
    assert command == RunStep("INC-7", "correct_stock", "U2", "k1", inputs={}, confirmed=True)
    assert correct.buttons[0].label == "Correct stock"
    assert correct.buttons[0].role == "an approver"
    assert correct.confirm == correct.buttons[0].confirm
    (ack, _mitigated, resolve) = view.buttons
    assert ack.action.command("U2", "k2") == Acknowledge("INC-7", "U2", "k2")
    assert resolve.action.command("U2", "k3", note="fixed") == SetState(
        "INC-7", "resolved", "U2", "k3", note="fixed"
    )
    checklist = next(s for s in view.steps if s.is_checklist)
    mark = checklist.buttons[0].action.command("U2", "k4", item=1)
    assert mark == MarkItemDone("INC-7", checklist.id, 1, "U2", "k4")


def test_a_checklist_shows_items_done_and_how_far_it_got() -> None:
    runbook = CATALOG.runbooks["inventory-oversell"]
    checklist = next(s for s in runbook.steps() if s.manual is not None)
    assert checklist.manual is not None
    view = view_of(runbook, {checklist.id: StepRecord("INC-7", checklist.id, items_done=[0])})
    shown = view.step(checklist.id)
    assert shown.state_words == f"1/{len(checklist.manual.items)} done"
    assert [i.done for i in shown.items][:2] == [True, False]


def test_row_actions_fill_the_action_steps_inputs_from_a_row() -> None:
    view = view_of(CATALOG.runbooks["failed-webhook-processing"])
    actions = [a for s in view.steps for a in s.row_actions]
    action = next(a for a in actions if a.button == "Reprocess")
    target = view.step(action.step_id)
    row = {column: f"value-{column}" for column in action.columns.values()}

    inputs = action.inputs_from(row)

    assert set(inputs) == {field.name for field in target.inputs}
    with pytest.raises(InputError, match="has no column"):
        action.inputs_from({})


def test_an_input_form_says_what_to_type_and_never_prefills_a_secret() -> None:
    runbook = CATALOG.runbooks["database-failover"]
    secret_steps = [s for s in runbook.steps() if any(runbook.inputs[i].secret for i in s.inputs)]
    public = [s for s in runbook.steps() if s.inputs and s not in secret_steps]
    run = view_of(runbook)
    for step in secret_steps:
        for field in run.step(step.id).inputs:
            if field.secret:
                assert field.prefilled is None
    for step in public:
        for field in run.step(step.id).inputs:
            assert field.label
            assert field.pattern


def test_pending_approvals_say_who_approved_which_values() -> None:
    runbook = CATALOG.runbooks["security-incident"]
    two_person = next(s for s in runbook.steps() if s.two_person)
    approval = Approval("INC-7", f"{two_person.id}@abc", "U_A1", T0, {"user_id": "u-42"})

    view = view_of(runbook, approvals=[approval])

    (pending,) = view.approvals
    assert (pending.step_id, pending.step_title) == (two_person.id, two_person.title)
    assert pending.approvers == ("U_A1",)
    assert pending.values == {"user_id": "u-42"}


def test_steps_are_found_by_number_or_id_and_a_wrong_one_says_which_exist() -> None:
    view = view_of(CATALOG.runbooks["queue-backlog"])
    assert view.step("1") == view.steps[0]
    assert view.step(view.steps[2].id) == view.steps[2]
    with pytest.raises(UnknownStep, match=f"numbered 1-{len(view.steps)}"):
        view.step("99")
    with pytest.raises(UnknownStep, match="has no step 'nope'"):
        view.step("nope")
    with pytest.raises(UnknownStep):
        view.step("²")


def test_a_rehearsing_surface_refuses_a_real_runs_writes_only() -> None:
    runbook = CATALOG.runbooks["inventory-oversell"]
    view = view_of(runbook)
    write, read = view.step("correct_stock"), view.steps[0]
    assert rehearsal_refusal(view.run, write, rehearsing=True) is not None
    assert rehearsal_refusal(view.run, read, rehearsing=True) is None
    assert rehearsal_refusal(view.run, write, rehearsing=False) is None
    rehearsal = run_view(run_of(runbook, rehearsal=True), runbook, {}, [], Team(), now=T0)
    assert rehearsal_refusal(rehearsal.run, write, rehearsing=True) is None


def test_a_run_whose_runbook_is_gone_still_shows_its_moves() -> None:
    run = run_of(CATALOG.runbooks["queue-backlog"], RunState.ACKNOWLEDGED)
    view = run_view(run, None, {}, [], TEAM, now=T0)
    assert not view.runbook_loaded
    assert view.steps == ()
    assert [b.label for b in view.buttons] == ["Mitigated", "Resolve"]
