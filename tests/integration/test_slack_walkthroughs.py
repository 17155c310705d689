"""Runbooks walked in Slack, from a realistic alert in #alerts to a resolved run.

The bot is served over real HTTP (``slack_fixtures``); the test posts what Slack posts, signed,
and reads what the bot did from the fake Slack: the run card in the alert's thread, updated in
place; results as replies; refusals to the presser alone; changes confirmed, permitted, done once.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import slack_fixtures
import walkthrough_http
from slack_fixtures import World, alert_event, header_of, words
from test_walkthroughs import VARIANTS, oversold, stock
from walkthrough_seed import APPROVER, RESPONDER, STRANGER, seed

from agape_ops.engine.records import RunState

pytestmark = pytest.mark.integration

fake = walkthrough_http.fake
fake_slack = slack_fixtures.fake_slack
world = slack_fixtures.world


async def test_inventory_oversell_from_alert_to_resolved_in_slack(
    world: World, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await seed(backend_conn, *oversold())
    event = alert_event("NegativeStock")
    thread = event["ts"]

    await world.alert(event)

    card = await world.card(thread)
    assert header_of(card).endswith(" · Inventory Oversell")
    assert world.top_level() == []  # nothing new at the top of #alerts
    found = await world.reply_saying(thread, "2 SKUs have stock below zero")
    assert "DRESS-RED-M (-2), DRESS-BLU-S (-1)" in words(found)
    await world.card_saying(thread, "2 SKUs have stock below zero: DRESS-RED-M (-2)")

    # A responder may not correct stock: told alone, nothing changes.
    await world.sender.click(world.slack, RESPONDER, card["ts"], text="Correct stock")
    refusal = await world.ephemeral_to(RESPONDER, "requires an approver")
    assert "Not allowed" in words(refusal)
    assert await stock(backend_conn) == VARIANTS

    # An approver's double click (Slack's dialog confirmed it) corrects it once; the second
    # press of the same rendering is asked again, saying it was done.
    seen = await world.card(thread)
    await world.press(seen, APPROVER, "Correct stock")
    await world.press(seen, APPROVER, "Correct stock")
    await world.reply_saying(thread, "Stock set to 0 on 2 product variants")
    again = await world.ephemeral_to(APPROVER, "this would do it again")
    assert "Confirm" in words(again)
    assert await stock(backend_conn) == {"DRESS-RED-M": 0, "DRESS-BLU-S": 0, "DRESS-GRN-L": 4}
    await world.settle()
    run = await world.run_of(thread)
    changes = [
        e for e in await world.container.engine.timeline(run.id) if e.step_id == "correct_stock"
    ]
    assert [e.kind for e in changes] == ["step.refused", "step.finished"]

    # A stranger may not resolve; a responder may, and the card says so in place.
    card = await world.card(thread)
    await world.sender.click(world.slack, STRANGER, card["ts"], text="Resolve")
    await world.ephemeral_to(STRANGER, "requires a responder")
    await world.sender.click(world.slack, RESPONDER, card["ts"], text="Resolve")
    await world.card_saying(thread, "Resolved")
    assert (await world.run_of(thread)).state is RunState.RESOLVED
    assert world.slack.block_errors == []
