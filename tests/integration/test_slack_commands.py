"""`/ops` typed in Slack, and the App Home tab.

The bot is served over real HTTP against the fake Slack (``slack_fixtures``); each command is
posted as Slack posts a slash command, signed. Subcommands that read nothing slow (help,
runbooks, contacts, dashboards, and what is not a subcommand) are answered in the command's own
HTTP response, an ephemeral text; the others are acknowledged at once and answered to the typer
alone with chat.postEphemeral, while what they change shows on the run's card and in its thread.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import slack_fixtures
import walkthrough_http
from fake_slack import FakeSlack, Upload
from slack_fixtures import World, header_of, serving, slack_settings, words
from test_walkthroughs import VARIANTS, oversold, stock
from test_walkthroughs_ops import INTRUSION, VICTIM
from walkthrough_http import FakeBackend
from walkthrough_seed import APPROVER, REPO, RESPONDER, STRANGER, seed

from agape_ops.engine.records import RunState, StepState

pytestmark = pytest.mark.integration

fake = walkthrough_http.fake
fake_slack = slack_fixtures.fake_slack
world = slack_fixtures.world

#: The channel the team types `/ops` in and starts runs from, and another one.
OPS = "C0OPS"
ELSEWHERE = "C0RANDOM"
TITLES = (
    "Payment Gateway Outage",
    "Failed Webhook Processing",
    "Database Failover",
    "Inventory Oversell",
    "Security Incident",
    "High Error Rate (5xx)",
    "Queue Backlog",
)
#: A secret input the security runbook is given in one test (none of the seven declares one).
SECRET_INPUT = """  api_key:
    description: The leaked API key, to look it up
    pattern: '^[A-Za-z0-9_]{8,}$'
    secret: true
"""
LEAKED = "sk_live_leaked_0123456789"


@pytest.fixture
async def secret_world(
    backend_db: str, redis_db: str, tmp_path: Path, fake: FakeBackend, fake_slack: FakeSlack
) -> AsyncIterator[World]:
    """The served bot over the seven runbooks, the security runbook declaring a secret input."""
    folder = tmp_path / "runbooks"
    shutil.copytree(REPO / "runbooks", folder)
    security = folder / "security-incident.yaml"
    text = security.read_text()
    security.write_text(text.replace("\ninputs:\n", "\ninputs:\n" + SECRET_INPUT, 1))
    fake.router.route(host="127.0.0.1").pass_through()
    config = slack_settings(backend_db, redis_db, tmp_path, fake_slack, runbooks_dir=folder)
    async with serving(config, fake_slack) as served:
        yield served


# --- typing and reading the answers -----------------------------------------------------------


async def asked(world: World, text: str, user: str = RESPONDER, channel: str = OPS) -> str:
    """Type `/ops text` in a channel; return the answer in the command's own HTTP response, an
    ephemeral text (a subcommand that reads nothing slow)."""
    response = await world.sender.command(text, user=user, channel=channel)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response_type"] == "ephemeral"
    return str(body["text"])


async def ops(world: World, text: str, user: str = RESPONDER, channel: str = OPS) -> None:
    """Type `/ops text` in a channel: the bot acknowledges at once with an empty response and
    answers afterwards (chat.postEphemeral, the card, the thread)."""
    response = await world.sender.command(text, user=user, channel=channel)
    assert (response.status_code, response.text) == (200, ""), response.text
    assert world.sender.last.seconds < 3  # Slack wants its answer within three seconds


async def told(world: World, user: str, text: str, channel: str = OPS) -> dict[str, Any]:
    """Wait for an ephemeral to ``user`` saying ``text``, where they typed (not in a thread)."""
    message = await world.ephemeral_to(user, text)
    assert (message["channel"], message["thread_ts"]) == (channel, None), message
    return message


def cards(world: World, channel: str) -> list[dict[str, Any]]:
    """The run cards at the top of a channel (a run started there by `/ops start`)."""
    return [
        dict(m)
        for m in world.slack.messages(channel)
        if " · " in header_of(m) and m.get("thread_ts") in (None, m["ts"])
    ]


async def card_saying(world: World, run_id: str, text: str) -> dict[str, Any]:
    """Wait until the card of ``run_id`` (wherever it is) shows ``text``."""

    def found(slack: FakeSlack) -> dict[str, Any]:
        for message in slack.messages():
            if f"{run_id} · " in header_of(message) and text in words(message):
                return dict(message)
        return {}

    return await world.slack.wait_for(found, slack_fixtures.WITHIN, what=f"{run_id}: {text!r}")


async def reply_saying(world: World, card: dict[str, Any], text: str) -> dict[str, Any]:
    """Wait for a reply in the card's thread saying ``text``."""

    def found(slack: FakeSlack) -> dict[str, Any]:
        for message in slack.messages(card["channel"], thread_ts=card["ts"]):
            if message["ts"] != card["ts"] and text in words(message):
                return dict(message)
        return {}

    return await world.slack.wait_for(found, slack_fixtures.WITHIN, what=f"a reply {text!r}")


