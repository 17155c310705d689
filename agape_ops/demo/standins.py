"""Loopback stand-ins for Paystack, its status page, Prometheus and the backend's admin API.

The demo's console (and the console tests) run as another process, which respx cannot reach, so
these are small real HTTP servers (stdlib ``http.server`` on 127.0.0.1, one background thread
each) answering exactly as the backend README documents, and recording every request they get.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request a fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Answer:
    """What a stand-in answers: a status code and a JSON body."""

    status: int
    body: Any


Route = Callable[[Seen], Answer]


@dataclass
class FakeService:
    """A running fake: its origin (``http://127.0.0.1:<port>``) and the requests it has seen."""

    url: str
    _seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        """Return the requests seen so far, optionally only those of one method and path."""
        with self._lock:
            return [
                s
                for s in self._seen
                if (method is None or s.method == method) and (path is None or s.path == path)
            ]


def _handler(service: FakeService, route: Route) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            seen = Seen(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            service.record(seen)
            answer = route(seen)
            payload = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815 - http.server's names

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: pytest reports what matters."""

    return Handler


@contextmanager
def serve(route: Route) -> Iterator[FakeService]:
    """Run ``route`` behind a loopback HTTP server for the duration of the block."""
    service = FakeService(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service, route))
    server.daemon_threads = True
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="fake-service",
        daemon=True,
    )
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _unauthorised(seen: Seen, token: str) -> bool:
    return seen.headers.get("authorization") != f"Bearer {token}"


@dataclass(frozen=True)
class StatusPage:
    """What Paystack's status page says: its indicator and its open incidents' names."""

    indicator: str = "none"
    description: str = "All Systems Operational"
    incidents: tuple[str, ...] = ()

    def incident_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "status": "investigating",
                "impact": self.indicator,
                "started_at": "2024-08-01T09:40:00.000Z",
                "shortlink": "https://stspg.io/paystack",
            }
            for name in self.incidents
        ]


def paystack_route(
    secret_key: str, transactions: dict[str, str], status_page: StatusPage | None = None
) -> Route:
    """Answer Paystack's verify and list calls and its status page, as the README documents.

    ``transactions`` maps a reference to its ``data.status`` (success, failed, abandoned ...).
    """
    page = status_page or StatusPage()

    def transaction(reference: str, status: str) -> dict[str, Any]:
        return {
            "id": abs(hash(reference)) % 10**9,
            "reference": reference,
            "status": status,
            "amount": 2_500_000,
            "currency": "NGN",
            "gateway_response": "Successful" if status == "success" else "Declined",
            "paid_at": "2024-08-01T10:00:00.000Z" if status == "success" else None,
            "created_at": "2024-08-01T09:59:00.000Z",
            "channel": "card",
        }

    def route(seen: Seen) -> Answer:
        if seen.path == "/api/v2/status.json":
            return Answer(
                200,
                {
                    "page": {"id": "paystack", "name": "Paystack"},
                    "status": {"indicator": page.indicator, "description": page.description},
                },
            )
        if seen.path == "/api/v2/incidents/unresolved.json":
            return Answer(200, {"page": {"id": "paystack"}, "incidents": page.incident_rows()})
        if _unauthorised(seen, secret_key):
            return Answer(401, {"status": False, "message": "Invalid key"})
        if seen.path.startswith("/transaction/verify/"):
            reference = seen.path.rsplit("/", 1)[1]
            if reference not in transactions:
                return Answer(404, {"status": False, "message": "Transaction reference not found"})
            return Answer(
                200,
                {
                    "status": True,
                    "message": "Verification successful",
                    "data": transaction(reference, transactions[reference]),
                },
            )
        if seen.path == "/transaction":
            wanted = seen.query.get("status", [None])[0]
            data = [
                transaction(ref, status)
                for ref, status in transactions.items()
                if wanted is None or status == wanted
            ]
            meta = {"total": len(data), "page": 1, "pageCount": 1, "perPage": 50}
            return Answer(
                200,
                {"status": True, "message": "Transactions retrieved", "data": data, "meta": meta},
            )
        return Answer(404, {"status": False, "message": "Not found"})

    return route


def admin_api_route(
    token: str,
    *,
    webhooks: set[str] | None = None,
    processed: set[str] | None = None,
    queues: dict[str, dict[str, Any]] | None = None,
    health: dict[str, str] | None = None,
) -> Route:
    """Answer the admin API's reprocess, queue stats and health calls, as the README documents.

    ``webhooks`` are the ids reprocess knows (others get 404); ``processed`` ids get 409;
    ``health`` is /healthz's checks (any value but "ok" makes it answer 503).
    """
    checks = health or {"db": "ok", "redis": "ok"}
    healthy = all(value == "ok" for value in checks.values())
    known = webhooks if webhooks is not None else set()
    done = processed or set()
    stats = queues or {
        "email": {
            "waiting": 150,
            "active": 2,
            "delayed": 0,
            "failed": 12,
            "completed": 9812,
            "paused": False,
        },
        "invoice": {
            "waiting": 3,
            "active": 1,
            "delayed": 0,
            "failed": 0,
            "completed": 1200,
            "paused": False,
        },
    }

    def route(seen: Seen) -> Answer:
        if seen.path == "/healthz":
            if healthy:
                return Answer(200, {"status": "ok", "checks": checks})
            return Answer(503, {"status": "error", "checks": checks})
        if _unauthorised(seen, token):
            return Answer(401, {"error": "unauthorized"})
        if seen.method == "POST" and seen.path == "/api/v1/admin/webhooks/reprocess":
            webhook_id = seen.body.get("webhookId") if isinstance(seen.body, dict) else None
            if webhook_id in done:
                return Answer(409, {"error": "already processed", "webhookId": webhook_id})
            if webhook_id not in known:
                return Answer(404, {"error": "webhook not found"})
            return Answer(202, {"status": "queued", "webhookId": webhook_id})
        if seen.method == "GET" and seen.path == "/api/v1/admin/queues/stats":
            return Answer(200, {"queues": stats})
        return Answer(404, {"error": "not found"})

    return route


#: What a grouped query's labels read in the demo world.
_DEMO_LABELS = {"route": "/api/v1/orders", "status": "502", "instance": "api-1:3000"}
_GROUPED_BY = re.compile(r"\bby\s*\(([^)]*)\)")


def prometheus_route(values: dict[str, float], *, now: Callable[[], float]) -> Route:
    """Answer Prometheus's instant and range queries as its HTTP API does.

    ``values`` maps a fragment of PromQL (``status=~"5.."``, ``up``) to the value a query
    containing it answers; a query matching none answers an empty vector.
    """

    def value_of(query: str) -> float | None:
        for fragment, value in values.items():
            if fragment in query:
                return value
        return None

    def route(seen: Seen) -> Answer:
        query = seen.query.get("query", [""])[0]
        if seen.path not in ("/api/v1/query", "/api/v1/query_range"):
            return Answer(404, {"status": "error", "errorType": "not_found", "error": "404"})
        if not query.strip():
            return Answer(
                400,
                {"status": "error", "errorType": "bad_data", "error": "empty query"},
            )
        value = value_of(query)
        labels = {"service": "agape-backend"}
        grouped = _GROUPED_BY.search(query)
        if grouped:  # `sum by (route, status) (...)`: one series with those labels, as asked
            names = [name.strip() for name in grouped.group(1).split(",") if name.strip()]
            labels = {name: _DEMO_LABELS.get(name, "demo") for name in names}
        if value is None:
            result: list[dict[str, Any]] = []
        elif seen.path == "/api/v1/query":
            result = [{"metric": labels, "value": [round(now(), 3), repr(value)]}]
        else:
            end = now()
            points = [[round(end - 30 * n, 3), repr(value)] for n in range(10, -1, -1)]
            result = [{"metric": labels, "values": points}]
        kind = "vector" if seen.path == "/api/v1/query" else "matrix"
        return Answer(200, {"status": "success", "data": {"resultType": kind, "result": result}})

    return route
