"""Alerts in #alerts, as each monitoring source posts them, through the served bot.

The bot is served over real HTTP (``slack_fixtures``); the tests post what Slack posts, signed,
and read what the bot did from the fake Slack only. An alert opens one run whose card is a reply
in the alert's own thread; a re-fire, a retried delivery (even after a restart) and a resolution
go to that same run and thread; nothing new appears at the top of #alerts. Messages that are not
alerts (the bot's own, thread replies, other channels, empty ones) do nothing. Every delivery is
acknowledged well within Slack's three seconds.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import slack_fixtures
import walkthrough_http
from fake_slack import APP_ID, BOT_ID, BOT_NAME, BOT_USER, MESSAGE_METHODS, TEAM_ID, FakeSlack
from slack_fixtures import (
    ALERTS,
    World,
    header_of,
    next_ts,
    serving,
    slack_settings,
    words,
)
from slack_requests import find_element
from walkthrough_http import FakeBackend
from walkthrough_seed import RESPONDER

from agape_ops.engine.records import RunState

pytestmark = pytest.mark.integration

fake = walkthrough_http.fake
fake_slack = slack_fixtures.fake_slack
world = slack_fixtures.world

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"
#: Another channel the bot is in; alerts are read in #alerts only.
ELSEWHERE = "C0GENERAL"
#: A person typing in #alerts.
PERSON = "U0HUMAN"
#: Seconds within which every delivery must be acknowledged (Slack gives up after three).
ACK_WITHIN = 1.0

Event = dict[str, Any]


# -- the alerts, as each source posts them -------------------------------------------------------


def posted(fixture: str) -> Event:
    """A fixture's message event, posted now in the test's #alerts (a fresh ts)."""
    envelope = json.loads((FIXTURES / fixture).read_text())
    event: Event = envelope["event"]
    event["channel"] = ALERTS
    event["ts"] = event["event_ts"] = next_ts()
    return event


def alertmanager(status: str = "FIRING", instance: str = "api-1") -> Event:
    """Alertmanager's default Slack template for the backend's HighErrorRate rule."""
    head = "[FIRING:1]" if status == "FIRING" else "[RESOLVED]"
    fixture = "alertmanager_firing.json" if status == "FIRING" else "alertmanager_resolved.json"
    event = posted(fixture)
    title = f"{head} HighErrorRate agape-backend (prod {instance} critical)"
    attachment = event["attachments"][0]
    attachment["title"] = title
    attachment["fallback"] = f"{title} | {attachment['title_link']}"
    return event


def grafana(instance: str = "api-1") -> Event:
    """A Grafana alert rule on the backend's 5xx rate, with the labels every alert carries."""
    event = posted("grafana_firing.json")
    attachment = event["attachments"][0]
    title = "[FIRING:1] Http5xxRate Agape (prod agape-backend critical)"
    attachment["title"] = attachment["fallback"] = title
    attachment["text"] = (
        "**Firing**\n\nValue: A=0.041, C=1\nLabels:\n - alertname = Http5xxRate\n"
        f" - env = prod\n - grafana_folder = Agape\n - instance = {instance}\n"
        " - service = agape-backend\n - severity = critical\nAnnotations:\n"
        " - summary = 5xx error rate above 2% for 5m on agape-backend\n"
        "Source: https://grafana.example.com/alerting/grafana/ddq2x8b1z3ke8c/view?orgId=1\n"
    )
    return event


def sentry() -> Event:
    """A Sentry issue alert: the backend's Paystack webhook handler failing."""
    event = posted("sentry_issue.json")
    event["text"] = "[agape-backend] WebhookProcessingError: Webhook processing failed"
    head, culprit, message, _tags, _state, _actions, project, _divider = event["blocks"]
    head["text"]["text"] = head["text"]["text"].replace(
        "ZeroDivisionError", "WebhookProcessingError"
    )
    culprit["elements"][0]["text"] = "POST /api/v1/webhooks/paystack"
    message["text"]["text"] = (
        "```Webhook processing failed for charge.success (reference T685312322670591)```"
    )
    project["elements"][0]["text"] = (
        "Project: <https://acme.sentry.io/projects/agape-backend/|agape-backend>    "
        "Alert: <https://acme.sentry.io/organizations/acme/alerts/rules/agape-backend/1234567/"
        "details/|Prod error spike>    Short ID: AGAPE-BACKEND-3F"
    )
    return event


