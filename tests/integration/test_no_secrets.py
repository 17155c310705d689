"""No configured secret leaves an adapter: not in a result, an error message or a log line.

Every adapter is driven through ``RedactingAdapter`` with ``RedactingFilter`` on the log
handler, on success and failure paths, including answers that echo the credentials back.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from http_fixtures import client, router

from agape_ops.adapters.admin_api import AdminApiAdapter
from agape_ops.adapters.http import HttpAdapter
from agape_ops.adapters.paystack import PaystackAdapter
from agape_ops.adapters.redacting import RedactingAdapter
from agape_ops.adapters.shell import ShellAdapter
from agape_ops.engine.ports import Adapter, AdapterRequest
from agape_ops.errors import AgapeError
from agape_ops.redaction import RedactingFilter, Redactor
from agape_ops.runbooks.model import (
    AdminApiCall,
    HttpCall,
    PaystackCall,
    Risk,
    ShellCall,
    Step,
)
from agape_ops.runbooks.strict import Strict
from agape_ops.settings import Settings

__all__ = ["client", "router"]  # shared fixtures, used by name

PAYSTACK_KEY = "sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
ADMIN_TOKEN = "tok_7Hq2mZ9xLw4RkVb"
DB_PASSWORD = "Pg-dsn-pa55w0rd"
DSN = f"postgresql://agape:{DB_PASSWORD}@db.internal:5432/agape"
SECRETS = (PAYSTACK_KEY, ADMIN_TOKEN, DB_PASSWORD)
API = "https://api.paystack.test"
STATUS = "https://status.paystack.test"
ADMIN = "https://api.agape.test"


class Lines(logging.Handler):
    """Keep every formatted log line."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def redactor() -> Redactor:
    settings = Settings(
        _env_file=None,
        paystack_secret_key=PAYSTACK_KEY,
        admin_token=ADMIN_TOKEN,
        database_url=DSN,
    )
    return Redactor(settings.secrets())


@pytest.fixture
def log(redactor: Redactor) -> Iterator[Lines]:
    handler = Lines()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter(redactor))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _request(kind: str, call: Strict, **extra: Any) -> AdapterRequest:
    step = Step(id="step_one", title="Step", risk=Risk.WRITE, **{kind: call})
    return AdapterRequest(run_id="r1", step=step, call=call, idempotency_key="k1", extra=extra)


def _echo(request: httpx.Request, status: int) -> httpx.Response:
    """Answer like a careless server: repeat the credentials it was sent, and a DSN."""
    return httpx.Response(
        status,
        json={
            "error": "upstream failure",
            "authorization": request.headers.get("Authorization", ""),
            "url": str(request.url),
            "dsn": DSN,
        },
    )


async def _drive(adapter: Adapter, request: AdapterRequest, log: Lines) -> list[str]:
    """Describe, execute and probe through the redactor; return everything that was said."""
    logger = logging.getLogger("agape_ops.tests.no_secrets")
    said = [adapter.describe(request)]
    try:
        result = await adapter.execute(request)
    except AgapeError as exc:
        said.append(str(exc))
        said.extend(str(arg) for arg in exc.args)
        logger.exception("step %s failed: %s", request.step.id, exc)
    else:
        said.append(result.model_dump_json())
        logger.info("step %s: %s (%s)", request.step.id, result.summary, result.values)
    said.append((await adapter.probe()).detail)
    return said


