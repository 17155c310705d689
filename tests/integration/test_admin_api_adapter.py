"""The admin API adapter against the backend's documented answers, faked with respx."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from http_fixtures import FakeSleep, client, router, sleep

from agape_ops.adapters.admin_api import AdminApiAdapter
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import (
    AdapterAuthError,
    AdapterNotConfigured,
    AdapterResponseError,
    AdapterTimeout,
    AdapterUnavailable,
    NotFound,
)
from agape_ops.runbooks.fields import FIELDS
from agape_ops.runbooks.model import AdminApiCall, Risk, Step

__all__ = ["client", "router", "sleep"]  # shared fixtures, used by name

BASE = "https://api.agape.test"
TOKEN = "admin-token-7f3a9c"
WEBHOOK = "6f1c2a9e-8d4b-4c1e-9a57-3b2f0e1d7c44"
REPROCESS = f"{BASE}/api/v1/admin/webhooks/reprocess"
STATS = f"{BASE}/api/v1/admin/queues/stats"
HEALTH = f"{BASE}/healthz"


@pytest.fixture
def adapter(client: httpx.AsyncClient, sleep: FakeSleep) -> AdminApiAdapter:
    return AdminApiAdapter(client, base_url=BASE, token=TOKEN, sleep=sleep)


def _request(call: AdminApiCall) -> AdapterRequest:
    step = Step(id="reprocess", title="Reprocess", risk=Risk.WRITE, admin_api=call)
    return AdapterRequest(run_id="r1", step=step, call=call, idempotency_key="r1:reprocess:1")


def _reprocess() -> AdapterRequest:
    return _request(AdminApiCall(action="reprocess_webhook", webhook_id=WEBHOOK))


async def test_reprocess_202_is_queued_and_carries_body_idempotency_key_and_token(
    adapter: AdminApiAdapter, router: respx.MockRouter
) -> None:
    route = router.post(REPROCESS).mock(
        return_value=httpx.Response(202, json={"status": "queued", "webhookId": WEBHOOK})
    )
    result = await adapter.execute(_reprocess())
    sent = route.calls.last.request
    assert json.loads(sent.content) == {"webhookId": WEBHOOK}
    assert sent.headers["Idempotency-Key"] == "r1:reprocess:1"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert result.values == {"status": "queued", "webhook_id": WEBHOOK, "http_status": 202}
    assert set(result.values) == FIELDS[("admin_api", "reprocess_webhook")]
    assert result.summary == f"Webhook {WEBHOOK} queued for reprocessing (HTTP 202)"


async def test_reprocess_404_raises_not_found_naming_the_id(
    adapter: AdminApiAdapter, router: respx.MockRouter
) -> None:
    router.post(REPROCESS).mock(return_value=httpx.Response(404, json={"error": "not found"}))
    with pytest.raises(NotFound, match=f"no webhook with id {WEBHOOK}") as err:
        await adapter.execute(_reprocess())
    assert err.value.step_id == "reprocess"


async def test_reprocess_409_is_a_result_saying_it_was_already_processed(
    adapter: AdminApiAdapter, router: respx.MockRouter
) -> None:
    router.post(REPROCESS).mock(return_value=httpx.Response(409, json={"error": "processed"}))
    result = await adapter.execute(_reprocess())
    assert result.values["status"] == "already_processed"
    assert result.values["http_status"] == 409
    assert "already processed" in result.summary


async def test_reprocess_is_not_retried_on_5xx_and_shortens_a_long_body(
    adapter: AdminApiAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.post(REPROCESS).mock(return_value=httpx.Response(500, text="E" * 5000))
    with pytest.raises(AdapterResponseError) as err:
        await adapter.execute(_reprocess())
    assert route.call_count == 1
    assert sleep.waits == []
    assert err.value.status_code == 500
    assert "HTTP 500" in str(err.value)
    assert len(str(err.value)) < 400
    assert "4800 more characters" in str(err.value)


async def test_reprocess_is_not_retried_on_timeout_and_says_it_may_have_applied(
    adapter: AdminApiAdapter, router: respx.MockRouter
) -> None:
    route = router.post(REPROCESS).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(AdapterTimeout, match="may or may not have been applied"):
        await adapter.execute(_reprocess())
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset by peer"),
    ],
    ids=["disconnected", "reset"],
)
async def test_reprocess_cut_off_after_sending_says_it_may_have_applied(
    adapter: AdminApiAdapter, router: respx.MockRouter, failure: httpx.TransportError
) -> None:
    route = router.post(REPROCESS).mock(side_effect=failure)
    with pytest.raises(AdapterUnavailable, match="may or may not have been applied") as err:
        await adapter.execute(_reprocess())
    assert route.call_count == 1
    assert "same Idempotency-Key" not in str(err.value)  # a new click sends a new key


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), AdapterUnavailable),
        (httpx.ConnectTimeout("timed out"), AdapterTimeout),
    ],
    ids=["refused", "connect-timeout"],
)
async def test_reprocess_that_never_connected_says_nothing_was_sent(
    adapter: AdminApiAdapter,
    router: respx.MockRouter,
    failure: httpx.TransportError,
    error: type[Exception],
) -> None:
    router.post(REPROCESS).mock(side_effect=failure)
    with pytest.raises(error, match="nothing was sent") as err:
        await adapter.execute(_reprocess())
    assert "may or may not" not in str(err.value)


async def test_queue_stats_reads_non_finite_counts_as_unknown_instead_of_crashing(
    adapter: AdminApiAdapter, router: respx.MockRouter
) -> None:
    body = '{"queues": {"email": {"waiting": NaN, "failed": Infinity, "active": -Infinity}}}'
    router.get(STATS).mock(
        return_value=httpx.Response(200, text=body, headers={"content-type": "application/json"})
    )
    result = await adapter.execute(_request(AdminApiCall(action="queue_stats")))
    assert result.rows[0]["waiting"] == 0
    assert result.rows[0]["failed"] == 0
    assert result.values["total_waiting"] == 0


@pytest.mark.parametrize(("code", "why"), [(401, "wrong or expired"), (403, "lacks the rights")])
async def test_401_and_403_say_the_token_is_wrong_or_lacks_rights_without_printing_it(
    adapter: AdminApiAdapter, router: respx.MockRouter, code: int, why: str
) -> None:
    router.post(REPROCESS).mock(
        return_value=httpx.Response(code, json={"error": f"bad token {TOKEN}"})
    )
    with pytest.raises(AdapterAuthError, match=why) as err:
        await adapter.execute(_reprocess())
    assert TOKEN not in str(err.value)


async def test_queue_stats_lists_each_queue_and_totals_the_waiting(
    adapter: AdminApiAdapter, router: respx.MockRouter
) -> None:
    router.get(STATS).mock(
        return_value=httpx.Response(
            200,
            json={
                "queues": {
                    "email": {
                        "waiting": 150,
                        "active": 2,
                        "delayed": 0,
                        "failed": 12,
                        "completed": 9812,
                        "paused": False,
                    },
                    "invoice": {
                        "waiting": 3,
                        "active": 0,
                        "delayed": 1,
                        "failed": 0,
                        "completed": 40,
                        "paused": True,
                    },
                }
            },
        )
    )
    result = await adapter.execute(_request(AdminApiCall(action="queue_stats")))
    assert result.rows[0] == {
        "queue": "email",
        "waiting": 150,
        "active": 2,
        "delayed": 0,
        "failed": 12,
        "completed": 9812,
        "paused": False,
    }
    assert result.values["total_waiting"] == 153
    assert result.values["queues"]["invoice"]["paused"] is True
    assert result.values["http_status"] == 200
    assert set(result.columns) | set(result.values) == FIELDS[("admin_api", "queue_stats")]
    assert result.summary.startswith("153 jobs waiting across 2 queues: email 150 waiting")


async def test_queue_stats_retries_a_502_then_reads_the_answer(
    adapter: AdminApiAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    router.get(STATS).mock(
        side_effect=[httpx.Response(502), httpx.Response(200, json={"queues": {}})]
    )
    result = await adapter.execute(_request(AdminApiCall(action="queue_stats")))
    assert result.values["total_waiting"] == 0
    assert sleep.waits == [0.5]


async def test_health_200_is_healthy(adapter: AdminApiAdapter, router: respx.MockRouter) -> None:
    router.get(HEALTH).mock(
        return_value=httpx.Response(
            200, json={"status": "ok", "checks": {"db": "ok", "redis": "ok"}}
        )
    )
    result = await adapter.execute(_request(AdminApiCall(action="health")))
    assert result.values == {
        "status": "ok",
        "checks": {"db": "ok", "redis": "ok"},
        "healthy": True,
        "failing": [],
        "http_status": 200,
    }
    assert set(result.values) == FIELDS[("admin_api", "health")]
    assert result.summary == "Backend health: ok (db ok, redis ok)"


async def test_health_503_is_a_result_naming_the_failing_check_and_is_not_retried(
    adapter: AdminApiAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.get(HEALTH).mock(
        return_value=httpx.Response(
            503,
            json={
                "status": "error",
                "checks": {"db": "connect ECONNREFUSED 10.0.0.5:5432", "redis": "ok"},
            },
        )
    )
    result = await adapter.execute(_request(AdminApiCall(action="health")))
    assert result.values["healthy"] is False
    assert result.values["failing"] == ["db: connect ECONNREFUSED 10.0.0.5:5432"]
    assert result.values["http_status"] == 503
    assert "db: connect ECONNREFUSED" in result.summary
    assert route.call_count == 1
    assert sleep.waits == []


async def test_call_get_returns_status_and_body(
    adapter: AdminApiAdapter, router: respx.MockRouter
) -> None:
    router.get(f"{BASE}/api/v1/admin/orders/42").mock(
        return_value=httpx.Response(200, json={"id": 42, "status": "pending_payment"})
    )
    call = AdminApiCall(action="call", method="GET", path="/api/v1/admin/orders/42")
    result = await adapter.execute(_request(call))
    assert result.values == {"http_status": 200, "body": {"id": 42, "status": "pending_payment"}}
    assert set(result.values) == FIELDS[("admin_api", "call")]


async def test_call_post_is_sent_once_with_its_body(
    adapter: AdminApiAdapter, router: respx.MockRouter
) -> None:
    route = router.post(f"{BASE}/api/v1/admin/cache/flush").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"ok": True})]
    )
    call = AdminApiCall(
        action="call",
        method="POST",
        path="/api/v1/admin/cache/flush",
        json_body={"scope": "products"},
    )
    with pytest.raises(AdapterResponseError, match="HTTP 503"):
        await adapter.execute(_request(call))
    assert route.call_count == 1
    assert json.loads(route.calls.last.request.content) == {"scope": "products"}
    assert route.calls.last.request.headers["Idempotency-Key"] == "r1:reprocess:1"


async def test_without_a_base_url_every_call_names_the_missing_setting(
    client: httpx.AsyncClient,
) -> None:
    adapter = AdminApiAdapter(client, base_url=None, token=TOKEN)
    with pytest.raises(AdapterNotConfigured, match="set ADMIN_API_URL"):
        await adapter.execute(_request(AdminApiCall(action="health")))
    probe = await adapter.probe()
    assert (probe.ok, probe.configured) == (False, False)


async def test_probe_reads_healthz_and_never_raises(
    adapter: AdminApiAdapter, router: respx.MockRouter
) -> None:
    router.get(HEALTH).mock(return_value=httpx.Response(200, json={"status": "ok", "checks": {}}))
    good = await adapter.probe()
    router.get(HEALTH).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    bad = await adapter.probe()
    assert good.ok is True
    assert bad.ok is False
    assert bad.detail == "cannot reach the admin API (api.agape.test): connection refused"


def test_describe_gives_method_url_and_body_never_the_token(adapter: AdminApiAdapter) -> None:
    text = adapter.describe(_reprocess())
    assert text.startswith(f'POST {REPROCESS} body {{"webhookId": "{WEBHOOK}"}}')
    assert "Idempotency-Key: r1:reprocess:1" in text
    assert "never retried" in text
    assert TOKEN not in text


def test_describe_of_health_names_the_token_exactly_when_it_is_sent(
    adapter: AdminApiAdapter, client: httpx.AsyncClient
) -> None:
    health = _request(AdminApiCall(action="health"))
    assert adapter.describe(health) == f"GET {HEALTH} (Authorization: Bearer $ADMIN_TOKEN)"
    tokenless = AdminApiAdapter(client, base_url=BASE, token=None)
    assert tokenless.describe(health) == f"GET {HEALTH}"