def sentry_edited(original: Event, state: str, element: int, change: dict[str, Any]) -> Event:
    """Sentry re-rendering its message after someone acted on the issue: an edit
    (``message_changed``) whose state line says ``state`` and whose actions row has
    ``change`` applied to its element number ``element``."""
    before = {k: v for k, v in original.items() if k not in ("channel", "event_ts")}
    after = copy.deepcopy(before)
    for block in after["blocks"]:
        if block["type"] == "context" and "State:" in block["elements"][0]["text"]:
            block["elements"][0]["text"] = f"State: *{state}*   First Seen: *9 minutes ago*"
        if block["type"] == "actions":
            block["elements"][element].update(change)
    after["edited"] = {"user": original["user"], "ts": next_ts()}
    return edited(before, after)


def sentry_resolved(original: Event) -> Event:
    """The issue resolved in Sentry: Resolved, and its Resolve button is now Unresolve."""
    unresolve = {"type": "plain_text", "text": "Unresolve", "emoji": True}
    change = {"action_id": "unresolved", "value": "unresolved", "text": unresolve}
    return sentry_edited(original, "Resolved", 0, change)


def sentry_assigned(original: Event) -> Event:
    """Someone assigns the issue in Sentry: it is still open."""
    assignee = {"text": {"type": "plain_text", "text": "Ada Obi"}, "value": "user:42"}
    return sentry_edited(original, "Ongoing", 2, {"initial_option": assignee})


def edited(before: Event, after: Event) -> Event:
    """The ``message_changed`` event Slack sends when a message in #alerts is edited."""
    ts = next_ts()
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": ALERTS,
        "message": after,
        "previous_message": before,
        "event_ts": ts,
        "ts": ts,
        "channel_type": "channel",
    }


def datadog() -> Event:
    """A Datadog monitor on the backend's email queue."""
    event = posted("datadog_monitor.json")
    attachment = event["attachments"][0]
    attachment["title"] = attachment["fallback"] = "Triggered: Email queue backlog on agape-backend"
    attachment["title_link"] = (
        "https://app.datadoghq.com/monitors/123456789?group=service%3Aagape-backend"
        "&link_monitor_id=123456789"
    )
    attachment["text"] = (
        "@slack-agape-alerts\n\nThe *email* queue has 240 waiting jobs (threshold 100) over the "
        "last 10m.\n\nRunbook: https://runbooks.example.com/email-queue"
    )
    return event


def uptime(monitor: str, state: str, reason: str) -> Event:
    """An UptimeRobot message about ``monitor``: down (with ``reason``), or up again."""
    event = posted("uptimerobot_down.json")
    if state == "DOWN":
        event["text"] = f"Monitor is DOWN: {monitor} - Reason: {reason}"
    else:
        event["text"] = f"Monitor is UP: {monitor} - It was down for 4 minutes and 12 seconds."
    return event


def uptimerobot(state: str = "DOWN") -> Event:
    """UptimeRobot on the backend's API health check: down, or up again."""
    monitor = "Agape API health check ( https://api.agapelooks.com/healthz )"
    return uptime(monitor, state, "HTTP 503 - Service Unavailable")


def message(channel: str = ALERTS, **fields: Any) -> Event:
    """A message event posted now (in #alerts unless told) with these fields."""
    ts = next_ts()
    event: Event = {"type": "message", "team": TEAM_ID, "ts": ts, "event_ts": ts}
    event.update(channel=channel, channel_type="channel", **fields)
    return event


def typed(text: str, *, channel: str = ALERTS, thread_ts: str | None = None) -> Event:
    """A message a person types (in #alerts unless told)."""
    event = message(channel, user=PERSON, text=text)
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def person_types_5xx() -> Event:
    return typed("Seeing lots of 5xx on checkout since the 14:00 deploy")


# -- reading what the bot did ---------------------------------------------------------------------


def is_card(message: dict[str, Any]) -> bool:
    blocks = message.get("blocks") or []
    return bool(blocks) and blocks[0].get("type") == "header" and " · " in header_of(message)


def cards(world: World, thread_ts: str | None = None) -> list[dict[str, Any]]:
    """The run cards in #alerts (in one thread, when given)."""
    return [m for m in world.slack.messages(ALERTS, thread_ts=thread_ts) if is_card(m)]


