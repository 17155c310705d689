"""Every item of the seed runbooks is carried by a step of its YAML runbook.

The seed (tests/fixtures/seed-runbooks.md) is parsed into items: bullets, numbered items, and
the commands and comments of its code blocks, each under its runbook (``## N. Title``) and
section (``### Section``). CARRIERS names, for each item, the step that carries it. A seed item
without a carrier, a carrier without a seed item, a carrier naming a missing step, or an item
that must be automated but sits in a manual checklist fails. The Emergency Contacts and
Monitoring Dashboards sections are checked against team.yaml in test_runbooks_load.py.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from agape_ops.runbooks.loader import load_runbook_file
from agape_ops.runbooks.model import Runbook, Step

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "tests" / "fixtures" / "seed-runbooks.md"
RUNBOOK_IDS = {
    1: "payment-gateway-outage",
    2: "failed-webhook-processing",
    3: "database-failover",
    4: "inventory-oversell",
    5: "security-incident",
    6: "high-error-rate",
    7: "queue-backlog",
}


@dataclass(frozen=True)
class SeedItem:
    """One thing the seed asks for: a bullet or numbered item, a command, or a code comment."""

    runbook: str
    section: str
    kind: str  # "item", "command" or "comment"
    text: str


def normalise(text: str) -> str:
    """Collapse runs of whitespace so multi-line commands compare as one line."""
    return " ".join(text.split())


def _open_quote(text: str) -> bool:
    quote: str | None = None
    for char in text:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
    return quote is not None


def split_block(lines: list[str], language: str) -> list[tuple[str, str]]:
    """Split a code block into its comments and its commands (continuations joined)."""
    found: list[tuple[str, str]] = []
    current: list[str] = []
    sql = language == "sql"
    comment = "--" if sql else "#"
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if not current and stripped.startswith(comment):
            found.append(("comment", stripped[len(comment) :].strip()))
            continue
        current.append(stripped if sql else stripped.removesuffix("\\").strip())
        joined = " ".join(current)
        done = stripped.endswith(";") if sql else not stripped.endswith("\\")
        if done and (sql or not _open_quote(joined)):
            found.append(("command", normalise(joined)))
            current = []
    if current:
        found.append(("command", normalise(" ".join(current))))
    return found


def parse_seed(text: str) -> list[SeedItem]:
    """Return every item of every section of the seven numbered runbooks, in file order."""
    items: list[SeedItem] = []
    runbook: str | None = None
    section: str | None = None
    block: list[str] | None = None
    language = ""
    for line in text.splitlines():
        stripped = line.strip()
        if block is not None:
            if stripped.startswith("```"):
                assert runbook is not None
                assert section is not None
                for kind, found in split_block(block, language):
                    items.append(SeedItem(runbook, section, kind, found))
                block = None
            else:
                block.append(line)
            continue
        if stripped.startswith("```"):
            if runbook is not None:
                block, language = [], stripped[3:]
            continue
        if heading := re.match(r"^## (\d+)\. ", line):
            runbook, section = RUNBOOK_IDS[int(heading[1])], None
        elif line.startswith("## "):
            runbook = section = None
        elif subheading := re.match(r"^### (.+)$", line):
            section = subheading[1].strip()
        elif runbook and section and (item := re.match(r"^\s*(?:\d+\.|-+) (.+)$", line)):
            items.append(SeedItem(runbook, section, "item", item[1].replace("**", "").strip()))
    return items


@cache
def seed_items() -> tuple[SeedItem, ...]:
    return tuple(parse_seed(SEED.read_text(encoding="utf-8")))


@cache
def runbook(runbook_id: str) -> Runbook:
    loaded, _ = load_runbook_file(ROOT / "runbooks" / f"{runbook_id}.yaml")
    return loaded


@dataclass(frozen=True)
class Carrier:
    """The step that carries one seed item.

    ``contains`` is, for a manual step, a distinguishing substring of its title or of one of its
    items (text or command); for an automated step, a substring of its call (SQL, action, URL).
    ``automated`` marks items that must not be left to a manual checklist.
    """

    runbook: str
    section: str
    item: str
    step: str
    contains: str | None = None
    automated: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.runbook, self.section, normalise(self.item))


PAY = "payment-gateway-outage"
WEB = "failed-webhook-processing"
DB = "database-failover"
INV = "inventory-oversell"
SEC = "security-incident"
ERR = "high-error-rate"
QUE = "queue-backlog"
IA = "Immediate Actions"

CARRIERS: list[Carrier] = [
    # 1. Payment Gateway Outage
    Carrier(PAY, "Detection", "Webhook failure rate > 5% in 15 minutes", "webhook_failure_rate",
            "interval '15 minutes'", automated=True),
    Carrier(PAY, "Detection", "Paystack status page shows incident", "paystack_status",
            "status_page", automated=True),
    Carrier(PAY, "Detection", "Multiple payment initialization failures", "init_failures",
            "status = 'init_failed'", automated=True),
    Carrier(PAY, IA, "Enable Maintenance Banner", "maintenance_banner", "maintenance banner"),
    Carrier(PAY, IA, "Update environment variable", "maintenance_banner",
            "update environment variable"),
    Carrier(PAY, IA, "export MAINTENANCE_MODE=true", "maintenance_banner", "MAINTENANCE_MODE"),
    Carrier(PAY, IA, "Restart application", "maintenance_banner", "restart the application"),
    Carrier(PAY, IA, "pm2 restart agape-backend", "maintenance_banner", "pm2 restart"),
    Carrier(PAY, IA, "Pause Marketing Campaigns", "pause_marketing", "marketing campaigns"),
    Carrier(PAY, IA, "Disable paid ads", "pause_marketing", "Disable paid ads"),
    Carrier(PAY, IA, "Update website banner", "pause_marketing", "Update website banner"),
    Carrier(PAY, IA, "Send notification to marketing team", "pause_marketing",
            "notification to marketing team"),
    Carrier(PAY, IA, "Switch to Manual Order Processing", "manual_order_processing",
            "manual order processing"),
    Carrier(PAY, IA, "Document orders in spreadsheet", "manual_order_processing", "spreadsheet"),
    Carrier(PAY, IA, "Process payments when gateway restored", "manual_order_processing",
            "Process payments when gateway restored"),
    Carrier(PAY, IA, "Send confirmation emails manually", "manual_order_processing",
            "confirmation emails manually"),
    Carrier(PAY, IA, "Customer Communication", "customer_communication",
            "customer communication"),
    Carrier(PAY, IA, "Post status update on social media", "customer_communication",
            "social media"),
    Carrier(PAY, IA, "Send email to users with pending orders", "customer_communication",
            "users with pending orders"),
    Carrier(PAY, IA, "Update website with estimated resolution", "customer_communication",
            "estimated resolution"),
    Carrier(PAY, "Resolution Steps", "Monitor Paystack status page", "paystack_status_recheck",
            "status_page", automated=True),
    Carrier(PAY, "Resolution Steps", "Test payment flow in sandbox", "sandbox_payment_test",
            "Test payment flow in sandbox"),
    Carrier(PAY, "Resolution Steps", "Enable production traffic gradually", "enable_traffic",
            "production traffic gradually"),
    Carrier(PAY, "Resolution Steps", "Process queued orders", "process_queued_orders",
            "Process queued orders"),
    Carrier(PAY, "Resolution Steps", "Send apology emails with discount codes",
            "apology_emails", "discount codes"),
    Carrier(PAY, "Post-Incident", "Review logs for root cause", "post_incident_review",
            "root cause"),
    Carrier(PAY, "Post-Incident", "Update monitoring thresholds", "post_incident_review",
            "monitoring thresholds"),
    Carrier(PAY, "Post-Incident", "Document lessons learned", "post_incident_review",
            "lessons learned"),
    Carrier(PAY, "Post-Incident", "Conduct team retrospective", "post_incident_review",
            "retrospective"),
    # 2. Failed Webhook Processing
    Carrier(WEB, "Detection", "Webhooks stuck in `failed` status", "failed_webhook_count",
            "WHERE status = 'failed'", automated=True),
    Carrier(WEB, "Detection",
            "Orders remain in `pending_payment` after successful Paystack payment",
            "pending_orders_paid", "verify_many", automated=True),
    Carrier(WEB, "Detection", "Customer complaints about delayed confirmations",
            "customer_complaints", "delayed confirmations"),
    Carrier(WEB, "Diagnosis", "Check webhook logs", "webhook_logs", "Check webhook logs"),
    Carrier(WEB, "Diagnosis", 'docker-compose logs app | grep "webhook"', "webhook_logs",
            'grep "webhook"'),
    Carrier(WEB, "Diagnosis", "Query failed webhooks", "failed_webhooks", "FROM webhook_events",
            automated=True),
    Carrier(WEB, "Diagnosis",
            "psql $DATABASE_URL -c \" SELECT id, event_type, status, error_message, retry_count "
            "FROM webhook_events WHERE status = 'failed' ORDER BY created_at DESC LIMIT 20; \"",
            "failed_webhooks",
            "w.event_type, w.status, w.error_message, w.retry_count FROM webhook_events w",
            automated=True),
    Carrier(WEB, "Recovery Actions", "Manual Reprocessing", "reprocess_webhook",
            "reprocess_webhook", automated=True),
    Carrier(WEB, "Recovery Actions", "Identify failed webhooks", "failed_webhooks",
            "status = 'failed'", automated=True),
    Carrier(WEB, "Recovery Actions", "Trigger manual reprocessing via admin endpoint",
            "reprocess_webhook", "reprocess_webhook", automated=True),
    Carrier(WEB, "Recovery Actions",
            "curl -X POST https://api.agapelooks.com/api/v1/admin/webhooks/reprocess "
            "-H \"Authorization: Bearer $ADMIN_TOKEN\" -d '{\"webhookId\": \"webhook-id-here\"}'",
            "reprocess_webhook", "{{ inputs.webhook_id }}", automated=True),
    Carrier(WEB, "Recovery Actions", "Verify Payment Status", "verify_payment", "verify",
            automated=True),
    Carrier(WEB, "Recovery Actions", "Check Paystack directly", "verify_payment", "verify",
            automated=True),
    Carrier(WEB, "Recovery Actions",
            "curl https://api.paystack.co/transaction/verify/:reference "
            '-H "Authorization: Bearer $PAYSTACK_SECRET_KEY"',
            "verify_payment", "{{ inputs.reference }}", automated=True),
    Carrier(WEB, "Recovery Actions", "Manual Order Update", "manual_order_update",
            "Manual order update"),
    Carrier(WEB, "Recovery Actions", "Update order status in database", "manual_order_update",
            "Update order status in database"),
    Carrier(WEB, "Recovery Actions", "Send confirmation emails", "manual_order_update",
            "Send confirmation emails"),
    Carrier(WEB, "Recovery Actions", "Generate invoices", "manual_order_update",
            "Generate invoices"),
    # 3. Database Failover
    Carrier(DB, "Detection", "Application cannot connect to database", "db_reachable",
            "SELECT now()", automated=True),
    Carrier(DB, "Detection", "High connection timeout errors", "connection_timeouts",
            "connection timeout errors"),
    Carrier(DB, "Detection", "Database health check fails", "backend_health", "health",
            automated=True),
    Carrier(DB, IA, "Promote Replica", "promote_replica", "Promote the replica"),
    Carrier(DB, IA, "For managed databases (Render/Railway)", "promote_replica",
            "managed databases (Render/Railway)"),
    Carrier(DB, IA, "Promote read replica via dashboard", "promote_replica",
            "promote read replica via dashboard"),
    Carrier(DB, IA, "For self-hosted", "promote_replica", "For self-hosted"),
    Carrier(DB, IA, "pg_ctl promote -D /var/lib/postgresql/data", "promote_replica",
            "pg_ctl promote"),
    Carrier(DB, IA, "Update Connection String", "update_connection_string",
            "connection string"),
    Carrier(DB, IA, "Update environment variable", "update_connection_string",
            "Update environment variable"),
    Carrier(DB, IA, "export DATABASE_URL=new-primary-connection-string",
            "update_connection_string", "DATABASE_URL"),
    Carrier(DB, IA, "Restart application", "update_connection_string", "restart application"),
    Carrier(DB, IA, "docker-compose restart app", "update_connection_string",
            "docker-compose restart app"),
    Carrier(DB, IA, "Verify Connectivity", "verify_database", "SELECT now()", automated=True),
    Carrier(DB, IA, "Test connection", "verify_database", "SELECT now()", automated=True),
    Carrier(DB, IA, 'psql $DATABASE_URL -c "SELECT NOW();"', "verify_database",
            "SELECT now()", automated=True),
    Carrier(DB, IA, "Check application health", "verify_app_health", "health", automated=True),
    Carrier(DB, IA, "curl https://api.agapelooks.com/healthz", "verify_app_health", "health",
            automated=True),
    Carrier(DB, IA, "Monitor Replication Lag", "replication_lag", "FROM pg_stat_replication",
            automated=True),
    Carrier(DB, IA,
            "SELECT client_addr, state, sent_lsn, write_lsn, replay_lsn, sync_state "
            "FROM pg_stat_replication;",
            "replication_lag", "client_addr, state, sent_lsn, write_lsn, replay_lsn, sync_state",
            automated=True),
    Carrier(DB, "Post-Failover", "Investigate primary failure cause", "post_failover",
            "primary failure cause"),
    Carrier(DB, "Post-Failover", "Rebuild failed primary as new replica", "post_failover",
            "Rebuild failed primary"),
    Carrier(DB, "Post-Failover", "Update monitoring alerts", "post_failover",
            "Update monitoring alerts"),
    Carrier(DB, "Post-Failover", "Document timeline", "post_failover", "Document timeline"),
    # 4. Inventory Oversell
    Carrier(INV, "Detection", "Stock goes negative in database", "negative_stock",
            "stock < 0", automated=True),
    Carrier(INV, "Detection", "Customer complaints about unavailable products",
            "complaints_and_errors", "unavailable products"),
    Carrier(INV, "Detection", "Concurrent order errors", "complaints_and_errors",
            "concurrent order errors"),
    Carrier(INV, IA, "Identify Affected Orders", "affected_orders", "JOIN order_items",
            automated=True),
    Carrier(INV, IA,
            "SELECT o.id, o.order_number, o.status, oi.product_id, oi.quantity FROM orders o "
            "JOIN order_items oi ON o.id = oi.order_id JOIN product_variants pv "
            "ON oi.variant_id = pv.id WHERE pv.stock < 0;",
            "affected_orders",
            "SELECT o.id, o.order_number, o.status, oi.product_id, oi.quantity FROM orders o "
            "JOIN order_items oi ON o.id = oi.order_id JOIN product_variants pv "
            "ON oi.variant_id = pv.id WHERE pv.stock < 0", automated=True),
    Carrier(INV, IA, "Contact Customers", "contact_customers", "Contact customers"),
    Carrier(INV, IA, "Email affected customers immediately", "contact_customers",
            "Email affected customers"),
    Carrier(INV, IA, "Offer refund or alternative product", "contact_customers",
            "refund or alternative product"),
    Carrier(INV, IA, "Provide discount for inconvenience", "contact_customers",
            "discount for inconvenience"),
    Carrier(INV, IA, "Correct Stock Levels", "correct_stock", "SET stock = 0", automated=True),
    Carrier(INV, IA, "UPDATE product_variants SET stock = 0 WHERE stock < 0;", "correct_stock",
            "UPDATE product_variants SET stock = 0, version = version + 1, updated_at = now() "
            "WHERE stock < 0", automated=True),
    Carrier(INV, IA, "Review Concurrency Issues", "review_concurrency",
            "Review concurrency issues"),
    Carrier(INV, IA, "Check optimistic locking implementation", "review_concurrency",
            "optimistic locking"),
    Carrier(INV, IA, "Review recent deployments", "review_concurrency",
            "Review recent deployments"),
    Carrier(INV, IA, "Analyze transaction logs", "review_concurrency",
            "Analyze transaction logs"),
    Carrier(INV, "Prevention", "Enable strict inventory checks", "prevention",
            "strict inventory checks"),
    Carrier(INV, "Prevention", "Increase reservation buffer", "prevention",
            "reservation buffer"),
    Carrier(INV, "Prevention", "Add monitoring alerts for negative stock", "prevention",
            "monitoring alerts for negative stock"),
    Carrier(INV, "Prevention", "Implement additional safeguards", "prevention",
            "additional safeguards"),
    # 5. Security Incident
    Carrier(SEC, "Detection", "Unusual login patterns", "unusual_logins", "FROM sessions",
            automated=True),
    Carrier(SEC, "Detection", "Multiple failed authentication attempts", "failed_logins_by_ip",
            "action = 'auth.login_failed'", automated=True),
    Carrier(SEC, "Detection", "Suspicious admin actions in audit logs", "admin_actions",
            "admin.%", automated=True),
    Carrier(SEC, "Detection", "External security alert", "external_alert",
            "external security alert"),
    Carrier(SEC, IA, "Isolate Affected Services", "isolate_services",
            "Isolate affected services"),
    Carrier(SEC, IA, "Disable affected endpoints", "isolate_services",
            "Disable affected endpoints"),
    Carrier(SEC, IA, "Block suspicious IP addresses via firewall", "isolate_services",
            "Block suspicious IP addresses via firewall"),
    Carrier(SEC, IA, "For severe incidents, enable maintenance mode", "isolate_services",
            "severe incidents, enable maintenance mode"),
    Carrier(SEC, IA, "export MAINTENANCE_MODE=true", "isolate_services", "MAINTENANCE_MODE"),
    Carrier(SEC, IA, "pm2 restart agape-backend", "isolate_services", "pm2 restart"),
    Carrier(SEC, IA, "Revoke Compromised Credentials", "revoke_sessions", "UPDATE sessions",
            automated=True),
    Carrier(SEC, IA, "Revoke all sessions for affected user", "revoke_sessions",
            "SET revoked_at = now()", automated=True),
    Carrier(SEC, IA,
            "UPDATE sessions SET revoked_at = NOW() WHERE user_id = 'compromised-user-id';",
            "revoke_sessions",
            "UPDATE sessions SET revoked_at = now() WHERE user_id = %(user_id)s", automated=True),
    Carrier(SEC, IA, "Force password reset", "force_password_reset", "password_hash",
            automated=True),
    Carrier(SEC, IA,
            "UPDATE users SET password_hash = 'REVOKED' WHERE id = 'compromised-user-id';",
            "force_password_reset",
            "UPDATE users SET password_hash = 'REVOKED' WHERE id = %(user_id)s", automated=True),
    Carrier(SEC, IA, "Rotate Secrets", "rotate_secrets", "Rotate secrets"),
    Carrier(SEC, IA, "Generate new JWT keys", "rotate_secrets", "Generate new JWT keys"),
    Carrier(SEC, IA, "ssh-keygen -t rsa -b 4096 -m PEM -f new-jwt-private.pem", "rotate_secrets",
            "ssh-keygen"),
    Carrier(SEC, IA, "Update API keys", "rotate_secrets", "Update API keys"),
    Carrier(SEC, IA, "- Paystack", "rotate_secrets", "Paystack"),
    Carrier(SEC, IA, "- Cloudinary", "rotate_secrets", "Cloudinary"),
    Carrier(SEC, IA, "- Resend", "rotate_secrets", "Resend"),
    Carrier(SEC, IA, "Deploy with new secrets", "rotate_secrets", "Deploy with new secrets"),
    Carrier(SEC, IA, "Preserve Evidence", "preserve_evidence", "Preserve evidence"),
    Carrier(SEC, IA, "Export audit logs", "export_audit_log", "FROM audit_logs",
            automated=True),
    Carrier(SEC, IA, "Save database snapshot", "preserve_evidence", "database snapshot"),
    Carrier(SEC, IA, "Capture network logs", "preserve_evidence", "network logs"),
    Carrier(SEC, IA, "Document timeline", "preserve_evidence", "Document timeline"),
    Carrier(SEC, IA, "Notify Stakeholders", "notify_stakeholders", "Notify stakeholders"),
    Carrier(SEC, IA, "Inform legal team", "notify_stakeholders", "legal team"),
    Carrier(SEC, IA, "Notify compliance officer", "notify_stakeholders", "compliance officer"),
    Carrier(SEC, IA, "Prepare user communication", "notify_stakeholders", "user communication"),
    Carrier(SEC, IA, "Contact affected customers if data breach", "notify_stakeholders",
            "if data breach"),
    Carrier(SEC, "Investigation", "Review audit logs", "audit_log_review", "FROM audit_logs",
            automated=True),
    Carrier(SEC, "Investigation", "Analyze access patterns", "access_patterns",
            "FROM sessions", automated=True),
    Carrier(SEC, "Investigation", "Identify entry point", "investigation", "entry point"),
    Carrier(SEC, "Investigation", "Assess data exposure", "investigation", "data exposure"),
    Carrier(SEC, "Investigation", "Document findings", "investigation", "Document findings"),
    Carrier(SEC, "Recovery", "Deploy security patches", "security_recovery", "security patches"),
    Carrier(SEC, "Recovery", "Update firewall rules", "security_recovery", "firewall rules"),
    Carrier(SEC, "Recovery", "Enable additional monitoring", "security_recovery",
            "additional monitoring"),
    Carrier(SEC, "Recovery", "Conduct security audit", "security_recovery", "security audit"),
    Carrier(SEC, "Recovery", "Train team on incident", "security_recovery", "Train team"),
    # 6. High Error Rate (5xx)
    Carrier(ERR, "Detection", "Error rate > 2% sustained", "error_rate_sustained",
            'status=~"5.."', automated=True),
    Carrier(ERR, "Detection", "Multiple customer complaints", "customer_complaints",
            "multiple customer complaints"),
    Carrier(ERR, "Detection", "Monitoring alert triggered", "error_rate",
            'sum(rate(http_requests_total{service="agape-backend",status=~"5.."}[5m])) / '
            'sum(rate(http_requests_total{service="agape-backend"}[5m]))', automated=True),
    Carrier(ERR, "Diagnosis", "Check application logs", "logs_and_resources",
            "Check application logs"),
    Carrier(ERR, "Diagnosis", 'docker-compose logs --tail=100 app | grep "ERROR"',
            "logs_and_resources", 'grep "ERROR"'),
    Carrier(ERR, "Diagnosis", "Check error distribution", "error_distribution",
            "sum by (route, status)", automated=True),
    Carrier(ERR, "Diagnosis", 'docker-compose logs app | grep "500\\|502\\|503" | wc -l',
            "logs_and_resources", "wc -l"),
    Carrier(ERR, "Diagnosis", "Monitor resource usage", "logs_and_resources",
            "Monitor resource usage"),
    Carrier(ERR, "Diagnosis", "docker stats agape_app", "logs_and_resources", "docker stats"),
    Carrier(ERR, "Actions", "Identify Root Cause", "connection_pool", "pg_stat_activity",
            automated=True),
    Carrier(ERR, "Actions", "Database connection pool exhaustion?", "connection_pool",
            "max_connections", automated=True),
    Carrier(ERR, "Actions", "Redis unavailable?", "redis_ping", "ping", automated=True),
    Carrier(ERR, "Actions", "External service timeout?", "paystack_status",
            "/api/v2/status.json", automated=True),
    Carrier(ERR, "Actions", "Memory leak?", "memory_leak", "process_resident_memory_bytes",
            automated=True),
    Carrier(ERR, "Actions", "Quick Fixes", "restart_app", "restart", automated=True),
    Carrier(ERR, "Actions", "Restart application", "restart_app", "restart", automated=True),
    Carrier(ERR, "Actions", "docker-compose restart app", "restart_app", "docker-compose",
            automated=True),
    Carrier(ERR, "Actions", "Scale horizontally if available", "scale_and_pools",
            "Scale horizontally if available"),
    Carrier(ERR, "Actions", "Railway/Render: Increase instance count", "scale_and_pools",
            "Railway/Render: increase instance count"),
    Carrier(ERR, "Actions", "Increase connection pools if needed", "scale_and_pools",
            "Increase connection pools if needed"),
    Carrier(ERR, "Actions", "export DB_POOL_MAX=20", "scale_and_pools", "DB_POOL_MAX=20"),
    Carrier(ERR, "Actions", "pm2 restart agape-backend", "scale_and_pools", "pm2 restart"),
    Carrier(ERR, "Actions", "Monitor Recovery", "watch_error_rate", "http_requests_total",
            automated=True),
    Carrier(ERR, "Actions", "Watch error rate decrease", "watch_error_rate",
            'status=~"5.."', automated=True),
    Carrier(ERR, "Actions", "Check response times", "response_times",
            "histogram_quantile(0.95", automated=True),
    Carrier(ERR, "Actions", "Verify all endpoints responding", "monitor_error_rate",
            "Verify all endpoints responding"),
    # 7. Queue Backlog
    Carrier(QUE, "Detection", "Email queue > 100 pending jobs", "email_backlog", "queue_stats",
            automated=True),
    Carrier(QUE, "Detection", "Invoice generation delayed", "invoice_delay", "invoice",
            automated=True),
    Carrier(QUE, "Detection", "Customer complaints about missing emails", "customer_complaints",
            "missing emails"),
    Carrier(QUE, "Actions", "Check queue statistics", "admin_queue_stats", "queue_stats",
            automated=True),
    Carrier(QUE, "Actions",
            "curl https://api.agapewone.com/api/v1/admin/queues/stats "
            '-H "Authorization: Bearer $ADMIN_TOKEN"',
            "admin_queue_stats", "queue_stats", automated=True),
    Carrier(QUE, "Actions", "Scale workers", "scale_workers", "Scale workers"),
    Carrier(QUE, "Actions", "export QUEUE_CONCURRENCY=10", "scale_workers",
            "QUEUE_CONCURRENCY=10"),
    Carrier(QUE, "Actions", "pm2 restart queue-workers", "scale_workers",
            "pm2 restart queue-workers"),
    Carrier(QUE, "Actions", "Manually process stuck jobs", "process_email_queue",
            "process-queue.js", automated=True),
    Carrier(QUE, "Actions", "node scripts/process-queue.js email", "process_email_queue",
            "process-queue.js", automated=True),
    Carrier(QUE, "Actions", "Clear dead jobs", "clear_failed_jobs", "clear-failed-jobs.js",
            automated=True),
    Carrier(QUE, "Actions", "node scripts/clear-failed-jobs.js", "clear_failed_jobs",
            "clear-failed-jobs.js", automated=True),
]  # fmt: skip


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _manual_texts(step: Step) -> list[str]:
    assert step.manual is not None
    texts = [step.title]
    for item in step.manual.items:
        texts.append(item.text)
        if item.command:
            texts.append(item.command)
    return texts


def _folded(text: str) -> str:
    return normalise(text).lower()


def _seed_item(carrier: Carrier) -> SeedItem:
    return next(i for i in seed_items() if (i.runbook, i.section, normalise(i.text)) == carrier.key)


def test_seed_parser_finds_every_section_of_every_runbook() -> None:
    """Guard the parser itself: each runbook's sections and a few known items are found."""
    sections: dict[str, list[str]] = {}
    for item in seed_items():
        names = sections.setdefault(item.runbook, [])
        if item.section not in names:
            names.append(item.section)
    assert sections == {
        PAY: ["Detection", IA, "Resolution Steps", "Post-Incident"],
        WEB: ["Detection", "Diagnosis", "Recovery Actions"],
        DB: ["Detection", IA, "Post-Failover"],
        INV: ["Detection", IA, "Prevention"],
        SEC: ["Detection", IA, "Investigation", "Recovery"],
        ERR: ["Detection", "Diagnosis", "Actions"],
        QUE: ["Detection", "Actions"],
    }
    assert Counter(item.kind for item in seed_items()) == {
        "item": 105,
        "comment": 36,
        "command": 30,
    }
    assert SeedItem(QUE, "Actions", "command", "node scripts/clear-failed-jobs.js") in seed_items()


