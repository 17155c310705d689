"""A whole adapter call has one deadline: a server that trickles its answer is cut off at it.

The red team's server sent one byte every 2 s; every read got its byte within the 5 s timeout,
so the step (and the console) waited 398 s. Here a loopback server sends a byte every 0.1 s and
every HTTP-facing adapter must give up at its 1 s deadline, saying so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from agape_ops.adapters.admin_api import AdminApiAdapter
from agape_ops.adapters.http import HttpAdapter
from agape_ops.adapters.paystack import PaystackAdapter
from agape_ops.engine.ports import AdapterRequest
from agape_ops.errors import AdapterTimeout
from agape_ops.runbooks.model import AdminApiCall, HttpCall, PaystackCall, Step
from agape_ops.runbooks.strict import Strict

DEADLINE_S = 1.0
#: What the old per-read timeout would have allowed: a byte every 0.1 s for a minute.
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 600\r\n\r\n"


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        for byte in ANSWER + b" " * 600:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)  # the server's pace, not synchronisation
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    server = await asyncio.start_server(_trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def request(kind: str, call: Strict) -> AdapterRequest:
    step = Step(id="slow", title="Slow", **{kind: call})
    return AdapterRequest(run_id="r1", step=step, call=call, idempotency_key="r1:slow:1")


async def _no_wait(_: float) -> None:
    return None


Call = Callable[[httpx.AsyncClient, str], Awaitable[object]]

CALLS: dict[str, Call] = {
    "http": lambda client, origin: HttpAdapter(client).execute(
        request("http", HttpCall(url=f"{origin}/healthz"))
    ),
    "admin_api": lambda client, origin: AdminApiAdapter(
        client, base_url=origin, token="t", sleep=_no_wait
    ).execute(request("admin_api", AdminApiCall(action="queue_stats"))),
    "paystack": lambda client, origin: PaystackAdapter(
        client, api_url=origin, status_url=origin, secret_key="sk", sleep=_no_wait
    ).execute(request("paystack", PaystackCall(action="verify", reference="T-1"))),
    "status_page": lambda client, origin: PaystackAdapter(
        client, api_url=origin, status_url=origin, secret_key=None, sleep=_no_wait
    ).execute(request("paystack", PaystackCall(action="status_page"))),
}


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_a_trickling_server_is_cut_off_at_the_whole_call_deadline(
    origin: str, name: str
) -> None:
    async with httpx.AsyncClient(timeout=DEADLINE_S) as client:
        started = time.monotonic()
        with pytest.raises(AdapterTimeout, match=r"within the 1 s deadline") as caught:
            await asyncio.wait_for(CALLS[name](client, origin), timeout=15)
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_S + 1.5, f"{name} took {elapsed:.1f} s"
    assert caught.value.step_id == "slow"
