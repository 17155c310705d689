"""Runbooks walked in Slack, from a realistic alert in #alerts to a resolved run.

The bot is served over real HTTP (``slack_fixtures``); the test posts what Slack posts, signed,
and reads what the bot did from the fake Slack: the run card in the alert's thread, updated in
place; results as replies; refusals to the presser alone; changes confirmed, permitted, done once.
Each runbook's world (rows, queues, Paystack, the admin API, Prometheus) is the one its engine
walkthrough seeds (``test_walkthroughs``, ``test_walkthroughs_ops``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import slack_fixtures
import test_walkthroughs_ops
import walkthrough_http
from fake_prometheus import Series
from fake_slack import FakeSlack
from slack_fixtures import ALERTS, World, alert_event, header_of, serving, slack_settings, words
from slack_requests import find_element
from test_walkthroughs import (
    VARIANTS,
    WEBHOOK_NEW,
    oversold,
    paystack_outage,
    stock,
    stuck_webhooks,
)
from test_walkthroughs_ops import (
    BYSTANDER,
    INTRUSION,
    VICTIM,
    Programs,
    email_backlog,
    error_spike,
)
from walkthrough_http import FakeBackend
from walkthrough_seed import APPROVER, RESPONDER, SECOND_APPROVER, STRANGER, scalar, seed

from agape_ops.engine.records import RunState

pytestmark = pytest.mark.integration

fake = walkthrough_http.fake
fake_slack = slack_fixtures.fake_slack
world = slack_fixtures.world
programs = test_walkthroughs_ops.programs

ERRORS = "high-error-rate"


@pytest.fixture
async def shell_world(
    backend_db: str,
    redis_db: str,
    tmp_path: Path,
    *,
    fake: FakeBackend,
    fake_slack: FakeSlack,
    programs: Programs,
) -> AsyncIterator[World]:
    """The served bot with shell steps enabled, running the stand-ins on PATH."""
    fake.router.route(host="127.0.0.1").pass_through()
    config = slack_settings(backend_db, redis_db, tmp_path, fake_slack, ops_allow_shell=True)
    async with serving(config, fake_slack) as served:
        yield served


@pytest.fixture
async def dead_db_world(
    redis_db: str, tmp_path: Path, fake: FakeBackend, fake_slack: FakeSlack
) -> AsyncIterator[World]:
    """The served bot whose backend database refuses connections (nothing listens on port 1)."""
    fake.router.route(host="127.0.0.1").pass_through()
    dead = "postgresql://agape:hunter2@127.0.0.1:1/agape"
    config = slack_settings(dead, redis_db, tmp_path, fake_slack)
    async with serving(config, fake_slack) as served:
        yield served


# --- what an on-call engineer does in a thread ------------------------------------------------


async def alerted(world: World, alert: tuple[str, str], title: str, *findings: str) -> str:
    """Post an Alertmanager alert (its name and instance) in #alerts; wait for the run card of
    ``title`` in its thread (nothing new at the top of the channel) and for each detection
    finding to be said in a reply and on the card. Return the thread."""
    event = alert_event(*alert)
    await world.alert(event)
    thread = str(event["ts"])
    assert header_of(await world.card(thread)).endswith(f" · {title}")
    assert world.top_level() == []
    for finding in findings:
        await world.reply_saying(thread, finding)
        await world.card_saying(thread, finding)
    return thread


def checked(view: dict[str, Any], items: list[int]) -> dict[str, Any]:
    """A checklist modal's state with these item numbers ticked (as Slack sends checkboxes)."""
    block = next(b for b in view["blocks"] if b.get("type") == "input")
    assert block["element"]["type"] == "checkboxes"
    options = [o for o in block["element"]["options"] if int(o["value"]) in items]
    return {block["block_id"]: {"type": "checkboxes", "selected_options": options}}


async def opened_modal(world: World, before: int) -> dict[str, Any]:
    """Wait for the modal opened after ``before`` modals were; return it as the fake holds it."""
    await world.slack.wait_for(lambda s: len(s.views_opened) > before, what="a modal opened")
    view = world.slack.view()
    assert view is not None
    return view


async def tick(world: World, thread: str, user: str, step: str, items: list[int]) -> None:
    """Press a checklist's "Tick:" button on the card and submit its modal with these items."""
    before = len(world.slack.views_opened)
    await world.press(await world.card(thread), user, f"Tick: {step}")
    view = await opened_modal(world, before)
    response = await world.sender.submit(world.slack, user, view["id"], checked(view, items))
    assert response.status_code == 200, response.text