def test_seed_items_are_distinct_within_their_section() -> None:
    counts = Counter((i.runbook, i.section, normalise(i.text)) for i in seed_items())
    assert [key for key, n in counts.items() if n > 1] == []


def test_every_seed_item_has_a_carrier() -> None:
    carried = {c.key for c in CARRIERS}
    missing = [i for i in seed_items() if (i.runbook, i.section, normalise(i.text)) not in carried]
    assert missing == [], "seed items no step carries:\n" + "\n".join(map(str, missing))


def test_every_carrier_names_a_seed_item_once() -> None:
    seed = {(i.runbook, i.section, normalise(i.text)) for i in seed_items()}
    assert [c.key for c in CARRIERS if c.key not in seed] == []
    counts = Counter(c.key for c in CARRIERS)
    assert [key for key, n in counts.items() if n > 1] == []


@pytest.mark.parametrize(
    "carrier", CARRIERS, ids=[f"{c.runbook}:{c.step}:{c.item[:40]}" for c in CARRIERS]
)
def test_carrier_step_holds_the_seed_item(carrier: Carrier) -> None:
    step = runbook(carrier.runbook).step(carrier.step)
    assert step is not None, f"{carrier.runbook} has no step {carrier.step}"
    seed = _seed_item(carrier)
    if carrier.automated:
        assert step.manual is None, f"{carrier.item!r} must be automated, not a checklist item"
    if step.manual is not None:
        assert carrier.contains, "a manual carrier names a substring of its item"
        assert any(_folded(carrier.contains) in _folded(t) for t in _manual_texts(step))
        if seed.kind == "command":
            commands = [_folded(i.command or "") for i in step.manual.items]
            assert any(_folded(seed.text) in c for c in commands), (
                f"the seed's command {seed.text!r} is not among the step's commands to copy"
            )
        return
    if step.shell is not None and seed.kind == "command":
        assert " ".join(step.shell.command) == seed.text
    if carrier.contains is not None:
        call = _folded(" ".join(_strings(step.call.model_dump(mode="json", by_alias=True))))
        assert _folded(carrier.contains) in call, f"{carrier.contains!r} not in the step's call"
