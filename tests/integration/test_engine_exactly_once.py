"""Exactly once, on a SQLite file and on PostgreSQL: a command delivered again, at once or
later, by the same engine, another engine or an engine built after a restart, executes nothing
more and answers with the first outcome; a running step cannot start again until it ends."""

from __future__ import annotations

import asyncio

import engine_fixtures as ef
import pytest
from engine_fixtures import RESPONDER, Harness, build_engine, wait_for
from engine_runbook import RUNBOOK_ID, alert

from agape_ops.engine.commands import AddNote, Outcome, RunStep, SkipStep, StartRun
from agape_ops.engine.records import StepState
from agape_ops.errors import AdapterTimeout
from agape_ops.store import open_store

pytestmark = pytest.mark.integration

store_url = ef.any_store_url
harness = ef.harness

DELIVERIES = 50


def _only_one_executed(outcomes: list[Outcome]) -> Outcome:
    """Return the one outcome that executed, after checking the rest answer with its words."""
    first = [o for o in outcomes if not o.duplicate]
    assert len(first) == 1
    assert len(outcomes) - 1 == sum(o.duplicate for o in outcomes)
    assert {o.message for o in outcomes} == {first[0].message}
    assert {o.ok for o in outcomes} == {first[0].ok}
    return first[0]


async def test_fifty_concurrent_deliveries_of_a_step_execute_it_once(harness: Harness) -> None:
    run = await harness.start_run()
    command = RunStep(
        run.id,
        "restock_sku",
        inputs={"sku": "TEE-042"},
        actor=RESPONDER,
        key="click-42",
        confirmed=True,
    )

    outcomes = await asyncio.gather(*(harness.engine.execute(command) for _ in range(DELIVERIES)))

    first = _only_one_executed(list(outcomes))
    assert first.ok
    assert first.message == "Stock set to 0 on 1 variants"
    assert len(harness.postgres.calls("restock_sku")) == 1
    assert harness.postgres.calls("restock_sku")[0].idempotency_key == "INC-1:restock_sku:click-42"
    kinds = await harness.kinds(run.id)
    assert kinds.count("step.finished") == 3 + 1  # three automatic checks, then this step
    assert (await harness.steps(run.id))["restock_sku"].attempts == 1


async def test_fifty_concurrent_deliveries_of_a_start_open_one_run(harness: Harness) -> None:
    command = StartRun(RUNBOOK_ID, actor=ef.ALERTS, key="alert-7", alert=alert())

    outcomes = await asyncio.gather(*(harness.engine.execute(command) for _ in range(DELIVERIES)))

    first = _only_one_executed(list(outcomes))
    assert first.message == "INC-1 opened: Inventory Oversell"
    runs = await harness.store.list_runs()
    assert [r.id for r in runs] == ["INC-1"]
    assert len(harness.postgres.calls("negative_stock")) == 1
    duplicates = [o for o in outcomes if o.duplicate]
    assert {o.run.id if o.run else None for o in duplicates} == {"INC-1"}


async def test_a_repeated_delivery_later_answers_with_the_first_outcome(harness: Harness) -> None:
    run = await harness.start_run()
    command = RunStep(
        run.id, "verify_payment", actor=RESPONDER, key="k", inputs={"reference": "T1"}
    )

    first = await harness.engine.execute(command)
    harness.adapters["paystack"].failures["verify_payment"] = AdapterTimeout("too slow")
    again = await harness.engine.execute(command)

    assert not first.duplicate
    assert again.duplicate
    assert (again.ok, again.message) == (first.ok, first.message)
    assert first.message == "T123456789 is abandoned"
    assert len(harness.adapters["paystack"].requests) == 1


async def test_a_repeated_refusal_answers_with_the_same_refusal_and_is_recorded_once(
    harness: Harness,
) -> None:
    run = await harness.start_run()
    command = RunStep(run.id, "correct_stock", actor=RESPONDER, key="k", confirmed=True)

    first = await harness.engine.execute(command)
    again = await harness.engine.execute(command)

    assert again.duplicate
    assert (again.ok, again.message, again.error) == (False, first.message, "PermissionDenied")
    assert (await harness.kinds(run.id)).count("step.refused") == 1


async def test_a_delivery_after_a_restart_executes_nothing(harness: Harness) -> None:
    run = await harness.start_run()
    command = RunStep(
        run.id, "restock_sku", inputs={"sku": "TEE-042"}, actor=RESPONDER, key="k", confirmed=True
    )
    first = await harness.engine.execute(command)

    await harness.reopen()
    again = await harness.engine.execute(command)

    assert again.duplicate
    assert again.message == first.message
    assert len(harness.postgres.calls("restock_sku")) == 1


