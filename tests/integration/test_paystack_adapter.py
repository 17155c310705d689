"""The Paystack adapter against Paystack's documented answers, faked with respx."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from http_fixtures import FakeSleep, client, router, sleep

from agape_ops.adapters.paystack import PaystackAdapter
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import (
    AdapterAuthError,
    AdapterNotConfigured,
    AdapterResponseError,
    AdapterTimeout,
    InputError,
    NotFound,
)
from agape_ops.runbooks.fields import FIELDS
from agape_ops.runbooks.model import PaystackCall, Step

__all__ = ["client", "router", "sleep"]  # shared fixtures, used by name

API = "https://api.paystack.test"
STATUS = "https://status.paystack.test"
KEY = "sk_test_fixturekey0123456789"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DOCUMENTED = [
    "success",
    "failed",
    "abandoned",
    "ongoing",
    "pending",
    "processing",
    "queued",
    "reversed",
]


@pytest.fixture
def adapter(client: httpx.AsyncClient, sleep: FakeSleep) -> PaystackAdapter:
    return PaystackAdapter(
        client, api_url=API, status_url=STATUS, secret_key=KEY, sleep=sleep, clock=lambda: NOW
    )


def _request(call: PaystackCall, **extra: Any) -> AdapterRequest:
    step = Step(id="verify_payment", title="Verify", paystack=call)
    return AdapterRequest(run_id="r1", step=step, call=call, idempotency_key="k1", extra=extra)


def _verify(reference: str = "T-100.a=") -> AdapterRequest:
    return _request(PaystackCall(action="verify", reference=reference))


def _transaction(
    status: str, reference: str = "T-100.a=", amount: int = 2_500_000
) -> dict[str, Any]:
    return {
        "id": 4099260516,
        "domain": "live",
        "status": status,
        "reference": reference,
        "amount": amount,
        "gateway_response": "Approved" if status == "success" else "Declined",
        "paid_at": "2024-05-01T11:58:00.000Z" if status == "success" else None,
        "created_at": "2024-05-01T11:57:00.000Z",
        "channel": "card",
        "currency": "NGN",
    }


def _verified(status: str, reference: str = "T-100.a=") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "status": True,
            "message": "Verification successful",
            "data": _transaction(status, reference),
        },
    )


NOT_FOUND_BODY = {"status": False, "message": "Transaction reference not found"}


@pytest.mark.parametrize("status", DOCUMENTED)
async def test_verify_maps_every_documented_status_and_only_success_is_paid(
    adapter: PaystackAdapter, router: respx.MockRouter, status: str
) -> None:
    route = router.get(f"{API}/transaction/verify/T-100.a=").mock(return_value=_verified(status))
    result = await adapter.execute(_verify())
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {KEY}"
    assert result.values["status"] == status
    assert result.values["known_status"] is True
    assert result.values["paid"] is (status == "success")
    assert result.values["amount"] == 25000.0
    assert result.values["amount_kobo"] == 2_500_000
    assert set(result.values) == FIELDS[("paystack", "verify")]
    assert f"T-100.a=: {status}" in result.summary
    if status == "success":
        assert "₦25,000.00" in result.summary


async def test_verify_shows_an_unknown_status_as_unknown_never_as_failed(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    router.get(f"{API}/transaction/verify/T-100.a=").mock(return_value=_verified("chargeback"))
    result = await adapter.execute(_verify())
    assert result.values["status"] == "unknown (chargeback)"
    assert result.values["known_status"] is False
    assert result.values["paid"] is False
    assert "failed" not in result.summary


@pytest.mark.parametrize("code", [404, 400])
async def test_verify_of_an_unknown_reference_raises_not_found(
    adapter: PaystackAdapter, router: respx.MockRouter, code: int
) -> None:
    router.get(f"{API}/transaction/verify/NOPE-1").mock(
        return_value=httpx.Response(code, json=NOT_FOUND_BODY)
    )
    with pytest.raises(NotFound, match="Paystack has no transaction with reference NOPE-1") as err:
        await adapter.execute(_verify("NOPE-1"))
    assert err.value.step_id == "verify_payment"


async def test_verify_rejects_a_reference_with_other_characters_before_any_call(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    route = router.get(url__startswith=API)
    with pytest.raises(InputError, match="letters, digits"):
        await adapter.execute(_verify("../transaction?x=1"))
    assert route.call_count == 0


async def test_verify_401_says_the_key_was_rejected_without_printing_it(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    router.get(f"{API}/transaction/verify/T-1").mock(
        return_value=httpx.Response(401, json={"status": False, "message": "Invalid key"})
    )
    with pytest.raises(AdapterAuthError, match="rejected PAYSTACK_SECRET_KEY") as err:
        await adapter.execute(_verify("T-1"))
    assert KEY not in str(err.value)


async def test_429_is_retried_after_the_retry_after_seconds(
    adapter: PaystackAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.get(f"{API}/transaction/verify/T-1").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={"message": "slow down"}),
            httpx.Response(429, headers={"Retry-After": "120"}, json={"message": "slow down"}),
            _verified("success", "T-1"),
        ]
    )
    result = await adapter.execute(_verify("T-1"))
    assert result.values["paid"] is True
    assert sleep.waits == [3.0, 10.0]  # the second wait is capped
    assert route.call_count == 3


async def test_a_retry_after_that_is_not_a_finite_number_falls_back_to_backoff(
    adapter: PaystackAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    router.get(f"{API}/transaction/verify/T-1").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "nan"}),
            httpx.Response(429, headers={"Retry-After": "inf"}),
            _verified("success", "T-1"),
        ]
    )
    await adapter.execute(_verify("T-1"))
    assert sleep.waits == [0.5, 1.0]


async def test_a_json_answer_nested_past_the_parser_is_an_adapter_error(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    router.get(f"{API}/transaction/verify/T-1").mock(
        return_value=httpx.Response(200, text="[" * 100_000 + "]" * 100_000)
    )
    with pytest.raises(AdapterResponseError, match="not JSON"):
        await adapter.execute(_verify("T-1"))


async def test_5xx_is_retried_with_exponential_backoff(
    adapter: PaystackAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    router.get(f"{API}/transaction/verify/T-1").mock(
        side_effect=[httpx.Response(502), httpx.Response(503), _verified("failed", "T-1")]
    )
    result = await adapter.execute(_verify("T-1"))
    assert result.values["status"] == "failed"
    assert sleep.waits == [0.5, 1.0]


async def test_5xx_every_time_gives_up_after_max_retries(
    adapter: PaystackAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.get(f"{API}/transaction/verify/T-1").mock(
        return_value=httpx.Response(500, text="upstream exploded")
    )
    with pytest.raises(AdapterResponseError, match=r"HTTP 500.*after 4 attempts") as err:
        await adapter.execute(_verify("T-1"))
    assert err.value.status_code == 500
    assert route.call_count == 4
    assert sleep.waits == [0.5, 1.0, 2.0]


async def test_timeout_is_retried_then_succeeds(
    adapter: PaystackAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    router.get(f"{API}/transaction/verify/T-1").mock(
        side_effect=[httpx.ReadTimeout("timed out"), _verified("success", "T-1")]
    )
    result = await adapter.execute(_verify("T-1"))
    assert result.values["paid"] is True
    assert sleep.waits == [0.5]


async def test_timeouts_every_time_raise_adapter_timeout(
    adapter: PaystackAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.get(f"{API}/transaction/verify/T-1").mock(
        side_effect=httpx.ReadTimeout("timed out")
    )
    with pytest.raises(
        AdapterTimeout, match=r"paystack.test.*within the 2 s deadline \(4 attempts\)"
    ):
        await adapter.execute(_verify("T-1"))
    assert route.call_count == 4


async def test_a_malformed_body_is_a_response_error(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    router.get(f"{API}/transaction/verify/T-1").mock(
        return_value=httpx.Response(
            200, text='{"status": true, "data": ', headers={"content-type": "application/json"}
        )
    )
    with pytest.raises(AdapterResponseError, match="not JSON"):
        await adapter.execute(_verify("T-1"))


async def test_an_html_error_page_is_a_response_error_naming_its_title(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>x</body></html>"
    router.get(f"{API}/transaction/verify/T-1").mock(
        return_value=httpx.Response(200, text=page, headers={"content-type": "text/html"})
    )
    with pytest.raises(AdapterResponseError, match="HTML page titled '502 Bad Gateway'"):
        await adapter.execute(_verify("T-1"))


async def test_without_a_key_paystack_calls_name_the_missing_setting(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    adapter = PaystackAdapter(client, api_url=API, status_url=STATUS, secret_key=None)
    with pytest.raises(AdapterNotConfigured, match="PAYSTACK_SECRET_KEY"):
        await adapter.execute(_verify("T-1"))


async def test_verify_many_reports_each_reference_and_counts_the_paid(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    router.get(f"{API}/transaction/verify/A-1").mock(return_value=_verified("success", "A-1"))
    router.get(f"{API}/transaction/verify/B-2").mock(return_value=_verified("abandoned", "B-2"))
    router.get(f"{API}/transaction/verify/C-3").mock(
        return_value=httpx.Response(404, json=NOT_FOUND_BODY)
    )
    call = PaystackCall(action="verify_many", references_from="pending_orders.reference")
    result = await adapter.execute(
        _request(call, references=["A-1", "B-2", "C-3", "A-1", "bad ref!"])
    )
    by_ref = {row["reference"]: row for row in result.rows}
    assert by_ref["A-1"] == {
        "reference": "A-1",
        "status": "success",
        "paid": True,
        "amount": 25000.0,
        "amount_kobo": 2_500_000,
    }
    assert by_ref["B-2"]["paid"] is False
    assert by_ref["C-3"]["status"] == "not_found"
    assert by_ref["bad ref!"]["status"] == "invalid_reference"
    assert result.values == {
        "checked": 4,
        "paid_count": 1,
        "paid_references": ["A-1"],
        "not_found": ["C-3"],
    }
    assert set(result.columns) | set(result.values) == FIELDS[("paystack", "verify_many")]
    assert result.summary.startswith("1 of 4 references verify as paid on Paystack: A-1")


async def test_verify_many_fails_as_a_whole_when_the_key_is_rejected(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    router.get(url__startswith=f"{API}/transaction/verify/").mock(
        return_value=httpx.Response(401, json={"status": False, "message": "Invalid key"})
    )
    call = PaystackCall(action="verify_many", references_from="pending_orders.reference")
    with pytest.raises(AdapterAuthError):
        await adapter.execute(_request(call, references=["A-1", "B-2"]))


def _page(page: int, page_count: int, refs: list[str], total: int) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "status": True,
            "message": "Transactions retrieved",
            "data": [
                {**_transaction("failed", ref, 150_000), "createdAt": "2024-05-01T11:50:00Z"}
                for ref in refs
            ],
            "meta": {
                "total": total,
                "skipped": 0,
                "perPage": 50,
                "page": page,
                "pageCount": page_count,
            },
        },
    )


async def test_list_transactions_reads_every_page(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    first = router.get(f"{API}/transaction", params={"page": "1"}).mock(
        return_value=_page(1, 2, ["F-1", "F-2"], 3)
    )
    router.get(f"{API}/transaction", params={"page": "2"}).mock(
        return_value=_page(2, 2, ["F-3"], 3)
    )
    call = PaystackCall(action="list_transactions", status="failed", window_minutes=15)
    result = await adapter.execute(_request(call))
    query = first.calls.last.request.url.params
    assert query["status"] == "failed"
    assert query["perPage"] == "50"
    assert query["from"] == "2024-05-01T11:45:00Z"
    assert query["to"] == "2024-05-01T12:00:00Z"
    assert [row["reference"] for row in result.rows] == ["F-1", "F-2", "F-3"]
    assert result.rows[0]["amount"] == 1500.0
    assert result.values["total"] == 3
    assert set(result.columns) | set(result.values) == FIELDS[("paystack", "list_transactions")]
    assert result.summary == "3 failed Paystack transactions in the last 15 minutes"


async def test_list_transactions_stops_at_max_pages_and_says_so(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    router.get(f"{API}/transaction", params={"page": "1"}).mock(
        return_value=_page(1, 4, ["F-1", "F-2"], 200)
    )
    second = router.get(f"{API}/transaction", params={"page": "2"})
    call = PaystackCall(action="list_transactions", status="failed", max_pages=1)
    result = await adapter.execute(_request(call))
    assert second.call_count == 0
    assert result.values["total"] == 200
    assert "first 1 of 4 pages: 2 listed" in result.summary


def _status_routes(
    router: respx.MockRouter, indicator: str, incidents: list[dict[str, Any]]
) -> None:
    router.get(f"{STATUS}/api/v2/status.json").mock(
        return_value=httpx.Response(
            200,
            json={
                "page": {"id": "x", "name": "Paystack"},
                "status": {"indicator": indicator, "description": "Partial System Outage"},
            },
        )
    )
    router.get(f"{STATUS}/api/v2/incidents/unresolved.json").mock(
        return_value=httpx.Response(200, json={"page": {"id": "x"}, "incidents": incidents})
    )


def _incident(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "status": "investigating",
        "impact": "major",
        "created_at": "2024-05-01T11:40:00Z",
        "started_at": "2024-05-01T11:38:00Z",
        "shortlink": "https://stspg.io/abc",
        "incident_updates": [],
    }


async def test_status_page_reports_indicator_and_open_incidents(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    _status_routes(
        router, "major", [_incident("Card payments degraded"), _incident("Transfers delayed")]
    )
    result = await adapter.execute(_request(PaystackCall(action="status_page")))
    assert result.summary == (
        "Paystack status: major outage — 2 open incidents: Card payments degraded, "
        "Transfers delayed"
    )
    assert result.values["indicator"] == "major"
    assert result.values["incidents"] == ["Card payments degraded", "Transfers delayed"]
    assert result.values["incident_count"] == 2
    assert result.rows[0]["started_at"] == "2024-05-01T11:38:00Z"
    assert set(result.columns) | set(result.values) == FIELDS[("paystack", "status_page")]


async def test_status_page_works_without_a_key(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    _status_routes(router, "none", [])
    adapter = PaystackAdapter(client, api_url=API, status_url=STATUS, secret_key=None)
    result = await adapter.execute(_request(PaystackCall(action="status_page")))
    assert result.summary == "Paystack status: operational — no open incidents"
    assert "Authorization" not in router.calls.last.request.headers


async def test_probe_reports_the_status_page_and_never_raises(
    adapter: PaystackAdapter, router: respx.MockRouter
) -> None:
    _status_routes(router, "minor", [])
    good = await adapter.probe()
    router.get(f"{STATUS}/api/v2/status.json").mock(side_effect=httpx.ConnectError("refused"))
    bad = await adapter.probe()
    assert (good.ok, good.configured) == (True, True)
    assert "minor issues" in good.detail
    assert bad.ok is False
    assert "cannot reach" in bad.detail


def test_describe_names_the_url_and_the_key_variable_never_the_key(
    adapter: PaystackAdapter,
) -> None:
    text = adapter.describe(_verify("T-1"))
    assert text.startswith(f"GET {API}/transaction/verify/T-1")
    assert "$PAYSTACK_SECRET_KEY" in text
    assert KEY not in text
