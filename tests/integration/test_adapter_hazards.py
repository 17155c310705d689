"""Adapters refuse what lint refuses, on the rendered call: no token leaves for another endpoint.

The red team sent ``GET /api/healthz`` with the admin token through an admin path
``/api/v1/admin/{{ inputs.p }}`` with ``p=../../healthz``, and called another Paystack endpoint
with the secret key through ``reference=..``. Each attempt here must be refused with nothing
sent: respx records every request that reaches the transport.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx
from http_fixtures import client, router

from agape_ops.adapters.admin_api import AdminApiAdapter
from agape_ops.adapters.http import HttpAdapter
from agape_ops.adapters.paystack import PaystackAdapter
from agape_ops.adapters.shell import ShellAdapter
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import AdapterNotConfigured, InputError, UnsafeOperation
from agape_ops.runbooks.model import (
    AdminApiCall,
    HttpCall,
    PaystackCall,
    Risk,
    ShellCall,
    Step,
)
from agape_ops.runbooks.strict import Strict

__all__ = ["client", "router"]  # shared fixtures, used by name

ADMIN = "https://api.agape.test"
PAYSTACK = "https://paystack.test"


def request(kind: str, written: Strict, rendered: Strict | None = None) -> AdapterRequest:
    step = Step(id="s", title="S", risk=Risk.WRITE, confirm="Go?", **{kind: written})
    return AdapterRequest(
        run_id="r1", step=step, call=rendered or written, idempotency_key="r1:s:1"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/admin/../../healthz",
        "/api/v1/admin/%2e%2e/%2E%2E/healthz",
        "/api/v1/admin/%252e%252e/healthz",
        "/api/v1/admin/users%2f..%2fhealthz",
        "/api/v1/admin/users?next=/healthz",
        "/api/v1/admin/users#x",
        "/api/healthz",
    ],
)
async def test_the_admin_token_never_goes_outside_the_admin_api(
    client: httpx.AsyncClient, router: respx.MockRouter, path: str
) -> None:
    router.route().mock(return_value=httpx.Response(200, json={}))
    adapter = AdminApiAdapter(client, base_url=ADMIN, token="admin-token")
    written = AdminApiCall(action="call", method="GET", path="/api/v1/admin/{{ inputs.p }}")
    rendered = written.model_copy(update={"path": path})
    with pytest.raises(UnsafeOperation, match="nothing was sent"):
        await adapter.execute(request("admin_api", written, rendered))
    assert router.calls.call_count == 0


@pytest.mark.parametrize("reference", ["..", ".", "...", "T" * 65_000])
async def test_a_reference_that_names_another_endpoint_or_is_huge_is_never_sent(
    client: httpx.AsyncClient, router: respx.MockRouter, reference: str
) -> None:
    router.route().mock(return_value=httpx.Response(200, json={"status": True, "data": {}}))
    adapter = PaystackAdapter(
        client, api_url=PAYSTACK, status_url="https://status.test", secret_key="sk_test_x"
    )
    call = PaystackCall(action="verify", reference=reference)
    with pytest.raises(InputError, match="is not a Paystack reference"):
        await adapter.execute(request("paystack", call))
    assert router.calls.call_count == 0


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{{ inputs.url }}", "https://evil.test/steal"),
        ("https://shop.test/{{ inputs.p | segment }}", "https://shop.test.evil.test/x"),
        ("https://shop.test/{{ inputs.p | segment }}", "https://shop.test/../admin"),
        ("https://shop.test/{{ inputs.p | segment }}", "https://shop.test/a%2F..%2Fadmin"),
        ("{{ settings.admin_api_url }}/x/{{ inputs.p }}", f"{ADMIN}/x/a?b=c"),
    ],
)
async def test_an_http_step_stays_on_its_declared_origin_and_path(
    client: httpx.AsyncClient, router: respx.MockRouter, template: str, rendered: str
) -> None:
    router.route().mock(return_value=httpx.Response(200))
    adapter = HttpAdapter(client, origins={"admin_api_url": ADMIN})
    call = HttpCall(url=template)
    with pytest.raises(UnsafeOperation, match="refused to fetch"):
        await adapter.execute(request("http", call, call.model_copy(update={"url": rendered})))
    assert router.calls.call_count == 0


async def test_an_http_step_on_its_declared_origin_is_fetched(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    route = router.get(f"{ADMIN}/healthz").mock(return_value=httpx.Response(200))
    call = HttpCall(url="{{ settings.admin_api_url }}/healthz")
    done = call.model_copy(update={"url": f"{ADMIN}/healthz"})
    result = await HttpAdapter(client, origins={"admin_api_url": ADMIN}).execute(
        request("http", call, done)
    )
    assert result.values["ok"] is True
    assert route.call_count == 1
    with pytest.raises(AdapterNotConfigured, match="is not set"):
        await HttpAdapter(client).execute(request("http", call, done))


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


@pytest.mark.parametrize(
    ("written", "rendered"),
    [
        (["{{ inputs.prog }}", "--version"], ["touch", "--version"]),
        (["sh", "-c", "touch {{ inputs.f }}"], ["sh", "-c", "touch x"]),
        (["env", "python3", "-c", "open('x', 'w')"], None),
    ],
)
async def test_a_shell_step_never_runs_a_chosen_program_or_code_as_text(
    tmp_path: Path, written: list[str], rendered: list[str] | None
) -> None:
    call = ShellCall(command=written, cwd=str(tmp_path))
    done = call.model_copy(update={"command": rendered or written})
    with pytest.raises(UnsafeOperation, match="refused to run"):
        await ShellAdapter(enabled=True).execute(request("shell", call, done))
    assert _files(tmp_path) == []
