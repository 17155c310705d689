"""How a step reads an earlier step's rows (``references_from``), and what it says when it can't."""

from __future__ import annotations

import pytest

from agape_ops.engine.context import references_for
from agape_ops.engine.records import StepRecord, StepState
from agape_ops.engine.results import StepResult
from agape_ops.errors import TemplateError
from agape_ops.runbooks.model import PaystackCall

CALL = PaystackCall(action="verify_many", references_from="pending_orders.payment_reference")


def test_references_come_from_the_earlier_steps_rows_skipping_empty_cells() -> None:
    result = StepResult(
        summary="3 rows",
        columns=["payment_reference"],
        rows=[
            {"payment_reference": "T-1"},
            {"payment_reference": None},
            {"payment_reference": "T-3"},
        ],
    )
    record = StepRecord("INC-1", "pending_orders", StepState.DONE, result=result.model_dump())

    assert references_for(CALL, {"pending_orders": record}) == ["T-1", "T-3"]


def test_a_step_that_has_not_run_is_named() -> None:
    with pytest.raises(TemplateError, match="step `pending_orders` has not run yet"):
        references_for(CALL, {})


def test_a_step_that_failed_says_so_rather_than_not_run() -> None:
    record = StepRecord(
        "INC-1",
        "pending_orders",
        StepState.ERROR,
        error="PostgreSQL: unreachable (connection refused)",
    )

    with pytest.raises(TemplateError) as caught:
        references_for(CALL, {"pending_orders": record})

    assert caught.value.message == (
        "step `pending_orders` failed (PostgreSQL: unreachable (connection refused)); "
        "fix that and run it again first"
    )
