"""Loopback stand-ins for Paystack, its status page, the backend's admin API and Prometheus.

respx only reaches httpx inside the test process; the console runs as a subprocess, so these
are small real HTTP servers (stdlib ``http.server`` on 127.0.0.1, one background thread each)
answering exactly as the backend README documents, and recording every request they get.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agape_ops.runbooks.loader import load_runbook_file
from agape_ops.runbooks.model import duration_seconds

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"


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


def paystack_route(secret_key: str, transactions: dict[str, str]) -> Route:
    """Answer Paystack's verify and list calls and its status page, as the README documents.

    ``transactions`` maps a reference to its ``data.status`` (success, failed, abandoned ...).
    """

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
                    "status": {"indicator": "none", "description": "All Systems Operational"},
                },
            )
        if seen.path == "/api/v2/incidents/unresolved.json":
            return Answer(200, {"page": {"id": "paystack"}, "incidents": []})
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
) -> Route:
    """Answer the admin API's reprocess, queue stats and health calls, as the README documents.

    ``webhooks`` are the ids reprocess knows (others get 404); ``processed`` ids get 409.
    """
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
            return Answer(200, {"status": "ok", "checks": {"db": "ok", "redis": "ok"}})
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


@dataclass(frozen=True)
class Series:
    """One series a fake Prometheus holds: its labels and its values over time, oldest first.

    An instant query answers the last value; a range query spreads the values evenly over the
    points of the range asked for. Values are strings, as Prometheus sends them ("NaN" too).
    """

    labels: dict[str, str]
    values: tuple[str, ...]


def promql(runbook_id: str, step_id: str) -> str:
    """Return the PromQL of a runbook's prometheus step, exactly as the adapter sends it."""
    runbook, _ = load_runbook_file(RUNBOOKS / f"{runbook_id}.yaml")
    step = runbook.step(step_id)
    assert step is not None, f"{runbook_id} has no step {step_id}"
    assert step.prometheus is not None, f"{runbook_id}:{step_id} is not a prometheus step"
    return step.prometheus.query


def prometheus_answer(
    series: dict[str, list[Series]], path: str, query: dict[str, list[str]]
) -> Answer:
    """Answer ``/api/v1/query`` and ``/api/v1/query_range`` as the backend README documents.

    ``series`` maps a PromQL query, exactly as a runbook writes it, to what it answers; any
    other query matches nothing (an empty result). A query with unbalanced parentheses is a
    400 ``bad_data``, as Prometheus answers it.
    """
    promql = query.get("query", [""])[0]
    if promql.count("(") != promql.count(")"):
        return Answer(
            400,
            {"status": "error", "errorType": "bad_data", "error": "1:1: parse error: unclosed"},
        )
    found = series.get(promql, [])
    if path == "/api/v1/query":
        result: list[dict[str, Any]] = [
            {"metric": s.labels, "value": [1_722_500_000.0, s.values[-1]]} for s in found
        ]
        return Answer(
            200, {"status": "success", "data": {"resultType": "vector", "result": result}}
        )
    if path == "/api/v1/query_range":
        start, end = float(query["start"][0]), float(query["end"][0])
        step = duration_seconds(query["step"][0])
        count = int((end - start) // step) + 1
        result = [
            {
                "metric": s.labels,
                "values": [
                    [start + i * step, s.values[i * len(s.values) // count]] for i in range(count)
                ],
            }
            for s in found
        ]
        return Answer(
            200, {"status": "success", "data": {"resultType": "matrix", "result": result}}
        )
    return Answer(404, {"status": "error", "errorType": "not_found", "error": "404 page not found"})


def prometheus_route(series: dict[str, list[Series]]) -> Route:
    """Answer as the Prometheus server behind Alertmanager does, holding ``series``."""

    def route(seen: Seen) -> Answer:
        return prometheus_answer(series, seen.path, seen.query)

    return route
