"""Running steps: where inputs come from and how bad ones are refused, confirmation, locks,
rehearsals, failing and missing adapters, manual checklists, and what a plan shows."""

from __future__ import annotations

import asyncio
import copy

import engine_fixtures as ef
import pytest
from engine_fixtures import APPROVER, RESPONDER, SECOND_APPROVER, STRANGER, Harness
from engine_runbook import ORDERS, RUNBOOK, RUNBOOK_ID, SECRET_TOKEN

from agape_ops.engine.commands import SkipStep
from agape_ops.engine.records import RunState, StepState
from agape_ops.engine.results import StepResult, table
from agape_ops.errors import AdapterNotConfigured, AdapterUnavailable
from agape_ops.runbooks.model import Runbook

pytestmark = pytest.mark.integration

store_url = ef.sqlite_url
harness = ef.harness


# Inputs


async def test_a_step_missing_an_input_asks_for_it_and_executes_nothing(harness: Harness) -> None:
    run = await harness.start_run(with_alert=False, actor=RESPONDER)

    outcome = await harness.step(run.id, "restock_sku", confirmed=True)

    assert not outcome.ok
    assert outcome.needs_inputs == ["sku"]
    assert not outcome.needs_confirmation
    assert outcome.message == "“Set one SKU's stock to zero” needs sku"
    assert harness.postgres.calls("restock_sku") == []
    assert (await harness.run(run.id)).state is RunState.OPEN


