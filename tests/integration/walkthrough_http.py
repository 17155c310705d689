"""Paystack, its status page, the backend's admin API and Prometheus, faked with respx for
walkthroughs.

Each answers as the backend README documents: verify and list with the secret key, the public
status page, reprocess (202, 404 unknown, 409 processed), queue statistics and /healthz, and
Prometheus's instant and range queries (``fake_prometheus.prometheus_answer``). The state behind
the answers is a plain dataclass a test changes as the incident unfolds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
from fake_prometheus import Series, prometheus_answer, promql

PAYSTACK = "https://paystack.test"
STATUS_PAGE = "https://status.paystack.test"
ADMIN = "https://admin.agape.test"
PROMETHEUS = "http://prometheus.agape.test:9090"
PAYSTACK_KEY = "sk_test_walkthrough_0123456789"
ADMIN_TOKEN = "admin-token-walkthrough-0123"


@dataclass
class FakeBackend:
    """respx routes answering as Paystack, its status page, the admin API and Prometheus.

    The state behind the answers is mutable: tests change it as the incident unfolds.
    """

    router: respx.MockRouter
    transactions: dict[str, str] = field(default_factory=dict)
    indicator: str = "none"
    incidents: list[str] = field(default_factory=list)
    webhooks: set[str] = field(default_factory=set)
    processed: set[str] = field(default_factory=set)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    health_status: int = 200
    health_checks: dict[str, str] = field(default_factory=lambda: {"db": "ok", "redis": "ok"})
    series: dict[str, list[Series]] = field(default_factory=dict)

    def measure(self, runbook_id: str, step_id: str, *series: Series) -> None:
        """Make Prometheus answer the query of a runbook's step with these series."""
        self.series[promql(runbook_id, step_id)] = list(series)

    def requests(self, method: str, path: str) -> list[httpx.Request]:
        """Return the requests made to one method and path of any faked origin."""
        return [
            call.request
            for call in self.router.calls
            if call.request.method == method and call.request.url.path == path
        ]


_DESCRIPTIONS = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major System Outage",
}


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def _paystack_transaction(reference: str, status: str) -> dict[str, Any]:
    return {
        "id": 4_099_260_516,
        "reference": reference,
        "status": status,
        "amount": 2_500_000,
        "currency": "NGN",
        "gateway_response": "Successful" if status == "success" else "Declined",
        "paid_at": "2025-03-01T01:40:00.000Z" if status == "success" else None,
        "created_at": "2025-03-01T01:39:00.000Z",
        "channel": "card",
    }


def _install(fake: FakeBackend) -> None:
    router = fake.router
    paystack_auth = f"Bearer {PAYSTACK_KEY}"
    admin_auth = f"Bearer {ADMIN_TOKEN}"

    def verify(request: httpx.Request, reference: str) -> httpx.Response:
        if request.headers.get("authorization") != paystack_auth:
            return _json(401, {"status": False, "message": "Invalid key"})
        if reference not in fake.transactions:
            return _json(404, {"status": False, "message": "Transaction reference not found"})
        data = _paystack_transaction(reference, fake.transactions[reference])
        return _json(200, {"status": True, "message": "Verification successful", "data": data})

    def listing(request: httpx.Request) -> httpx.Response:
        wanted = request.url.params.get("status")
        data = [
            _paystack_transaction(ref, status)
            for ref, status in fake.transactions.items()
            if wanted is None or status == wanted
        ]
        meta = {"total": len(data), "page": 1, "pageCount": 1, "perPage": 50}
        body = {"status": True, "message": "Transactions retrieved", "data": data, "meta": meta}
        return _json(200, body)

    def status(request: httpx.Request) -> httpx.Response:
        described = _DESCRIPTIONS.get(fake.indicator, fake.indicator)
        indicator = {"indicator": fake.indicator, "description": described}
        return _json(200, {"page": {"id": "paystack", "name": "Paystack"}, "status": indicator})

    def unresolved(request: httpx.Request) -> httpx.Response:
        incidents = [
            {
                "name": name,
                "impact": fake.indicator,
                "status": "investigating",
                "created_at": "2025-03-01T01:50:00.000Z",
                "shortlink": f"https://stspg.io/{n}",
            }
            for n, name in enumerate(fake.incidents)
        ]
        return _json(200, {"page": {"id": "paystack"}, "incidents": incidents})

    def reprocess(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != admin_auth:
            return _json(401, {"error": "unauthorized"})
        webhook_id = json.loads(request.content or b"{}").get("webhookId")
        if webhook_id in fake.processed:
            return _json(409, {"error": "already processed", "webhookId": webhook_id})
        if webhook_id not in fake.webhooks:
            return _json(404, {"error": "webhook not found"})
        return _json(202, {"status": "queued", "webhookId": webhook_id})

    def queue_stats(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != admin_auth:
            return _json(401, {"error": "unauthorized"})
        return _json(200, {"queues": fake.queues})

    def health(request: httpx.Request) -> httpx.Response:
        ok = fake.health_status == 200
        body = {"status": "ok" if ok else "error", "checks": dict(fake.health_checks)}
        return _json(fake.health_status, body)

    def prometheus(request: httpx.Request) -> httpx.Response:
        query = {name: request.url.params.get_list(name) for name in request.url.params}
        answer = prometheus_answer(fake.series, request.url.path, query)
        return _json(answer.status, answer.body)

    verify_url = re.escape(PAYSTACK) + r"/transaction/verify/(?P<reference>[^/?]+)$"
    router.get(url__regex=verify_url).mock(side_effect=verify)
    router.get(f"{PAYSTACK}/transaction").mock(side_effect=listing)
    router.get(f"{STATUS_PAGE}/api/v2/status.json").mock(side_effect=status)
    router.get(f"{STATUS_PAGE}/api/v2/incidents/unresolved.json").mock(side_effect=unresolved)
    router.post(f"{ADMIN}/api/v1/admin/webhooks/reprocess").mock(side_effect=reprocess)
    router.get(f"{ADMIN}/api/v1/admin/queues/stats").mock(side_effect=queue_stats)
    router.get(f"{ADMIN}/healthz").mock(side_effect=health)
    router.get(url__startswith=f"{PROMETHEUS}/api/v1/").mock(side_effect=prometheus)
    # the other vendors' status pages high-error-rate looks at
    router.get("https://status.cloudinary.com").mock(return_value=httpx.Response(200, text="ok"))
    router.get("https://resend-status.com").mock(return_value=httpx.Response(200, text="ok"))


@contextmanager
def fake_backend() -> Iterator[FakeBackend]:
    """Fake every HTTP system the bot calls; any request to another URL fails the test."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        fake = FakeBackend(router)
        _install(fake)
        yield fake


@pytest.fixture
def fake() -> Iterator[FakeBackend]:
    """Paystack, its status page, the admin API and Prometheus, faked for the whole test."""
    with fake_backend() as backend:
        yield backend