async def started(world: World, runbook: str, channel: str = OPS) -> dict[str, Any]:
    """`/ops start runbook` in a channel: told the run opened, its card at the channel's top."""
    before = len(cards(world, channel))
    await ops(world, f"start {runbook}", channel=channel)
    await world.slack.wait_for(lambda s: len(cards(world, channel)) > before, what="a card")
    await world.settle()  # the card's place recorded on the run
    card = cards(world, channel)[-1]
    await told(world, RESPONDER, f"{run_of(card)} opened: ", channel)
    return card


async def acknowledged_oversell(
    world: World, backend_conn: psycopg.AsyncConnection[Any]
) -> dict[str, Any]:
    """Stock sold below zero, INC-1 of the oversell runbook started in #ops and acknowledged
    there; return its card."""
    await seed(backend_conn, *oversold())
    card = await started(world, "inventory-oversell")
    await ops(world, "ack")
    await card_saying(world, "INC-1", f"acknowledged by {RESPONDER}")
    return card


def run_of(card: dict[str, Any]) -> str:
    return header_of(card).split(" · ")[0].split()[-1]


async def state(world: World, run_id: str) -> RunState:
    await world.settle()
    return (await world.container.engine.get_run(run_id)).state


async def uploaded(world: World, suffix: str) -> tuple[Upload, str]:
    """Wait for a file named ``*suffix`` to be uploaded and shared; return it and its text."""
    upload = await world.slack.wait_for(
        lambda s: next((u for u in s.uploads if u.completed and u.filename.endswith(suffix)), None),
        what=f"a {suffix} file uploaded",
    )
    assert upload is not None
    assert upload.content is not None
    return upload, upload.content.decode()


async def submit_modal(world: World, user: str, before: int) -> None:
    """Submit the modal opened after ``before`` modals were, as it stands (it asks nothing)."""
    await world.slack.wait_for(lambda s: len(s.views_opened) > before, what="a modal opened")
    view = world.slack.view()
    assert view is not None
    response = await world.sender.submit(world.slack, user, view["id"], {})
    assert (response.status_code, response.text) == (200, "")


# --- answered at once -------------------------------------------------------------------------


async def test_help_and_what_is_not_a_subcommand_are_answered_in_the_response(
    world: World,
) -> None:
    for text in ("", "help"):
        helped = await asked(world, text)
        assert helped.startswith("`/ops` subcommands:\n```")
        for syntax in ("start &lt;runbook&gt;", "status [RUN]", "input &lt;name&gt;=&lt;value&gt;"):
            assert syntax in helped

    unknown = await asked(world, "frobnicate the db")
    assert unknown.startswith("Unknown subcommand `frobnicate`. Subcommands: help, runbooks,")
    assert "resolve [--yes] [note]" in unknown  # the usage follows
    close = await asked(world, "stauts")
    assert close.startswith("Unknown subcommand `stauts`. Did you mean `status`?")
    wrong = await asked(world, "timeline INC-1 pdf")
    assert wrong.startswith("Timeline formats: md, json (got `pdf`)")

    await world.settle()
    assert world.slack.calls("chat.postEphemeral") == []
    assert world.slack.messages() == []
    assert world.slack.block_errors == []


