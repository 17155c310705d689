"""The served bot's HTTP contract: signatures, /healthz, /metrics, acknowledgement under a storm
with Slack answering 429s, and silence while idle."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import slack_fixtures
import walkthrough_http
from fake_slack import FakeSlack
from slack_fixtures import (
    ALERTS,
    World,
    alert_event,
    serving,
    slack_settings,
)
from slack_requests import event_callback
from walkthrough_http import FakeBackend

from bench.slack_bench import load

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

fake = walkthrough_http.fake
fake_slack = slack_fixtures.fake_slack
world = slack_fixtures.world


async def test_unsigned_wrongly_signed_or_stale_requests_get_401_and_cause_nothing(
    world: World,
) -> None:
    event = alert_event("HighErrorRate")
    for signing in ("missing", "wrong", "stale"):
        response = await world.sender.event(event, signing=signing)
        assert response.status_code == 401, signing
        response = await world.sender.command(
            "start high-error-rate", user="U1", channel=ALERTS, signing=signing
        )
        assert response.status_code == 401, signing
    assert await world.container.engine.runs() == []
    assert [c.method for c in world.slack.calls() if c.method != "auth.test"] == []


async def test_the_events_url_answers_slack_s_verification_challenge(world: World) -> None:
    response = await world.sender.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7")
    assert response.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7" in response.text


async def test_healthz_names_each_dependency_and_is_200_when_slack_and_the_store_answer(
    world: World,
) -> None:
    async with httpx.AsyncClient(base_url=world.url) as client:
        response = await client.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    for name in ("slack", "store", "database", "redis", "paystack", "admin_api", "prometheus"):
        assert name in body, name
    assert (body["store"], body["database"], body["redis"]) == ("up", "up", "up")
    assert body["runbooks"] == 7
    assert body["scheduler"] == "off"  # `agape-ops serve` starts it; this harness has not


async def test_healthz_and_metrics_say_whether_this_process_runs_the_scheduler(
    world: World,
) -> None:
    await world.container.scheduler.start()
    async with httpx.AsyncClient(base_url=world.url) as client:
        body = (await client.get("/healthz")).json()
        metrics = (await client.get("/metrics")).text
    assert body["scheduler"] == "leading"
    assert body["details"]["scheduler"] == {"state": "leading", "jobs_fired": 0, "jobs_failed": 0}
    assert "agape_ops_scheduler_leading 1.0" in metrics
    assert 'agape_ops_scheduler_jobs{outcome="failed"} 0.0' in metrics


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers (a hung PostgreSQL or Redis)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@pytest.fixture
async def hung_world(
    silent_port: int, tmp_path: Path, fake: FakeBackend, fake_slack: FakeSlack
) -> AsyncIterator[World]:
    """The bot with its backend's PostgreSQL and Redis hanging (they accept, never answer)."""
    fake.router.route(host="127.0.0.1").pass_through()
    config = slack_settings(
        f"postgresql://agape:pw@127.0.0.1:{silent_port}/agape",
        f"redis://127.0.0.1:{silent_port}/0",
        tmp_path,
        fake_slack,
    )
    async with serving(config, fake_slack) as served:
        yield served


async def test_healthz_answers_within_10_s_when_postgres_and_redis_hang(hung_world: World) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=hung_world.url, timeout=30) as client:
        response = await client.get("/healthz")
    assert time.monotonic() - started < 10
    body = response.json()
    assert (body["database"], body["redis"]) == ("down", "down")
    assert (body["slack"], body["store"]) == ("up", "up")
    assert response.status_code == 200  # the bot itself still serves


async def test_healthz_is_503_when_slack_does_not_answer(world: World) -> None:
    world.slack.fail_with("chat.postMessage", "invalid_auth", times=100)
    world.slack.fail("chat.postMessage", status=503, times=100)
    await world.alert(alert_event("HighErrorRate"))
    async with httpx.AsyncClient(base_url=world.url) as client:

        async def down() -> bool:
            response = await client.get("/healthz")
            return response.status_code == 503 and response.json()["slack"] == "down"

        deadline = time.monotonic() + 30
        while not await down():
            assert time.monotonic() < deadline, "healthz never said Slack is down"
            await world.slack.wait_for(lambda s: len(s.calls()) > 0, 1)


async def test_metrics_are_prometheus_text_counting_events_runs_and_slack_errors(
    world: World,
) -> None:
    event = alert_event("HighErrorRate")
    await world.alert(event)
    await world.card(event["ts"])
    await world.settle()
    async with httpx.AsyncClient(base_url=world.url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'agape_ops_slack_events_total{kind="event",outcome="received"} 1.0' in text
    assert 'agape_ops_alerts_total{intake="opened"} 1.0' in text
    assert 'agape_ops_runs{state="open"} 1.0' in text
    assert "agape_ops_step_outcomes_total" in text
    assert "agape_ops_adapter_latency_seconds_bucket" in text


async def test_a_storm_is_acknowledged_fast_opens_one_run_per_alert_and_honours_429s(
    world: World, tmp_path: Path
) -> None:
    """Three alerts re-firing from many senders, 300 events at once, while Slack answers
    429s: every event acknowledged within 3 s, one run each, nothing sent before Retry-After,
    and every card delivered with its count."""
    world.slack.rate_limit("chat.postMessage", ALERTS, times=3, retry_after=1)
    world.slack.rate_limit("chat.update", ALERTS, times=3, retry_after=1)
    names = ["HighErrorRate", "EmailQueueBacklog", "FailedLoginSpike"]
    firsts = [alert_event(name) for name in names]
    events = [*firsts]
    for index in range(297):
        refire = alert_event(names[index % 3])
        refire["username"] = f"Alertmanager-{index % 17}"
        events.append(refire)

    for first in firsts:
        response = await world.sender.event(first)
        assert response.status_code == 200
    # The storm comes from another process (as Slack's deliveries come from outside): 30
    # connections sending at once, so what is timed is the bot's answer, not this test's client.
    clients: list[list[tuple[str, str]]] = [
        [("application/json", json.dumps(event_callback(e))) for e in events[3 + n :: 30]]
        for n in range(30)
    ]
    port = int(world.url.rsplit(":", 1)[1])
    took = (await load(port, clients, 0, tmp_path)).samples
    assert len(took) == 297
    assert max(took) < 3000, f"slowest acknowledgement {max(took):.0f} ms"
    runs = await world.container.engine.runs()
    assert len(runs) == 3
    for first in firsts:
        await world.card_saying(first["ts"], "the alert fired 100 times", 60)
    await world.settle()
    assert sorted(r.alert_count for r in await world.container.engine.runs()) == [100] * 3
    assert world.slack.rate_limits(), "the fake answered no 429: the test proved nothing"
    assert world.slack.violations() == []
    assert world.top_level() == []
    assert world.slack.block_errors == []


async def test_the_bot_makes_no_slack_calls_while_idle(world: World) -> None:
    event = alert_event("HighErrorRate")
    await world.alert(event)
    await world.card(event["ts"])
    await world.settle()
    before = len(world.slack.calls())
    with pytest.raises(AssertionError, match="timed out"):
        await world.slack.wait_for(lambda s: len(s.calls()) > before, 2.0, what="a call")
    assert json.dumps([c.method for c in world.slack.calls()[before:]]) == "[]"