def has_menu(message: dict[str, Any]) -> bool:
    return any(
        element.get("type") == "static_select"
        for block in message.get("blocks") or []
        for element in block.get("elements") or []
    )


def posts(slack: FakeSlack) -> list[tuple[str, str | None]]:
    """Every message the bot sent, updated or told (method, channel), in order."""
    return [(c.method, c.channel) for c in slack.calls() if c.method in MESSAGE_METHODS]


def first_check(world: World, runbook_title: str) -> str:
    """How a run's first detection check is titled in its result reply ("1. <title>")."""
    runbook = next(r for r in world.container.engine.runbooks.values() if r.title == runbook_title)
    return f"1. {runbook.detection[0].title}"


def assert_well_behaved(world: World) -> None:
    """Every delivery answered 200 well within Slack's 3 s; nothing refused by Block Kit's
    limits; no call made before a 429's Retry-After had passed."""
    answers = [(d.kind, d.status, round(d.seconds, 3)) for d in world.sender.deliveries]
    assert answers, "nothing was delivered"
    assert all(status == 200 for _, status, _ in answers), answers
    assert all(seconds < ACK_WITHIN for _, _, seconds in answers), answers
    assert world.slack.block_errors == []
    assert world.slack.violations() == []


# -- 1. every source opens a run in its alert's thread --------------------------------------------

FORMATS = [
    pytest.param(alertmanager, "High Error Rate (5xx)", id="alertmanager"),
    pytest.param(grafana, "High Error Rate (5xx)", id="grafana"),
    pytest.param(sentry, "Failed Webhook Processing", id="sentry"),
    pytest.param(datadog, "Queue Backlog", id="datadog"),
    pytest.param(
        uptimerobot,
        "High Error Rate (5xx)",
        id="uptimerobot",
    ),
    pytest.param(person_types_5xx, "High Error Rate (5xx)", id="typed-by-a-person"),
]


@pytest.mark.parametrize(("make", "runbook_title"), FORMATS)
async def test_each_source_opens_one_run_in_its_alerts_thread(
    world: World, make: Callable[[], Event], runbook_title: str
) -> None:
    event = make()
    thread = event["ts"]

    await world.alert(event)
    await world.settle()

    offered = [m for m in world.replies(thread) if has_menu(m)]
    assert offered == [], "no runbook matched: the bot offered its menu instead"
    card = await world.card(thread)
    assert re.search(rf"\bINC-\d+ · {re.escape(runbook_title)}$", header_of(card)), header_of(card)
    await world.reply_saying(thread, first_check(world, runbook_title))
    await world.settle()
    assert len(cards(world, thread)) == 1
    assert len(cards(world)) == 1
    assert world.top_level() == []
    assert_well_behaved(world)


# -- 2. a re-fire goes to the open run ------------------------------------------------------------


async def test_a_refire_is_counted_on_the_open_runs_card(world: World) -> None:
    first = alertmanager()
    await world.alert(first)
    card = await world.card(first["ts"])

    again = alertmanager()  # the same title, a new message and event id
    await world.alert(again)

    await world.card_saying(first["ts"], "fired 2 times")
    await world.settle()
    assert world.slack.messages(ALERTS, thread_ts=again["ts"]) == []
    assert world.top_level() == []
    assert [m["ts"] for m in cards(world)] == [card["ts"]]
    assert len(await world.container.engine.runs(active=True, limit=10)) == 1
    assert_well_behaved(world)


# -- 3. a retried delivery acts once, also across a restart ---------------------------------------


async def test_a_retried_event_acts_once_even_after_a_restart(
    backend_db: str, redis_db: str, tmp_path: Path, fake: FakeBackend, fake_slack: FakeSlack
) -> None:
    fake.router.route(host="127.0.0.1").pass_through()
    config = slack_settings(backend_db, redis_db, tmp_path, fake_slack)
    event = alertmanager()
    thread = event["ts"]

    async with serving(config, fake_slack) as first:
        # Slack retries when the first answer was late: the retry may come while it works.
        await first.alert(event, event_id="Ev0RETRIED01")
        await first.alert(event, event_id="Ev0RETRIED01", retry_num=1)
        card = await first.card(thread)
        await first.reply_saying(thread, first_check(first, "High Error Rate (5xx)"))
        await first.settle()
        assert [m["ts"] for m in cards(first)] == [card["ts"]]
        assert len(await first.container.engine.runs(active=True, limit=10)) == 1
        assert (await first.run_of(thread)).alert_count == 1  # not counted as a re-fire
        assert "fired" not in words(await first.card(thread))
        assert_well_behaved(first)
    told = posts(fake_slack)
    shown = fake_slack.messages()

    async with serving(config, fake_slack) as second:  # the same store, a new process
        await second.alert(event, event_id="Ev0RETRIED01", retry_num=2)
        await second.settle()
        assert posts(fake_slack) == told
        assert fake_slack.messages() == shown
        assert len(await second.container.engine.runs(active=True, limit=10)) == 1

        # It is listening: a real re-fire reaches the same card (counted once before, not twice).
        await second.alert(alertmanager())
        await second.card_saying(thread, "fired 2 times")
        assert [m["ts"] for m in cards(second)] == [card["ts"]]
        assert_well_behaved(second)


