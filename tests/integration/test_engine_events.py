"""Events after the commit: listeners hear only what committed, never while a run is held, and
another process follows every process's events in order from a position in the store's log."""

from __future__ import annotations

import asyncio

import engine_fixtures as ef
import pytest
from engine_fixtures import RESPONDER, Harness, build_engine

from agape_ops.engine.commands import Acknowledge, AddNote, SetState, Status
from agape_ops.engine.records import Event
from agape_ops.store import open_store

pytestmark = pytest.mark.integration

store_url = ef.any_store_url
harness = ef.harness


async def test_a_listener_may_act_on_the_run_it_hears_about_the_run_is_no_longer_held(
    harness: Harness,
) -> None:
    run = await harness.start_run(auto=False)
    heard: list[str] = []

    async def on_event(event: Event) -> None:
        heard.append(event.kind)
        if event.kind == "run.acknowledged":  # would wait forever if the run were still held
            await harness.engine.execute(AddNote(run.id, "paged the DBA", RESPONDER, "note-1"))

    harness.engine.subscribe(on_event)
    outcome = await asyncio.wait_for(
        harness.engine.execute(Acknowledge(run.id, RESPONDER, "ack-1")), timeout=10
    )

    assert outcome.ok
    assert [e.kind for e in outcome.events] == ["run.acknowledged"]
    assert heard == ["run.acknowledged", "note.added"]
    assert (await harness.kinds(run.id))[-2:] == ["run.acknowledged", "note.added"]


async def test_nothing_is_published_for_a_command_that_changed_nothing(harness: Harness) -> None:
    run = await harness.start_run(auto=False)
    heard: list[Event] = []

    async def on_event(event: Event) -> None:
        heard.append(event)

    harness.engine.subscribe(on_event)
    refused = await harness.engine.execute(SetState(run.id, "closed", RESPONDER, "close-early"))

    assert refused.status is Status.FAILED
    assert "it can become" in refused.message
    assert heard == []
    assert refused.events == []


async def test_a_failing_listener_is_reported_and_the_command_still_answers(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    run = await harness.start_run(auto=False)

    async def broken(event: Event) -> None:
        raise RuntimeError("the surface fell over")

    harness.engine.subscribe(broken)
    outcome = await harness.engine.execute(AddNote(run.id, "still here", RESPONDER, "n-1"))

    assert outcome.ok
    assert "event listener failed on note.added" in caplog.text


async def test_another_process_follows_the_log_in_order_from_a_position(
    harness: Harness,
) -> None:
    other_store = await open_store(harness.url)
    other = build_engine(other_store, ef.fake_adapters(), harness.clock)
    try:
        start = await other.store.last_position()
        first = await harness.start_run(auto=False)
        second = await harness.start_run(auto=False)
        await harness.engine.execute(AddNote(first.id, "one", RESPONDER, "n-1"))
        await harness.engine.execute(AddNote(second.id, "two", RESPONDER, "n-2"))

        followed: list[Event] = []
        async for event in other.follow(start, poll_s=0.01):
            followed.append(event)
            if len(followed) == 4:
                break

        assert [(e.run_id, e.kind) for e in followed] == [
            (first.id, "run.opened"),
            (second.id, "run.opened"),
            (first.id, "note.added"),
            (second.id, "note.added"),
        ]
        assert [e.position for e in followed] == list(range(start + 1, start + 5))
        assert await other.events_after(followed[-1].position) == []
    finally:
        await other_store.close()
