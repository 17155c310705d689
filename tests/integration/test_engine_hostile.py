"""Hostile input against the engine (issue 10's engine findings), on SQLite and PostgreSQL.

A value a read-only person gave never feeds a dangerous step; text no store can hold is refused
before anything is written; a command that fails leaves nothing half-written.
"""

from __future__ import annotations

from pathlib import Path

import engine_fixtures as ef
import pytest
from engine_fixtures import APPROVER, RESPONDER, STRANGER, Harness, build_engine

from agape_ops.alerts.model import Alert
from agape_ops.engine.commands import AddNote, OpenForAlert, ProvideInput, RunStep, StartRun, Status
from agape_ops.engine.views import run_view
from agape_ops.errors import InputError
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.team import Team
from agape_ops.surfaces.ops_actions import commands_for
from agape_ops.surfaces.ops_command import OpsCommand

pytestmark = pytest.mark.integration

store_url = ef.any_store_url
harness = ef.harness

VICTIM = "5f0c2c1e-8a1b-4c2d-9e3f-a4b5c6d7e8f9"
RUNBOOKS = load_catalog([Path(__file__).resolve().parents[2] / "runbooks"]).runbooks


async def test_a_value_a_reader_gave_never_feeds_a_dangerous_step(harness: Harness) -> None:
    engine = build_engine(harness.store, harness.adapters, harness.clock, dict(RUNBOOKS))
    opened = await engine.execute(
        StartRun("security-incident", STRANGER, "open", inputs={"user_id": VICTIM}, auto=False)
    )
    assert opened.run is not None
    run_id = opened.run.id
    read = await engine.execute(
        RunStep(run_id, "user_activity", STRANGER, "read", inputs={"user_id": VICTIM})
    )

    revoke = await engine.execute(
        RunStep(run_id, "revoke_sessions", APPROVER, "revoke", confirmed=True)
    )

    assert read.ok, read.message
    assert revoke.status is Status.NEEDS_INPUTS
    assert revoke.needs_inputs == ["user_id"]
    assert harness.adapters["admin_api"].calls("revoke_sessions") == []
    view = await engine.view(run_id)
    (field,) = view.step("revoke_sessions").inputs
    assert field.prefilled == VICTIM  # shown to the approver, who must give it themselves


@pytest.mark.parametrize("value", ["TEE-\x00042", "TEE-\ud800", "TEE-\x1b[2J"])
async def test_text_no_store_can_hold_is_refused_and_nothing_is_kept(
    harness: Harness, value: str
) -> None:
    run = await harness.start_run(with_alert=False, actor=RESPONDER, auto=False)

    provided = await harness.engine.execute(ProvideInput(run.id, "sku", value, RESPONDER, "p1"))
    stepped = await harness.engine.execute(
        RunStep(run.id, "restock_sku", RESPONDER, "s1", inputs={"sku": value}, confirmed=True)
    )
    noted = await harness.engine.execute(AddNote(run.id, f"look {value}", RESPONDER, "n1"))

    for outcome in (provided, stepped, noted):
        assert outcome.status is Status.FAILED
        assert outcome.error == "InputError"
    assert (await harness.run(run.id)).inputs == {}
    assert harness.postgres.calls("restock_sku") == []
    assert [e.kind for e in await harness.events(run.id)] == ["run.opened"]


async def test_an_alert_with_a_nul_opens_one_whole_run_on_either_store(harness: Harness) -> None:
    hostile = Alert(
        title="NegativeStock on TEE-042\x00",
        text="stock \x00 of TEE-042 is -3",
        labels={"alertname": "NegativeStock", "sku": "TEE-042\x00"},
    )

    opened = await harness.engine.execute(
        OpenForAlert(hostile, "fp-nul", "alertmanager", "delivery-nul")
    )

    assert opened.ok, opened.message
    assert opened.run is not None
    kinds = await harness.kinds(opened.run.id)
    assert kinds[0] == "run.opened"
    assert kinds.count("step.finished") >= 3  # detection ran on the cleaned alert
    assert "\x00" not in repr(await harness.run(opened.run.id))


async def test_a_checklist_answer_with_a_wrong_number_marks_nothing(harness: Harness) -> None:
    run = await harness.start_run(auto=False)
    runbook = harness.engine.runbooks[run.runbook_id]
    view = run_view(run, runbook, {}, [], Team(), now=harness.clock())
    done = OpsCommand("done", target="follow_up", items=(1, 2, 99))

    with pytest.raises(InputError, match="has items 1-2"):
        commands_for(done, view, RESPONDER, harness.key)

    assert "follow_up" not in await harness.steps(run.id)