# -- 4. a resolution is told in the run's thread --------------------------------------------------


def alertmanager_resolution(_firing: Event) -> Event:
    return alertmanager("RESOLVED")


RESOLUTIONS = [
    pytest.param(alertmanager, alertmanager_resolution, "High Error Rate (5xx)", id="alertmanager"),
    pytest.param(sentry, sentry_resolved, "Failed Webhook Processing", id="sentry-edit"),
]


@pytest.mark.parametrize(("make", "resolve", "runbook_title"), RESOLUTIONS)
async def test_a_resolution_is_told_in_the_runs_thread_and_offers_resolve(
    world: World,
    make: Callable[[], Event],
    resolve: Callable[[Event], Event],
    runbook_title: str,
) -> None:
    firing = make()
    thread = firing["ts"]
    await world.alert(firing)
    card = await world.card(thread)
    assert header_of(card).endswith(f" · {runbook_title}")
    await world.settle()

    resolution = resolve(firing)
    await world.alert(resolution)

    told = await world.reply_saying(thread, "monitoring reports resolved")
    find_element(told, "button", text="Resolve")
    await world.card_saying(thread, "monitoring reports it resolved")
    await world.settle()
    assert world.slack.messages(ALERTS, thread_ts=resolution["ts"]) == []
    assert world.top_level() == []
    assert len(cards(world)) == 1

    await world.press(told, RESPONDER, "Resolve")
    await world.card_saying(thread, "*Resolved*")
    assert (await world.run_of(thread)).state is RunState.RESOLVED
    await world.settle()
    assert world.top_level() == []
    assert_well_behaved(world)


# -- an edit that leaves the alert firing is not news ---------------------------------------------

DASHBOARD = "https://grafana.agapelooks.com/d/b7c1e2f9/checkout"


def with_a_link() -> Event:
    return typed(f"Seeing lots of 5xx on checkout since the deploy <{DASHBOARD}>")


def unfurled(original: Event) -> Event:
    """Slack unfurling the link in a person's alert: an edit adding an attachment."""
    before = {k: v for k, v in original.items() if k not in ("channel", "event_ts")}
    preview = {
        "id": 1,
        "from_url": DASHBOARD,
        "original_url": DASHBOARD,
        "service_name": "Grafana",
        "title": "Checkout - Dashboards - Grafana",
        "title_link": DASHBOARD,
        "text": "Request rate, 5xx share and latency of checkout",
        "fallback": "Grafana: Checkout - Dashboards - Grafana",
    }
    return edited(before, {**before, "attachments": [preview]})


EDITS = [
    pytest.param(with_a_link, unfurled, id="link-unfurled"),
    pytest.param(sentry, sentry_assigned, id="sentry-assigned"),
]


@pytest.mark.parametrize(("make", "edit"), EDITS)
async def test_an_edit_that_leaves_the_alert_firing_opens_nothing_and_counts_nothing(
    world: World, make: Callable[[], Event], edit: Callable[[Event], Event]
) -> None:
    firing = make()
    thread = firing["ts"]
    await world.alert(firing)
    await world.card(thread)
    await world.settle()

    await assert_ignored(world, [edit(firing)])
    assert len(cards(world)) == 1
    assert (await world.run_of(thread)).alert_count == 1
    assert_well_behaved(world)


# -- 5. one rule, different labels: different incidents -------------------------------------------


