"""Prometheus: instant and range PromQL queries over its HTTP API, so a runbook measures a rate
instead of trusting the alert's text. Reads only.

``PROMETHEUS_URL`` is an origin; the bot appends ``/api/v1/query`` and ``/api/v1/query_range``.
Queries are GETs, retried on 429, 5xx and timeouts. A query Prometheus refuses answers
``{"status": "error", "errorType": ..., "error": ...}`` (400 bad_data, 422 execution, 503
timeout): the message says which, in Prometheus's words. A password in the URL's userinfo
(basic auth through a proxy) is redacted with the other secrets; ``prometheus_answers`` says what
the answers mean.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from agape_ops.adapters.httpclient import (
    Sleep,
    decode_object,
    get_with_retry,
    host_of,
    safe_url,
    shape_error,
    unexpected_status,
)
from agape_ops.adapters.prometheus_answers import ShapeProblem, instant_result, range_result
from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult
from agape_ops.errors import (
    AdapterAuthError,
    AdapterError,
    AdapterNotConfigured,
    AdapterResponseError,
    AgapeError,
)
from agape_ops.runbooks.model import PrometheusCall
from agape_ops.runbooks.timing import duration_seconds

SYSTEM = "Prometheus"
QUERY_PATH = "/api/v1/query"
RANGE_PATH = "/api/v1/query_range"
NOT_CONFIGURED = "Prometheus is not configured: set PROMETHEUS_URL"
#: What each documented errorType means for the person reading it.
ERROR_TYPES: dict[str, str] = {
    "bad_data": "rejected the query as invalid PromQL",
    "execution": "could not evaluate the query",
    "timeout": "gave up evaluating the query (timeout)",
    "canceled": "canceled the query",
    "internal": "failed internally",
    "unavailable": "is not ready to answer",
    "not_found": "does not know what was asked for",
}


class PrometheusAdapter:
    """The Prometheus server that scrapes the backend, at ``PROMETHEUS_URL``."""

    name = "prometheus"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str | None,
        max_retries: int = 3,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/") if base_url else None
        self._max_retries = max_retries
        self._sleep = sleep
        self._clock = clock

    # --- the Adapter protocol ------------------------------------------------------------

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Run the step's query (instant, or a range ending now) and summarise the answer."""
        call = _prometheus_call(request)
        try:
            if call.range is None:
                response, body = await self._ask(QUERY_PATH, self._params(call), call.timeout_s)
                return _translated(response, lambda: instant_result(body))
            window = call.range
            response, body = await self._ask(RANGE_PATH, self._params(call), call.timeout_s)
            return _translated(response, lambda: range_result(body, window.start, window.step))
        except AdapterError as exc:
            exc.step_id = exc.step_id or request.step.id
            raise

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """Return None: a query changes nothing."""
        return None

    def describe(self, request: AdapterRequest) -> str:
        """Say which URL is read with which query; the time range in words."""
        call = _prometheus_call(request)
        base = safe_url(self._base_url) if self._base_url else "$PROMETHEUS_URL"
        if call.range is None:
            return f"GET {base}{QUERY_PATH}?{urlencode({'query': call.query})}"
        return (
            f"GET {base}{RANGE_PATH}?{urlencode({'query': call.query, 'step': call.range.step})}"
            f" from {call.range.start} ago until now"
        )

    async def probe(self) -> Probe:
        """Ask for ``up`` once; report how many targets answer their scrapes. Never raise."""
        if self._base_url is None:
            return Probe(self.name, ok=False, detail=NOT_CONFIGURED, configured=False)
        started = time.perf_counter()
        try:
            response, body = await self._ask(QUERY_PATH, {"query": "up"}, None, retries=0)
            result = _translated(response, lambda: instant_result(body))
        except AgapeError as exc:
            return Probe(self.name, ok=False, detail=exc.message)
        latency = int((time.perf_counter() - started) * 1000)
        up = sum(1 for row in result.rows if row.get("value") == 1)
        return Probe(
            self.name,
            ok=True,
            detail=f"answered at {host_of(self._base_url)}: {up} of {len(result.rows)} "
            "scrape targets up",
            latency_ms=latency,
        )

    # --- plumbing ------------------------------------------------------------------------

    def _params(self, call: PrometheusCall) -> dict[str, str | int]:
        params: dict[str, str | int] = {"query": call.query}
        if call.range is not None:
            end = self._clock()
            start = end - duration_seconds(call.range.start)
            params.update({"start": f"{start:.3f}", "end": f"{end:.3f}", "step": call.range.step})
        if call.timeout_s is not None:
            params["timeout"] = f"{call.timeout_s:g}s"
        return params

    async def _ask(
        self,
        path: str,
        params: dict[str, str | int],
        timeout_s: float | None,
        *,
        retries: int | None = None,
    ) -> tuple[httpx.Response, dict[str, Any]]:
        """GET one query endpoint; return the answer when Prometheus says ``success``."""
        if self._base_url is None:
            raise AdapterNotConfigured(NOT_CONFIGURED, adapter=self.name)
        response = await get_with_retry(
            self._client,
            f"{self._base_url}{path}",
            system=SYSTEM,
            adapter=self.name,
            params=params,
            timeout_s=timeout_s,
            max_retries=self._max_retries if retries is None else retries,
            sleep=self._sleep,
        )
        code = response.status_code
        if code in (401, 403):
            raise AdapterAuthError(
                f"Prometheus refused GET {path} (HTTP {code}): check the credentials in "
                "PROMETHEUS_URL, or the proxy in front of Prometheus",
                adapter=self.name,
            )
        if code == 404:
            error = unexpected_status(response, system=SYSTEM, adapter=self.name)
            raise AdapterResponseError(
                f"{error.message}; is PROMETHEUS_URL the Prometheus server's origin "
                "(scheme://host:port, no path)?",
                adapter=self.name,
                status_code=code,
            )
        body = decode_object(response, system=SYSTEM, adapter=self.name)
        if body.get("status") == "error" or code != 200:
            raise self._refusal(response, body)
        if body.get("status") != "success":
            raise shape_error(
                response, system=SYSTEM, adapter=self.name, detail="`status` is not success"
            )
        return response, body

    def _refusal(self, response: httpx.Response, body: dict[str, Any]) -> AdapterError:
        """Say why Prometheus answered a query with an error, in its own words."""
        error_type, error = body.get("errorType"), body.get("error")
        if not isinstance(error_type, str) and not isinstance(error, str):
            return unexpected_status(response, system=SYSTEM, adapter=self.name)
        kind = str(error_type or "error")
        meaning = ERROR_TYPES.get(kind, "answered with an error")
        hint = "; fix the runbook step's query" if kind == "bad_data" else ""
        return AdapterResponseError(
            f"Prometheus {meaning} (HTTP {response.status_code}, {kind}): "
            f"{str(error or 'no detail given')[:300]}{hint}",
            adapter=self.name,
            status_code=response.status_code,
        )


def _translated(response: httpx.Response, read: Callable[[], StepResult]) -> StepResult:
    """Return ``read()``; an answer not shaped as documented becomes a response error."""
    try:
        return read()
    except ShapeProblem as exc:
        raise shape_error(response, system=SYSTEM, adapter="prometheus", detail=str(exc)) from exc


def _prometheus_call(request: AdapterRequest) -> PrometheusCall:
    call = request.call
    if not isinstance(call, PrometheusCall):
        raise TypeError(f"the prometheus adapter was handed a {type(call).__name__}")
    return call
