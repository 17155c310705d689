"""A health check of a URL: its status, how long it took, and one JSON field if asked.

The URL must stay on the origin its step declares (a literal one, or a setting's) and its path
may not climb out with ``..`` or an encoded ``/``: inputs never choose where a request goes.

A wrong status is a finding (``ok`` false), not an error; failing to reach the host is an
error. Checks are not retried: they report what the URL does now, once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from agape_ops.adapters.httpclient import host_of, safe_url, send, shorten
from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult
from agape_ops.errors import AdapterError, AdapterNotConfigured, UnsafeOperation
from agape_ops.runbooks.hazards import has_query, path_escape, url_origin
from agape_ops.runbooks.model import HttpCall


class HttpAdapter:
    """GET or HEAD any URL a step names."""

    name = "http"

    def __init__(
        self, client: httpx.AsyncClient, *, origins: Mapping[str, str | None] | None = None
    ) -> None:
        self._client = client
        self._origins = dict(origins or {})

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Fetch the URL once and report status, latency and the asked-for field."""
        call = _http_call(request)
        shown = safe_url(call.url)
        started = time.perf_counter()
        try:
            self._check_url(request, call)
            response = await send(
                self._client,
                call.method,
                call.url,
                system=host_of(call.url),
                adapter=self.name,
                timeout_s=call.timeout_s,
            )
        except AdapterError as exc:
            exc.step_id = exc.step_id or request.step.id
            raise
        latency = int((time.perf_counter() - started) * 1000)
        ok = response.status_code == call.expect_status
        value = _field(response, call.json_field) if call.json_field else None
        summary = f"{call.method} {shown}: HTTP {response.status_code} in {latency} ms"
        summary += "" if ok else f", expected {call.expect_status}"
        if call.json_field:
            shown_value = "absent" if value is None else repr(value)
            summary += f"; {call.json_field} = {shown_value}"
        return StepResult(
            summary=summary,
            values={
                "status_code": response.status_code,
                "latency_ms": latency,
                "ok": ok,
                "field": value,
                "url": shown,
            },
            duration_ms=latency,
        )

    def _check_url(self, request: AdapterRequest, call: HttpCall) -> None:
        """Refuse a URL that left the origin its step declared, or climbs out of its path."""
        template = request.step.http.url if request.step.http is not None else call.url
        origin, rest = url_origin(template, self._origins)
        shown = shorten(safe_url(call.url), 120)
        if origin is None:
            raise UnsafeOperation(
                f"refused to fetch {shown}: the step's URL does not start with a declared origin "
                "(a literal https://host or a setting such as {{ settings.admin_api_url }})",
                adapter=self.name,
            )
        if not origin:
            raise AdapterNotConfigured(
                f"cannot fetch {template!r}: the setting its URL starts with is not set",
                adapter=self.name,
            )
        tail = call.url[len(origin) :] if call.url.startswith(origin) else None
        if tail is None or tail[:1] not in ("", "/", "?", "#"):
            raise UnsafeOperation(
                f"refused to fetch {shown}: it is not on {safe_url(origin)}, the origin the step "
                "declares",
                adapter=self.name,
            )
        path = re.split(r"[?#]", tail, maxsplit=1)[0] if has_query(rest) else tail
        if (escape := path_escape(path)) is not None:
            raise UnsafeOperation(
                f"refused to fetch {shown}: its path holds {escape}, which could reach another "
                "endpoint than the one written",
                adapter=self.name,
            )

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """Return None: a check changes nothing."""
        return None

    def describe(self, request: AdapterRequest) -> str:
        """Say the method and URL, what counts as healthy, and the field reported."""
        call = _http_call(request)
        text = f"{call.method} {safe_url(call.url)} (expect HTTP {call.expect_status}"
        if call.json_field:
            text += f"; report {call.json_field}"
        if call.timeout_s is not None:
            text += f"; timeout {call.timeout_s:g} s"
        return text + ")"

    async def probe(self) -> Probe:
        """Report ready: this adapter has no system of its own to reach."""
        return Probe(self.name, ok=True, detail="ready: checks the URLs steps name")


def _http_call(request: AdapterRequest) -> HttpCall:
    call = request.call
    if not isinstance(call, HttpCall):
        raise TypeError(f"the http adapter was handed a {type(call).__name__}")
    return call


def _field(response: httpx.Response, path: str) -> Any:
    """Return the value at a dotted path of the JSON body (list items by index), or None."""
    try:
        value: Any = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past the parser
        return None
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value