async def submit_step(
    world: World, thread: str, user: str, button: str, answers: dict[str, str]
) -> None:
    """Press a step's button on the card, fill in the modal it opens and submit it: the bot
    accepts the values (the modal closes)."""
    before = len(world.slack.views_opened)
    await world.press(await world.card(thread), user, button)
    view = await opened_modal(world, before)
    response = await world.sender.submit(world.slack, user, view["id"], answers)
    assert (response.status_code, response.text) == (200, "")


def row_button(message: dict[str, Any], step_id: str, **inputs: str) -> str:
    """The value of the follow-up button on a result reply that runs ``step_id`` with a row's
    inputs (the button carries them)."""
    values = [
        e["value"]
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b["elements"]
        if json.loads(e.get("value") or "{}").get("s") == step_id
        and json.loads(e["value"]).get("i") == inputs
    ]
    assert len(values) == 1, f"{len(values)} buttons run {step_id} with {inputs}"
    return str(values[0])


async def events_of(world: World, thread: str, step_id: str) -> list[str]:
    """The kinds of the timeline events of one step of the thread's run."""
    await world.settle()
    run = await world.run_of(thread)
    return [e.kind for e in await world.container.engine.timeline(run.id) if e.step_id == step_id]


async def export_timeline(world: World, thread: str) -> str:
    """Press "Export timeline" on the card; return the Markdown file uploaded in the thread."""
    run = await world.run_of(thread)
    await world.press(await world.card(thread), RESPONDER, "Export timeline")
    upload = await world.slack.wait_for(
        lambda s: next((u for u in s.uploads if u.completed), None), what="a timeline upload"
    )
    assert upload is not None
    assert upload.filename == f"{run.id}-timeline.md"
    assert (upload.channel_id, upload.thread_ts) == (ALERTS, thread)
    assert upload.content is not None
    return upload.content.decode()


async def resolve(world: World, thread: str) -> None:
    """Press Resolve on the card (Slack's dialog confirmed it); the card ends "Resolved"."""
    await world.press(await world.card(thread), RESPONDER, "Resolve")
    card = await world.card_saying(thread, "*Resolved*")
    assert header_of(card).startswith("✅ ")
    assert (await world.run_of(thread)).state is RunState.RESOLVED
    assert world.slack.block_errors == []


# --- 4. Inventory Oversell --------------------------------------------------------------------


NOTHING_TO_CHANGE = "Nothing to change: 0 SKUs have stock below zero"


def said_to(slack: FakeSlack, user: str, text: str) -> list[dict[str, Any]]:
    """Return the ephemerals to ``user`` that say ``text``, oldest first."""
    return [dict(m) for m in slack.ephemerals(user=user) if text in words(m)]


def told_either(user: str, *texts: str) -> Callable[[FakeSlack], dict[str, Any]]:
    """Return a fake Slack condition: the first ephemeral to ``user`` saying one of ``texts``."""

    def found(slack: FakeSlack) -> dict[str, Any]:
        return next((m for t in texts for m in said_to(slack, user, t)), {})

    return found


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

    # An approver's double click (Slack's dialog confirmed it) corrects it once. The second
    # press of the same rendering is asked again, saying it was done, while the first still
    # runs; once the correction is made, its precondition finds nothing to change.
    seen = await world.card(thread)
    await world.press(seen, APPROVER, "Correct stock")
    await world.press(seen, APPROVER, "Correct stock")
    await world.reply_saying(thread, "Stock set to 0 on 2 product variants")
    again = await world.slack.wait_for(
        told_either(APPROVER, "this would do it again", NOTHING_TO_CHANGE),
        slack_fixtures.WITHIN,
        what="the second press answered",
    )
    if "this would do it again" in words(again):
        assert "Confirm" in words(again)
    assert await stock(backend_conn) == {"DRESS-RED-M": 0, "DRESS-BLU-S": 0, "DRESS-GRN-L": 4}
    await world.settle()
    run = await world.run_of(thread)
    changes = [
        e for e in await world.container.engine.timeline(run.id) if e.step_id == "correct_stock"
    ]
    kinds = [e.kind for e in changes]
    assert kinds[:2] == ["step.refused", "step.finished"]
    assert set(kinds[2:]) <= {"step.precondition"}

    # The check the correction fixes ran again and says so in the thread; pressed now, Correct
    # stock has nothing to change: the presser is told so, and nothing is asked or done.
    cleared = await world.reply_saying(thread, "0 SKUs have stock below zero")
    assert "checked again after “Correct stock levels”" in words(cleared)
    await world.card_saying(thread, "0 SKUs have stock below zero")
    told = len(said_to(world.slack, APPROVER, NOTHING_TO_CHANGE))
    await world.press(await world.card(thread), APPROVER, "Correct stock")

    def answered(slack: FakeSlack) -> dict[str, Any]:
        found = said_to(slack, APPROVER, NOTHING_TO_CHANGE)
        return found[-1] if len(found) > told else {}

    nothing = await world.slack.wait_for(answered, slack_fixtures.WITHIN, what="nothing to do")
    assert "Not allowed" not in words(nothing)
    assert "Confirm" not in words(nothing)
    await world.settle()
    changes = [
        e for e in await world.container.engine.timeline(run.id) if e.step_id == "correct_stock"
    ]
    assert [e.kind for e in changes][-1] == "step.precondition"
    assert [e.kind for e in changes].count("step.finished") == 1

    # A stranger may not resolve; a responder may, and the card says so in place.
    card = await world.card(thread)
    await world.sender.click(world.slack, STRANGER, card["ts"], text="Resolve")
    await world.ephemeral_to(STRANGER, "requires a responder")
    await world.sender.click(world.slack, RESPONDER, card["ts"], text="Resolve")
    await world.card_saying(thread, "Resolved")
    assert (await world.run_of(thread)).state is RunState.RESOLVED
    assert world.slack.block_errors == []


