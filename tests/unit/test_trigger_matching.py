"""Alerts as they reach #alerts pick the right runbook, and unrelated alerts pick none.

Each alert is built the way its source arrives after normalisation: Alertmanager's default
template (a title of label values, no text, no key=value labels), Grafana (title plus labels),
Datadog (``Triggered: <monitor>``), and a person typing what they see.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from agape_ops.alerts.model import Alert
from agape_ops.runbooks.loader import load_runbook_file
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.triggers import ALERTNAME_IN_TITLE, match_alert

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"


@cache
def catalog() -> tuple[Runbook, ...]:
    return tuple(load_runbook_file(path)[0] for path in sorted(RUNBOOKS.glob("*.yaml")))


def alertmanager(title: str) -> Alert:
    """Return an alert as Alertmanager's default Slack template posts it."""
    return Alert(source="alertmanager", title=f"[FIRING:1] {title}")


def grafana(alertname: str, summary: str, *, service: str = "agape-backend") -> Alert:
    """Return a Grafana alert: its title, and the labels its text lists."""
    labels = {
        "alertname": alertname,
        "service": service,
        "severity": "critical",
        "env": "prod",
        "instance": "api-1",
    }
    listed = "\n".join(f" - {k} = {v}" for k, v in labels.items())
    return Alert(
        source="grafana",
        title=f"[FIRING:1] {alertname} (prod {service} critical)",
        text=f"**Firing**\n\nValue: A=1\nLabels:\n{listed}\nAnnotations:\n - summary = {summary}",
        labels=labels,
    )


def datadog(monitor: str, text: str = "") -> Alert:
    return Alert(source="datadog", title=f"Triggered: {monitor}", text=text)


def typed(text: str) -> Alert:
    """Return a message a person typed in #alerts."""
    return Alert(source="text", text=text)


MATCHES: list[tuple[str, Alert, str]] = [
    # payment-gateway-outage
    (
        "alertmanager-payment-gateway-outage",
        alertmanager("PaymentGatewayOutage agape-backend (prod api-1 critical)"),
        "payment-gateway-outage",
    ),
    (
        "grafana-payment-gateway-outage",
        grafana("PaymentGatewayOutage", "Paystack webhook failure rate above 5% for 15m"),
        "payment-gateway-outage",
    ),
    (
        "datadog-webhook-failure-rate",
        datadog("Paystack webhook failure rate above 5% on agape-backend"),
        "payment-gateway-outage",
    ),
    (
        "typed-paystack-down",
        typed("paystack is down, checkouts failing"),
        "payment-gateway-outage",
    ),
    (
        "typed-customers-cannot-pay",
        typed("customers can't pay, payment initialization failing since 14:05"),
        "payment-gateway-outage",
    ),
    # failed-webhook-processing
    (
        "alertmanager-webhook-processing-failed",
        alertmanager("WebhookProcessingFailed agape-backend (prod api-1 warning)"),
        "failed-webhook-processing",
    ),
    (
        "grafana-webhook-processing-failed",
        grafana("WebhookProcessingFailed", "12 Paystack webhooks in failed"),
        "failed-webhook-processing",
    ),
    (
        "datadog-webhooks-stuck",
        datadog("Paystack webhooks stuck in failed status"),
        "failed-webhook-processing",
    ),
    (
        "typed-paid-but-pending",
        typed("customer paid but her order is still pending_payment after 30 minutes"),
        "failed-webhook-processing",
    ),
    # database-failover
    (
        "alertmanager-postgres-down",
        alertmanager("PostgresDown agape-backend (prod db-1 critical)"),
        "database-failover",
    ),
    (
        "grafana-postgres-down",
        grafana("PostgresDown", "database health check failing for 2m"),
        "database-failover",
    ),
    (
        "datadog-database-health-check",
        datadog("Database health check failing on agape-backend"),
        "database-failover",
    ),
    (
        "typed-cannot-connect",
        typed("api can't connect to the database: ECONNREFUSED 10.0.0.5:5432"),
        "database-failover",
    ),
    # inventory-oversell
    (
        "alertmanager-negative-stock",
        alertmanager("NegativeStock agape-backend (prod api-1 warning)"),
        "inventory-oversell",
    ),
    (
        "grafana-negative-stock",
        grafana("NegativeStock", "a product variant's stock is below zero"),
        "inventory-oversell",
    ),
    (
        "datadog-negative-stock",
        datadog("Negative stock on product variants"),
        "inventory-oversell",
    ),
    (
        "typed-oversold",
        typed("we oversold the black tee in size M, three customers affected"),
        "inventory-oversell",
    ),
    # security-incident
    (
        "alertmanager-failed-login-spike",
        alertmanager("FailedLoginSpike agape-backend (prod api-1 critical)"),
        "security-incident",
    ),
    (
        "grafana-failed-login-spike",
        grafana("FailedLoginSpike", "300 failed logins from 203.0.113.9 in 10m"),
        "security-incident",
    ),
    (
        "datadog-brute-force",
        datadog("Brute force login attempts from 203.0.113.9"),
        "security-incident",
    ),
    (
        "typed-compromised-account",
        typed("suspicious admin activity in the audit log, looks like a compromised account"),
        "security-incident",
    ),
    # high-error-rate
    (
        "alertmanager-high-error-rate",
        alertmanager("HighErrorRate agape-backend (prod api-1 critical)"),
        "high-error-rate",
    ),
    (
        "grafana-high-error-rate",
        grafana("HighErrorRate", "more than 2% of requests answered 5xx for 10m"),
        "high-error-rate",
    ),
    (
        "datadog-5xx-error-rate",
        datadog("5xx error rate above 2% on agape-backend"),
        "high-error-rate",
    ),
    (
        "typed-lots-of-502s",
        typed("seeing lots of 502s on the storefront right now"),
        "high-error-rate",
    ),
    # queue-backlog
    (
        "alertmanager-email-queue-backlog",
        alertmanager("EmailQueueBacklog agape-backend (prod worker-1 warning)"),
        "queue-backlog",
    ),
    (
        "grafana-email-queue-backlog",
        grafana("EmailQueueBacklog", "email queue has 150 pending jobs"),
        "queue-backlog",
    ),
    (
        "datadog-email-queue-backlog",
        datadog("Email queue backlog above 100 jobs"),
        "queue-backlog",
    ),
    (
        "typed-not-getting-emails",
        typed("customers are not getting their order emails since this morning"),
        "queue-backlog",
    ),
]

