"""Who may do what: anyone reads, responders and approvers write, approvers alone do dangerous
things, a second and different approver for two-person steps; and a refusal names who may,
changes nothing, and is written to the timeline."""

from __future__ import annotations

import copy

import engine_fixtures as ef
import pytest
from engine_fixtures import APPROVER, RESPONDER, SECOND_APPROVER, STRANGER, Harness
from engine_runbook import RUNBOOK, RUNBOOK_ID

from agape_ops.engine.commands import MarkItemDone, SkipStep, Status
from agape_ops.engine.permissions import Permissions
from agape_ops.engine.records import RunState, StepState
from agape_ops.runbooks.model import Runbook

pytestmark = pytest.mark.integration

store_url = ef.sqlite_url
harness = ef.harness


@pytest.mark.parametrize("actor", [STRANGER, RESPONDER, APPROVER])
async def test_anyone_may_run_a_read_step(harness: Harness, actor: str) -> None:
    run = await harness.start_run()

    outcome = await harness.step(run.id, "orders_on_sku", actor=actor)

    assert outcome.ok, outcome.message
    assert len(harness.postgres.calls("orders_on_sku")) == 1


@pytest.mark.parametrize("actor", [RESPONDER, APPROVER])
async def test_responders_and_approvers_may_run_a_write_step(harness: Harness, actor: str) -> None:
    run = await harness.start_run()

    outcome = await harness.step(
        run.id, "restock_sku", inputs={"sku": "TEE-042"}, actor=actor, confirmed=True
    )

    assert outcome.ok, outcome.message
    assert outcome.step is not None
    assert outcome.step.state is StepState.DONE
    assert len(harness.postgres.calls("restock_sku")) == 1


async def test_a_stranger_is_refused_a_write_step_and_told_who_may(harness: Harness) -> None:
    run = await harness.start_run()
    before = await harness.run(run.id)

    outcome = await harness.step(
        run.id, "restock_sku", inputs={"sku": "TEE-042"}, actor=STRANGER, confirmed=True
    )

    assert not outcome.ok
    assert outcome.error == "PermissionDenied"
    assert outcome.message == (
        f"“Zero stock” requires a responder ({APPROVER}, {SECOND_APPROVER}, {RESPONDER})"
    )
    assert harness.postgres.calls("restock_sku") == []
    after = await harness.run(run.id)
    assert after == before
    assert after.state is RunState.OPEN
    assert "restock_sku" not in await harness.steps(run.id)
    refusal = (await harness.events(run.id))[-1]
    assert (refusal.kind, refusal.actor, refusal.step_id) == (
        "step.refused",
        STRANGER,
        "restock_sku",
    )
    assert refusal.outcome == "refused"
    assert "requires a responder" in refusal.summary


@pytest.mark.parametrize("actor", [STRANGER, RESPONDER])
async def test_only_an_approver_may_run_a_dangerous_step(harness: Harness, actor: str) -> None:
    run = await harness.start_run()

    outcome = await harness.step(run.id, "correct_stock", actor=actor, confirmed=True)

    assert not outcome.ok
    assert outcome.error == "PermissionDenied"
    assert outcome.message == (
        f"“Correct stock” requires an approver ({APPROVER}, {SECOND_APPROVER})"
    )
    assert harness.postgres.calls("correct_stock") == []
    assert await harness.store.add_approval(run.id, "correct_stock", APPROVER) == [APPROVER]
    assert (await harness.kinds(run.id))[-1] == "step.refused"


async def test_with_nobody_configured_the_refusal_says_so(harness: Harness) -> None:
    harness.engine.permissions = Permissions()
    run = await harness.start_run()

    outcome = await harness.step(
        run.id, "restock_sku", inputs={"sku": "TEE-042"}, actor=RESPONDER, confirmed=True
    )

    assert not outcome.ok
    assert "nobody is configured" in outcome.message


