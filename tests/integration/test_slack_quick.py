"""Quick looks typed in Slack outside any run: `/ops verify`, `/ops queues`, `/ops health`."""

from __future__ import annotations

import pytest
import slack_fixtures
import walkthrough_http
from slack_fixtures import ALERTS, World, words
from walkthrough_http import FakeBackend

from agape_ops.demo.queues import bullmq_queue

pytestmark = pytest.mark.integration

fake = walkthrough_http.fake
fake_slack = slack_fixtures.fake_slack
world = slack_fixtures.world


async def test_verify_asks_paystack_and_says_how_the_transaction_ended(
    world: World, fake: FakeBackend
) -> None:
    fake.transactions["T-Q-1"] = "success"
    response = await world.sender.command("verify T-Q-1", user="U_ANYONE", channel=ALERTS)
    assert response.status_code == 200
    told = await world.ephemeral_to("U_ANYONE", "Paystack reports T-Q-1 as success")
    assert "Verify a payment with Paystack" in words(told)
    assert len(fake.requests("GET", "/transaction/verify/T-Q-1")) == 1
    assert await world.container.engine.runs() == []  # a look opens no run


async def test_verify_refuses_what_is_not_a_reference_and_calls_nobody(
    world: World, fake: FakeBackend
) -> None:
    response = await world.sender.command("verify T1; DROP", user="U_ANYONE", channel=ALERTS)
    assert "verify &lt;reference&gt;" in response.text
    assert not [c for c in fake.router.calls if "/transaction/verify" in str(c.request.url)]


async def test_queues_counts_jobs_per_queue(world: World, redis_db: str) -> None:
    bullmq_queue(redis_db, "email", waiting=150, oldest_age_s=1500, active=2)
    await world.sender.command("queues", user="U_ANYONE", channel=ALERTS)
    told = await world.ephemeral_to("U_ANYONE", "email")
    assert "150" in words(told)


async def test_health_names_each_system_and_whether_it_answers(world: World) -> None:
    await world.sender.command("health", user="U_ANYONE", channel=ALERTS)
    told = await world.ephemeral_to("U_ANYONE", "postgres")
    text = words(told)
    assert "✅ *postgres* ok" in text
    assert "redis" in text


async def test_a_command_in_a_channel_the_bot_is_not_in_is_answered_by_its_response_url(
    world: World,
) -> None:
    world.slack.fail_with("chat.postEphemeral", "not_in_channel", times=1)
    await world.sender.command("health", user="U_ANYONE", channel="C0ELSEWHERE")
    posts = await world.slack.wait_for(lambda s: s.responses(), 15, what="a response_url post")
    assert posts[0].body is not None
    assert posts[0].body["response_type"] == "ephemeral"
    assert "postgres" in words(posts[0].body)
