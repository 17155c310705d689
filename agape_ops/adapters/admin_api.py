"""The backend's admin API: reprocess a webhook, read queue statistics, read its health.

Writes (every method but GET) are sent exactly once with the click's ``Idempotency-Key``: a
POST cut off after it was sent may have been applied, so the message says so instead of
retrying. GETs retry transient answers like every read. ``ADMIN_TOKEN`` goes in the
Authorization header only.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import httpx

from agape_ops.adapters.httpclient import (
    RETRY_STATUSES,
    Sleep,
    decode_json,
    decode_object,
    get_with_retry,
    send,
    shape_error,
    shorten,
    unexpected_status,
)
from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult, table
from agape_ops.errors import (
    AdapterAuthError,
    AdapterError,
    AdapterNotConfigured,
    AdapterTimeout,
    AdapterUnavailable,
    AgapeError,
    NotFound,
    UnsafeOperation,
)
from agape_ops.runbooks.hazards import ADMIN_PREFIX, path_escape
from agape_ops.runbooks.model import AdminApiCall

SYSTEM = "the admin API"
REPROCESS_PATH = "/api/v1/admin/webhooks/reprocess"
QUEUE_STATS_PATH = "/api/v1/admin/queues/stats"
HEALTH_PATH = "/healthz"
QUEUE_COLUMNS = ["queue", "waiting", "active", "delayed", "failed", "completed", "paused"]
#: A 503 from /healthz is the documented "unhealthy" answer, not a reason to ask again.
HEALTH_RETRY_STATUSES = RETRY_STATUSES - {503}
BODY_TEXT_LIMIT = 4000
#: Failures that happen before a request leaves: the backend cannot have seen it.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class AdminApiAdapter:
    """The backend's admin API at ``ADMIN_API_URL``, authenticated with ``ADMIN_TOKEN``."""

    name = "admin_api"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str | None,
        token: str | None,
        max_retries: int = 3,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/") if base_url else None
        self._token = token
        self._max_retries = max_retries
        self._sleep = sleep

    # --- the Adapter protocol ------------------------------------------------------------

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Make the admin API call the step names and return its result."""
        call = _admin_call(request)
        try:
            if call.action == "reprocess_webhook":
                return await self._reprocess(call.webhook_id or "", request.idempotency_key)
            if call.action == "queue_stats":
                return await self._queue_stats()
            if call.action == "health":
                return await self._health()
            return await self._call(call, request.idempotency_key)
        except AdapterError as exc:
            exc.step_id = exc.step_id or request.step.id
            raise

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """Return None: the admin API has no dry run; describe() says what will be sent."""
        return None

    def describe(self, request: AdapterRequest) -> str:
        """Say the method, URL and body that execute would send; the token is named only."""
        call = _admin_call(request)
        base = self._base_url or "$ADMIN_API_URL"
        method, path, body = _method_path_body(call)
        text = f"{method} {base}{path}"
        if body is not None:
            text += f" body {json.dumps(body, sort_keys=True)}"
        extras = []
        if method != "GET":
            extras.append(f"Idempotency-Key: {request.idempotency_key}")
        if call.action != "health" or self._token:  # /healthz gets the token only when set
            extras.append("Authorization: Bearer $ADMIN_TOKEN")
        if extras:
            text += f" ({', '.join(extras)})"
        if method != "GET":
            text += "; sent once, never retried"
        return text

    async def probe(self) -> Probe:
        """GET /healthz once and report what it says. Never raise."""
        if self._base_url is None:
            return Probe(
                self.name, ok=False, detail="not configured: set ADMIN_API_URL", configured=False
            )
        started = time.perf_counter()
        try:
            result = await self._health(retries=0)
        except AgapeError as exc:
            return Probe(self.name, ok=False, detail=exc.message)
        latency = int((time.perf_counter() - started) * 1000)
        return Probe(
            self.name, ok=bool(result.values["healthy"]), detail=result.summary, latency_ms=latency
        )

    # --- plumbing ------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if self._base_url is None:
            raise AdapterNotConfigured(
                "admin API is not configured: set ADMIN_API_URL", adapter=self.name
            )
        return f"{self._base_url}{path}"

    def _headers(self, *, auth: bool = True) -> dict[str, str]:
        if not auth:
            return {"Authorization": f"Bearer {self._token}"} if self._token else {}
        if self._token is None:
            raise AdapterNotConfigured(
                "admin API token is not configured: set ADMIN_TOKEN", adapter=self.name
            )
        return {"Authorization": f"Bearer {self._token}"}

    def _auth_error(self, response: httpx.Response) -> AdapterAuthError:
        if response.status_code == 401:
            why = "ADMIN_TOKEN is wrong or expired"
        else:
            why = "ADMIN_TOKEN lacks the rights for this call"
        return AdapterAuthError(
            f"the admin API refused {response.request.method} {response.request.url.path} "
            f"({response.status_code}): {why}",
            adapter=self.name,
        )

    async def _get(
        self,
        path: str,
        *,
        auth: bool = True,
        retries: int | None = None,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
    ) -> httpx.Response:
        url = self._url(path)
        response = await get_with_retry(
            self._client,
            url,
            system=SYSTEM,
            adapter=self.name,
            headers=self._headers(auth=auth),
            max_retries=self._max_retries if retries is None else retries,
            sleep=self._sleep,
            retry_statuses=retry_statuses,
        )
        if response.status_code in (401, 403):
            raise self._auth_error(response)
        return response

    async def _send_once(
        self, method: str, path: str, body: Any, idempotency_key: str
    ) -> httpx.Response:
        url = self._url(path)
        headers = {**self._headers(), "Idempotency-Key": idempotency_key}
        try:
            response = await send(
                self._client,
                method,
                url,
                system=SYSTEM,
                adapter=self.name,
                headers=headers,
                json=body,
            )
        except (AdapterTimeout, AdapterUnavailable) as exc:
            if isinstance(exc.__cause__, _NEVER_SENT):
                outcome = "nothing was sent, so it is safe to run again"
            else:  # cut off after the request went out: the backend may have acted on it
                outcome = (
                    "it may or may not have been applied, so check before running it again "
                    "(running it again sends a new request)"
                )
            raise type(exc)(f"{exc.message}; {outcome}", adapter=self.name) from exc
        if response.status_code in (401, 403):
            raise self._auth_error(response)
        return response

    # --- actions -------------------------------------------------------------------------

    async def _reprocess(self, webhook_id: str, idempotency_key: str) -> StepResult:
        response = await self._send_once(
            "POST", REPROCESS_PATH, {"webhookId": webhook_id}, idempotency_key
        )
        code = response.status_code
        if code == 404:
            raise NotFound(f"no webhook with id {webhook_id}", adapter=self.name)
        if code == 409:
            return StepResult(
                summary=f"Webhook {webhook_id} was already processed: nothing to do (HTTP 409)",
                values={
                    "status": "already_processed",
                    "webhook_id": webhook_id,
                    "http_status": code,
                },
            )
        if code not in (200, 201, 202):
            raise unexpected_status(response, system=SYSTEM, adapter=self.name)
        body = decode_object(response, system=SYSTEM, adapter=self.name)
        status = str(body.get("status") or "queued")
        answered_id = str(body.get("webhookId") or webhook_id)
        return StepResult(
            summary=f"Webhook {answered_id} {status} for reprocessing (HTTP {code})",
            values={"status": status, "webhook_id": answered_id, "http_status": code},
        )

    async def _queue_stats(self) -> StepResult:
        response = await self._get(QUEUE_STATS_PATH)
        if response.status_code != 200:
            raise unexpected_status(response, system=SYSTEM, adapter=self.name)
        body = decode_object(response, system=SYSTEM, adapter=self.name)
        queues = body.get("queues")
        if not isinstance(queues, dict):
            raise shape_error(
                response, system=SYSTEM, adapter=self.name, detail="no `queues` object"
            )
        stats: dict[str, dict[str, Any]] = {}
        for name in sorted(queues):
            entry = queues[name] if isinstance(queues[name], dict) else {}
            stats[str(name)] = {
                **{key: _count(entry.get(key)) for key in QUEUE_COLUMNS[1:-1]},
                "paused": bool(entry.get("paused", False)),
            }
        rows = [{"queue": name, **figures} for name, figures in stats.items()]
        total_waiting = sum(int(row["waiting"]) for row in rows)
        described = ", ".join(
            f"{row['queue']} {row['waiting']} waiting, {row['failed']} failed"
            + (" (paused)" if row["paused"] else "")
            for row in rows
        )
        summary = f"{total_waiting} jobs waiting across {len(rows)} queues"
        if described:
            summary += f": {described}"
        return table(
            summary,
            QUEUE_COLUMNS,
            rows,
            values={
                "queues": stats,
                "total_waiting": total_waiting,
                "http_status": response.status_code,
            },
        )

    async def _health(self, retries: int | None = None) -> StepResult:
        response = await self._get(
            HEALTH_PATH, auth=False, retries=retries, retry_statuses=HEALTH_RETRY_STATUSES
        )
        code = response.status_code
        if code not in (200, 503):
            raise unexpected_status(response, system=SYSTEM, adapter=self.name)
        body = decode_object(response, system=SYSTEM, adapter=self.name)
        raw_checks = body.get("checks")
        checks = (
            {
                str(k): v if isinstance(v, str | bool | int | float) or v is None else str(v)
                for k, v in raw_checks.items()
            }
            if isinstance(raw_checks, dict)
            else {}
        )
        failing = [f"{name}: {value}" for name, value in checks.items() if value != "ok"]
        status = str(body.get("status") or ("ok" if code == 200 else "unhealthy"))
        healthy = code == 200 and not failing
        if healthy:
            listed = ", ".join(f"{name} ok" for name in checks)
            summary = f"Backend health: {status}" + (f" ({listed})" if listed else "")
        else:
            summary = f"Backend unhealthy (HTTP {code}, status {status})"
            if failing:
                summary += f": {'; '.join(failing)}"
        return StepResult(
            summary=summary,
            values={
                "status": status,
                "checks": checks,
                "healthy": healthy,
                "failing": failing,
                "http_status": code,
            },
        )

    async def _call(self, call: AdminApiCall, idempotency_key: str) -> StepResult:
        method, path, body = _method_path_body(call)
        _check_path(path)
        if method == "GET":
            response = await self._get(path)
        else:
            response = await self._send_once(method, path, body, idempotency_key)
        code = response.status_code
        if not 200 <= code < 300:
            raise unexpected_status(response, system=SYSTEM, adapter=self.name)
        answer: Any
        if not response.content:
            answer = None
        elif "json" in response.headers.get("content-type", ""):
            answer = decode_json(response, system=SYSTEM, adapter=self.name)
        else:
            answer = shorten(response.text, BODY_TEXT_LIMIT)
        return StepResult(
            summary=f"{method} {path}: HTTP {code}",
            values={"http_status": code, "body": answer},
            text=_as_text(answer),
        )


def _admin_call(request: AdapterRequest) -> AdminApiCall:
    call = request.call
    if not isinstance(call, AdminApiCall):
        raise TypeError(f"the admin_api adapter was handed a {type(call).__name__}")
    return call


def _method_path_body(call: AdminApiCall) -> tuple[str, str, Any]:
    if call.action == "reprocess_webhook":
        return "POST", REPROCESS_PATH, {"webhookId": call.webhook_id}
    if call.action == "queue_stats":
        return "GET", QUEUE_STATS_PATH, None
    if call.action == "health":
        return "GET", HEALTH_PATH, None
    return call.method or "GET", call.path or "/", call.json_body


def _check_path(path: str) -> None:
    """Refuse a path that would take the token anywhere but an endpoint under ADMIN_PREFIX."""
    shown = shorten(path, 120)
    if not path.startswith(ADMIN_PREFIX):
        raise UnsafeOperation(
            f"refused to send {shown!r} to the admin API: calls go under {ADMIN_PREFIX} only; "
            "nothing was sent",
            adapter="admin_api",
        )
    if (escape := path_escape(path)) is not None:
        raise UnsafeOperation(
            f"refused to send {shown!r} to the admin API: it holds {escape}, which could reach "
            f"another endpoint than the one written; nothing was sent",
            adapter="admin_api",
        )


def _count(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):  # JSON may say NaN or Infinity
        return int(value)
    return 0


def _as_text(answer: Any) -> str | None:
    if answer is None or isinstance(answer, str):
        return answer
    return json.dumps(answer, indent=2, sort_keys=True)
