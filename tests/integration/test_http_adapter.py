"""The HTTP check adapter: status, latency, one JSON field, and unreachable hosts."""

from __future__ import annotations

import socket

import httpx
import pytest
import respx
from http_fixtures import client, router

from agape_ops.adapters.http import HttpAdapter
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import AdapterTimeout, AdapterUnavailable
from agape_ops.runbooks.fields import FIELDS
from agape_ops.runbooks.model import HttpCall, Step

__all__ = ["client", "router"]  # shared fixtures, used by name

STATUS_JSON = "https://status.example.test/api/v2/status.json"


def _request(call: HttpCall) -> AdapterRequest:
    step = Step(id="ping_site", title="Ping", http=call)
    return AdapterRequest(run_id="r1", step=step, call=call, idempotency_key="k")


async def test_check_reports_status_latency_and_the_json_field(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    router.get(STATUS_JSON).mock(
        return_value=httpx.Response(200, json={"status": {"indicator": "minor"}})
    )
    result = await HttpAdapter(client).execute(
        _request(HttpCall(url=STATUS_JSON, json_field="status.indicator"))
    )
    assert result.values["status_code"] == 200
    assert result.values["ok"] is True
    assert result.values["field"] == "minor"
    assert isinstance(result.values["latency_ms"], int)
    assert result.values["latency_ms"] >= 0
    assert result.values["url"] == STATUS_JSON
    assert set(result.values) == FIELDS[("http", "check")]
    assert "HTTP 200" in result.summary
    assert "status.indicator = 'minor'" in result.summary


async def test_an_unexpected_status_is_a_result_with_ok_false(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    router.get(STATUS_JSON).mock(return_value=httpx.Response(503, text="down"))
    result = await HttpAdapter(client).execute(_request(HttpCall(url=STATUS_JSON)))
    assert result.values["ok"] is False
    assert result.values["status_code"] == 503
    assert "expected 200" in result.summary


async def test_an_absent_field_or_a_non_json_body_reports_none(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    router.get(STATUS_JSON).mock(
        side_effect=[
            httpx.Response(200, json={"status": {}}),
            httpx.Response(200, text="<html>"),
            httpx.Response(200, text="[" * 100_000 + "]" * 100_000),
        ]
    )
    adapter = HttpAdapter(client)
    call = HttpCall(url=STATUS_JSON, json_field="status.indicator")
    absent = await adapter.execute(_request(call))
    not_json = await adapter.execute(_request(call))
    too_deep = await adapter.execute(_request(call))
    assert absent.values["field"] is None
    assert not_json.values["field"] is None
    assert too_deep.values["field"] is None
    assert "absent" in absent.summary


async def test_head_uses_head_and_the_expected_status(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    route = router.head("https://shop.example.test/").mock(return_value=httpx.Response(301))
    call = HttpCall(url="https://shop.example.test/", method="HEAD", expect_status=301)
    result = await HttpAdapter(client).execute(_request(call))
    assert route.call_count == 1
    assert result.values["ok"] is True


async def test_the_reported_url_hides_the_password(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    router.get(url__regex=r"https://.*status\.example\.test/health").mock(
        return_value=httpx.Response(200)
    )
    call = HttpCall(url="https://ops:pa55word@status.example.test/health")
    result = await HttpAdapter(client).execute(_request(call))
    assert result.values["url"] == "https://ops:[REDACTED]@status.example.test/health"
    assert "pa55word" not in result.summary


async def test_the_per_call_timeout_is_used_and_a_timeout_is_an_error(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    seen: list[object] = []

    def slow(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("timed out", request=request)

    router.get(STATUS_JSON).mock(side_effect=slow)
    with pytest.raises(AdapterTimeout, match=r"within the 0\.25 s deadline") as err:
        await HttpAdapter(client).execute(_request(HttpCall(url=STATUS_JSON, timeout_s=0.25)))
    assert seen == [0.25]
    assert err.value.step_id == "ping_site"


async def test_a_refused_connection_is_an_error_naming_the_host(
    client: httpx.AsyncClient,
) -> None:
    with socket.socket() as probe:  # find a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    call = HttpCall(url=f"http://127.0.0.1:{port}/healthz")
    with pytest.raises(AdapterUnavailable) as err:
        await HttpAdapter(client).execute(_request(call))
    assert str(err.value) == f"cannot reach 127.0.0.1:{port}: connection refused"


def test_describe_says_method_url_and_expectation(client: httpx.AsyncClient) -> None:
    call = HttpCall(url="https://u:secretpw@h.test/x", json_field="a.b", timeout_s=3)
    text = HttpAdapter(client).describe(_request(call))
    assert text == "GET https://u:[REDACTED]@h.test/x (expect HTTP 200; report a.b; timeout 3 s)"