async def test_two_person_step_runs_only_after_a_second_different_approver(
    harness: Harness,
) -> None:
    run = await harness.start_run()

    first = await harness.step(run.id, "correct_stock", actor=APPROVER, confirmed=True)
    same_again = await harness.step(run.id, "correct_stock", actor=APPROVER, confirmed=True)

    assert not first.ok
    assert first.error is None
    assert first.message.startswith(f"Approved by {APPROVER}.")
    assert "second, different approver" in first.message
    assert not same_again.ok
    assert "second, different approver" in same_again.message
    assert harness.postgres.calls("correct_stock") == []
    assert "correct_stock" not in await harness.steps(run.id)

    second = await harness.step(run.id, "correct_stock", actor=SECOND_APPROVER, confirmed=True)

    assert second.ok, second.message
    assert second.message == "Stock set to 0 on 2 product variants"
    assert len(harness.postgres.calls("correct_stock")) == 1
    record = (await harness.steps(run.id))["correct_stock"]
    assert (record.state, record.actor) == (StepState.DONE, SECOND_APPROVER)
    events = await harness.events(run.id)
    approvals = [e for e in events if e.kind == "step.approved"]
    assert [e.actor for e in approvals] == [APPROVER, APPROVER]
    assert events[-1].kind == "step.finished"
    assert events[-1].actor == SECOND_APPROVER


async def test_approvals_are_cleared_once_a_two_person_step_has_run(harness: Harness) -> None:
    run = await harness.start_run()
    await harness.step(run.id, "correct_stock", actor=APPROVER, confirmed=True)
    await harness.step(run.id, "correct_stock", actor=SECOND_APPROVER, confirmed=True)

    rerun = await harness.step(run.id, "correct_stock", actor=APPROVER, confirmed=True)

    assert not rerun.ok
    assert "second, different approver" in rerun.message
    assert len(harness.postgres.calls("correct_stock")) == 1


def _two_person_step_with_an_input() -> Runbook:
    """Return the test runbook with "Correct stock levels" taking the SKU it corrects."""
    book = copy.deepcopy(RUNBOOK)
    correct = next(s for s in book["actions"] if s["id"] == "correct_stock")
    correct["inputs"] = ["sku"]
    correct["postgres"] = {
        "sql": "UPDATE product_variants SET stock = 0 WHERE sku = %(sku)s AND stock < 0",
        "params": {"sku": "{{ inputs.sku }}"},
    }
    return Runbook.model_validate(book)


async def test_a_second_approval_of_other_values_does_not_run_what_the_first_approved(
    harness: Harness,
) -> None:
    runbooks = {RUNBOOK_ID: _two_person_step_with_an_input()}
    harness.engine = ef.build_engine(harness.store, harness.adapters, harness.clock, runbooks)
    run = await harness.start_run(with_alert=False, actor=RESPONDER)

    first = await harness.step(
        run.id, "correct_stock", actor=APPROVER, confirmed=True, inputs={"sku": "TEE-042"}
    )
    other = await harness.step(
        run.id, "correct_stock", actor=SECOND_APPROVER, confirmed=True, inputs={"sku": "CAP-007"}
    )

    assert "second, different approver" in first.message
    assert not other.ok
    assert "second, different approver" in other.message
    assert harness.postgres.calls("correct_stock") == []

    agreed = await harness.step(
        run.id, "correct_stock", actor=APPROVER, confirmed=True, inputs={"sku": "CAP-007"}
    )

    assert agreed.ok, agreed.message
    assert [r.params for r in harness.postgres.calls("correct_stock")] == [{"sku": "CAP-007"}]
    approved = [e for e in await harness.events(run.id) if e.kind == "step.approved"]
    assert [e.detail["inputs"] for e in approved] == [{"sku": "TEE-042"}, {"sku": "CAP-007"}]