@pytest.mark.parametrize("make", [alertmanager, grafana], ids=["alertmanager", "grafana"])
async def test_one_rule_on_two_instances_is_two_runs_in_two_threads(
    world: World, make: Callable[..., Event]
) -> None:
    one, two = make(instance="api-1"), make(instance="api-2")
    await world.alert(one)
    await world.alert(two)

    first, second = await world.card(one["ts"]), await world.card(two["ts"])
    await world.settle()
    assert header_of(first).split(" · ")[0] != header_of(second).split(" · ")[0]
    assert len(cards(world, one["ts"])) == len(cards(world, two["ts"])) == 1
    assert len(cards(world)) == 2
    assert (await world.run_of(one["ts"])).alert_count == 1
    assert (await world.run_of(two["ts"])).alert_count == 1
    assert world.top_level() == []
    assert_well_behaved(world)


# -- 6. what is not an alert ----------------------------------------------------------------------


def own_message(text: str) -> Event:
    """A message the bot itself posted at the top of #alerts, as Slack delivers it back."""
    profile = {"id": BOT_ID, "name": BOT_NAME, "app_id": APP_ID, "deleted": False}
    return message(user=BOT_USER, bot_id=BOT_ID, app_id=APP_ID, bot_profile=profile, text=text)


def not_alerts(alert: Event) -> list[Event]:
    """Messages that carry no alert: in a thread, elsewhere, empty, unreadable, not messages."""
    in_thread = alertmanager()
    in_thread["thread_ts"] = alert["ts"]
    elsewhere = alertmanager()
    elsewhere["channel"] = ELSEWHERE
    unchanged = copy.deepcopy(alert)  # Slack edits a parent when its thread grows
    grown = {**copy.deepcopy(alert), "reply_count": 3, "latest_reply": next_ts()}
    garbled = {**typed(""), "subtype": "bot_message", "bot_id": "B0GARBLE"}
    garbled.update({"attachments": "not a list", "blocks": {"type": "section"}, "text": None})
    return [
        typed("still seeing lots of 5xx here", thread_ts=alert["ts"]),
        in_thread,
        elsewhere,
        typed("Seeing lots of 5xx on checkout", channel=ELSEWHERE),
        typed(""),
        typed("   \n "),
        {**typed(""), "subtype": "bot_message", "bot_id": "B0EMPTY", "attachments": []},
        garbled,
        {**typed(f"<@{PERSON}> has joined the channel"), "subtype": "channel_join"},
        {**typed(""), "subtype": "message_deleted", "deleted_ts": alert["ts"]},
        edited(unchanged, grown),
        {"type": "message", "subtype": "message_changed", "channel": ALERTS, "ts": next_ts()},
    ]


async def started_by_hand(world: World) -> list[Event]:
    """Start a run with `/ops start` in #alerts: its card goes to the top of the channel, and
    Slack delivers it back to the bot, as posted and as each update edits it. Return those
    message events (read as alerts, they would match the runbook they show)."""
    await world.sender.command("start high-error-rate", user=RESPONDER, channel=ALERTS)
    found = await world.slack.wait_for(
        lambda s: [m for m in world.top_level() if is_card(m)], what="a card at the top"
    )
    card_ts = found[0]["ts"]
    await world.reply_saying(card_ts, first_check(world, "High Error Rate (5xx)"))
    await world.settle()
    held = world.slack.message(card_ts)
    assert held is not None
    now = {k: v for k, v in held.items() if k != "channel"}
    assert "edited" in now  # updated with the checks' findings
    sent = next(c for c in world.slack.calls("chat.postMessage") if c.response["ts"] == card_ts)
    was = {**now, "text": sent.params["text"], "blocks": sent.params["blocks"]}
    was.pop("edited")
    posted_back = {**was, "channel": ALERTS, "event_ts": was["ts"], "channel_type": "channel"}
    return [posted_back, edited(was, now)]


async def assert_ignored(world: World, events: list[Event]) -> None:
    """Deliver the events at once: nothing is posted, updated or told, no run is opened."""
    told, shown = posts(world.slack), world.slack.messages()
    runs = await world.container.engine.runs(active=True, limit=10)
    await asyncio.gather(*(world.alert(event) for event in events))
    await world.settle()
    assert posts(world.slack) == told
    assert world.slack.messages() == shown
    assert await world.container.engine.runs(active=True, limit=10) == runs


