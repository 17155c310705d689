"""Paystack: verify references, list transactions, and read Paystack's public status page.

Reads only, retried on 429, 5xx and timeouts. A verify answers HTTP 200 whenever the reference
exists (``paystack_answers`` says what its ``data`` means); an unknown reference answers 404,
or 400 for some integrations, with ``status: false``. The secret key goes in the Authorization
header and nowhere else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from agape_ops.adapters.httpclient import (
    Sleep,
    decode_json,
    decode_object,
    get_with_retry,
    shape_error,
    unexpected_status,
)
from agape_ops.adapters.paystack_answers import (
    check_reference,
    is_reference,
    list_result,
    transaction_row,
    unchecked_row,
    verify_many_result,
    verify_result,
    verify_row,
    whole,
)
from agape_ops.adapters.statuspage import StatusPage, indicator_words
from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult
from agape_ops.errors import (
    AdapterAuthError,
    AdapterError,
    AdapterNotConfigured,
    AgapeError,
    InputError,
    NotFound,
)
from agape_ops.runbooks.model import PaystackCall

SYSTEM = "Paystack"
PER_PAGE = 50
VERIFY_CONCURRENCY = 5


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PaystackAdapter:
    """Paystack's API (bearer ``PAYSTACK_SECRET_KEY``) and its public status page."""

    name = "paystack"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_url: str,
        status_url: str,
        secret_key: str | None,
        max_retries: int = 3,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._client = client
        self._api_url = api_url.rstrip("/")
        self._secret_key = secret_key
        self._max_retries = max_retries
        self._sleep = sleep
        self._clock = clock
        self._status_page = StatusPage(
            client,
            status_url,
            system="Paystack's status page",
            adapter=self.name,
            max_retries=max_retries,
            sleep=sleep,
        )

    # --- the Adapter protocol ------------------------------------------------------------

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Make the Paystack call the step names and return its figures."""
        call = _paystack_call(request)
        try:
            if call.action == "verify":
                return await self._verify(call.reference or "")
            if call.action == "verify_many":
                return await self._verify_many(_references(request))
            if call.action == "list_transactions":
                return await self._list_transactions(call)
            return await self._status_page.result("Paystack")
        except AdapterError as exc:
            exc.step_id = exc.step_id or request.step.id
            raise

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """Return None: every Paystack call is a read."""
        return None

    def describe(self, request: AdapterRequest) -> str:
        """Say which URL is read; the key is named, never shown."""
        call = _paystack_call(request)
        auth = "with Authorization: Bearer $PAYSTACK_SECRET_KEY"
        if call.action == "verify":
            return f"GET {self._verify_url(call.reference or '')} {auth}"
        if call.action == "verify_many":
            count = len(request.extra.get("references") or [])
            return (
                f"GET {self._api_url}/transaction/verify/<reference> for each of {count} "
                f"references from {call.references_from} ({VERIFY_CONCURRENCY} at a time) {auth}"
            )
        if call.action == "list_transactions":
            query = "&".join(f"{k}={v}" for k, v in self._list_params(call, 1).items())
            return (
                f"GET {self._api_url}/transaction?{query} and following pages "
                f"(at most {call.max_pages}) {auth}"
            )
        status_json, incidents_json = self._status_page.urls()
        return f"GET {status_json} and {incidents_json} (public, no key)"

    async def probe(self) -> Probe:
        """Read the status page once; report it, and whether the key is set. Never raise."""
        configured = self._secret_key is not None
        missing = "" if configured else "; PAYSTACK_SECRET_KEY is not set (verify is unavailable)"
        started = time.perf_counter()
        try:
            indicator, description = await self._status_page.indicator(retries=0)
        except AgapeError as exc:
            return Probe(
                self.name, ok=False, detail=f"{exc.message}{missing}", configured=configured
            )
        latency = int((time.perf_counter() - started) * 1000)
        return Probe(
            self.name,
            ok=True,
            detail=f"status page: {indicator_words(indicator)} ({description}){missing}",
            latency_ms=latency,
            configured=configured,
        )

    # --- verify --------------------------------------------------------------------------

    def _verify_url(self, reference: str) -> str:
        return f"{self._api_url}/transaction/verify/{quote(reference, safe='')}"

    def _headers(self) -> dict[str, str]:
        if self._secret_key is None:
            raise AdapterNotConfigured(
                "Paystack is not configured: set PAYSTACK_SECRET_KEY (the status page works "
                "without it)",
                adapter=self.name,
            )
        return {"Authorization": f"Bearer {self._secret_key}"}

    async def _get(self, url: str, params: dict[str, str | int] | None = None) -> httpx.Response:
        response = await get_with_retry(
            self._client,
            url,
            system=SYSTEM,
            adapter=self.name,
            headers=self._headers(),
            params=params,
            max_retries=self._max_retries,
            sleep=self._sleep,
        )
        if response.status_code == 401:
            raise AdapterAuthError(
                "Paystack rejected PAYSTACK_SECRET_KEY (401): check the key", adapter=self.name
            )
        return response

    async def _verify_data(self, reference: str) -> dict[str, Any]:
        check_reference(reference)
        response = await self._get(self._verify_url(reference))
        body = _json_or_none(response)
        said = str(body.get("message") or "") if isinstance(body, dict) else ""
        if (
            isinstance(body, dict)
            and body.get("status") is False
            and (response.status_code in (400, 404) or "not found" in said.lower())
        ):
            raise NotFound(
                f"Paystack has no transaction with reference {reference}", adapter=self.name
            )
        if response.status_code != 200:
            raise unexpected_status(response, system=SYSTEM, adapter=self.name)
        if not isinstance(body, dict):  # decode again only to raise the error that says why
            body = decode_object(response, system=SYSTEM, adapter=self.name)
        data = body.get("data")
        if body.get("status") is False or not isinstance(data, dict):
            raise shape_error(
                response, system=SYSTEM, adapter=self.name, detail=f"no `data` object; {said}"
            )
        return data

    async def _verify(self, reference: str) -> StepResult:
        return verify_result(await self._verify_data(reference), reference)

    async def _verify_many(self, references: list[str]) -> StepResult:
        unique = list(dict.fromkeys(references))
        gate = asyncio.Semaphore(VERIFY_CONCURRENCY)

        async def row_for(reference: str) -> dict[str, Any]:
            if not is_reference(reference):
                return unchecked_row(reference, "invalid_reference")
            async with gate:
                try:
                    data = await self._verify_data(reference)
                except NotFound:
                    return unchecked_row(reference, "not_found")
            return verify_row(data, reference)

        outcomes = await asyncio.gather(*(row_for(r) for r in unique), return_exceptions=True)
        rows: list[dict[str, Any]] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            rows.append(outcome)
        return verify_many_result(rows)

    # --- list ----------------------------------------------------------------------------

    def _list_params(self, call: PaystackCall, page: int) -> dict[str, str | int]:
        now = self._clock().astimezone(UTC)
        since = now - timedelta(minutes=call.window_minutes)
        params: dict[str, str | int] = {}
        if call.status:
            params["status"] = call.status
        params.update(
            {
                "from": since.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "to": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "perPage": PER_PAGE,
                "page": page,
            }
        )
        return params

    async def _list_transactions(self, call: PaystackCall) -> StepResult:
        rows: list[dict[str, Any]] = []
        total: int | None = None
        page, page_count = 1, 1
        while True:
            response = await self._get(
                f"{self._api_url}/transaction", self._list_params(call, page)
            )
            if response.status_code != 200:
                raise unexpected_status(response, system=SYSTEM, adapter=self.name)
            body = decode_object(response, system=SYSTEM, adapter=self.name)
            data, meta = body.get("data"), body.get("meta")
            if not isinstance(data, list) or not isinstance(meta, dict):
                raise shape_error(
                    response, system=SYSTEM, adapter=self.name, detail="no `data` list and `meta`"
                )
            rows.extend(transaction_row(item) for item in data if isinstance(item, dict))
            total = whole(meta.get("total"))
            page_count = whole(meta.get("pageCount")) or page
            if page >= page_count or page >= call.max_pages or not data:
                break
            page += 1
        return list_result(
            rows,
            total=total,
            status=call.status,
            window_minutes=call.window_minutes,
            pages_read=page,
            page_count=page_count,
        )


def _paystack_call(request: AdapterRequest) -> PaystackCall:
    call = request.call
    if not isinstance(call, PaystackCall):
        raise TypeError(f"the paystack adapter was handed a {type(call).__name__}")
    return call


def _references(request: AdapterRequest) -> list[str]:
    given = request.extra.get("references")
    if not isinstance(given, list | tuple):
        raise InputError("verify_many needs the references to check (none were resolved)")
    return [str(r).strip() for r in given if r is not None and str(r).strip()]


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return decode_json(response, system=SYSTEM, adapter="paystack")
    except AdapterError:
        return None
