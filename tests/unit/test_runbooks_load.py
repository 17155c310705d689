"""The runbooks in runbooks/ and the team file load, and their templates and conditions work.

Every ``when:`` is evaluated, and every ``finding:`` rendered, against results shaped as the
adapters produce them (``StepResult.context()`` plus inputs, alert, steps and settings), once with
the problem present and once with it absent, so a condition that reads a missing name or a
finding that breaks on an empty result fails here rather than at 3 a.m.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from agape_ops.alerts.model import Alert
from agape_ops.engine.results import StepResult, table
from agape_ops.runbooks.loader import load_runbook_file, load_team_file
from agape_ops.runbooks.model import REFERENCE_PATTERN, Risk, Runbook, Step
from agape_ops.runbooks.templating import evaluate, is_template, references, render, syntax_error

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
SEED = ROOT / "tests" / "fixtures" / "seed-runbooks.md"

TITLES = {
    "payment-gateway-outage": "Payment Gateway Outage",
    "failed-webhook-processing": "Failed Webhook Processing",
    "database-failover": "Database Failover",
    "inventory-oversell": "Inventory Oversell",
    "security-incident": "Security Incident",
    "high-error-rate": "High Error Rate (5xx)",
    "queue-backlog": "Queue Backlog",
}
UUID = "3f2b8c1e-5d4a-4b6f-9c2e-7a1d0e9f8b3c"
INPUTS = {
    "webhook_id": UUID,
    "reference": "T685312322670591",
    "user_id": "8d3c2f1a-6b7e-4c9d-a0b1-2e3f4a5b6c7d",
    "email": "jane@example.com",
}
SETTINGS = {
    "admin_api_url": "https://api.agapelooks.com",
    "paystack_api_url": "https://api.paystack.co",
    "paystack_status_url": "https://status.paystack.com",
}
ALERT = Alert(
    source="grafana",
    title="[FIRING:1] HighErrorRate (prod agape-backend critical)",
    labels={"alertname": "HighErrorRate", "service": "agape-backend", "env": "prod"},
    values={"error_rate": 0.071},
)
NOW = "2024-08-01T09:30:00+00:00"


@cache
def runbook(runbook_id: str) -> Runbook:
    loaded, _ = load_runbook_file(RUNBOOKS / f"{runbook_id}.yaml")
    return loaded


def all_steps() -> list[tuple[str, Step]]:
    return [(rb_id, step) for rb_id in TITLES for step in runbook(rb_id).steps()]


def base_context() -> dict[str, Any]:
    return {
        "inputs": dict(INPUTS),
        "alert": ALERT.context(),
        "steps": {},
        "settings": dict(SETTINGS),
        "run": {"id": "INC-1", "runbook": "test", "title": "test"},
    }


def scope(result: StepResult) -> dict[str, Any]:
    """Return what a step's ``when`` and ``finding`` see, as the engine builds it."""
    return {**base_context(), **result.context()}


# --- result builders ------------------------------------------------------------------------
# The builders and tables below are data laid out one example per line, so a reader can compare
# them: the formatter would explode each into a column of keys.
# fmt: off


def one_row(**columns: Any) -> StepResult:
    """Return an aggregate query's result: exactly one row."""
    return table("1 row", list(columns), [columns])


def rows(*records: dict[str, Any], total: int | None = None) -> StepResult:
    columns = list(records[0]) if records else []
    return table(f"{len(records)} rows", columns, list(records), total=total)


def named(**values: Any) -> StepResult:
    return StepResult(summary="result", values=values)


def with_rows(records: list[dict[str, Any]], **values: Any) -> StepResult:
    return table("result", list(records[0]) if records else [], records, values=values)


def exited(code: int) -> StepResult:
    return named(exit_code=code, stdout="", stderr="")


def rate(total: int, failed: int) -> StepResult:
    return one_row(total=total, failed=failed, failure_rate=failed / total if total else 0.0)


def status_page(indicator: str, incidents: list[str]) -> StepResult:
    records = [{"name": n, "impact": indicator, "status": "investigating", "started_at": NOW,
                "shortlink": "https://stspg.io/x"} for n in incidents]
    described = "All Systems Operational" if indicator == "none" else "Partial outage"
    return with_rows(records, indicator=indicator, description=described,
                     incident_count=len(incidents), incidents=incidents)


def reachable(in_recovery: bool) -> StepResult:
    return one_row(server_time=NOW, utc_time="2024-08-01 09:30:00", in_recovery=in_recovery)


def health(ok: bool) -> StepResult:
    checks = {"db": "ok" if ok else "connection refused", "redis": "ok"}
    return named(status="ok" if ok else "error", checks=checks, healthy=ok,
                 http_status=200 if ok else 503, failing=[] if ok else ["db"])