async def test_the_bots_own_messages_replies_other_channels_and_empty_ones_are_not_alerts(
    world: World,
) -> None:
    own = await started_by_hand(world)
    await world.slack.wait_for(lambda s: s.calls("auth.test"), what="the bot asking who it is")
    alert = alertmanager()  # an alert the others reply to (the bot has not seen it)
    own_text = own_message("[FIRING:1] HighErrorRate agape-backend (prod api-9 critical)")

    await assert_ignored(world, [*own, own_text, *not_alerts(alert)])
    assert len(await world.container.engine.runs(active=True, limit=10)) == 1
    assert_well_behaved(world)


@pytest.fixture
async def nameless(
    backend_db: str, redis_db: str, tmp_path: Path, fake: FakeBackend, fake_slack: FakeSlack
) -> AsyncIterator[World]:
    """The bot served while Slack fails its auth.test: it does not know its own ids yet."""
    fake.router.route(host="127.0.0.1").pass_through()
    fake_slack.fail("auth.test", 503, times=1_000)
    async with serving(slack_settings(backend_db, redis_db, tmp_path, fake_slack), fake_slack) as w:
        yield w


async def test_the_bots_own_card_is_not_an_alert_before_slack_says_who_the_bot_is(
    nameless: World,
) -> None:
    own = await started_by_hand(nameless)
    assert not any(call.ok for call in nameless.slack.calls("auth.test"))

    await assert_ignored(nameless, own)
    assert len(await nameless.container.engine.runs(active=True, limit=10)) == 1
    assert_well_behaved(nameless)


# -- 7. an alert no runbook matches ---------------------------------------------------------------


def status_page(state: str = "DOWN") -> Event:
    """UptimeRobot on the shop's status page: a monitor no runbook is about."""
    return uptime(
        "Agape status page ( https://status.agapelooks.com )", state, "Connection Timeout"
    )


async def test_an_unmatched_alert_offers_a_menu_once_and_a_pick_opens_the_run_there(
    world: World,
) -> None:
    event = status_page()
    thread = event["ts"]
    await world.alert(event, event_id="Ev0UNMATCHED")

    menu = await world.reply_saying(thread, "No runbook matches")
    assert has_menu(menu)
    await world.alert(event, event_id="Ev0UNMATCHED", retry_num=1)
    await world.settle()
    assert [m["ts"] for m in world.replies(thread)] == [menu["ts"]]
    assert cards(world) == []

    await world.sender.select(world.slack, RESPONDER, menu["ts"], "database-failover")
    card = await world.card(thread)
    assert header_of(card).endswith(" · Database Failover")
    await world.settle()
    assert len(cards(world)) == 1
    assert world.top_level() == []
    assert_well_behaved(world)


async def test_a_runbook_picked_for_an_alert_takes_its_refire_and_its_recovery(
    world: World,
) -> None:
    down = status_page()
    thread = down["ts"]
    await world.alert(down)
    menu = await world.reply_saying(thread, "No runbook matches")
    await world.sender.select(world.slack, RESPONDER, menu["ts"], "database-failover")
    await world.card(thread)
    await world.settle()

    again = status_page()
    await world.alert(again)
    await world.settle()
    assert world.slack.messages(ALERTS, thread_ts=again["ts"]) == []
    await world.card_saying(thread, "fired 2 times")

    await world.alert(status_page("UP"))
    await world.reply_saying(thread, "monitoring reports resolved")
    assert world.top_level() == []
    assert_well_behaved(world)


# -- 8. acknowledged at once, however slow Slack is -----------------------------------------------


async def test_a_burst_is_acknowledged_at_once_while_slack_answers_slowly(world: World) -> None:
    world.slack.latency("*", 0.5)
    alerts = [alertmanager(instance=f"api-{n}") for n in (1, 2, 3)]
    retry = alerts[0]
    extra = [typed("what is going on?", thread_ts=retry["ts"]), datadog()]

    await asyncio.gather(
        *(world.alert(a, event_id=f"Ev0BURST{n:04d}") for n, a in enumerate(alerts)),
        world.alert(retry, event_id="Ev0BURST0000", retry_num=1),
        *(world.alert(event) for event in extra),
    )

    assert_well_behaved(world)
    for alert in [*alerts, extra[1]]:
        await world.card(alert["ts"])
    await world.settle()
    assert len(cards(world)) == 4
    assert (await world.run_of(retry["ts"])).alert_count == 1
    assert world.top_level() == []
    assert_well_behaved(world)