# --- 1. Payment Gateway Outage ----------------------------------------------------------------


async def test_payment_gateway_outage_from_alert_to_resolved_in_slack(
    world: World, fake: FakeBackend, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await paystack_outage(backend_conn, fake)

    thread = await alerted(
        world,
        ("PaymentGatewayOutage", "api-1"),
        "Payment Gateway Outage",
        "Webhook failure rate over the last 15 minutes: 14.3% (2 of 14 webhooks failed)",
        "Paystack status page: Partial System Outage (indicator major); 2 open incidents",
        "3 of 8 payment initialisations failed in the last 15 minutes (37.5%)",
        "Payment requests answered 5xx over the last hour: 1.0% → 35.0% (rising",
    )
    await world.press(await world.card(thread), RESPONDER, "Acknowledge")
    await world.card_saying(thread, f"acknowledged by {RESPONDER}")

    # The immediate actions are checklists: two of three items ticked in the modal, then all.
    await tick(world, thread, RESPONDER, "Pause marketing", [1, 2])
    await world.card_saying(thread, "6. Pause marketing campaigns — 2/3 done")
    await tick(world, thread, RESPONDER, "Enable the maintenance banner", [1])
    await world.card_saying(thread, "✅ 5. Enable the maintenance banner — done")

    # The orders to take by hand while the gateway is down.
    await world.press(await world.card(thread), RESPONDER, "Orders waiting for payment")
    pending = "2 orders placed in the last 24 hours are waiting for payment: AG-3001, AG-3002"
    await world.reply_saying(thread, pending)

    # Paystack recovers and the failed webhooks are processed: the rechecks say so.
    fake.indicator, fake.incidents = "none", []
    await backend_conn.execute("UPDATE webhook_events SET status = 'processed'")
    await world.press(await world.card(thread), RESPONDER, "Monitor Paystack status page")
    await world.reply_saying(thread, "All Systems Operational (indicator none); no open incidents")
    await world.press(await world.card(thread), RESPONDER, "Webhook failure rate after")
    await world.reply_saying(thread, "0.0% (0 of 14 webhooks failed)")
    assert len(fake.requests("GET", "/api/v2/status.json")) == 2

    draft = await export_timeline(world, thread)
    assert draft.startswith("# INC-1: Payment Gateway Outage")
    assert pending in draft
    await resolve(world, thread)


# --- 2. Failed Webhook Processing -------------------------------------------------------------


async def test_failed_webhook_processing_from_alert_to_resolved_in_slack(
    world: World, fake: FakeBackend, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await stuck_webhooks(backend_conn, fake)

    thread = await alerted(
        world,
        ("WebhookProcessingFailed", "api-1"),
        "Failed Webhook Processing",
        "3 webhooks are stuck in failed status (2 received in the last hour",
        "1 of 3 orders still in pending_payment are paid at Paystack: T-PAID-1 (order AG-2001",
    )

    # Each pending order's reply row verifies its payment with Paystack, from the row.
    pending = await world.reply_saying(thread, "3 orders with a Paystack reference are waiting")
    verify = row_button(pending, "verify_payment", reference="T-PAID-1")
    await world.sender.click(world.slack, RESPONDER, pending["ts"], value=verify)
    await world.reply_saying(thread, "Paystack reports T-PAID-1 as success (NGN 25,000.00")

    # The diagnosis lists the failed webhooks; each row reprocesses its own webhook.
    await world.press(await world.card(thread), RESPONDER, "Failed webhooks (newest 20)")
    listed = await world.reply_saying(thread, "3 failed webhooks, newest first")
    assert f"{WEBHOOK_NEW} (T-PAID-1, order AG-2001 pending_payment)" in words(listed)
    reprocess = row_button(listed, "reprocess_webhook", webhook_id=WEBHOOK_NEW)
    _, button = find_element(listed, "button", value=reprocess)
    assert button["text"]["text"].startswith("Reprocess (webhook_id=")
    assert "confirm" in button  # Slack's dialog asks first; a click payload means "yes"

    await world.sender.click(world.slack, STRANGER, listed["ts"], value=reprocess)
    await world.ephemeral_to(STRANGER, "“Reprocess” requires a responder")
    assert fake.requests("POST", "/api/v1/admin/webhooks/reprocess") == []
    await world.sender.click(world.slack, RESPONDER, listed["ts"], value=reprocess)
    await world.reply_saying(thread, f"Webhook {WEBHOOK_NEW}: queued (HTTP 202)")
    await world.settle()
    [posted] = fake.requests("POST", "/api/v1/admin/webhooks/reprocess")
    assert json.loads(posted.read()) == {"webhookId": WEBHOOK_NEW}
    assert await events_of(world, thread, "reprocess_webhook") == ["step.refused", "step.finished"]

    await resolve(world, thread)


# --- 3. Database Failover ---------------------------------------------------------------------

UNREACHABLE = "PostgreSQL: unreachable (connection refused) at 127.0.0.1:1"


async def test_database_failover_with_the_database_unreachable_from_alert_to_resolved_in_slack(
    dead_db_world: World, fake: FakeBackend, backend_db: str
) -> None:
    world = dead_db_world
    fake.health_status = 503
    fake.health_checks = {"db": "connect ECONNREFUSED 10.0.0.5:5432", "redis": "ok"}

    thread = await alerted(
        world,
        ("PostgresDown", "db-1"),
        "Database Failover",
        f"Database reachability: {UNREACHABLE}",
        "Backend /healthz: error (HTTP 503); db: connect ECONNREFUSED 10.0.0.5:5432, redis: ok",
    )
    # The bot goes on serving without its backend database.
    async with httpx.AsyncClient() as client:
        served = await client.get(f"{world.url}/healthz")
    assert served.status_code == 200, served.text
    assert served.json()["database"] == "down"
    await world.press(await world.card(thread), RESPONDER, "Acknowledge")
    await world.card_saying(thread, f"acknowledged by {RESPONDER}")

    # Promoting the replica is an approver's checklist, and takes the failover lock.
    await tick(world, thread, RESPONDER, "Promote the replica", [1, 2])
    await world.ephemeral_to(RESPONDER, "“Promote replica” requires an approver")
    await world.settle()
    assert "⚪ 5. Promote the replica\n" in words(await world.card(thread))
    await tick(world, thread, APPROVER, "Promote the replica", [1, 2])
    await world.card_saying(thread, "✅ 5. Promote the replica — done")
    other = alert_event("PostgresDown", "db-2")
    await world.alert(other)
    await tick(world, other["ts"], APPROVER, "Promote the replica", [2])
    await world.ephemeral_to(APPROVER, "the failover lock is held by INC-1")
    await world.card_saying(other["ts"], "⚪ 5. Promote the replica")

    await tick(world, thread, RESPONDER, "Update the connection string", [1])
    await world.card_saying(thread, "✅ 6. Update the connection string — done")
    # This bot's DATABASE_URL still names the old primary: the check asks for the new
    # primary's URL (a secret: never shown back) and connects there.
    user, rest = backend_db.split("://", 1)[1].split("@", 1)
    new_primary = f"postgresql://{user.split(':')[0]}:n3w-s3cret@{rest}"
    await submit_step(
        world, thread, RESPONDER, "Test the connection", {"new_primary_url": new_primary}
    )
    await world.reply_saying(thread, "PostgreSQL: reachable, the primary (accepts writes)")
    fake.health_status, fake.health_checks = 200, {"db": "ok", "redis": "ok"}
    await world.press(await world.card(thread), RESPONDER, "Check application health")
    await world.reply_saying(thread, "Backend /healthz: ok (HTTP 200); db: ok, redis: ok")

    shown = json.dumps(world.slack.messages()) + json.dumps(world.slack.ephemerals())
    assert "hunter2" not in shown
    assert "n3w-s3cret" not in shown + json.dumps(world.slack.views_opened)
    await resolve(world, thread)


# --- 5. Security Incident ---------------------------------------------------------------------

LIVE_SESSIONS = "SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND user_id = '{}'"
PASSWORD = f"SELECT password_hash FROM users WHERE id = '{VICTIM}'"


async def test_security_incident_from_alert_to_resolved_in_slack(
    world: World, fake: FakeBackend, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await seed(backend_conn, *INTRUSION)

    thread = await alerted(
        world,
        ("FailedLoginSpike", "api-1"),
        "Security Incident",
        "1 account signed in from more than 3 IP addresses in the last hour: "
        "jane@example.com (5 addresses, 5 sessions)",
        "Failed logins in the last hour by IP: 185.220.101.7 (12), 41.58.12.9 (3)",
    )

    # Looking the user up asks for the email in a modal; the reply offers to revoke from the row.
    await submit_step(
        world, thread, RESPONDER, "Look up the affected user", {"email": "jane@example.com"}
    )
    found = await world.reply_saying(thread, f"jane@example.com: user {VICTIM} (customer)")
    assert "5 active sessions" in words(found)
    from_row = row_button(found, "revoke_sessions", user_id=VICTIM)
    await world.sender.click(world.slack, RESPONDER, found["ts"], value=from_row)
    await world.ephemeral_to(RESPONDER, "“Revoke sessions” requires an approver")

    # The card's Revoke sessions opens a modal asking for the user: a bad value is answered in
    # the modal and runs nothing; a good one runs once.
    before = len(world.slack.views_opened)
    await world.press(await world.card(thread), APPROVER, "Revoke sessions")
    modal = await opened_modal(world, before)
    bad = await world.sender.submit(
        world.slack, APPROVER, modal["id"], {"user": "jane@example.com"}
    )
    assert bad.status_code == 200
    answer = bad.json()
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["user_id"]
    assert await events_of(world, thread, "revoke_sessions") == ["step.refused"]
    assert await scalar(backend_conn, LIVE_SESSIONS.format(VICTIM)) == 5
    good = await world.sender.submit(world.slack, APPROVER, modal["id"], {"user": VICTIM})
    assert (good.status_code, good.text) == (200, "")  # the modal closes
    await world.reply_saying(thread, f"5 active sessions of user {VICTIM} revoked")
    assert await events_of(world, thread, "revoke_sessions") == ["step.refused", "step.finished"]
    assert await scalar(backend_conn, LIVE_SESSIONS.format(VICTIM)) == 0
    assert await scalar(backend_conn, LIVE_SESSIONS.format(BYSTANDER)) == 1

    # A forced password reset takes two different approvers.
    await submit_step(world, thread, APPROVER, "Force password reset", {"user": VICTIM})
    await world.ephemeral_to(APPROVER, "needs a second, different approver before it runs")
    await world.card_saying(thread, "waiting for a second, different approver")
    assert await scalar(backend_conn, PASSWORD) == "h1"
    await submit_step(world, thread, SECOND_APPROVER, "Force password reset", {"user": VICTIM})
    await world.reply_saying(thread, "Password hash of jane@example.com replaced with REVOKED")
    assert await scalar(backend_conn, PASSWORD) == "REVOKED"
    await world.settle()
    assert "waiting for a second" not in words(await world.card(thread))

    await resolve(world, thread)


# --- 6. High Error Rate (5xx) -----------------------------------------------------------------


async def test_high_error_rate_from_alert_to_resolved_in_slack(
    shell_world: World, fake: FakeBackend, programs: Programs
) -> None:
    world = shell_world
    error_spike(fake)

    thread = await alerted(
        world,
        ("HighErrorRate", "api-1"),
        "High Error Rate (5xx)",
        "5xx error rate over the last 5 minutes: 7.12% of requests (threshold 2%)",
        "3.10% → 7.12% (rising; lowest 3.10%, highest 7.12%); above 2% throughout",
        "1 of 2 backend instances up; down: api-2",
    )

    # The diagnosis ran when the run opened; a responder measures the routes again.
    fake.measure(
        ERRORS, "error_distribution", Series({"route": "/api/v1/orders", "status": "502"}, ("2",))
    )
    await world.press(await world.card(thread), RESPONDER, "5xx by route and status")
    await world.reply_saying(thread, "by route: /api/v1/orders 502 (2.00/s)")

    # Restarting the app is a responder's: a stranger is refused, a responder's click (Slack's
    # dialog confirmed it) runs `docker-compose restart app` once.
    _, restart = find_element(await world.card(thread), "button", text="Restart app")
    assert "confirm" in restart
    await world.press(await world.card(thread), STRANGER, "Restart app")
    await world.ephemeral_to(STRANGER, "“Restart app” requires a responder")
    assert programs.calls("docker-compose") == []
    await world.press(await world.card(thread), RESPONDER, "Restart app")
    await world.reply_saying(thread, "`docker-compose restart app` succeeded (exit code 0)")
    assert programs.calls("docker-compose") == ["restart app"]
    await world.press(await world.card(thread), RESPONDER, "Mitigated")
    await world.card_saying(thread, "*Mitigated*")

    fake.measure(ERRORS, "watch_error_rate", Series({}, ("0.07", "0.03", "0.008")))
    await world.press(await world.card(thread), RESPONDER, "Watch the error rate fall")
    await world.reply_saying(thread, "7.00% → 0.80% (falling; highest 7.00%); now below 2%")

    await resolve(world, thread)


# --- 7. Queue Backlog -------------------------------------------------------------------------


async def test_queue_backlog_from_alert_to_resolved_in_slack(
    shell_world: World, fake: FakeBackend, programs: Programs, redis_db: str
) -> None:
    world = shell_world
    email_backlog(redis_db, fake)

    thread = await alerted(
        world,
        ("EmailQueueBacklog", "worker-1"),
        "Queue Backlog",
        "Email queue backlog: 150 pending jobs (threshold 100); invoice queue backlog: 3",
        "Invoice queue: 3 pending, the oldest waiting 20 min (threshold 15 min)",
    )

    await world.press(await world.card(thread), RESPONDER, "Check queue statistics")
    await world.reply_saying(thread, "Admin API queue statistics: 153 jobs waiting in all")
    await world.press(await world.card(thread), RESPONDER, "Recent failed jobs")
    await world.reply_saying(thread, "email job e-912 (email-job): Resend API 429: rate limited")

    await world.press(await world.card(thread), RESPONDER, "Process email queue")
    await world.reply_saying(thread, "`node scripts/process-queue.js email` succeeded")
    await world.press(await world.card(thread), RESPONDER, "Clear failed jobs")
    await world.ephemeral_to(RESPONDER, "“Clear failed jobs” requires an approver")
    await world.press(await world.card(thread), APPROVER, "Clear failed jobs")
    await world.reply_saying(thread, "`node scripts/clear-failed-jobs.js` succeeded")
    assert programs.calls("node") == [
        "scripts/process-queue.js email",
        "scripts/clear-failed-jobs.js",
    ]

    await resolve(world, thread)


async def test_with_shell_off_clear_dead_jobs_is_a_command_to_copy_in_slack(
    world: World, fake: FakeBackend, programs: Programs, redis_db: str
) -> None:
    email_backlog(redis_db, fake)
    thread = await alerted(
        world,
        ("EmailQueueBacklog", "worker-1"),
        "Queue Backlog",
        "Email queue backlog: 150 pending jobs (threshold 100); invoice queue backlog: 3",
    )
    card = await world.card_saying(
        thread, "Clear dead jobs — run by hand: `node scripts/clear-failed-jobs.js`"
    )
    _, button = find_element(card, "button", text="Show command: Clear dead jobs")
    assert "confirm" not in button  # nothing to confirm: the bot runs nothing

    await world.press(await world.card(thread), APPROVER, "Show command: Clear dead jobs")

    reply = await world.reply_saying(thread, "run it by hand: node scripts/clear-failed-jobs.js")
    assert "```node scripts/clear-failed-jobs.js```" in json.dumps(reply["blocks"])
    await world.card_saying(thread, "📋")
    assert programs.calls("node") == []
