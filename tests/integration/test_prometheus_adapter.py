"""The Prometheus adapter against the HTTP API's documented answers, faked with respx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from http_fixtures import FakeSleep, client, router, sleep

from agape_ops.adapters.prometheus import PrometheusAdapter
from agape_ops.adapters.redacting import RedactingAdapter
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import (
    AdapterAuthError,
    AdapterNotConfigured,
    AdapterResponseError,
    AdapterTimeout,
    AdapterUnavailable,
)
from agape_ops.redaction import MASK, Redactor
from agape_ops.runbooks.fields import FIELDS
from agape_ops.runbooks.model import PrometheusCall, Step
from agape_ops.runbooks.timing import PrometheusRange
from agape_ops.settings import Settings

__all__ = ["client", "router", "sleep"]  # shared fixtures, used by name

PROM = "http://prometheus.test:9090"
NOW = 1_722_500_000.0
ERROR_RATIO = (
    'sum(rate(http_requests_total{service="agape-backend",status=~"5.."}[5m])) / '
    'sum(rate(http_requests_total{service="agape-backend"}[5m]))'
)
QUERY = f"{PROM}/api/v1/query"
RANGE = f"{PROM}/api/v1/query_range"


@pytest.fixture
def adapter(client: httpx.AsyncClient, sleep: FakeSleep) -> PrometheusAdapter:
    return PrometheusAdapter(client, base_url=PROM, sleep=sleep, clock=lambda: NOW)


def _request(call: PrometheusCall) -> AdapterRequest:
    step = Step(id="error_rate", title="5xx error rate", prometheus=call)
    return AdapterRequest(run_id="r1", step=step, call=call, idempotency_key="k1")


def _instant(query: str = ERROR_RATIO, **changes: Any) -> AdapterRequest:
    return _request(PrometheusCall(query=query, **changes))


def _ranged(query: str = ERROR_RATIO, start: str = "30m", step: str = "1m") -> AdapterRequest:
    return _request(PrometheusCall(query=query, range=PrometheusRange(start=start, step=step)))


def _success(result_type: str, result: Any, **extra: Any) -> httpx.Response:
    body = {"status": "success", "data": {"resultType": result_type, "result": result}, **extra}
    return httpx.Response(200, json=body)


def _error(code: int, error_type: str, error: str) -> httpx.Response:
    return httpx.Response(code, json={"status": "error", "errorType": error_type, "error": error})


def _series(labels: dict[str, str], value: str) -> dict[str, Any]:
    return {"metric": labels, "value": [NOW, value]}


def _points(labels: dict[str, str], *values: str) -> dict[str, Any]:
    return {
        "metric": labels,
        "values": [[NOW - 60 * (len(values) - i), v] for i, v in enumerate(values)],
    }


# --- instant queries ------------------------------------------------------------------------


async def test_a_single_series_answer_is_one_value_and_the_query_is_sent_as_written(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    route = router.get(QUERY).mock(return_value=_success("vector", [_series({}, "0.0712")]))
    result = await adapter.execute(_instant())
    assert route.calls.last.request.url.params["query"] == ERROR_RATIO
    assert "Authorization" not in route.calls.last.request.headers
    assert result.values == {
        "result_type": "vector",
        "series": 1,
        "value": 0.0712,
        "metric": None,
        "warnings": [],
    }
    assert result.rows == [{"value": 0.0712}]
    assert result.summary == "Prometheus: 0.0712"
    assert set(result.values) | {"metric"} <= FIELDS[("prometheus", "query")]


async def test_a_vector_gives_one_row_per_series_labels_as_columns_largest_first(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(
        return_value=_success(
            "vector",
            [
                _series({"__name__": "up", "job": "agape-backend", "instance": "api-1"}, "1"),
                _series({"__name__": "up", "job": "agape-backend", "instance": "api-2"}, "0"),
                _series({"__name__": "up", "job": "agape-backend", "instance": "api-3"}, "1"),
            ],
        )
    )
    result = await adapter.execute(_instant('up{job="agape-backend"}'))
    assert result.columns == ["metric", "instance", "job", "value"]
    assert [(r["instance"], r["value"]) for r in result.rows] == [
        ("api-1", 1.0),
        ("api-3", 1.0),
        ("api-2", 0.0),
    ]
    assert result.rows[0]["metric"] == "up"
    assert result.values["series"] == 3
    assert result.values["value"] is None  # several series: read them from rows
    assert result.summary.startswith('Prometheus: 3 series: up{instance="api-1", job=')


async def test_an_empty_vector_says_nothing_matches_and_has_no_value(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(return_value=_success("vector", []))
    result = await adapter.execute(_instant())
    assert result.rows == []
    assert result.values["series"] == 0
    assert result.values["value"] is None
    assert result.summary == "Prometheus: no series (nothing matches the query)"


async def test_nan_is_no_value_and_is_named_as_nothing_counted(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(return_value=_success("vector", [_series({}, "NaN")]))
    result = await adapter.execute(_instant())
    assert result.values["value"] is None
    assert result.rows == [{"value": None}]
    assert result.summary == "Prometheus: NaN (nothing counted)"


async def test_a_scalar_answer_is_its_value(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(return_value=_success("scalar", [NOW, "0.93"]))
    result = await adapter.execute(_instant("scalar(avg(up))"))
    assert result.values["result_type"] == "scalar"
    assert result.values["value"] == 0.93
    assert result.summary == "Prometheus: 0.93"


async def test_warnings_are_kept_and_said(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(
        return_value=_success(
            "vector", [_series({}, "0.01")], warnings=["PromQL info: metric might not be a counter"]
        )
    )
    result = await adapter.execute(_instant())
    assert result.values["warnings"] == ["PromQL info: metric might not be a counter"]
    assert result.summary.endswith("; Prometheus warns: PromQL info: metric might not be a counter")


async def test_a_step_timeout_bounds_the_call_and_is_sent_to_prometheus(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    route = router.get(QUERY).mock(return_value=_success("vector", []))
    await adapter.execute(_instant(timeout_s=3))
    assert route.calls.last.request.url.params["timeout"] == "3s"
    assert route.calls.last.request.extensions["timeout"]["read"] == 3


async def test_a_string_answer_is_its_text(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(return_value=_success("string", [NOW, "agape"]))
    result = await adapter.execute(_instant('"agape"'))
    assert (result.values["result_type"], result.values["value"]) == ("string", "agape")
    assert result.summary == "Prometheus: agape"


# --- range queries --------------------------------------------------------------------------


async def test_a_range_query_ends_now_and_summarises_the_series(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    route = router.get(RANGE).mock(
        return_value=_success(
            "matrix",
            [_points({}, "0.004", "0.006", "0.02", "0.05", "0.07", "0.071", "0.069", "0.07")],
        )
    )
    result = await adapter.execute(_ranged(start="30m", step="1m"))
    sent = route.calls.last.request.url.params
    assert sent["query"] == ERROR_RATIO
    assert float(sent["end"]) == NOW
    assert float(sent["start"]) == NOW - 1800
    assert sent["step"] == "1m"
    assert result.values == {
        "result_type": "matrix",
        "series": 1,
        "value": 0.07,
        "metric": None,
        "warnings": [],
        "first_value": 0.004,
        "last_value": 0.07,
        "min": 0.004,
        "max": 0.071,
        "change": pytest.approx(0.066),
        "trend": "rising",
        "points": 8,
    }
    assert set(result.values) <= FIELDS[("prometheus", "range")]
    assert result.summary == (
        "Prometheus over the last 30m, every 1m: 0.004 → 0.07 (rising; min 0.004, max 0.071)"
    )


@pytest.mark.parametrize(
    ("values", "trend"),
    [
        (["0.08", "0.07", "0.03", "0.01", "0.004"], "falling"),
        (["100", "102", "98", "101", "99", "100"], "steady"),
        (["0", "0", "0"], "steady"),
        (["0.5"], None),
    ],
)
async def test_the_trend_compares_the_last_quarter_with_the_first(
    adapter: PrometheusAdapter, router: respx.MockRouter, values: list[str], trend: str | None
) -> None:
    router.get(RANGE).mock(return_value=_success("matrix", [_points({}, *values)]))
    result = await adapter.execute(_ranged())
    assert result.values["trend"] == trend


async def test_a_range_of_several_series_gives_a_row_each_and_skips_nan_points(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    heap = {"__name__": "nodejs_heap_size_used_bytes", "instance": "api-1"}
    rss = {"__name__": "process_resident_memory_bytes", "instance": "api-1"}
    router.get(RANGE).mock(
        return_value=_success(
            "matrix",
            [
                _points(heap, "100000000", "NaN", "150000000", "300000000"),
                _points(rss, "400000000", "401000000", "399000000", "402000000"),
            ],
        )
    )
    result = await adapter.execute(_ranged("process_resident_memory_bytes", "1h", "5m"))
    by_metric = {row["metric"]: row for row in result.rows}
    assert by_metric["nodejs_heap_size_used_bytes"]["trend"] == "rising"
    assert by_metric["nodejs_heap_size_used_bytes"]["points"] == 4
    assert by_metric["nodejs_heap_size_used_bytes"]["min"] == 100_000_000
    assert by_metric["process_resident_memory_bytes"]["trend"] == "steady"
    assert result.rows[0]["metric"] == "process_resident_memory_bytes"  # largest last value first
    assert result.values["series"] == 2
    assert result.values["trend"] is None
    assert set(result.columns) == {"metric", "instance"} | set(FIELDS[("prometheus", "range")]) - {
        "result_type",
        "series",
        "value",
        "warnings",
    }


async def test_a_range_with_only_nan_points_has_no_figures(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(RANGE).mock(return_value=_success("matrix", [_points({}, "NaN", "NaN")]))
    result = await adapter.execute(_ranged())
    assert result.values["value"] is None
    assert result.values["trend"] is None
    assert "nothing counted in 2 points" in result.summary


async def test_an_empty_matrix_says_nothing_matches(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(RANGE).mock(return_value=_success("matrix", []))
    result = await adapter.execute(_ranged())
    assert result.values["series"] == 0
    assert result.values["last_value"] is None
    assert result.summary == (
        "Prometheus: no series over the last 30m, every 1m (nothing matches the query)"
    )


# --- errors ---------------------------------------------------------------------------------


async def test_a_bad_query_is_400_bad_data_and_its_error_is_said(
    adapter: PrometheusAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.get(QUERY).mock(
        return_value=_error(400, "bad_data", '1:5: parse error: unexpected "}"')
    )
    with pytest.raises(AdapterResponseError) as err:
        await adapter.execute(_instant("sum(}"))
    assert err.value.message == (
        "Prometheus rejected the query as invalid PromQL (HTTP 400, bad_data): "
        '1:5: parse error: unexpected "}"; fix the runbook step\'s query'
    )
    assert err.value.status_code == 400
    assert err.value.step_id == "error_rate"
    assert route.call_count == 1  # a refusal is not retried
    assert sleep.waits == []


async def test_a_query_that_cannot_be_evaluated_is_422_execution(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(
        return_value=_error(422, "execution", "query processing would load too many samples")
    )
    with pytest.raises(
        AdapterResponseError,
        match=r"could not evaluate the query \(HTTP 422, "
        r"execution\): query processing would load too many samples",
    ):
        await adapter.execute(_instant())


async def test_503_is_retried_and_after_the_last_attempt_says_what_prometheus_said(
    adapter: PrometheusAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.get(QUERY).mock(
        return_value=_error(503, "timeout", "query timed out in expression evaluation")
    )
    with pytest.raises(AdapterResponseError, match=r"HTTP 503.*after 4 attempts.*timed out") as err:
        await adapter.execute(_instant())
    assert err.value.status_code == 503
    assert route.call_count == 4
    assert sleep.waits == [0.5, 1.0, 2.0]


async def test_429_is_retried_after_the_retry_after_seconds_then_succeeds(
    adapter: PrometheusAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.get(QUERY).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "4"}, text="too many requests"),
            _success("vector", [_series({}, "0.03")]),
        ]
    )
    result = await adapter.execute(_instant())
    assert result.values["value"] == 0.03
    assert sleep.waits == [4.0]
    assert route.call_count == 2


async def test_a_timeout_is_retried_then_succeeds(
    adapter: PrometheusAdapter, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    router.get(QUERY).mock(
        side_effect=[httpx.ReadTimeout("timed out"), _success("vector", [_series({}, "0.01")])]
    )
    result = await adapter.execute(_instant())
    assert result.values["value"] == 0.01
    assert sleep.waits == [0.5]


async def test_timeouts_every_time_raise_adapter_timeout_naming_the_host(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    route = router.get(QUERY).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(
        AdapterTimeout,
        match=r"Prometheus \(prometheus.test:9090\) did not answer GET "
        r"/api/v1/query within the 2 s deadline \(4 attempts\)",
    ):
        await adapter.execute(_instant())
    assert route.call_count == 4


async def test_a_refused_connection_is_said_plainly(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(AdapterUnavailable, match=r"cannot reach Prometheus .*refused"):
        await adapter.execute(_instant())


@pytest.mark.parametrize("code", [401, 403])
async def test_401_and_403_say_the_credentials_were_refused_without_printing_them(
    client: httpx.AsyncClient, router: respx.MockRouter, code: int
) -> None:
    adapter = PrometheusAdapter(client, base_url="http://ops:s3cret-pw@prometheus.test:9090")
    route = router.get(QUERY).mock(return_value=httpx.Response(code, text="Unauthorized"))
    with pytest.raises(
        AdapterAuthError, match=f"refused GET /api/v1/query \\(HTTP {code}\\)"
    ) as err:
        await adapter.execute(_instant())
    assert "s3cret-pw" not in str(err.value)
    assert route.calls.last.request.headers["Authorization"].startswith("Basic ")


async def test_404_asks_whether_the_url_is_the_origin(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(return_value=httpx.Response(404, text="404 page not found"))
    with pytest.raises(
        AdapterResponseError, match="is PROMETHEUS_URL the Prometheus server's origin"
    ):
        await adapter.execute(_instant())


async def test_an_html_page_is_a_response_error_naming_its_title(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    page = "<html><head><title>Sign in - SSO</title></head><body>login</body></html>"
    router.get(QUERY).mock(
        return_value=httpx.Response(200, text=page, headers={"content-type": "text/html"})
    )
    with pytest.raises(AdapterResponseError, match="HTML page titled 'Sign in - SSO'"):
        await adapter.execute(_instant())


async def test_a_malformed_body_is_a_response_error(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(QUERY).mock(
        return_value=httpx.Response(
            200,
            text='{"status": "success", "data": {',
            headers={"content-type": "application/json"},
        )
    )
    with pytest.raises(AdapterResponseError, match="not JSON"):
        await adapter.execute(_instant())


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"status": "success"}, "no `data` object"),
        (
            {"status": "success", "data": {"resultType": "histogram", "result": []}},
            "unknown resultType",
        ),
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"value": [1, "2"]}]},
            },
            "no `metric` object",
        ),
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, 2]}]},
            },
            "not a string",
        ),
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "lots"]}]},
            },
            "not a number",
        ),
        ({"status": "pending", "data": {}}, "`status` is not success"),
    ],
)
async def test_an_answer_not_shaped_as_documented_says_what_is_wrong(
    adapter: PrometheusAdapter, router: respx.MockRouter, body: dict[str, Any], detail: str
) -> None:
    router.get(QUERY).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(AdapterResponseError, match="unexpected shape") as err:
        await adapter.execute(_instant())
    assert detail in err.value.message


async def test_a_range_query_answered_with_a_vector_is_a_shape_error(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    router.get(RANGE).mock(return_value=_success("vector", []))
    with pytest.raises(AdapterResponseError, match="not a matrix"):
        await adapter.execute(_ranged())


async def test_without_a_url_a_query_names_the_missing_setting(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    adapter = PrometheusAdapter(client, base_url=None)
    route = router.get(url__startswith="http")
    with pytest.raises(AdapterNotConfigured, match="set PROMETHEUS_URL"):
        await adapter.execute(_instant())
    assert route.call_count == 0


# --- probe and describe ---------------------------------------------------------------------


async def test_probe_counts_the_targets_up_and_never_raises(
    adapter: PrometheusAdapter, router: respx.MockRouter
) -> None:
    route = router.get(QUERY).mock(
        return_value=_success(
            "vector",
            [
                _series({"__name__": "up", "instance": f"api-{n}"}, v)
                for n, v in ((1, "1"), (2, "0"))
            ],
        )
    )
    good = await adapter.probe()
    assert route.calls.last.request.url.params["query"] == "up"
    router.get(QUERY).mock(side_effect=httpx.ConnectError("refused"))
    bad = await adapter.probe()
    assert (good.ok, good.configured) == (True, True)
    assert good.detail == "answered at prometheus.test:9090: 1 of 2 scrape targets up"
    assert bad.ok is False
    assert "cannot reach Prometheus" in bad.detail


async def test_probe_of_an_unconfigured_adapter_says_what_to_set(
    client: httpx.AsyncClient,
) -> None:
    probe = await PrometheusAdapter(client, base_url=None).probe()
    assert (probe.ok, probe.configured) == (False, False)
    assert probe.detail == "Prometheus is not configured: set PROMETHEUS_URL"


def test_describe_names_the_url_and_query_and_never_a_password(client: httpx.AsyncClient) -> None:
    adapter = PrometheusAdapter(client, base_url="http://ops:s3cret-pw@prometheus.test:9090")
    instant = adapter.describe(_instant("up"))
    ranged = adapter.describe(_ranged("up", "1h", "5m"))
    assert instant == "GET http://ops:[REDACTED]@prometheus.test:9090/api/v1/query?query=up"
    assert ranged.endswith("/api/v1/query_range?query=up&step=5m from 1h ago until now")
    assert "s3cret-pw" not in instant + ranged


async def test_a_password_in_prometheus_url_never_leaves_the_bot_even_when_echoed(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    url = "https://ops:pr0m-e2e-pw@prometheus.test:9090"
    redactor = Redactor(Settings(_env_file=None, prometheus_url=url).secrets())
    adapter = RedactingAdapter(PrometheusAdapter(client, base_url=url), redactor)
    router.get("https://prometheus.test:9090/api/v1/query").mock(
        return_value=_error(422, "execution", "proxy said: bad credentials ops:pr0m-e2e-pw")
    )
    with pytest.raises(AdapterResponseError) as err:
        await adapter.execute(_instant())
    described = adapter.describe(_instant())
    probed = await adapter.probe()
    for said in (err.value.message, described, probed.detail):
        assert "pr0m-e2e-pw" not in said
    assert f"ops:{MASK}" in err.value.message
