"""A write's precondition (``requires:``) and its re-checks (``verifies:``), and a resolve that
says what is still wrong: a write with nothing to do asks nothing and records nothing done, a
precondition that cannot run stops the write, a write that succeeded runs its checks again, and
resolving over a problem or a waiting approval needs a confirmation."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import engine_fixtures as ef
import pytest
from engine_fixtures import APPROVER, RESPONDER, SECOND_APPROVER, Harness
from engine_runbook import RUNBOOK, RUNBOOK_ID

from agape_ops.engine.commands import (
    PRECONDITION_UNCHECKED,
    PRECONDITION_UNMET,
    SetState,
    Status,
)
from agape_ops.engine.ports import AdapterRequest
from agape_ops.engine.records import RunState, StepState
from agape_ops.engine.results import StepResult, table
from agape_ops.engine.steps import BOT
from agape_ops.errors import AdapterUnavailable
from agape_ops.runbooks.model import Runbook

pytestmark = pytest.mark.integration

store_url = ef.sqlite_url
harness = ef.harness

NONE_BELOW_ZERO = table("0 rows", ["sku", "stock"], [])
SKU_ROW = table("1 row", ["sku", "stock"], [{"sku": "TEE-042", "stock": -3}])


def guarded_runbook() -> Runbook:
    """Return the test runbook with Correct stock (one approver) requiring and re-running the
    negative-stock check, and Zero stock requiring a look at its one SKU."""
    data: dict[str, Any] = copy.deepcopy(RUNBOOK)
    data["diagnosis"].append(
        {
            "id": "sku_stock",
            "title": "One SKU's stock",
            "inputs": ["sku"],
            "when": "row_count > 0",
            "finding": "{{ row_count }} SKUs named {{ inputs.sku }} are below zero",
            "postgres": {
                "sql": "SELECT sku, stock FROM product_variants WHERE sku = %(sku)s AND stock < 0",
                "params": {"sku": "{{ inputs.sku }}"},
            },
        }
    )
    for step in data["actions"]:
        if step["id"] == "correct_stock":
            step["two_person"] = False
            step["requires"] = {"step": "negative_stock", "otherwise": "Nothing to change"}
            step["verifies"] = ["negative_stock"]
        if step["id"] == "restock_sku":
            step["requires"] = "sku_stock"
            step["verifies"] = ["sku_stock"]
    return Runbook.model_validate(data)


@pytest.fixture
def guarded(harness: Harness) -> Harness:
    harness.engine = ef.build_engine(
        harness.store, harness.adapters, harness.clock, {RUNBOOK_ID: guarded_runbook()}
    )
    return harness


def clears_after(harness: Harness, write: str, check: str, cleared: StepResult) -> None:
    """Make the fake database answer ``check`` with ``cleared`` once ``write`` has run."""
    adapter = harness.postgres
    execute = adapter.execute

    async def then_cleared(request: AdapterRequest) -> StepResult:
        result = await execute(request)
        if request.step.id == write:
            adapter.results[check] = cleared
        return result

    adapter.execute = then_cleared  # type: ignore[method-assign]


# requires:


async def test_a_write_with_nothing_to_do_asks_nothing_and_records_nothing_done(
    guarded: Harness,
) -> None:
    guarded.postgres.results["negative_stock"] = NONE_BELOW_ZERO
    run = await guarded.start_run()
    checks_before = len(guarded.postgres.calls("negative_stock"))

    for confirmed in (False, True):
        outcome = await guarded.step(run.id, "correct_stock", APPROVER, confirmed=confirmed)

        assert outcome.status is Status.REFUSED
        assert not outcome.needs_confirmation
        assert outcome.error == PRECONDITION_UNMET
        assert outcome.message == "Nothing to change: 0 SKUs have stock below zero:"
    assert guarded.postgres.calls("correct_stock") == []
    assert guarded.postgres.previews == []
    assert len(guarded.postgres.calls("negative_stock")) == checks_before + 2
    steps = await guarded.steps(run.id)
    assert "correct_stock" not in steps or steps["correct_stock"].state is StepState.PENDING
    said = [(e.kind, e.actor, e.summary) for e in await guarded.events(run.id)]
    written = [s for s in said if s[0] == "step.precondition"]
    assert (
        written
        == [
            (
                "step.precondition",
                APPROVER,
                "“Correct stock levels” not run, nothing asked: Nothing to change: "
                "0 SKUs have stock below zero:",
            )
        ]
        * 2
    )
    assert not any(kind == "step.done" for kind, _, _ in said)
    assert (await guarded.run(run.id)).acknowledged_at is None


async def test_a_write_whose_precondition_holds_is_asked_then_runs_once(guarded: Harness) -> None:
    run = await guarded.start_run()

    asked = await guarded.step(run.id, "correct_stock", APPROVER)
    assert asked.needs_confirmation
    assert asked.message.startswith("Set every negative stock to 0?")
    key = guarded.key()
    done = await guarded.step(run.id, "correct_stock", APPROVER, confirmed=True, key=key)
    again = await guarded.step(run.id, "correct_stock", APPROVER, confirmed=True, key=key)

    assert done.ok
    assert done.message == "Stock set to 0 on 2 product variants"
    assert again.duplicate
    assert len(guarded.postgres.calls("correct_stock")) == 1
    prechecks = [
        r for r in guarded.postgres.calls("negative_stock") if "requires:" in r.idempotency_key
    ]
    assert len(prechecks) == 2  # before the question, and again before the change
    checks = [e for e in await guarded.events(run.id) if e.step_id == "negative_stock"]
    around = [(e.detail.get("purpose"), e.detail.get("for")) for e in checks[1:]]
    # Each result says which write it was checked for: twice before it, then after it.
    assert around == [("requires", "Correct stock levels")] * 2 + [
        ("verify", "Correct stock levels")
    ]


async def test_a_precondition_takes_the_writes_own_inputs(guarded: Harness) -> None:
    run = await guarded.start_run()
    guarded.postgres.results["sku_stock"] = NONE_BELOW_ZERO

    outcome = await guarded.step(run.id, "restock_sku", inputs={"sku": "CAP-007"})

    assert outcome.error == PRECONDITION_UNMET
    assert outcome.message == "Nothing to change: 0 SKUs named CAP-007 are below zero"
    [looked] = guarded.postgres.calls("sku_stock")
    assert looked.params == {"sku": "CAP-007"}
    assert guarded.postgres.calls("restock_sku") == []


async def test_a_precondition_whose_system_is_down_stops_the_write_and_says_so(
    guarded: Harness,
) -> None:
    run = await guarded.start_run()
    guarded.postgres.failures["negative_stock"] = AdapterUnavailable(
        "PostgreSQL is unreachable at db:5432", adapter="postgres"
    )

    outcome = await guarded.step(run.id, "correct_stock", APPROVER, confirmed=True)

    assert outcome.status is Status.FAILED
    assert outcome.error == PRECONDITION_UNCHECKED
    assert outcome.message.startswith(
        "“Correct stock levels” was not run: its precondition “SKUs with stock below zero” "
        "could not be checked ("
    )
    assert "PostgreSQL is unreachable at db:5432" in outcome.message
    assert outcome.message.endswith("); nothing was changed")
    assert guarded.postgres.calls("correct_stock") == []


async def test_a_second_press_while_the_first_checks_waits_for_that_check(
    guarded: Harness,
) -> None:
    run = await guarded.start_run()
    guarded.postgres.entered["negative_stock"].clear()
    gate = guarded.postgres.hold("negative_stock")

    first = asyncio.create_task(guarded.step(run.id, "correct_stock", APPROVER))
    await guarded.postgres.entered["negative_stock"].wait()
    second = asyncio.create_task(guarded.step(run.id, "correct_stock", APPROVER, key="press-2"))

    async def found_it_running() -> bool:
        answer = await guarded.store.command_outcome("requires:press-2")
        return answer is not None and not answer.get("unclaimed")

    await ef.poll_until(found_it_running, within_s=5, what="the second press's check answered")
    assert not second.done()  # it waits for the first press's check
    gate.set()
    answers = await asyncio.gather(first, second)

    assert [a.status for a in answers] == [Status.NEEDS_CONFIRMATION] * 2
    prechecks = [
        r for r in guarded.postgres.calls("negative_stock") if "requires:" in r.idempotency_key
    ]
    assert len(prechecks) == 1
    assert guarded.postgres.calls("correct_stock") == []


# verifies:


async def test_a_write_that_succeeds_runs_its_checks_again_as_the_bot(guarded: Harness) -> None:
    run = await guarded.start_run()
    assert (await guarded.steps(run.id))["negative_stock"].state is StepState.FAILED
    clears_after(guarded, "correct_stock", "negative_stock", NONE_BELOW_ZERO)

    done = await guarded.step(run.id, "correct_stock", APPROVER, confirmed=True)

    assert done.ok
    [recheck] = done.rechecks
    assert recheck.ok
    assert recheck.message == "0 SKUs have stock below zero:"
    record = (await guarded.steps(run.id))["negative_stock"]
    assert record.state is StepState.PASSED
    assert record.actor == BOT
    last = guarded.postgres.calls("negative_stock")[-1]
    assert last.idempotency_key.startswith(
        f"{run.id}:negative_stock:verify:{run.id}:correct_stock:1"
    )
    events = [(e.actor, e.step_id, e.summary) for e in await guarded.events(run.id)]
    assert events[-2:] == [
        (APPROVER, "correct_stock", "Stock set to 0 on 2 product variants"),
        (BOT, "negative_stock", "0 SKUs have stock below zero:"),
    ]


async def test_a_re_check_runs_with_the_writes_inputs_and_not_after_a_failure(
    guarded: Harness,
) -> None:
    run = await guarded.start_run()
    guarded.postgres.results["sku_stock"] = SKU_ROW
    guarded.postgres.failures["restock_sku"] = AdapterUnavailable("down", adapter="postgres")

    failed = await guarded.step(run.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True)

    assert not failed.ok
    assert failed.rechecks == []
    assert len(guarded.postgres.calls("sku_stock")) == 1  # the precondition only

    del guarded.postgres.failures["restock_sku"]
    clears_after(guarded, "restock_sku", "sku_stock", NONE_BELOW_ZERO)
    done = await guarded.step(run.id, "restock_sku", inputs={"sku": "TEE-042"}, confirmed=True)

    assert [r.message for r in done.rechecks] == ["0 SKUs named TEE-042 are below zero"]
    assert [r.params for r in guarded.postgres.calls("sku_stock")] == [{"sku": "TEE-042"}] * 3


async def test_a_rehearsed_write_re_checks_nothing(guarded: Harness) -> None:
    run = await guarded.start_run(rehearsal=True)
    checks = len(guarded.postgres.calls("negative_stock"))

    done = await guarded.step(run.id, "correct_stock", APPROVER, confirmed=True)

    assert done.ok
    assert done.rechecks == []
    assert len(guarded.postgres.calls("negative_stock")) == checks + 1  # the precondition


# an honest resolve


async def test_resolving_while_a_check_still_shows_the_problem_needs_a_confirmation(
    harness: Harness,
) -> None:
    run = await harness.start_run()

    asked = await harness.set_state(run.id, "resolved")

    assert asked.needs_confirmation
    assert asked.message.startswith(
        f"{run.id} may not be over: “SKUs with stock below zero” still showed the problem when "
        "last run at 02:00 UTC: 2 SKUs have stock below zero: TEE-042 (-3), CAP-007 (-1)"
    )
    assert asked.message.endswith("Resolve it anyway? Confirm to resolve it as it is.")
    assert (await harness.run(run.id)).state is RunState.OPEN
    assert "run.resolved" not in await harness.kinds(run.id)

    resolved = await harness.engine.execute(
        SetState(run.id, "resolved", RESPONDER, harness.key(), note="known", confirmed=True)
    )

    assert resolved.ok
    assert (await harness.run(run.id)).state is RunState.RESOLVED


async def test_resolving_after_the_check_cleared_asks_nothing(guarded: Harness) -> None:
    run = await guarded.start_run(with_alert=False, actor=RESPONDER)
    assert (await guarded.steps(run.id))["negative_stock"].state is StepState.FAILED
    clears_after(guarded, "correct_stock", "negative_stock", NONE_BELOW_ZERO)
    assert (await guarded.step(run.id, "correct_stock", APPROVER, confirmed=True)).ok

    resolved = await guarded.set_state(run.id, "resolved")

    assert resolved.ok
    assert resolved.message == f"{run.id} is resolved"


async def test_resolving_with_a_two_person_approval_waiting_names_it(harness: Harness) -> None:
    harness.postgres.results["negative_stock"] = NONE_BELOW_ZERO
    run = await harness.start_run(with_alert=False, actor=RESPONDER)
    waiting = await harness.step(run.id, "correct_stock", APPROVER, confirmed=True)
    assert waiting.status is Status.AWAITING_APPROVAL

    asked = await harness.set_state(run.id, "resolved")

    assert asked.needs_confirmation
    assert asked.message == (
        f"{run.id} may not be over: “Correct stock levels” was approved by {APPROVER} and waits "
        "for a second approver. Resolve it anyway? Confirm to resolve it as it is."
    )
    view = await harness.engine.view(run.id)
    resolve = next(b for b in view.buttons if b.label == "Resolve")
    assert resolve.confirm == (
        f"Mark {run.id} resolved, though “Correct stock levels” waits for a second approver?"
    )
    assert SECOND_APPROVER  # the approval stays for the second approver if not resolved


async def test_marking_mitigated_asks_nothing_even_with_a_problem_showing(
    harness: Harness,
) -> None:
    run = await harness.start_run()

    outcome = await harness.set_state(run.id, "mitigated")

    assert outcome.ok