async def test_two_engines_on_one_store_execute_a_shared_click_once(harness: Harness) -> None:
    run = await harness.start_run()
    other_store = await open_store(harness.url)
    try:
        other = build_engine(other_store, harness.adapters, harness.clock)
        command = RunStep(
            run.id,
            "restock_sku",
            inputs={"sku": "TEE-042"},
            actor=RESPONDER,
            key="k",
            confirmed=True,
        )
        engines = [harness.engine, other] * (DELIVERIES // 2)

        outcomes = await asyncio.gather(*(engine.execute(command) for engine in engines))
    finally:
        await other_store.close()

    assert sum(not o.duplicate for o in outcomes) == 1
    assert len(harness.postgres.calls("restock_sku")) == 1


async def test_a_running_step_cannot_start_again_until_it_ends(harness: Harness) -> None:
    run = await harness.start_run()
    gate = harness.postgres.hold("orders_on_sku")
    first = asyncio.create_task(harness.step(run.id, "orders_on_sku"))
    await wait_for(harness.postgres.entered["orders_on_sku"])

    busy = await harness.step(run.id, "orders_on_sku")
    skip = await harness.engine.execute(SkipStep(run.id, "orders_on_sku", RESPONDER, "skip"))
    during = (await harness.steps(run.id))["orders_on_sku"].state
    gate.set()
    finished = await first
    again = await harness.step(run.id, "orders_on_sku")

    assert (busy.ok, busy.error) == (False, "StepBusy")
    assert "running already" in busy.message
    assert (skip.ok, skip.error) == (False, "StepBusy")
    assert during is StepState.RUNNING
    assert finished.ok, finished.message
    assert again.ok, again.message
    assert len(harness.postgres.calls("orders_on_sku")) == 2
    record = (await harness.steps(run.id))["orders_on_sku"]
    assert (record.state, record.attempts) == (StepState.DONE, 2)


async def test_concurrent_clicks_on_one_step_run_it_once_and_tell_the_rest_it_is_busy(
    harness: Harness,
) -> None:
    run = await harness.start_run()
    gate = harness.postgres.hold("orders_on_sku")
    tasks = [asyncio.create_task(harness.step(run.id, "orders_on_sku")) for _ in range(10)]
    await wait_for(harness.postgres.entered["orders_on_sku"])
    while sum(t.done() for t in tasks) < len(tasks) - 1:
        waiting = [t for t in tasks if not t.done()]
        done, _ = await asyncio.wait(waiting, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert done, "the other clicks never came back"
    refused = [t.result() for t in tasks if t.done()]
    blocked = [t for t in tasks if not t.done()]
    gate.set()
    finished = [await t for t in blocked]

    assert len(harness.postgres.calls("orders_on_sku")) == 1
    assert [o.ok for o in finished] == [True]
    assert all(o.error == "StepBusy" for o in refused)


async def test_a_step_whose_caller_went_away_is_not_left_running(harness: Harness) -> None:
    run = await harness.start_run()
    harness.postgres.hold("orders_on_sku")
    abandoned = asyncio.create_task(harness.step(run.id, "orders_on_sku"))
    await wait_for(harness.postgres.entered["orders_on_sku"])

    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned

    record = (await harness.steps(run.id))["orders_on_sku"]
    assert record.state is StepState.ERROR
    assert record.error == "interrupted before it finished; run it again"
    harness.postgres.gates.clear()
    again = await harness.step(run.id, "orders_on_sku")
    assert again.ok, again.message


async def test_concurrent_commands_on_one_run_lose_none_of_each_others_changes(
    harness: Harness,
) -> None:
    run = await harness.start_run(with_alert=False)

    await asyncio.gather(
        harness.step(run.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True),
        harness.set_state(run.id, "mitigated"),
        harness.engine.execute(
            AddNote(run.id, "watching the queue", actor=RESPONDER, key=harness.key())
        ),
    )

    after = await harness.run(run.id)
    assert after.state.value == "mitigated"
    assert after.inputs["sku"] == "TEE-042"
    assert after.acknowledged_by == RESPONDER


async def test_an_interrupted_write_says_it_may_have_taken_effect_and_its_click_is_not_rerun(
    harness: Harness,
) -> None:
    run = await harness.start_run()
    harness.postgres.hold("restock_sku")
    command = RunStep(
        run.id,
        "restock_sku",
        inputs={"sku": "TEE-042"},
        actor=RESPONDER,
        key="click-9",
        confirmed=True,
    )
    abandoned = asyncio.create_task(harness.engine.execute(command))
    await wait_for(harness.postgres.entered["restock_sku"])

    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    harness.postgres.gates.clear()
    redelivered = await harness.engine.execute(command)

    record = (await harness.steps(run.id))["restock_sku"]
    assert record.state is StepState.ERROR
    assert "may have been made; check before running it again" in (record.error or "")
    stopped = (await harness.events(run.id))[-1]
    assert (stopped.kind, stopped.step_id, stopped.outcome) == (
        "step.error",
        "restock_sku",
        "error",
    )
    assert (redelivered.duplicate, redelivered.ok, redelivered.error) == (
        True,
        False,
        "CancelledError",
    )
    assert "check the run's timeline" in redelivered.message
    assert "click again" not in redelivered.message
    assert len(harness.postgres.calls("restock_sku")) == 1