async def test_runbooks_contacts_and_dashboards_are_answered_in_the_response(
    world: World,
) -> None:
    listed = await asked(world, "runbooks")
    for title in TITLES:
        assert f"*{title}*" in listed
    assert "`inventory-oversell` — *Inventory Oversell* (sev2)" in listed

    contacts = await asked(world, "contacts")
    assert "On-Call Engineer: +234-xxx-xxx-xxxx" in contacts
    assert "DevOps Lead: devops@agapelooks.com" in contacts
    assert "Paystack Support: support@paystack.com" in contacts
    boards = await asked(world, "dashboards")
    assert "<https://dashboard.agapelooks.com|Application>" in boards
    assert "Redis" in boards

    assert world.slack.calls("chat.postEphemeral") == []
    assert world.slack.block_errors == []


# --- runs started, listed and moved along -----------------------------------------------------


async def test_start_posts_the_card_in_the_channel_and_status_lists_the_open_runs(
    world: World, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await seed(backend_conn, *oversold())
    await ops(world, "status")
    await told(world, RESPONDER, "No runs are open.")

    card = await started(world, "inventory-oversell")

    assert header_of(card) == "🚨 INC-1 · Inventory Oversell"
    finding = await reply_saying(world, card, "2 SKUs have stock below zero: DRESS-RED-M (-2)")
    assert finding["thread_ts"] == card["ts"]
    await card_saying(world, "INC-1", "2 SKUs have stock below zero")
    top = [m for m in world.slack.messages(OPS) if m.get("thread_ts") in (None, m["ts"])]
    assert [m["ts"] for m in top] == [card["ts"]]  # only the card at the top of the channel
    await ops(world, "start no-such-runbook")
    await told(world, RESPONDER, "no runbook 'no-such-runbook' (runbooks: database-failover,")

    other = await started(world, "queue-backlog", channel=ELSEWHERE)
    assert run_of(other) == "INC-2"
    await ops(world, "status", user=STRANGER, channel=ELSEWHERE)
    listing = await told(world, STRANGER, "Inventory Oversell", ELSEWHERE)
    link = f"https://slack.com/archives/{OPS}/p{card['ts'].replace('.', '')}"
    assert f"*<{link}|INC-1>* Inventory Oversell · open · sev2" in listing["text"]
    assert "INC-2>* Queue Backlog · open · sev3" in listing["text"]

    await ops(world, "status INC-1", user=STRANGER, channel=ELSEWHERE)
    shown = await told(world, STRANGER, "*Open* · sev2 · owner: devops", ELSEWHERE)
    assert "2 SKUs have stock below zero" in words(shown)
    assert "1. SKUs with stock below zero" in words(shown)
    assert world.slack.block_errors == []


async def test_ack_note_mitigated_resolve_close_with_a_run_id_or_in_the_runs_channel(
    world: World, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await seed(backend_conn, *oversold())
    card = await started(world, "inventory-oversell")

    # Named from another channel: a stranger is refused saying who may, a responder is not.
    await ops(world, "ack INC-1", user=STRANGER, channel=ELSEWHERE)
    refused = await told(world, STRANGER, "acknowledging INC-1 requires a responder", ELSEWHERE)
    assert "Not allowed" in refused["text"]
    assert await state(world, "INC-1") is RunState.OPEN
    await ops(world, "ack INC-1", channel=ELSEWHERE)
    await told(world, RESPONDER, f"INC-1 acknowledged by {RESPONDER}", ELSEWHERE)
    await card_saying(world, "INC-1", f"acknowledged by {RESPONDER}")
    await ops(world, "note INC-1 stock counts pulled from the warehouse", channel=ELSEWHERE)
    await reply_saying(world, card, f"📝 {RESPONDER}: stock counts pulled from the warehouse")

    # Typed without a run id: nothing open in that channel, then the only run open in it.
    await ops(world, "mitigated", channel=ELSEWHERE)
    await told(world, RESPONDER, "No run is open in this channel: name one", ELSEWHERE)
    await ops(world, "note warehouse recount under way")
    await reply_saying(world, card, f"📝 {RESPONDER}: warehouse recount under way")
    await ops(world, "mitigated")
    await told(world, RESPONDER, "INC-1 is mitigated")
    await card_saying(world, "INC-1", "*Mitigated*")
    await ops(world, "resolve", user=STRANGER)
    await told(world, STRANGER, "marking a run resolved requires a responder")
    # The stock check last found SKUs below zero: resolving says so and asks to retype.
    await ops(world, "resolve stock corrected by hand")
    asked = await told(world, RESPONDER, "INC-1 may not be over: “SKUs with stock below zero”")
    assert (
        "To resolve it anyway, type `/ops resolve INC-1 --yes stock corrected by hand`"
        in (asked["text"])
    )
    assert await state(world, "INC-1") is RunState.MITIGATED
    await ops(world, "resolve --yes stock corrected by hand")
    await told(world, RESPONDER, "INC-1 is resolved")
    await card_saying(world, "INC-1", "*Resolved*")
    await reply_saying(world, card, "stock corrected by hand")
    await ops(world, "close INC-1")
    await told(world, RESPONDER, "INC-1 is closed")
    await card_saying(world, "INC-1", "*Closed*")
    assert await state(world, "INC-1") is RunState.CLOSED

    # With two runs open in one channel, a command without a run id asks which.
    await started(world, "inventory-oversell", channel=ELSEWHERE)
    await started(world, "queue-backlog", channel=ELSEWHERE)
    await ops(world, "ack", channel=ELSEWHERE)
    await told(world, RESPONDER, "Several runs are open here (", ELSEWHERE)
    assert await state(world, "INC-2") is RunState.OPEN
    assert world.slack.block_errors == []


async def test_steps_skipped_ticked_and_run_by_number(
    world: World, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await seed(backend_conn, *oversold())
    await started(world, "inventory-oversell")

    await ops(world, "skip 2 no complaints yet")
    await told(world, RESPONDER, "Skipped Complaints and concurrent order errors")
    await card_saying(world, "INC-1", "⏭️ 2. Complaints and concurrent order errors")
    await ops(world, "done 4 1 2")
    await told(world, RESPONDER, "Done: Email affected customers immediately; Done: Offer refund")
    await card_saying(world, "INC-1", "4. Contact customers — 2/3 done")
    await ops(world, "done 4")
    await card_saying(world, "INC-1", "✅ 4. Contact customers — done")
    await ops(world, "done 3")
    await told(world, RESPONDER, "“Identify affected orders” is not a checklist")
    await ops(world, "done 4 9")
    await told(world, RESPONDER, "“Contact customers” has items 1-3")

    # A read step runs at once; its result is a reply in the run's thread.
    await ops(world, "run 3")
    card = cards(world, OPS)[0]
    await reply_saying(world, card, "3 order lines are on oversold variants: orders AG-1001")

    # A change opens a modal saying what it does; submitting it runs it (for who may).
    opened = len(world.slack.views_opened)
    await ops(world, "run 5")
    await submit_modal(world, RESPONDER, opened)
    await told(world, RESPONDER, "“Correct stock” requires an approver")
    assert await stock(backend_conn) == VARIANTS
    opened = len(world.slack.views_opened)
    await ops(world, "run INC-1 5", user=APPROVER, channel=ELSEWHERE)
    await world.slack.wait_for(lambda s: len(s.views_opened) > opened, what="a modal")
    modal = world.slack.view()
    assert modal is not None
    assert "Set stock to 0 on every product variant whose stock is below zero" in words(modal)
    assert modal["submit"]["text"] == "Correct stock"
    assert world.slack.calls("views.open")[-1].params["trigger_id"]
    assert await stock(backend_conn) == VARIANTS  # nothing ran before the submission
    await submit_modal(world, APPROVER, opened)
    await reply_saying(world, card, "Stock set to 0 on 2 product variants (version bumped)")
    assert await stock(backend_conn) == {"DRESS-RED-M": 0, "DRESS-BLU-S": 0, "DRESS-GRN-L": 4}
    await world.settle()
    steps = await world.container.store.get_steps("INC-1")
    assert steps["correct_stock"].attempts == 1
    assert steps["complaints_and_errors"].state is StepState.SKIPPED
    assert world.slack.block_errors == []


async def test_input_gives_the_run_a_value_its_steps_use(
    world: World, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await seed(backend_conn, *INTRUSION)
    card = await started(world, "security-incident")

    await ops(world, "input email=jane@example.com", user=STRANGER)
    await told(world, STRANGER, "setting email requires a responder")
    await ops(world, "input email=not-an-address")
    await told(world, RESPONDER, "“not-an-address” is not a valid email address of the affected")
    await ops(world, "input INC-1 email=jane@example.com", channel=ELSEWHERE)
    await told(world, RESPONDER, "email set", ELSEWHERE)

    # The lookup needs the email: the run has it, so it runs without asking.
    opened = len(world.slack.views_opened)
    await ops(world, "run find_user")
    await reply_saying(world, card, f"jane@example.com: user {VICTIM} (customer)")
    assert len(world.slack.views_opened) == opened
    assert world.slack.block_errors == []


async def test_a_secret_input_is_refused_and_never_shown(
    secret_world: World, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    world = secret_world
    await seed(backend_conn, *INTRUSION)
    await started(world, "security-incident")

    await ops(world, f"input api_key={LEAKED}")
    refused = await told(world, RESPONDER, "api_key is secret, so the bot never keeps it")
    assert "give it to the step that needs it when that step asks" in refused["text"]
    await world.settle()
    run = await world.container.engine.get_run("INC-1")
    assert "api_key" not in run.inputs
    everything = json.dumps(
        [world.slack.messages(), world.slack.ephemerals(), [c.params for c in world.slack.calls()]]
    )
    assert LEAKED not in everything
    timeline = await world.container.engine.timeline("INC-1")
    assert all(LEAKED not in e.summary for e in timeline)
    assert world.slack.block_errors == []


async def test_timeline_uploads_the_postmortem_draft_in_the_runs_thread(
    world: World, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    card = await acknowledged_oversell(world, backend_conn)

    await ops(world, "timeline INC-1", channel=ELSEWHERE)
    upload, draft = await uploaded(world, ".md")
    assert upload.filename == "INC-1-timeline.md"
    assert (upload.channel_id, upload.thread_ts) == (ELSEWHERE, None)  # where it was asked
    assert draft.startswith("# INC-1: Inventory Oversell")
    assert "2 SKUs have stock below zero: DRESS-RED-M (-2), DRESS-BLU-S (-1)" in draft
    assert f"({RESPONDER})" in draft.split("## Timeline")[0]  # who acknowledged

    await ops(world, "timeline json")
    exported, data = await uploaded(world, ".json")
    assert (exported.channel_id, exported.thread_ts) == (OPS, card["ts"])  # in the run's thread
    assert json.loads(data)["run"]["id"] == "INC-1"
    assert world.slack.block_errors == []


# --- App Home ---------------------------------------------------------------------------------


async def test_app_home_lists_open_runs_the_runbooks_and_who_is_on_call(
    world: World, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    card = await acknowledged_oversell(world, backend_conn)
    await started(world, "queue-backlog", channel=ELSEWHERE)
    await ops(world, "resolve INC-2 --yes", channel=ELSEWHERE)  # its backlog check still fails
    await card_saying(world, "INC-2", "*Resolved*")

    opened = {"type": "app_home_opened", "user": APPROVER, "channel": "D0HOME", "tab": "home"}
    response = await world.sender.event(opened)
    assert response.status_code == 200

    home = await world.slack.wait_for(lambda s: s.home_views.get(APPROVER), what="a Home tab")
    assert home is not None
    shown = words(home)
    link = f"https://slack.com/archives/{OPS}/p{card['ts'].replace('.', '')}"
    assert f"*<{link}|INC-1>* Inventory Oversell · acknowledged · sev2" in shown
    assert "INC-2" not in shown  # resolved: no longer open
    for title in TITLES:
        assert f"*{title}*" in shown
    assert "Level 1 (after 5 min): <!subteam^S0000ONCALL>" in shown
    assert "Level 2 (after 15 min): <@U0000DEVOPS>" in shown
    assert "Level 3 (after 30 min, sev1/sev2 only): <@U00000CTO>" in shown
    assert "DevOps Lead: devops@agapelooks.com" in shown
    assert world.slack.block_errors == []