async def test_an_invalid_input_is_refused_naming_it_and_its_example(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.step(
        run.id, "verify_payment", inputs={"reference": "T1; DROP TABLE orders"}
    )

    assert not outcome.ok
    assert outcome.error == "InputError"
    assert "not a valid paystack transaction reference" in outcome.message
    assert "(for example T123456789)" in outcome.message
    assert harness.adapters["paystack"].requests == []
    assert (await harness.run(run.id)).acknowledged_at is None


async def test_a_write_asks_for_its_input_even_when_the_alert_names_it(harness: Harness) -> None:
    run = await harness.start_run()

    asked = await harness.step(run.id, "restock_sku", confirmed=True)
    view = await harness.engine.view(run.id)
    given = await harness.step(run.id, "restock_sku", confirmed=True, inputs={"sku": "TEE-042"})

    assert asked.needs_inputs == ["sku"]
    (field,) = view.step("restock_sku").inputs
    assert field.prefilled == "TEE-042"  # offered from the alert, not used unasked
    assert given.ok, given.message
    assert [c.params for c in harness.postgres.calls("restock_sku")] == [{"sku": "TEE-042"}]
    assert (await harness.run(run.id)).inputs == {"sku": "TEE-042"}


async def test_an_input_given_earlier_feeds_reads_and_prefills_writes(harness: Harness) -> None:
    run = await harness.start_run(with_alert=False, actor=RESPONDER)

    provided = await harness.provide(run.id, "sku", " CAP-007 ")
    write = await harness.step(run.id, "restock_sku", confirmed=True)
    reference = await harness.provide(run.id, "reference", "T123456789")
    read = await harness.step(run.id, "verify_payment")

    assert provided.ok
    assert write.needs_inputs == ["sku"]  # a value someone gave earlier never feeds a change
    assert harness.postgres.calls("restock_sku") == []
    (field,) = (await harness.engine.view(run.id)).step("restock_sku").inputs
    assert field.prefilled == "CAP-007"
    assert reference.ok
    assert read.ok, read.message
    assert (
        harness.adapters["paystack"].calls("verify_payment")[0].call.model_dump()["reference"]
        == "T123456789"
    )
    provided_event = next(e for e in await harness.events(run.id) if e.kind == "input.provided")
    assert provided_event.summary == "sku = CAP-007"


async def test_an_empty_value_is_an_error_never_the_one_given_before(harness: Harness) -> None:
    run = await harness.start_run(with_alert=False, actor=RESPONDER)
    await harness.provide(run.id, "reference", "T123456789")

    empty = await harness.step(run.id, "verify_payment", inputs={"reference": ""})

    assert not empty.ok
    assert empty.error == "InputError"
    assert harness.adapters["paystack"].calls("verify_payment") == []


async def test_an_input_given_with_the_command_wins_over_the_alert(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.step(run.id, "restock_sku", confirmed=True, inputs={"sku": "HAT-9"})

    assert outcome.ok, outcome.message
    assert harness.postgres.calls("restock_sku")[0].params == {"sku": "HAT-9"}


async def test_provide_input_refuses_unknown_names_and_invalid_values(harness: Harness) -> None:
    run = await harness.start_run(with_alert=False, actor=RESPONDER)

    unknown = await harness.provide(run.id, "colour", "red")
    invalid = await harness.provide(run.id, "sku", "lower-case")

    assert (unknown.ok, unknown.error) == (False, "InputError")
    assert "no input 'colour'" in unknown.message
    assert (invalid.ok, invalid.error) == (False, "InputError")
    assert "(for example TEE-042)" in invalid.message
    assert (await harness.run(run.id)).inputs == {}
    assert "input.provided" not in await harness.kinds(run.id)


async def test_a_step_reads_an_earlier_steps_result(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.step(run.id, "orders_on_sku")

    assert outcome.message == "3 orders on TEE-042"
    assert harness.postgres.calls("orders_on_sku")[0].params == {"sku": "TEE-042"}


async def test_a_secret_input_is_never_shown_on_the_timeline(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.step(
        run.id, "revoke_sessions", inputs={"user_id": "u-7", "token": SECRET_TOKEN}, confirmed=True
    )

    assert outcome.ok, outcome.message
    call = harness.adapters["admin_api"].calls("revoke_sessions")[0].call
    assert SECRET_TOKEN in str(call.model_dump())
    events = await harness.events(run.id)
    assert SECRET_TOKEN not in repr(events)
    assert SECRET_TOKEN not in outcome.message
    finished = events[-1]
    assert finished.detail["inputs"] == {"user_id": "u-7", "token": "[REDACTED]"}


async def test_a_secret_input_is_never_kept_so_the_step_that_uses_it_asks_for_it(
    harness: Harness,
) -> None:
    run = await harness.start_run()

    provided = await harness.provide(run.id, "token", SECRET_TOKEN)
    asked = await harness.step(run.id, "revoke_sessions", inputs={"user_id": "u-7"})

    assert not provided.ok
    assert "never keeps it" in provided.message
    assert SECRET_TOKEN not in provided.message
    assert asked.needs_inputs == ["token"]
    assert SECRET_TOKEN not in repr(await harness.run(run.id))


async def test_a_secret_input_that_fails_validation_is_not_echoed(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.provide(run.id, "token", "short")

    assert not outcome.ok
    assert "short" not in outcome.message
    assert "the value given" in outcome.message


# Confirmation


async def test_a_write_without_confirmation_asks_for_it_and_executes_nothing(
    harness: Harness,
) -> None:
    run = await harness.start_run()

    outcome = await harness.step(run.id, "restock_sku", inputs={"sku": "TEE-042"})

    assert not outcome.ok
    assert outcome.needs_confirmation
    assert outcome.message == "Set the stock of this SKU to 0?"
    assert harness.postgres.calls("restock_sku") == []
    stored = await harness.run(run.id)
    assert stored.state is RunState.OPEN
    assert stored.inputs == {}
    assert await harness.store.acquire_lock("stock", "INC-99") is None


async def test_a_plan_shows_what_a_write_would_do_and_changes_nothing(harness: Harness) -> None:
    run = await harness.start_run()

    unasked = await harness.engine.plan(run.id, "restock_sku", {})
    plan = await harness.engine.plan(run.id, "restock_sku", {"sku": "TEE-042"})

    assert unasked.missing_inputs == ("sku",)
    assert plan.description == "postgres restock_sku with {'sku': 'TEE-042'}"
    assert plan.confirm == "Set the stock of this SKU to 0?"
    assert plan.preview is not None
    assert plan.preview.rows == [{"sku": "TEE-042"}]
    assert harness.postgres.calls("restock_sku") == []
    assert "restock_sku" not in await harness.steps(run.id)


async def test_a_plan_says_which_inputs_are_missing(harness: Harness) -> None:
    run = await harness.start_run(with_alert=False, actor=RESPONDER)

    plan = await harness.engine.plan(run.id, "restock_sku", {})

    assert plan.missing_inputs == ("sku",)
    assert harness.postgres.previews == []


# Locks


async def test_a_lock_is_held_by_one_run_until_it_resolves(harness: Harness) -> None:
    first = await harness.start_run()
    second = await harness.start_run()

    taken = await harness.step(first.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True)
    refused = await harness.step(
        second.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True
    )
    again_by_holder = await harness.step(
        first.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True
    )

    assert taken.ok, taken.message
    assert (refused.ok, refused.error) == (False, "LockHeld")
    assert "held by INC-1" in refused.message
    assert "resolve INC-1 first" in refused.message
    assert (await harness.run(second.id)).acknowledged_at is None
    assert again_by_holder.ok
    assert [r.run_id for r in harness.postgres.calls("restock_sku")] == ["INC-1", "INC-1"]
    refusal = (await harness.events(second.id))[-1]
    assert (refusal.kind, refusal.outcome, refusal.step_id) == (
        "step.refused",
        "refused",
        "restock_sku",
    )
    assert "restock_sku" not in await harness.steps(second.id)

    assert (await harness.set_state(first.id, "resolved", confirmed=True)).ok
    after = await harness.step(second.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True)

    assert after.ok, after.message
    assert harness.postgres.calls("restock_sku")[-1].run_id == "INC-2"


async def test_a_run_whose_runbook_is_no_longer_loaded_still_resolves_and_frees_its_lock(
    harness: Harness,
) -> None:
    first = await harness.start_run()
    assert (
        await harness.step(first.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True)
    ).ok
    loaded = harness.engine
    harness.engine = ef.build_engine(harness.store, harness.adapters, harness.clock, runbooks={})

    resolved = await harness.set_state(first.id, "resolved")

    assert resolved.ok, resolved.message
    assert (await harness.kinds(first.id))[-1] == "run.resolved"
    harness.engine = loaded
    second = await harness.start_run()
    after = await harness.step(second.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True)
    assert after.ok, after.message
    assert harness.postgres.calls("restock_sku")[-1].run_id == second.id


async def test_a_rehearsal_does_not_take_a_lock(harness: Harness) -> None:
    rehearsal = await harness.start_run(rehearsal=True)
    real = await harness.start_run()

    shown = await harness.step(
        rehearsal.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True
    )
    done = await harness.step(real.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True)

    assert shown.ok, shown.message
    assert done.ok, done.message
    assert [r.run_id for r in harness.postgres.calls("restock_sku")] == [real.id]


# Rehearsal


async def test_a_rehearsal_runs_reads_for_real_and_only_shows_writes(harness: Harness) -> None:
    run = await harness.start_run(rehearsal=True)

    read = await harness.step(run.id, "orders_on_sku")
    write = await harness.step(run.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True)
    dangerous = await harness.step(run.id, "correct_stock", actor=APPROVER, confirmed=True)

    assert len(harness.postgres.calls("negative_stock")) == 1
    assert read.ok
    assert read.message == "3 orders on TEE-042"
    assert write.ok
    assert write.message == (
        "Rehearsal, not executed. Would run: postgres restock_sku with {'sku': 'TEE-042'}"
    )
    assert dangerous.ok
    assert dangerous.message.startswith("Rehearsal, not executed. Would run: postgres")
    assert harness.postgres.calls("restock_sku") == []
    assert harness.postgres.calls("correct_stock") == []
    steps = await harness.steps(run.id)
    assert steps["restock_sku"].state is StepState.SKIPPED
    assert steps["orders_on_sku"].state is StepState.DONE
    events = await harness.events(run.id)
    assert "rehearsal" in events[0].summary
    rehearsed = [e for e in events if e.kind == "step.rehearsed"]
    assert [e.step_id for e in rehearsed] == ["restock_sku", "correct_stock"]
    assert all(e.detail["rehearsal"] for e in rehearsed)


# Failing and missing adapters


async def test_a_failing_adapter_errors_its_step_and_the_run_goes_on(harness: Harness) -> None:
    redis = harness.adapters["redis"]
    redis.failures["queue_depth"] = AdapterUnavailable("Redis: unreachable (connection refused)")

    run = await harness.start_run()

    steps = await harness.steps(run.id)
    assert steps["queue_depth"].state is StepState.ERROR
    assert steps["queue_depth"].error == "Redis: unreachable (connection refused)"
    assert steps["queue_depth"].finding == "Jobs waiting: Redis: unreachable (connection refused)"
    assert steps["negative_stock"].state is StepState.FAILED
    assert steps["error_rate"].state is StepState.FAILED
    error = next(e for e in await harness.events(run.id) if e.kind == "step.error")
    assert (error.step_id, error.outcome) == ("queue_depth", "error")
    assert "connection refused" in error.summary

    other = await harness.step(run.id, "orders_on_sku")
    retried = await harness.step(run.id, "queue_depth")
    del redis.failures["queue_depth"]
    recovered = await harness.step(run.id, "queue_depth")

    assert other.ok
    assert (retried.ok, retried.error) == (False, "StepError")
    assert "connection refused" in retried.message
    assert recovered.ok
    assert (await harness.steps(run.id))["queue_depth"].state is StepState.PASSED


async def test_an_adapter_bug_errors_the_step_instead_of_leaving_it_running(
    harness: Harness,
) -> None:
    harness.postgres.failures["orders_on_sku"] = KeyError("rows")
    run = await harness.start_run()

    broken = await harness.step(run.id, "orders_on_sku")

    assert (broken.ok, broken.error) == (False, "StepError")
    assert "failed unexpectedly" in broken.message
    assert (await harness.steps(run.id))["orders_on_sku"].state is StepState.ERROR
    del harness.postgres.failures["orders_on_sku"]
    assert (await harness.step(run.id, "orders_on_sku")).ok


async def test_a_check_that_fails_when_run_again_leaves_no_stale_result_for_later_steps(
    harness: Harness,
) -> None:
    run = await harness.start_run()
    harness.postgres.failures["negative_stock"] = AdapterUnavailable(
        "PostgreSQL: unreachable (connection refused)"
    )

    rechecked = await harness.step(run.id, "negative_stock")
    dependent = await harness.step(run.id, "orders_on_sku")

    assert (rechecked.ok, rechecked.result) == (False, None)
    record = (await harness.steps(run.id))["negative_stock"]
    assert (record.state, record.result) == (StepState.ERROR, None)
    assert not dependent.ok
    assert harness.postgres.calls("orders_on_sku") == []


async def test_a_finding_that_raises_unexpectedly_does_not_leave_its_step_running(
    harness: Harness,
) -> None:
    book = copy.deepcopy(RUNBOOK)
    orders = next(s for s in book["diagnosis"] if s["id"] == "orders_on_sku")
    orders["finding"] = "last order {{ rows.pop().order_number }}"
    runbooks = {RUNBOOK_ID: Runbook.model_validate(book)}
    harness.engine = ef.build_engine(harness.store, harness.adapters, harness.clock, runbooks)
    harness.postgres.results["orders_on_sku"] = table("0 orders", ["order_number"], [])
    run = await harness.start_run()

    with pytest.raises(IndexError):
        await harness.step(run.id, "orders_on_sku")

    record = (await harness.steps(run.id))["orders_on_sku"]
    assert record.state is StepState.ERROR
    assert "IndexError" in (record.error or "")
    assert (await harness.events(run.id))[-1].kind == "step.error"
    harness.postgres.results["orders_on_sku"] = ORDERS
    again = await harness.step(run.id, "orders_on_sku")
    assert again.ok, again.message
    assert again.message == "last order AG-2"


async def test_an_unconfigured_adapter_says_which_setting_to_set(harness: Harness) -> None:
    harness.postgres.failures["orders_on_sku"] = AdapterNotConfigured(
        "PostgreSQL is not configured: set DATABASE_URL"
    )
    run = await harness.start_run()

    outcome = await harness.step(run.id, "orders_on_sku")

    assert not outcome.ok
    assert "set DATABASE_URL" in outcome.message
    assert "set DATABASE_URL" in (await harness.events(run.id))[-1].summary


async def test_a_step_whose_adapter_is_missing_names_the_setting(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.step(run.id, "health")
    plan = await harness.engine.plan(run.id, "health", {})

    assert not outcome.ok
    assert outcome.message == "Backend health: no http adapter is configured"
    assert (await harness.steps(run.id))["health"].state is StepState.ERROR
    assert plan.error == "no http adapter is configured"


@pytest.mark.parametrize(
    ("missing", "step_id", "setting"),
    [
        ("postgres", "orders_on_sku", "DATABASE_URL"),
        ("redis", "queue_depth", "REDIS_URL"),
        ("paystack", "verify_payment", "PAYSTACK_SECRET_KEY"),
        ("admin_api", "revoke_sessions", "ADMIN_API_URL"),
    ],
)
async def test_a_missing_adapter_names_the_setting_that_enables_it(
    harness: Harness, missing: str, step_id: str, setting: str
) -> None:
    others = {kind: fake for kind, fake in harness.adapters.items() if kind != missing}
    harness.engine = ef.build_engine(harness.store, others, harness.clock)
    run = await harness.start_run()

    outcome = await harness.step(
        run.id,
        step_id,
        actor=APPROVER,
        confirmed=True,
        inputs={"reference": "T1", "user_id": "u-1", "token": "abcdefgh12"},
    )

    assert not outcome.ok
    assert setting in outcome.message


# Condition errors


async def test_an_alert_check_without_the_value_errors_and_says_what_is_missing(
    harness: Harness,
) -> None:
    run = await harness.start_run(with_alert=False, actor=RESPONDER)

    record = (await harness.steps(run.id))["error_rate"]

    assert record.state is StepState.ERROR
    assert record.finding == "this run was not opened by an alert"


async def test_a_condition_that_cannot_be_evaluated_errors_the_step(harness: Harness) -> None:
    harness.postgres.results["negative_stock"] = StepResult(summary="no table")
    run = await harness.start_run()

    broken = await harness.step(run.id, "orders_on_sku")
    record = (await harness.steps(run.id))["orders_on_sku"]

    assert not broken.ok
    assert record.state is StepState.ERROR
    assert "has no attribute 'sku'" in (record.error or "")
    assert harness.postgres.calls("orders_on_sku") == []


# Manual checklists and skips


async def test_each_checklist_item_is_recorded_and_the_step_is_done_when_all_are(
    harness: Harness,
) -> None:
    run = await harness.start_run()

    first = await harness.mark(run.id, "contact_customers", 0, actor=STRANGER)
    again = await harness.mark(run.id, "contact_customers", 0, actor=RESPONDER)
    second = await harness.mark(run.id, "contact_customers", 2, actor=APPROVER)
    partly = (await harness.steps(run.id))["contact_customers"]
    last = await harness.mark(run.id, "contact_customers", 1, actor=SECOND_APPROVER)

    assert all(o.ok for o in (first, again, second, last))
    assert first.message == "Done: Email affected customers"
    assert partly.state is StepState.PENDING
    assert partly.items_done == [0, 2]
    record = (await harness.steps(run.id))["contact_customers"]
    assert (record.state, record.items_done) == (StepState.DONE, [0, 1, 2])
    items = [e for e in await harness.events(run.id) if e.kind == "item.done"]
    assert [e.actor for e in items] == [STRANGER, RESPONDER, APPROVER, SECOND_APPROVER]
    assert items[-1].summary == "done: Offer refund or alternative product"
    assert items[-1].outcome == "done"
    assert (await harness.run(run.id)).acknowledged_by is None  # a read-only checklist


async def test_checklist_commands_refuse_bad_items_and_non_checklists(harness: Harness) -> None:
    run = await harness.start_run()

    out_of_range = await harness.mark(run.id, "contact_customers", 3)
    not_manual = await harness.mark(run.id, "restock_sku", 0)
    unknown = await harness.mark(run.id, "nothing_here", 0)

    assert (out_of_range.ok, out_of_range.error) == (False, "InvalidTransition")
    assert "has items 1-3" in out_of_range.message
    assert (not_manual.ok, not_manual.error) == (False, "InvalidTransition")
    assert "is not a checklist" in not_manual.message
    assert (unknown.ok, unknown.error) == (False, "UnknownStep")
    assert "contact_customers" not in await harness.steps(run.id)


async def test_running_a_checklist_as_a_whole_marks_it_done(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.step(run.id, "follow_up")

    assert outcome.ok
    assert (await harness.steps(run.id))["follow_up"].state is StepState.DONE


async def test_ticking_an_item_of_a_checklist_done_as_a_whole_keeps_it_done(
    harness: Harness,
) -> None:
    run = await harness.start_run()
    assert (await harness.step(run.id, "follow_up")).ok

    ticked = await harness.mark(run.id, "follow_up", 0)

    assert ticked.ok
    record = (await harness.steps(run.id))["follow_up"]
    assert (record.state, record.items_done) == (StepState.DONE, [0, 1])


async def test_a_skipped_step_is_recorded_with_the_reason(harness: Harness) -> None:
    run = await harness.start_run()

    outcome = await harness.engine.execute(
        SkipStep(run.id, "health", RESPONDER, "skip-1", reason="dashboard is green")
    )

    assert outcome.ok
    assert (await harness.steps(run.id))["health"].state is StepState.SKIPPED
    skipped = (await harness.events(run.id))[-1]
    assert skipped.summary == "skipped “Backend health”: dashboard is green"


async def test_a_repeat_of_the_same_change_says_when_and_by_whom_before_it_is_confirmed(
    harness: Harness,
) -> None:
    run = await harness.start_run()
    sku = {"sku": "TEE-042"}
    harness.clock.advance(minutes=7)
    first = await harness.step(run.id, "restock_sku", inputs=sku, confirmed=True)

    asked = await harness.step(run.id, "restock_sku", actor=APPROVER, inputs=sku)
    plan = await harness.engine.plan(run.id, "restock_sku", sku)
    other = await harness.step(run.id, "restock_sku", inputs={"sku": "CAP-007"})

    assert first.ok, first.message
    assert asked.needs_confirmation
    assert asked.message.startswith(
        f"Already done on sku=TEE-042 at 02:07 UTC by {RESPONDER} (Stock set to 0 on 1 variants); "
        "this would do it again."
    )
    assert asked.message.endswith("Set the stock of this SKU to 0?")
    assert plan.confirm == asked.message
    assert other.message == "Set the stock of this SKU to 0?"  # another target: no warning
    assert len(harness.postgres.calls("restock_sku")) == 1


async def test_a_second_press_while_the_first_runs_says_the_change_is_under_way(
    harness: Harness,
) -> None:
    run = await harness.start_run()
    sku = {"sku": "TEE-042"}
    gate = harness.postgres.hold("restock_sku")
    first = asyncio.create_task(
        harness.step(run.id, "restock_sku", inputs=sku, confirmed=True, seen=0)
    )
    await ef.wait_for(harness.postgres.entered["restock_sku"])

    # the same rendering pressed again (Slack's dialog confirmed it) while the first still runs
    second = await harness.step(
        run.id, "restock_sku", actor=APPROVER, inputs=sku, confirmed=True, seen=0
    )
    gate.set()

    assert (await first).ok
    assert second.needs_confirmation
    assert second.message == (
        f"Already started at 02:00 UTC by {RESPONDER}, still running; this would do it again. "
        "Set the stock of this SKU to 0?"
    )
    assert len(harness.postgres.calls("restock_sku")) == 1