def connections(used: int) -> StepResult:
    return one_row(connections=used, max_connections=100, usage_ratio=used / 100,
                   active=used // 2, idle_in_transaction=1, waiting_on_locks=0)


def http(ok: bool, *, field: str | None = None, latency: int = 80) -> StepResult:
    return named(status_code=200 if ok else 503, latency_ms=latency, ok=ok, field=field,
                 url="https://status.example.com")


def queues(**backlogs: int) -> StepResult:
    """Return BullMQ statistics as the redis adapter reports them, one row per queue."""
    records = [{"queue": name, "waiting": n, "active": 2, "prioritized": 0, "delayed": 0,
                "failed": 3, "completed": 900, "paused": False, "backlog": n,
                "oldest_waiting_age_s": 60 * n, "version": "bullmq:5.7.0",
                "exists": True}
               for name, n in backlogs.items()]
    return with_rows(records, queues={r["queue"]: dict(r) for r in records},
                     total_backlog=sum(backlogs.values()),
                     max_backlog=max(backlogs.values(), default=0))


def missing_queues(*names: str) -> StepResult:
    """Return queue statistics where the named queues have no key in Redis at all."""
    result = queues(**dict.fromkeys(names, 0))
    for row in result.rows:
        row["exists"] = False
        result.values["queues"][row["queue"]]["exists"] = False
    return result


def prom_value(value: float | None) -> StepResult:
    """Return an instant query's answer as the prometheus adapter reports one number."""
    return with_rows([{"value": value}], result_type="vector", series=1, value=value,
                     metric=None, warnings=[])


def prom_series(*records: dict[str, Any]) -> StepResult:
    """Return an instant query's answer of several series (labels and value per row)."""
    single = records[0]["value"] if len(records) == 1 else None
    return with_rows(list(records), result_type="vector", series=len(records), value=single,
                     metric=None, warnings=[])


def figures(first: float | None, last: float | None, trend: str | None, lo: float | None = None,
            hi: float | None = None) -> dict[str, Any]:
    """Return the figures the prometheus adapter gives one series of a range."""
    known = [v for v in (first, last) if v is not None]
    return {"first_value": first, "last_value": last,
            "min": lo if lo is not None else min(known, default=None),
            "max": hi if hi is not None else max(known, default=None),
            "change": last - first if first is not None and last is not None else None,
            "trend": trend, "points": 16}


def prom_range(first: float | None, last: float | None, trend: str | None,
               lo: float | None = None, hi: float | None = None) -> StepResult:
    """Return a range query's answer of a single series, summarised as the adapter does."""
    found = figures(first, last, trend, lo, hi)
    return with_rows([found], result_type="matrix", series=1, value=last, metric=None,
                     warnings=[], **found)


def prom_ranges(*records: dict[str, Any]) -> StepResult:
    """Return a range query's answer of several series, one summarised row each."""
    none = dict.fromkeys(["first_value", "last_value", "min", "max", "change", "trend"])
    return with_rows(list(records), result_type="matrix", series=len(records), value=None,
                     metric=None, warnings=[], points=None, **none)


def memory(instance: str, metric: str, first: float, last: float, trend: str) -> dict[str, Any]:
    return {"metric": metric, "instance": instance, "job": "agape-backend",
            "service": "agape-backend", **figures(first, last, trend)}


def admin_queues(email_waiting: int) -> StepResult:
    """Return the admin API's GET /api/v1/admin/queues/stats as its adapter reports it."""
    stats = {
        "email": {"waiting": email_waiting, "active": 2, "delayed": 0, "failed": 12,
                  "completed": 9812, "paused": False},
        "invoice": {"waiting": 4, "active": 1, "delayed": 0, "failed": 0, "completed": 811,
                    "paused": False},
    }
    records = [{"queue": name, **figures} for name, figures in stats.items()]
    return with_rows(records, queues=stats, total_waiting=email_waiting + 4, http_status=200)


def verify(status: str) -> StepResult:
    paid = status == "success"
    return named(reference=INPUTS["reference"], status=status, known_status=True, paid=paid,
                 amount=12500.0, amount_kobo=1250000, currency="NGN",
                 gateway_response="Successful" if paid else None,
                 paid_at=NOW if paid else None, channel="card")


def verify_many(paid: list[bool]) -> StepResult:
    records = [{"reference": f"T{i}", "status": "success" if p else "abandoned", "paid": p,
                "amount": 5000.0, "amount_kobo": 500000} for i, p in enumerate(paid)]
    refs = [r["reference"] for r in records if r["paid"]]
    return with_rows(records, checked=len(paid), paid_count=len(refs), paid_references=refs,
                     not_found=[])


def admin_action(role: str | None) -> dict[str, Any]:
    return {"created_at": NOW, "action": "admin.refund", "actor": "ops@agapelooks.com",
            "actor_role": role, "target_type": "order", "target_id": "AG-1001",
            "ip": "203.0.113.9"}


def failed_logins(*counts: int) -> StepResult:
    return rows(*[{"ip": f"203.0.113.{i}", "failures": n, "first_seen": NOW, "last_seen": NOW}
                  for i, n in enumerate(counts)])


SESSION_ROW = {"user_id": INPUTS["user_id"], "email": "jane@example.com", "addresses": 5,
               "sessions": 7}
WEBHOOK_ROW = {"id": UUID, "reference": "T1", "order_number": "AG-1001",
               "order_status": "pending_payment", "event_type": "charge.success",
               "status": "failed", "error_message": "order not found", "retry_count": 3}
ORPHAN_WEBHOOK_ROW = {**WEBHOOK_ROW, "reference": None, "order_number": None,
                      "order_status": None}
ORDER_LINE = {"id": UUID, "order_number": "AG-1001", "status": "paid", "product_id": UUID,
              "quantity": 1}
UP = {"metric": "up", "job": "agape-backend"}
FAILED_JOB = {"queue": "email", "job_id": "812", "name": "send", "attempts": 3,
              "failed_reason": "Resend 429", "finished_at": NOW}


class Examples(NamedTuple):
    """Results with the step's problem present, and results without it."""

    present: tuple[StepResult, ...]
    absent: tuple[StepResult, ...]


#: Steps with a ``when``: results where the problem is present and where it is absent.
CONDITION_EXAMPLES: dict[str, Examples] = {
    "payment-gateway-outage/webhook_failure_rate": Examples(
        (rate(140, 10),), (rate(140, 2), rate(0, 0))),
    "payment-gateway-outage/paystack_status": Examples(
        (status_page("major", ["Card payments failing"]),), (status_page("none", []),)),
    "payment-gateway-outage/init_failures": Examples(
        (one_row(init_failed=4, attempts=20, init_failure_rate=0.2, latest_error="timeout"),),
        (one_row(init_failed=0, attempts=0, init_failure_rate=0.0, latest_error=None),)),
    "payment-gateway-outage/paystack_status_recheck": Examples(
        (status_page("minor", ["Delayed webhooks"]),), (status_page("none", []),)),
    "payment-gateway-outage/webhook_failure_rate_recheck": Examples(
        (rate(50, 20),), (rate(50, 0),)),
    "failed-webhook-processing/failed_webhook_count": Examples(
        (one_row(failed=7, failed_last_hour=5, oldest_failed_at=NOW, oldest_age="2 h 05 min",
                 newest_ids=[UUID]),),
        (one_row(failed=0, failed_last_hour=0, oldest_failed_at=None, oldest_age=None,
                 newest_ids=None),)),
    "failed-webhook-processing/pending_orders_paid": Examples(
        (verify_many([True, False, False]),), (verify_many([False, False]), verify_many([]))),
    "failed-webhook-processing/failed_webhooks": Examples(
        (rows(WEBHOOK_ROW), rows(ORPHAN_WEBHOOK_ROW, WEBHOOK_ROW)), (rows(),)),
    "failed-webhook-processing/webhook_status": Examples(
        (one_row(found=1, status="failed", error_message="timeout", retry_count=3,
                 reference="T1"),),
        (one_row(found=1, status="processed", error_message=None, retry_count=0,
                 reference="T1"),
         one_row(found=0, status=None, error_message=None, retry_count=None, reference=None))),
    "failed-webhook-processing/verify_payment": Examples(
        (verify("success"),), (verify("abandoned"), verify("failed"))),
    "database-failover/db_reachable": Examples((reachable(True),), (reachable(False),)),
    "database-failover/backend_health": Examples((health(False),), (health(True),)),
    "database-failover/connection_usage": Examples((connections(97),), (connections(12),)),
    "database-failover/verify_database": Examples((reachable(True),), (reachable(False),)),
    "database-failover/verify_app_health": Examples((health(False),), (health(True),)),
    "inventory-oversell/negative_stock": Examples(
        (rows({"sku": "TEE-BLK-M", "stock": -3, "product": "Tee", "updated_at": NOW}),),
        (rows(),)),
    "inventory-oversell/affected_orders": Examples((rows(ORDER_LINE),), (rows(),)),
    "security-incident/unusual_logins": Examples((rows(SESSION_ROW),), (rows(),)),
    "security-incident/failed_logins_by_ip": Examples(
        (failed_logins(48, 3),), (failed_logins(2, 1), rows())),
    "security-incident/admin_actions": Examples(
        (rows(admin_action("admin"), admin_action("customer")), rows(admin_action(None))),
        (rows(admin_action("admin")), rows())),
    "security-incident/user_sessions": Examples(
        (one_row(open_sessions=5),), (one_row(open_sessions=0),)),
    "security-incident/access_patterns": Examples(
        (rows({"ip": "203.0.113.9", "users": 12, "sessions": 40, "last_seen": NOW}),),
        (rows({"ip": "198.51.100.7", "users": 1, "sessions": 3, "last_seen": NOW}), rows())),
    "payment-gateway-outage/payment_failure_trend": Examples(
        (prom_range(0.01, 0.3, "rising"), prom_range(0.4, 0.06, "falling")),
        (prom_range(0.02, 0.01, "falling"), prom_range(None, None, None),
         prom_range(0.0, 0.0, "steady"))),
    "high-error-rate/error_rate": Examples(
        (prom_value(0.071), prom_value(0.0201)), (prom_value(0.004), prom_value(None))),
    "high-error-rate/error_rate_sustained": Examples(
        (prom_range(0.03, 0.071, "rising", 0.03, 0.072),),
        (prom_range(0.004, 0.071, "rising", 0.004, 0.071), prom_range(None, None, None),
         prom_range(0.01, 0.01, "steady"))),
    "high-error-rate/memory_leak": Examples(
        (prom_ranges(memory("api-1", "nodejs_heap_size_used_bytes", 1.2e8, 4.1e8, "rising"),
                     memory("api-1", "process_resident_memory_bytes", 3e8, 3.1e8, "steady")),),
        (prom_ranges(memory("api-1", "process_resident_memory_bytes", 3e8, 3.1e8, "steady")),
         prom_ranges())),
    "high-error-rate/instances_up": Examples(
        (prom_series({**UP, "instance": "api-1", "value": 1.0},
                     {**UP, "instance": "api-2", "value": 0.0}),
         prom_series()),
        (prom_series({**UP, "instance": "api-1", "value": 1.0}),)),
    "high-error-rate/connection_pool": Examples((connections(95),), (connections(20),)),
    "high-error-rate/redis_ping": Examples(
        (named(reachable=False, latency_ms=None),), (named(reachable=True, latency_ms=1.2),)),
    "high-error-rate/backend_health": Examples((health(False),), (health(True),)),
    "high-error-rate/paystack_status": Examples(
        (http(True, field="major"), http(False)), (http(True, field="none"),)),
    "high-error-rate/cloudinary_status": Examples((http(False),), (http(True),)),
    "high-error-rate/resend_status": Examples((http(False),), (http(True),)),
    "high-error-rate/restart_app": Examples((exited(1),), (exited(0),)),
    "high-error-rate/watch_error_rate": Examples(
        (prom_range(0.07, 0.05, "falling"),),
        (prom_range(0.07, 0.004, "falling"), prom_range(None, None, None))),
    "high-error-rate/response_times": Examples(
        (prom_value(2.3),), (prom_value(0.42), prom_value(None))),
    "high-error-rate/backend_health_recheck": Examples((health(False),), (health(True),)),
    "queue-backlog/email_backlog": Examples(
        (queues(email=150, invoice=3), missing_queues("email", "invoice")),
        (queues(email=12, invoice=3), queues(invoice=3), queues())),
    "queue-backlog/invoice_delay": Examples(
        (queues(invoice=20), queues(invoice=120), missing_queues("invoice"), queues()),
        (queues(invoice=2),)),
    "queue-backlog/admin_queue_stats": Examples((admin_queues(150),), (admin_queues(3),)),
    "queue-backlog/recent_failures": Examples(
        (with_rows([FAILED_JOB], failure_count=12),), (with_rows([], failure_count=0),)),
    "queue-backlog/process_email_queue": Examples((exited(1),), (exited(0),)),
    "queue-backlog/clear_failed_jobs": Examples((exited(2),), (exited(0),)),
}

#: Steps with a ``finding`` but no ``when``: results the finding must render for.
FINDING_EXAMPLES: dict[str, tuple[StepResult, ...]] = {
    "payment-gateway-outage/orders_awaiting_payment": (
        rows({"order_number": "AG-1001", "total_kobo": 1250000, "currency": "NGN",
              "payment_reference": "T1", "created_at": NOW}),
        rows()),
    "failed-webhook-processing/pending_orders": (
        rows({"id": UUID, "order_number": "AG-1001", "payment_reference": "T1",
              "total_kobo": 1250000, "created_at": NOW, "failed_webhook_id": UUID}),
        rows()),
    "high-error-rate/error_distribution": (
        prom_series({"route": "/api/v1/orders", "status": "502", "value": 1.25},
                    {"route": "/api/v1/cart", "status": "500", "value": 0.1}),
        prom_series()),
    "failed-webhook-processing/reprocess_webhook": (
        named(status="queued", webhook_id=UUID, http_status=202),
        named(status="already_processed", webhook_id=UUID, http_status=409)),
    "database-failover/replication_lag": (
        rows({"client_addr": "10.0.0.6", "state": "streaming", "sent_lsn": "0/3000060",
              "write_lsn": "0/3000060", "replay_lsn": "0/3000060", "sync_state": "async",
              "replay_lag": None, "worst_lag_s": 0.0}),
        rows()),
    "inventory-oversell/correct_stock": (
        with_rows([{"sku": "TEE-BLK-M", "stock": -3}], rows_changed=1, preview_count=1),),
    "security-incident/audit_log_review": (
        rows({"action": "auth.login_failed", "events": 300, "addresses": 2, "actors": 0,
              "last_seen": NOW}),
        rows()),
    "security-incident/find_user": (
        one_row(id=INPUTS["user_id"], email="jane@example.com", role="admin", created_at=NOW,
                active_sessions=2),
        rows()),
    "security-incident/user_activity": (
        rows({"created_at": NOW, "action": "admin.refund", "target_type": "order",
              "target_id": "AG-1", "ip": "203.0.113.9"}),
        rows()),
    "security-incident/revoke_sessions": (
        with_rows([{"id": UUID, "ip": "203.0.113.9"}], rows_changed=1, preview_count=1),),
    "security-incident/force_password_reset": (
        with_rows([{"id": UUID, "email": "jane@example.com"}], rows_changed=1, preview_count=1),),
    "security-incident/export_audit_log": (
        rows({"id": 1, "created_at": NOW, "action": "auth.login_failed", "actor_id": None,
              "target_type": None, "target_id": None, "ip": "203.0.113.9", "metadata": {}},
             total=1500),
        rows()),
}
# fmt: on


def _key(runbook_id: str, step: Step) -> str:
    return f"{runbook_id}/{step.id}"


def _example_params(examples: dict[str, Examples], which: str) -> list[Any]:
    return [
        pytest.param(key, result, id=f"{key}#{i}")
        for key, pair in examples.items()
        for i, result in enumerate(getattr(pair, which))
    ]


def _step(key: str) -> Step:
    runbook_id, step_id = key.split("/")
    step = runbook(runbook_id).step(step_id)
    assert step is not None, f"{key} is not a step"
    return step


# --- loading ----------------------------------------------------------------------------------


def test_runbooks_folder_holds_exactly_the_seven_runbooks() -> None:
    assert sorted(p.stem for p in RUNBOOKS.glob("*.yaml")) == sorted(TITLES)
    assert list(RUNBOOKS.glob("*.yml")) == []


@pytest.mark.parametrize(("runbook_id", "title"), TITLES.items(), ids=list(TITLES))
def test_runbook_loads_with_the_seed_heading_as_title(runbook_id: str, title: str) -> None:
    loaded, located = load_runbook_file(RUNBOOKS / f"{runbook_id}.yaml")
    assert loaded.id == runbook_id
    assert loaded.title == title
    assert located.where(("title",))[0] > 1
    assert loaded.triggers, "every runbook is reachable from an alert"
    assert loaded.steps()


# --- templates and conditions -----------------------------------------------------------------


def _templates(step: Step) -> list[tuple[str, str, bool]]:
    """Return (where, source, is-expression) of every template and condition of a step."""
    found: list[tuple[str, str, bool]] = []
    if step.when is not None:
        found.append(("when", step.when, True))
    if step.finding is not None:
        found.append(("finding", step.finding, False))
    if step.monitor is not None:
        for key in ("until", "figure"):
            if (source := getattr(step.monitor, key)) is not None:
                found.append((f"monitor.{key}", source, True))
    found.extend(("parameter", source, False) for source in _parameters(step))
    return found


def _parameters(step: Step) -> list[str]:
    sources: list[str] = []
    if step.postgres is not None:
        sources += [v for v in step.postgres.params.values() if isinstance(v, str)]
    if step.paystack is not None and step.paystack.reference is not None:
        sources.append(step.paystack.reference)
    if step.admin_api is not None:
        sources += [s for s in (step.admin_api.webhook_id, step.admin_api.path) if s]
    if step.http is not None:
        sources.append(step.http.url)
    if step.shell is not None:
        sources += [*step.shell.command, *step.shell.env.values()]
    return sources


@pytest.mark.parametrize(
    ("runbook_id", "step"), all_steps(), ids=[_key(r, s) for r, s in all_steps()]
)
def test_step_templates_parse_and_read_only_declared_inputs(runbook_id: str, step: Step) -> None:
    declared = runbook(runbook_id).inputs
    for name in step.inputs:
        assert name in declared, f"input {name} is not declared by the runbook"
    for where, source, expression in _templates(step):
        assert syntax_error(source, expression=expression) is None, f"{where}: {source}"
        for chain in references(source, expression=expression):
            if chain[0] == "inputs":
                assert chain[1] in step.inputs, f"{where} reads inputs.{chain[1]}"
            if chain[0] == "settings":
                assert chain[1] in SETTINGS, f"{where} reads settings.{chain[1]}"
    if step.postgres is not None:
        for sql in (step.postgres.sql, step.postgres.preview or ""):
            assert "{{" not in sql
            assert "{%" not in sql
    if step.confirm is not None:
        assert not is_template(step.confirm), "confirm texts are shown as written"


@pytest.mark.parametrize(
    ("runbook_id", "step"), all_steps(), ids=[_key(r, s) for r, s in all_steps()]
)
def test_step_parameters_render_before_the_step_runs(runbook_id: str, step: Step) -> None:
    for source in _parameters(step):
        rendered = render(source, base_context())
        assert not is_template(rendered)
        assert rendered.strip()


def test_every_condition_and_finding_has_examples() -> None:
    with_when = {_key(r, s) for r, s in all_steps() if s.when is not None}
    finding_only = {_key(r, s) for r, s in all_steps() if s.when is None and s.finding is not None}
    assert with_when == set(CONDITION_EXAMPLES)
    assert finding_only == set(FINDING_EXAMPLES)


@pytest.mark.parametrize(("key", "result"), _example_params(CONDITION_EXAMPLES, "present"))
def test_condition_is_true_when_the_problem_is_present(key: str, result: StepResult) -> None:
    step = _step(key)
    assert step.when is not None
    assert bool(evaluate(step.when, scope(result))) is True
    if step.finding is not None:
        assert render(step.finding, scope(result)).strip()


@pytest.mark.parametrize(("key", "result"), _example_params(CONDITION_EXAMPLES, "absent"))
def test_condition_is_false_when_the_problem_is_absent(key: str, result: StepResult) -> None:
    step = _step(key)
    assert step.when is not None
    assert bool(evaluate(step.when, scope(result))) is False
    if step.finding is not None:
        assert render(step.finding, scope(result)).strip()


@pytest.mark.parametrize(
    ("key", "result"),
    [
        pytest.param(key, result, id=f"{key}#{i}")
        for key, results in FINDING_EXAMPLES.items()
        for i, result in enumerate(results)
    ],
)
def test_finding_renders_for_full_and_empty_results(key: str, result: StepResult) -> None:
    step = _step(key)
    assert step.finding is not None
    assert render(step.finding, scope(result)).strip()


def test_webhook_failure_rate_finding_puts_the_figures_next_to_the_words() -> None:
    step = _step("payment-gateway-outage/webhook_failure_rate")
    assert step.finding is not None
    assert render(step.finding, scope(rate(140, 10))).strip() == (
        "Webhook failure rate over the last 15 minutes: 7.1% (10 of 140 webhooks failed)"
    )


def test_status_page_finding_names_the_indicator_and_open_incidents() -> None:
    step = _step("payment-gateway-outage/paystack_status")
    assert step.finding is not None
    shown = render(step.finding, scope(status_page("major", ["Card payments failing"])))
    assert "major" in shown
    assert "1 open incident: Card payments failing" in shown


def test_negative_stock_finding_lists_each_sku_with_its_stock() -> None:
    step = _step("inventory-oversell/negative_stock")
    assert step.finding is not None
    result = rows(
        {"sku": "TEE-BLK-M", "stock": -3, "product": "Tee", "updated_at": NOW},
        {"sku": "CAP-RED", "stock": -1, "product": "Cap", "updated_at": NOW},
    )
    assert render(step.finding, scope(result)) == (
        "2 SKUs have stock below zero: TEE-BLK-M (-3), CAP-RED (-1)"
    )


def test_paystack_status_check_reads_the_configured_status_page() -> None:
    step = _step("high-error-rate/paystack_status")
    assert step.http is not None
    assert render(step.http.url, base_context()) == (
        "https://status.paystack.com/api/v2/status.json"
    )
    assert step.http.json_field == "status.indicator"


# --- what the issue requires of particular steps ----------------------------------------------


REQUIRED_KINDS = [
    ("payment-gateway-outage", "webhook_failure_rate", "postgres", Risk.READ),
    ("payment-gateway-outage", "paystack_status", "paystack", Risk.READ),
    ("payment-gateway-outage", "init_failures", "postgres", Risk.READ),
    ("failed-webhook-processing", "failed_webhooks", "postgres", Risk.READ),
    ("failed-webhook-processing", "reprocess_webhook", "admin_api", Risk.WRITE),
    ("failed-webhook-processing", "pending_orders", "postgres", Risk.READ),
    ("failed-webhook-processing", "pending_orders_paid", "paystack", Risk.READ),
    ("failed-webhook-processing", "verify_payment", "paystack", Risk.READ),
    ("database-failover", "db_reachable", "postgres", Risk.READ),
    ("database-failover", "backend_health", "admin_api", Risk.READ),
    ("database-failover", "replication_lag", "postgres", Risk.READ),
    ("database-failover", "promote_replica", "manual", Risk.DANGEROUS),
    ("inventory-oversell", "negative_stock", "postgres", Risk.READ),
    ("inventory-oversell", "affected_orders", "postgres", Risk.READ),
    ("inventory-oversell", "correct_stock", "postgres", Risk.DANGEROUS),
    ("security-incident", "failed_logins_by_ip", "postgres", Risk.READ),
    ("security-incident", "admin_actions", "postgres", Risk.READ),
    ("security-incident", "revoke_sessions", "postgres", Risk.DANGEROUS),
    ("security-incident", "force_password_reset", "postgres", Risk.DANGEROUS),
    ("security-incident", "export_audit_log", "postgres", Risk.READ),
    ("high-error-rate", "error_rate", "prometheus", Risk.READ),
    ("high-error-rate", "error_rate_sustained", "prometheus", Risk.READ),
    ("high-error-rate", "memory_leak", "prometheus", Risk.READ),
    ("high-error-rate", "instances_up", "prometheus", Risk.READ),
    ("high-error-rate", "watch_error_rate", "prometheus", Risk.READ),
    ("high-error-rate", "response_times", "prometheus", Risk.READ),
    ("payment-gateway-outage", "payment_failure_trend", "prometheus", Risk.READ),
    ("high-error-rate", "connection_pool", "postgres", Risk.READ),
    ("high-error-rate", "redis_ping", "redis", Risk.READ),
    ("high-error-rate", "paystack_status", "http", Risk.READ),
    ("high-error-rate", "backend_health", "admin_api", Risk.READ),
    ("high-error-rate", "restart_app", "shell", Risk.WRITE),
    ("queue-backlog", "email_backlog", "redis", Risk.READ),
    ("queue-backlog", "admin_queue_stats", "admin_api", Risk.READ),
    ("queue-backlog", "recent_failures", "redis", Risk.READ),
    ("queue-backlog", "process_email_queue", "shell", Risk.WRITE),
    ("queue-backlog", "clear_failed_jobs", "shell", Risk.DANGEROUS),
]


@pytest.mark.parametrize(
    ("runbook_id", "step_id", "kind", "risk"),
    REQUIRED_KINDS,
    ids=[f"{r}/{s}" for r, s, _, _ in REQUIRED_KINDS],
)
def test_required_step_has_its_kind_and_risk(
    runbook_id: str, step_id: str, kind: str, risk: Risk
) -> None:
    step = runbook(runbook_id).step(step_id)
    assert step is not None
    assert step.kind == kind
    assert step.risk is risk


@pytest.mark.parametrize(
    ("runbook_id", "step"),
    [(r, s) for r, s in all_steps() if s.changes_things],
    ids=[_key(r, s) for r, s in all_steps() if s.changes_things],
)
def test_changing_step_is_confirmed_named_and_bounded(runbook_id: str, step: Step) -> None:
    assert step.confirm is not None
    assert "?" in step.confirm, "a confirmation is a question"
    assert step.button
    if step.postgres is not None:
        assert step.postgres.sql.lstrip().upper().startswith("UPDATE")
        assert step.postgres.max_rows is not None
        assert step.postgres.preview is not None
        assert step.postgres.preview.lstrip().upper().startswith("SELECT")
        where = step.postgres.sql.upper().split("WHERE", 1)[1].split()
        assert " ".join(where) in " ".join(step.postgres.preview.upper().split())


def test_failed_webhooks_offer_reprocess_on_each_row() -> None:
    rb = runbook("failed-webhook-processing")
    step = rb.step("failed_webhooks")
    assert step is not None
    assert [(a.step, a.button, a.inputs) for a in step.row_actions] == [
        ("reprocess_webhook", "Reprocess", {"webhook_id": "id"})
    ]
    uuid_pattern = rb.inputs["webhook_id"].pattern
    assert re.fullmatch(uuid_pattern, UUID)
    assert not re.fullmatch(uuid_pattern, "1; DROP TABLE webhook_events")
    assert rb.inputs["reference"].pattern == REFERENCE_PATTERN
    paid = rb.step("pending_orders_paid")
    assert paid is not None
    assert paid.paystack is not None
    assert paid.paystack.references_from == "pending_orders.payment_reference"


def test_promote_replica_holds_the_failover_lock() -> None:
    step = runbook("database-failover").step("promote_replica")
    assert step is not None
    assert step.lock == "failover"
    assert step.confirm


def test_stock_correction_previews_sku_and_stock() -> None:
    step = runbook("inventory-oversell").step("correct_stock")
    assert step is not None
    assert step.postgres is not None
    assert step.button == "Correct stock"
    preview = " ".join(step.postgres.preview.split()) if step.postgres.preview else ""
    assert preview.startswith("SELECT sku, stock FROM product_variants WHERE stock < 0")


def test_stock_correction_bumps_the_version_checkout_locks_on() -> None:
    step = runbook("inventory-oversell").step("correct_stock")
    assert step is not None
    assert step.postgres is not None
    sql = " ".join(step.postgres.sql.split())
    assert sql == (
        "UPDATE product_variants SET stock = 0, version = version + 1, updated_at = now() "
        "WHERE stock < 0"
    )


def test_credential_revocation_needs_a_user_id_and_two_people_for_passwords() -> None:
    rb = runbook("security-incident")
    revoke, reset = rb.step("revoke_sessions"), rb.step("force_password_reset")
    assert revoke is not None
    assert reset is not None
    assert revoke.inputs == ["user_id"]
    assert reset.inputs == ["user_id"]
    assert reset.two_person is True
    assert revoke.button == "Revoke sessions"
    assert re.fullmatch(rb.inputs["user_id"].pattern, INPUTS["user_id"])
    assert not re.fullmatch(rb.inputs["user_id"].pattern, "' OR 1=1 --")


def test_queue_steps_read_email_and_invoice_and_run_the_backend_scripts() -> None:
    rb = runbook("queue-backlog")
    backlog, process, clear = (
        rb.step(s) for s in ("email_backlog", "process_email_queue", "clear_failed_jobs")
    )
    assert backlog is not None
    assert backlog.redis is not None
    assert backlog.redis.queues == ["email", "invoice"]
    assert process is not None
    assert process.shell is not None
    assert process.shell.command == ["node", "scripts/process-queue.js", "email"]
    assert clear is not None
    assert clear.shell is not None
    assert clear.shell.command == ["node", "scripts/clear-failed-jobs.js"]


# --- the team file ----------------------------------------------------------------------------


def _seed_section(title: str) -> dict[str, str]:
    """Return the ``- **Name**: value`` bullets of one ``## title`` section of the seed."""
    text = SEED.read_text(encoding="utf-8")
    body = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    return {
        m[1]: m[2].strip() for m in re.finditer(r"^-+ \*\*(.+?)\*\*: (.+)$", body, re.MULTILINE)
    }


def test_team_file_loads_with_empty_lists_and_an_escalation() -> None:
    team = load_team_file(ROOT / "team.yaml")
    assert team.responders == []
    assert team.approvers == []
    assert team.escalation
    # Seed: the on-call engineer, then the DevOps lead, then the CTO, each later than the last.
    for severity in ("sev1", "sev2"):
        levels = team.escalation_for(severity)
        assert len(levels) == 3
        assert [e.after_s for e in levels] == sorted({e.after_s for e in levels})


def test_team_file_holds_every_seed_contact() -> None:
    team = load_team_file(ROOT / "team.yaml")
    seed = _seed_section("Emergency Contacts")
    assert len(seed) == 5
    contacts = {c.role: c.phone or c.email for c in team.contacts}
    assert contacts == seed


def test_team_file_holds_every_seed_dashboard() -> None:
    team = load_team_file(ROOT / "team.yaml")
    seed = _seed_section("Monitoring Dashboards")
    assert len(seed) == 5
    dashboards = {d.name: d.url or d.note for d in team.dashboards}
    assert dashboards == seed


def test_queue_findings_say_when_a_queue_is_missing_rather_than_empty() -> None:
    rb = runbook("queue-backlog")
    missing = queues(email=150, invoice=0)
    missing.rows[1]["exists"] = False
    backlog = rb.step("email_backlog")
    delay = rb.step("invoice_delay")
    assert backlog is not None
    assert backlog.finding is not None
    assert delay is not None
    assert delay.finding is not None

    assert "invoice: no such queue in Redis" in render(backlog.finding, scope(missing))
    only_invoice = queues(invoice=0)
    only_invoice.rows[0]["exists"] = False
    assert render(delay.finding, scope(only_invoice)).startswith("No invoice queue found in Redis")


def _said(key: str, result: StepResult, **steps: dict[str, Any]) -> str:
    step = _step(key)
    assert step.finding is not None
    return " ".join(render(step.finding, {**scope(result), "steps": steps}).split())


def test_high_error_rate_states_the_measured_rates_with_their_figures() -> None:
    assert _said("high-error-rate/error_rate", prom_value(0.071)) == (
        "5xx error rate over the last 5 minutes: 7.10% of requests (threshold 2%)"
    )
    assert _said("high-error-rate/error_rate", prom_value(None)) == (
        "5xx error rate over the last 5 minutes: none to measure, no requests counted"
    )
    sustained = prom_range(0.03, 0.071, "rising", 0.03, 0.072)
    assert _said("high-error-rate/error_rate_sustained", sustained) == (
        "5xx error rate over the last 15 minutes: 3.00% → 7.10% (rising; lowest 3.00%, "
        "highest 7.20%); above 2% throughout"
    )
    assert _said("high-error-rate/watch_error_rate", prom_range(0.07, 0.004, "falling")) == (
        "5xx error rate over the last 30 minutes: 7.00% → 0.40% (falling; highest 7.00%); "
        "now below 2%"
    )
    assert _said("high-error-rate/response_times", prom_value(0.42)) == (
        "p95 response time over the last 5 minutes: 420 ms (threshold 1000 ms)"
    )


def test_high_error_rate_names_climbing_memory_and_instances_down() -> None:
    heap = memory("api-1", "nodejs_heap_size_used_bytes", 1.2e8, 4.1e8, "rising")
    rss = memory("api-1", "process_resident_memory_bytes", 3e8, 3.1e8, "steady")
    assert _said("high-error-rate/memory_leak", prom_ranges(heap, rss)) == (
        "Memory climbing on 1 of 2 series (a leak?): api-1 heap 120.0 MB → 410.0 MB (rising); "
        "api-1 resident 300.0 MB → 310.0 MB (steady)"
    )
    up = {"metric": "up", "job": "agape-backend"}
    instances = prom_series(
        {**up, "instance": "api-1", "value": 1.0}, {**up, "instance": "api-2", "value": 0.0}
    )
    assert _said("high-error-rate/instances_up", instances) == (
        "1 of 2 backend instances up; down: api-2"
    )


def test_failed_webhooks_name_their_paystack_reference_and_order() -> None:
    listed = _said(
        "failed-webhook-processing/failed_webhooks", rows(WEBHOOK_ROW, ORPHAN_WEBHOOK_ROW)
    )
    assert listed == (
        f"2 failed webhooks, newest first: {UUID} (T1, order AG-1001 pending_payment); "
        f"{UUID} (no reference, no order found)"
    )


def test_paid_pending_orders_name_the_failed_webhook_to_reprocess() -> None:
    pending = {
        "rows": [
            {"payment_reference": "T0", "order_number": "AG-1", "failed_webhook_id": UUID},
            {"payment_reference": "T1", "order_number": "AG-2", "failed_webhook_id": None},
        ]
    }
    said = _said(
        "failed-webhook-processing/pending_orders_paid",
        verify_many([True, True]),
        pending_orders=pending,
    )
    assert said == (
        f"2 of 2 orders still in pending_payment are paid at Paystack: T0 (order AG-1, failed "
        f"webhook {UUID}: reprocess it), T1 (order AG-2: no failed webhook to reprocess, update "
        "the order)"
    )


def test_a_queue_that_does_not_exist_is_a_problem_not_an_empty_queue() -> None:
    backlog, delay = _step("queue-backlog/email_backlog"), _step("queue-backlog/invoice_delay")
    assert backlog.when is not None
    assert delay.when is not None
    gone = missing_queues("email", "invoice")
    assert evaluate(backlog.when, scope(gone)) is True
    assert evaluate(delay.when, scope(missing_queues("invoice"))) is True
    assert _said("queue-backlog/email_backlog", gone).startswith(
        "Email queue backlog: none to count, the queue does not exist; invoice queue backlog: "
        "none to count, the queue does not exist; email: no such queue in Redis"
    )


# --- monitors and re-checks -------------------------------------------------------------------

#: The seed's "Monitor ..." steps that keep watching: (every, for) at most, and results where the
#: monitor stops (recovered) and where it goes on, with the figure each shows.
MONITORS: dict[str, tuple[tuple[StepResult, Any], tuple[StepResult, Any]]] = {
    "database-failover/replication_lag": (
        (
            one_row(
                client_addr="10.0.0.6",
                state="streaming",
                sent_lsn="0/3",
                write_lsn="0/3",
                replay_lsn="0/3",
                sync_state="async",
                replay_lag=None,
                worst_lag_s=2.5,
            ),
            2.5,
        ),
        (
            one_row(
                client_addr="10.0.0.6",
                state="streaming",
                sent_lsn="0/9",
                write_lsn="0/9",
                replay_lsn="0/3",
                sync_state="async",
                replay_lag="00:00:42",
                worst_lag_s=42.0,
            ),
            42.0,
        ),
    ),
    "payment-gateway-outage/paystack_status_recheck": (
        (status_page("none", []), 0),
        (status_page("major", ["Card payments failing", "Delayed webhooks"]), 2),
    ),
    "high-error-rate/watch_error_rate": (
        (prom_range(0.07, 0.004, "falling"), 0.4),
        (prom_range(0.07, 0.0312, "falling"), 3.12),
    ),
    "high-error-rate/response_times": ((prom_value(0.42), 420), (prom_value(2.3), 2300)),
}


def test_the_seed_monitors_are_the_only_monitors() -> None:
    watched = {_key(r, s) for r, s in all_steps() if s.monitor is not None}
    assert watched == set(MONITORS)


@pytest.mark.parametrize("key", MONITORS)
def test_seed_monitor_watches_often_enough_for_long_enough(key: str) -> None:
    monitor = _step(key).monitor
    assert monitor is not None
    assert 30 <= monitor.every_s <= 120  # often enough to see a trend, not hammering
    assert 15 * 60 <= monitor.for_s <= 4 * 3600
    assert monitor.for_s / monitor.every_s >= 10  # enough points for a sparkline
    assert monitor.until is not None
    assert monitor.figure is not None


@pytest.mark.parametrize("key", MONITORS)
def test_seed_monitor_stops_when_recovered_and_shows_its_figure(key: str) -> None:
    step = _step(key)
    assert step.monitor is not None
    assert step.monitor.until is not None
    assert step.monitor.figure is not None
    (recovered, shown_then), (ongoing, shown_now) = MONITORS[key]
    assert bool(evaluate(step.monitor.until, scope(recovered))) is True
    assert bool(evaluate(step.monitor.until, scope(ongoing))) is False
    assert evaluate(step.monitor.figure, scope(recovered)) == pytest.approx(shown_then)
    assert evaluate(step.monitor.figure, scope(ongoing)) == pytest.approx(shown_now)
    if step.when is not None:  # recovered is the problem absent, and the other way round
        assert bool(evaluate(step.when, scope(recovered))) is False
        assert bool(evaluate(step.when, scope(ongoing))) is True


@pytest.mark.parametrize(
    ("key", "result"),
    [
        ("database-failover/replication_lag", rows()),  # no standby streaming: nothing caught up
        ("high-error-rate/watch_error_rate", prom_range(None, None, None)),  # nothing measured
        ("high-error-rate/response_times", prom_value(None)),
    ],
)
def test_seed_monitor_goes_on_without_a_figure_when_nothing_is_measured(
    key: str, result: StepResult
) -> None:
    monitor = _step(key).monitor
    assert monitor is not None
    assert monitor.until is not None
    assert monitor.figure is not None
    assert bool(evaluate(monitor.until, scope(result))) is False
    assert evaluate(monitor.figure, scope(result)) is None


def test_the_monitor_units_name_what_the_figure_counts() -> None:
    units = {key: monitor.unit for key in MONITORS if (monitor := _step(key).monitor)}
    assert units == {
        "database-failover/replication_lag": "s",
        "payment-gateway-outage/paystack_status_recheck": "",
        "high-error-rate/watch_error_rate": "%",
        "high-error-rate/response_times": "ms",
    }


#: Every runbook re-checks its detection while open, but security-incident: its reads count
#: over the last hour or day and come back clear as time passes, contained or not.
RECHECK = {
    "payment-gateway-outage": "5m",
    "failed-webhook-processing": "10m",
    "database-failover": "2m",
    "inventory-oversell": "5m",
    "security-incident": None,
    "high-error-rate": "5m",
    "queue-backlog": "5m",
}


@pytest.mark.parametrize(("runbook_id", "every"), RECHECK.items(), ids=list(RECHECK))
def test_recheck_is_set_where_its_checks_mean_the_incident_is_over(
    runbook_id: str, every: str | None
) -> None:
    loaded = runbook(runbook_id)
    assert loaded.recheck == every
    assert loaded.recheck_steps(), "every runbook has detection checks with a condition"
    assert all(s.alert is None and s.when is not None for s in loaded.recheck_steps())