def _assert_clean(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in: {text}"


async def test_paystack_never_shows_the_key(
    client: httpx.AsyncClient, router: respx.MockRouter, redactor: Redactor, log: Lines
) -> None:
    router.get(f"{API}/transaction/verify/OK-1").mock(
        return_value=httpx.Response(
            200,
            json={
                "status": True,
                "data": {
                    "status": "success",
                    "reference": "OK-1",
                    "amount": 100,
                    "currency": "NGN",
                    "gateway_response": f"echo {PAYSTACK_KEY}",
                },
            },
        )
    )
    router.get(f"{API}/transaction/verify/ECHO-500").mock(side_effect=lambda r: _echo(r, 500))
    router.get(f"{API}/transaction/verify/ECHO-418").mock(side_effect=lambda r: _echo(r, 418))
    router.get(f"{API}/transaction/verify/ECHO-401").mock(side_effect=lambda r: _echo(r, 401))
    router.get(url__startswith=STATUS).mock(side_effect=lambda r: _echo(r, 503))
    inner = PaystackAdapter(
        client, api_url=API, status_url=STATUS, secret_key=PAYSTACK_KEY, sleep=_no_sleep
    )
    adapter = RedactingAdapter(inner, redactor)
    said: list[str] = []
    for reference in ("OK-1", "ECHO-500", "ECHO-418", "ECHO-401"):
        said += await _drive(
            adapter, _request("paystack", PaystackCall(action="verify", reference=reference)), log
        )
    many = PaystackCall(action="verify_many", references_from="orders.reference")
    said += await _drive(adapter, _request("paystack", many, references=["OK-1", "ECHO-418"]), log)
    said += await _drive(adapter, _request("paystack", PaystackCall(action="status_page")), log)
    assert any("[REDACTED]" in text for text in said)  # the echo was there, and was caught
    _assert_clean(said + log.lines)
    assert any("retrying" in line for line in log.lines)


async def test_admin_api_never_shows_the_token(
    client: httpx.AsyncClient, router: respx.MockRouter, redactor: Redactor, log: Lines
) -> None:
    router.post(f"{ADMIN}/api/v1/admin/webhooks/reprocess").mock(
        side_effect=lambda r: _echo(r, 500)
    )
    router.get(f"{ADMIN}/api/v1/admin/queues/stats").mock(side_effect=lambda r: _echo(r, 403))
    router.get(f"{ADMIN}/api/v1/admin/echo").mock(side_effect=lambda r: _echo(r, 200))
    router.get(f"{ADMIN}/healthz").mock(
        return_value=httpx.Response(
            503, json={"status": "error", "checks": {"db": f"cannot connect to {DSN}"}}
        )
    )
    inner = AdminApiAdapter(client, base_url=ADMIN, token=ADMIN_TOKEN, sleep=_no_sleep)
    adapter = RedactingAdapter(inner, redactor)
    calls = [
        AdminApiCall(action="reprocess_webhook", webhook_id="wh-1"),
        AdminApiCall(action="queue_stats"),
        AdminApiCall(action="health"),
        AdminApiCall(action="call", method="GET", path="/api/v1/admin/echo"),
        AdminApiCall(
            action="call",
            method="POST",
            path="/api/v1/admin/webhooks/reprocess",
            json_body={"token": ADMIN_TOKEN},
        ),
    ]
    said: list[str] = []
    for call in calls:
        said += await _drive(adapter, _request("admin_api", call), log)
    assert any("[REDACTED]" in text for text in said)
    _assert_clean(said + log.lines)


async def test_http_checks_never_show_a_password_or_a_key(
    client: httpx.AsyncClient, router: respx.MockRouter, redactor: Redactor, log: Lines
) -> None:
    router.get(url__regex=r"https://.*status\.example\.test/ok").mock(
        return_value=httpx.Response(200, json={"detail": {"dsn": DSN, "key": PAYSTACK_KEY}})
    )
    router.get(url__regex=r"https://.*status\.example\.test/down").mock(
        side_effect=httpx.ConnectError(f"refused for {DSN}")
    )
    adapter = RedactingAdapter(HttpAdapter(client), redactor)
    said: list[str] = []
    for url, field in (
        (f"https://agape:{DB_PASSWORD}@status.example.test/ok", "detail.dsn"),
        ("https://status.example.test/ok", "detail.key"),
        (f"https://agape:{DB_PASSWORD}@status.example.test/down", None),
    ):
        said += await _drive(adapter, _request("http", HttpCall(url=url, json_field=field)), log)
    _assert_clean(said + log.lines)


async def test_shell_never_shows_a_secret_it_was_given(
    redactor: Redactor, log: Lines, tmp_path: Path
) -> None:
    script = tmp_path / "echo_secrets.py"
    script.write_text(
        "import sys; print(sys.argv[1]); print(sys.argv[2], file=sys.stderr); sys.exit(1)"
    )
    call = ShellCall(
        command=[sys.executable, str(script), PAYSTACK_KEY, DSN], env={"ADMIN_TOKEN": ADMIN_TOKEN}
    )
    enabled = RedactingAdapter(ShellAdapter(enabled=True), redactor)
    disabled = RedactingAdapter(ShellAdapter(enabled=False), redactor)
    said = await _drive(enabled, _request("shell", call), log)
    said += await _drive(disabled, _request("shell", call), log)
    assert any("[REDACTED]" in text for text in said)
    _assert_clean(said + log.lines)