async def test_an_approval_needs_the_confirmation_first(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.step(run.id, "correct_stock", actor=APPROVER)

    assert outcome.needs_confirmation
    assert outcome.message == "Set every negative stock to 0?"
    assert "step.approved" not in await harness.kinds(run.id)
    second = await harness.step(run.id, "correct_stock", actor=SECOND_APPROVER, confirmed=True)
    assert not second.ok
    assert harness.postgres.calls("correct_stock") == []


async def test_a_stranger_may_not_change_a_runs_state_and_the_refusal_is_recorded(
    harness: Harness,
) -> None:
    run = await harness.start_run()
    before = await harness.run(run.id)

    outcome = await harness.set_state(run.id, "resolved", actor=STRANGER)

    assert not outcome.ok
    assert outcome.error == "PermissionDenied"
    assert "requires a responder" in outcome.message
    assert await harness.run(run.id) == before
    refusal = (await harness.events(run.id))[-1]
    assert (refusal.kind, refusal.actor, refusal.outcome) == ("state.refused", STRANGER, "refused")


async def test_a_stranger_may_not_tick_off_a_write_checklist(harness: Harness) -> None:
    run = await harness.start_run()

    refused = await harness.mark(run.id, "isolate", 0, actor=STRANGER)
    unconfirmed = await harness.mark(run.id, "isolate", 0, actor=RESPONDER)
    allowed = await harness.engine.execute(
        MarkItemDone(run.id, "isolate", 0, RESPONDER, harness.key(), confirmed=True)
    )

    assert unconfirmed.status is Status.NEEDS_CONFIRMATION  # a checklist that changes things
    assert not refused.ok
    assert refused.error == "PermissionDenied"
    assert "“Isolate the checkout” requires a responder" in refused.message
    assert allowed.ok
    kinds = await harness.kinds(run.id)
    assert kinds[-3:] == ["step.refused", "run.acknowledged", "item.done"]
    assert (await harness.run(run.id)).acknowledged_by == RESPONDER


async def test_a_rehearsal_still_checks_permissions(harness: Harness) -> None:
    run = await harness.start_run(rehearsal=True)

    outcome = await harness.step(run.id, "correct_stock", actor=RESPONDER, confirmed=True)

    assert outcome.error == "PermissionDenied"
    assert harness.postgres.calls("correct_stock") == []


async def test_a_stranger_may_not_skip_a_write_step(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.engine.execute(
        SkipStep(run_id=run.id, step_id="restock_sku", actor=STRANGER, key=harness.key())
    )

    assert not outcome.ok
    assert outcome.error == "PermissionDenied"
    assert "restock_sku" not in await harness.steps(run.id)
    assert (await harness.events(run.id))[-1].kind == "step.refused"


async def test_a_stranger_may_not_set_an_input_a_write_would_use(harness: Harness) -> None:
    run = await harness.start_run()
    before = await harness.run(run.id)

    outcome = await harness.provide(run.id, "sku", "TEE-042", actor=STRANGER)

    assert not outcome.ok
    assert outcome.message == "setting sku requires a responder"
    assert (await harness.run(run.id)).inputs == before.inputs


# Guards on checklists: a manual dangerous step is guarded like any other


async def test_a_dangerous_checklist_is_confirmed_approved_twice_and_locked(
    harness: Harness,
) -> None:
    first = await harness.start_run(auto=False)
    second = await harness.start_run(auto=False)

    unconfirmed = await harness.mark(first.id, "promote", 0, actor=APPROVER)
    by_a_responder = await harness.mark(first.id, "promote", 0, actor=RESPONDER)
    one = await harness.engine.execute(
        MarkItemDone(first.id, "promote", 0, APPROVER, harness.key(), confirmed=True)
    )
    two = await harness.engine.execute(
        MarkItemDone(first.id, "promote", 0, SECOND_APPROVER, harness.key(), confirmed=True)
    )
    elsewhere = await harness.engine.execute(
        MarkItemDone(second.id, "promote", 0, APPROVER, harness.key(), confirmed=True)
    )
    elsewhere_too = await harness.engine.execute(
        MarkItemDone(second.id, "promote", 0, SECOND_APPROVER, harness.key(), confirmed=True)
    )

    assert unconfirmed.status is Status.NEEDS_CONFIRMATION
    assert unconfirmed.message == "The old primary must stay out of service. Promote?"
    assert by_a_responder.status is Status.REFUSED
    assert "requires an approver" in by_a_responder.message
    assert one.status is Status.AWAITING_APPROVAL
    assert two.ok, two.message
    assert (await harness.steps(first.id))["promote"].items_done == [0]
    assert not elsewhere_too.ok
    assert elsewhere.status is Status.AWAITING_APPROVAL
    assert f"the failover lock is held by {first.id}" in elsewhere_too.message
    assert "promote" not in await harness.steps(second.id)
