"""The postmortem draft of a finished run: every event, every actor, how long it took to
acknowledge and to resolve in words, and the same as JSON."""

from __future__ import annotations

import json
from datetime import timedelta

import engine_fixtures as ef
import pytest
from engine_fixtures import ALERTS, APPROVER, RESPONDER, SECOND_APPROVER, STRANGER, Harness
from engine_runbook import runbook

from agape_ops.engine.commands import Acknowledge, AddNote
from agape_ops.engine.postmortem import duration_words, render_json, render_markdown
from agape_ops.engine.records import Run

pytestmark = pytest.mark.integration

store_url = ef.sqlite_url
harness = ef.harness


async def _finished_run(harness: Harness) -> Run:
    """Walk a run from its alert to closed: 4 min to acknowledge, 1 h 05 min to resolve."""
    run = await harness.start_run()
    harness.clock.advance(minutes=4)
    await harness.step(run.id, "orders_on_sku", actor=STRANGER)  # looking acknowledges nothing
    await harness.engine.execute(Acknowledge(run.id, RESPONDER, "ack"))
    harness.clock.advance(minutes=5)
    await harness.step(
        run.id, "restock_sku", inputs={"sku": "TEE-042"}, actor=RESPONDER, confirmed=True
    )
    await harness.step(run.id, "correct_stock", actor=RESPONDER, confirmed=True)
    await harness.step(run.id, "correct_stock", actor=APPROVER, confirmed=True)
    await harness.step(run.id, "correct_stock", actor=SECOND_APPROVER, confirmed=True)
    await harness.mark(run.id, "follow_up", 1)
    await harness.engine.execute(AddNote(run.id, "Customers | emailed", APPROVER, "note"))
    harness.clock.advance(minutes=56)
    # the fake checks still show the problem, so resolving takes a confirmation
    await harness.set_state(run.id, "resolved", actor=APPROVER, confirmed=True)
    harness.clock.advance(minutes=10)
    await harness.set_state(run.id, "closed")
    return await harness.run(run.id)


async def test_the_markdown_draft_holds_every_event_actor_and_both_durations(
    harness: Harness,
) -> None:
    run = await _finished_run(harness)
    events = await harness.events(run.id)
    steps = await harness.steps(run.id)

    markdown = render_markdown(run, runbook(), steps, events)

    assert markdown.startswith("# INC-1: Inventory Oversell\n")
    assert "- Time to acknowledge: 4 min 00 s (U_RESPONDER)" in markdown
    assert "- Time to resolve: 1 h 05 min (U_APPROVER_1)" in markdown
    assert "- State: closed" in markdown
    for event in events:
        assert event.summary.replace("|", "\\|") in markdown
    timeline = markdown.split("## Timeline", 1)[1].split("## Steps run", 1)[0]
    assert timeline.count("\n| ") == len(events) + 1  # a header, then one row per event
    people = markdown.split("People and systems who acted: ", 1)[1].split("\n", 1)[0]
    assert set(people.split(", ")) == {
        ALERTS,
        "agape-ops",
        STRANGER,
        RESPONDER,
        APPROVER,
        SECOND_APPROVER,
    }
    assert "**NegativeStock on TEE-042**" in markdown
    assert "`sku=TEE-042`" in markdown
    assert "Customers \\| emailed" in markdown
    assert "- **Correct stock levels** (Immediate actions): done by U_APPROVER_2" in markdown
    assert "- [ ] Add monitoring for negative stock" in markdown
    assert "- [x] Review locking" in markdown


async def test_the_json_export_has_both_durations_in_seconds(harness: Harness) -> None:
    run = await _finished_run(harness)
    events = await harness.events(run.id)

    exported = render_json(run, runbook(), await harness.steps(run.id), events)

    assert exported["time_to_acknowledge_s"] == 240
    assert exported["time_to_resolve_s"] == 3900
    assert exported["run"]["state"] == "closed"
    assert [e["seq"] for e in exported["events"]] == list(range(1, len(events) + 1))
    assert json.loads(json.dumps(exported)) == exported


async def test_an_open_run_says_not_yet_and_an_instant_acknowledgement_is_zero(
    harness: Harness,
) -> None:
    run = await harness.start_run()
    unacknowledged = render_markdown(await harness.run(run.id), None, {}, [])
    await harness.engine.execute(Acknowledge(run.id, RESPONDER, "ack-now"))
    acknowledged = await harness.run(run.id)

    exported = render_json(acknowledged, None, {}, [])

    assert "- Time to acknowledge: not yet" in unacknowledged
    assert "- Time to resolve: not yet" in unacknowledged
    assert exported["time_to_acknowledge_s"] == 0
    assert exported["time_to_resolve_s"] is None


async def test_a_rehearsal_draft_says_it_was_a_rehearsal(harness: Harness) -> None:
    run = await harness.start_run(rehearsal=True)

    markdown = render_markdown(
        await harness.run(run.id), runbook(), {}, await harness.events(run.id)
    )

    assert "> **Rehearsal** — changes were shown, not executed." in markdown


async def test_rehearsals_take_their_own_numbers_never_an_incidents(harness: Harness) -> None:
    first = await harness.start_run(rehearsal=True)
    harness.clock.advance(minutes=1)
    second = await harness.start_run(rehearsal=True, with_alert=False)
    harness.clock.advance(minutes=1)
    real = await harness.start_run(with_alert=False)

    assert (first.id, second.id, real.id) == ("REH-1", "REH-2", "INC-1")
    assert [r.id for r in await harness.engine.runs()] == ["INC-1", "REH-2", "REH-1"]
    assert (await harness.engine.get_run("reh-2")).rehearsal


async def test_a_rehearsals_sql_stays_out_of_the_markdown_step_list(harness: Harness) -> None:
    run = await harness.start_run(rehearsal=True)
    rehearsed = await harness.step(
        run.id, "restock_sku", inputs={"sku": "TEE-042"}, actor=RESPONDER, confirmed=True
    )
    assert rehearsed.message.startswith("Rehearsal, not executed. Would run: postgres restock_sku")

    markdown = await harness.engine.export(run.id)
    steps_run = markdown.split("## Steps run", 1)[1].split("\n## ", 1)[0]

    assert "- **Set one SKU's stock to zero** (Immediate actions): skipped by" in steps_run
    assert "rehearsed: shown, not executed" in steps_run
    assert "postgres restock_sku" not in steps_run
    assert "Would run: postgres restock_sku" in markdown  # the timeline keeps what it showed


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=42), "42 s"),
        (timedelta(minutes=4), "4 min 00 s"),
        (timedelta(minutes=61, seconds=59), "1 h 01 min"),
        (None, "not yet"),
    ],
)
def test_durations_read_as_a_person_says_them(delta: timedelta | None, words: str) -> None:
    assert duration_words(delta) == words


async def test_the_draft_says_problem_for_a_check_that_found_one_not_failed(
    harness: Harness,
) -> None:
    run = await _finished_run(harness)
    events = await harness.events(run.id)
    steps = await harness.steps(run.id)
    found = [e for e in events if e.outcome == "failed"]
    assert found, "the test runbook's detection should find a problem"

    markdown = render_markdown(run, runbook(), steps, events)

    for event in found:
        assert f"| {event.summary.replace('|', chr(92) + '|')} | problem |" in markdown
    assert "| failed |" not in markdown