UNRELATED: list[tuple[str, Alert]] = [
    (
        "alertmanager-kube-pod-crash-looping",
        Alert(
            source="alertmanager",
            title="[FIRING:2] KubePodCrashLooping payments (prod-eu-1 api kube-state-metrics "
            "critical)",
        ),
    ),
    (
        "grafana-high-request-latency-checkout-api",
        Alert(
            source="grafana",
            title="[FIRING:1] HighRequestLatency Payments (prod checkout-api critical)",
            text="**Firing**\n\nValue: A=2.734, C=1\nLabels:\n - alertname = HighRequestLatency"
            "\n - env = prod\n - grafana_folder = Payments\n - service = checkout-api\n"
            " - severity = critical\nAnnotations:\n - summary = p95 latency above 2s for 5m on "
            "checkout-api",
            labels={
                "alertname": "HighRequestLatency",
                "env": "prod",
                "grafana_folder": "Payments",
                "service": "checkout-api",
                "severity": "critical",
            },
        ),
    ),
    (
        "alertmanager-disk-filling-up",
        alertmanager(
            "NodeFilesystemSpaceFillingUp db-1 (prod /var/lib/postgresql node-exporter warning)"
        ),
    ),
    ("typed-disk-full", typed("disk full on db-1, /var/lib/postgresql at 97%")),
    (
        "datadog-certificate-expiring",
        datadog("TLS certificate for api.agapelooks.com expires in 7 days"),
    ),
    (
        "sentry-zero-division-error",
        Alert(
            source="sentry",
            title="ZeroDivisionError: division by zero",
            text="[payments-api] ZeroDivisionError: division by zero\nbilling.tax in compute_tax",
        ),
    ),
    (
        "uptimerobot-other-site-down",
        Alert(
            source="uptimerobot",
            text="Monitor is DOWN: checkout.example.com ( https://checkout.example.com/healthz ) "
            "- Reason: HTTP 503 - Service Unavailable",
        ),
    ),
    (
        "alertmanager-redis-memory-high",
        alertmanager("RedisMemoryHigh cache (prod redis-1 warning)"),
    ),
    ("typed-deploy-finished", typed("deploy of v2.14.0 finished, all green")),
]


def test_catalog_holds_the_seven_runbooks() -> None:
    assert len(catalog()) == 7


@pytest.mark.parametrize(
    ("alert", "expected"),
    [(alert, expected) for _, alert, expected in MATCHES],
    ids=[name for name, _, _ in MATCHES],
)
def test_alert_picks_its_runbook(alert: Alert, expected: str) -> None:
    match = match_alert(alert, catalog())
    assert match is not None, f"no runbook matched {alert.title or alert.text!r}"
    assert match.runbook.id == expected, match.reason
    assert match.reason


@pytest.mark.parametrize(
    "alert", [alert for _, alert in UNRELATED], ids=[name for name, _ in UNRELATED]
)
def test_unrelated_alert_picks_no_runbook(alert: Alert) -> None:
    match = match_alert(alert, catalog())
    assert match is None, f"{match.runbook.id} matched: {match.reason}" if match else ""


def test_every_runbook_has_at_least_three_matching_alerts() -> None:
    counts = {rb.id: sum(1 for _, _, expected in MATCHES if expected == rb.id) for rb in catalog()}
    assert min(counts.values()) >= 3, counts


@pytest.mark.parametrize("runbook", catalog(), ids=[rb.id for rb in catalog()])
def test_alertmanager_title_naming_the_rule_outweighs_prose(runbook: Runbook) -> None:
    """The alert rule's name in an Alertmanager title wins over any text regex."""
    names = [t.alertname for t in runbook.triggers if t.alertname]
    assert len(names) == 1
    match = match_alert(alertmanager(f"{names[0]} agape-backend (prod api-1 critical)"), catalog())
    assert match is not None
    assert match.runbook.id == runbook.id
    assert match.score >= ALERTNAME_IN_TITLE
