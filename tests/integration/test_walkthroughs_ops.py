"""The walkthroughs of the security, error-rate and queue runbooks, and every button's name.

Same harness as test_walkthroughs.py: the real bot over seeded PostgreSQL and Redis (BullMQ v5
keys), Paystack, the admin API and Prometheus faked with respx. Shell steps run stand-ins for
``docker-compose`` and ``node`` put first on PATH, which record how they were called.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import walkthrough_http
import walkthrough_seed
from fake_prometheus import Series, promql
from walkthrough_http import ADMIN_TOKEN, PROMETHEUS, FakeBackend
from walkthrough_seed import (
    APPROVER,
    REPO,
    RESPONDER,
    SECOND_APPROVER,
    STRANGER,
    firing,
    open_run,
    running_bot,
    scalar,
    seed,
    settings,
)

from agape_ops.bootstrap import Container
from agape_ops.demo.queues import bullmq_queue
from agape_ops.engine.commands import StartRun
from agape_ops.engine.headline import Rank
from agape_ops.engine.records import StepState
from agape_ops.runbooks.catalog import load_catalog
from agape_ops.runbooks.model import Risk

pytestmark = pytest.mark.integration

fake = walkthrough_http.fake
bot = walkthrough_seed.bot

RESPONDERS = "U_APPROVER_1, U_APPROVER_2, U_RESPONDER"
APPROVERS = "U_APPROVER_1, U_APPROVER_2"

VICTIM = "8d3c2f1a-6b7e-4c9d-a0b1-2e3f4a5b6c7d"
STAFF = "5b0f2a8e-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
ADMIN_USER = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
BYSTANDER = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
JOB = "agape-backend"
RATIO = promql("high-error-rate", "error_rate")


# --- stand-ins for the backend's commands -----------------------------------------------------


@dataclass(frozen=True)
class Programs:
    """Where the stand-in programs live and what they record."""

    bin: Path

    def calls(self, program: str) -> list[str]:
        log = self.bin / f"{program}.calls"
        return log.read_text().splitlines() if log.exists() else []

    def fail_next(self, program: str) -> None:
        (self.bin / f"{program}.fail").touch()


STAND_IN = """#!/bin/sh
echo "$*" >> "{bin}/{name}.calls"
if [ -f "{bin}/{name}.fail" ]; then
  rm -f "{bin}/{name}.fail"
  echo "ERROR: No such service: app" >&2
  exit 1
fi
echo "{name} $*: done"
"""


@pytest.fixture
def programs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Programs:
    """Put recording stand-ins for docker-compose and node first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("docker-compose", "node"):
        script = folder / name
        script.write_text(STAND_IN.format(bin=folder, name=name))
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return Programs(folder)


@pytest.fixture
async def shell_bot(
    backend_db: str, redis_db: str, tmp_path: Path, fake: FakeBackend, programs: Programs
) -> AsyncIterator[Container]:
    """The real bot with shell steps enabled (OPS_ALLOW_SHELL=true)."""
    config = settings(backend_db, redis_db, tmp_path, ops_allow_shell=True)
    async with running_bot(config) as container:
        yield container


# --- 5. Security Incident ---------------------------------------------------------------------

INTRUSION = [
    "INSERT INTO users (id, email, name, role, password_hash) VALUES"
    f" ('{VICTIM}', 'jane@example.com', 'Jane', 'customer', 'h1'),"
    f" ('{STAFF}', 'ops@agapelooks.com', 'Ops', 'staff', 'h2'),"
    f" ('{ADMIN_USER}', 'admin@agapelooks.com', 'Admin', 'admin', 'h3'),"
    f" ('{BYSTANDER}', 'bola@example.com', 'Bola', 'customer', 'h4')",
    # Jane's account signed in from five addresses in the last hour; Bola from one
    "INSERT INTO sessions (user_id, ip, user_agent, created_at, expires_at)"
    f" SELECT '{VICTIM}', ('41.58.12.' || n)::inet, 'Mozilla/5.0',"
    " now() - n * interval '5 minutes', now() + interval '1 day' FROM generate_series(1, 5) n",
    "INSERT INTO sessions (user_id, ip, created_at, expires_at) VALUES"
    f" ('{BYSTANDER}', '102.89.1.1', now() - interval '2 hours', now() + interval '1 day')",
    # a burst of failed logins from one address, a few from another, one two hours ago
    "INSERT INTO audit_logs (action, ip, created_at) SELECT 'auth.login_failed',"
    " '185.220.101.7', now() - n * interval '1 minute' FROM generate_series(1, 12) n",
    "INSERT INTO audit_logs (action, ip, created_at) SELECT 'auth.login_failed',"
    " '41.58.12.9', now() - n * interval '3 minutes' FROM generate_series(1, 3) n",
    "INSERT INTO audit_logs (action, ip, created_at) VALUES"
    " ('auth.login_failed', '10.1.1.1', now() - interval '2 hours')",
    # a refund by a staff account, a role change by an admin
    "INSERT INTO audit_logs (actor_id, action, target_type, target_id, ip, created_at) VALUES"
    f" ('{STAFF}', 'admin.refund', 'order', 'AG-1001', '10.0.0.5', now() - interval '3 hours'),"
    f" ('{ADMIN_USER}', 'admin.role_changed', 'user', '{VICTIM}', '10.0.0.6',"
    "  now() - interval '4 hours')",
]


async def test_security_incident_names_ips_accounts_and_admin_actions_then_revokes_safely(
    bot: Container, fake: FakeBackend, backend_conn: psycopg.AsyncConnection[Any]
) -> None:
    await seed(backend_conn, *INTRUSION)

    walk = await open_run(bot, firing("FailedLoginSpike"), "security-incident")

    assert walk.opened.message == f"{walk.run_id} opened: Security Incident"
    assert await walk.findings() == {
        "unusual_logins": (
            "1 account signed in from more than 3 IP addresses in the last hour: "
            "jane@example.com (5 addresses, 5 sessions)"
        ),
        "failed_logins_by_ip": (
            "Failed logins in the last hour by IP: 185.220.101.7 (12), 41.58.12.9 (3)"
        ),
        "admin_actions": (
            "2 admin actions in the last 24 hours, 1 by an account without the admin role: "
            "admin.refund by ops@agapelooks.com (staff)"
        ),
    }
    for step_id in ("unusual_logins", "failed_logins_by_ip", "admin_actions"):
        assert await walk.state(step_id) is StepState.FAILED

    looked_up = await walk.click("find_user", RESPONDER, inputs={"email": "jane@example.com"})
    assert looked_up.message == f"jane@example.com: user {VICTIM} (customer), 5 active sessions"
    user = await walk.row_inputs("find_user", 0)
    assert user == {"user_id": VICTIM}

    refused = await walk.click("revoke_sessions", RESPONDER, inputs=user)
    assert refused.message == f"“Revoke sessions” requires an approver ({APPROVERS})"
    revoked = await walk.click("revoke_sessions", APPROVER, inputs=user)
    assert revoked.message == f"5 active sessions of user {VICTIM} revoked"
    # its precondition found them first; the same check, run again, shows none left
    assert [r.message for r in revoked.rechecks] == [f"user {VICTIM} has 0 sessions not revoked"]
    assert await walk.state("user_sessions") is StepState.PASSED
    nothing = await walk.click("revoke_sessions", APPROVER, inputs=user)
    assert nothing.error == "PreconditionUnmet"
    assert nothing.message == f"Nothing to revoke: user {VICTIM} has 0 sessions not revoked"
    live = "SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND user_id = '{}'"
    assert await scalar(backend_conn, live.format(VICTIM)) == 0
    assert await scalar(backend_conn, live.format(BYSTANDER)) == 1

    first = await walk.click("force_password_reset", APPROVER, inputs=user)
    assert not first.ok
    assert first.message == (
        f"Approved by {APPROVER}. “Force a password reset” needs a second, different approver "
        "before it runs."
    )
    again = await walk.click("force_password_reset", APPROVER, inputs=user)
    assert not again.ok
    password = f"SELECT password_hash FROM users WHERE id = '{VICTIM}'"
    assert await scalar(backend_conn, password) == "h1"
    reset = await walk.click("force_password_reset", SECOND_APPROVER, inputs=user)
    assert reset.message == (
        "Password hash of jane@example.com replaced with REVOKED: no password works until the "
        "user resets it"
    )
    assert await scalar(backend_conn, password) == "REVOKED"
    others = "SELECT count(*) FROM users WHERE password_hash = 'REVOKED'"
    assert await scalar(backend_conn, others) == 1

    exported = await walk.click("export_audit_log", RESPONDER)
    assert exported.message == "Exported 18 audit log entries from the last 24 hours"


# --- 6. High Error Rate (5xx) -----------------------------------------------------------------


def error_spike(fake: FakeBackend) -> None:
    """Prometheus measures 7% of requests answered 5xx and rising, two routes failing, one
    instance's heap climbing and another instance down."""
    err = "high-error-rate"
    fake.measure(err, "error_rate", Series({}, ("0.0712",)))
    fake.measure(err, "error_rate_sustained", Series({}, ("0.031", "0.05", "0.07", "0.0712")))
    fake.measure(
        err,
        "error_distribution",
        Series({"route": "/api/v1/cart", "status": "500"}, ("0.1",)),
        Series({"route": "/api/v1/orders", "status": "502"}, ("1.25",)),
    )
    heap = ("120000000", "200000000", "300000000", "410000000")
    fake.measure(
        err,
        "memory_leak",
        Series(
            {"__name__": "process_resident_memory_bytes", "instance": "api-1", "job": JOB},
            ("300000000", "305000000"),
        ),
        Series({"__name__": "nodejs_heap_size_used_bytes", "instance": "api-1", "job": JOB}, heap),
    )
    fake.measure(
        err,
        "instances_up",
        Series({"__name__": "up", "instance": "api-1", "job": JOB}, ("1",)),
        Series({"__name__": "up", "instance": "api-2", "job": JOB}, ("0",)),
    )


async def test_high_error_rate_measures_the_rate_in_prometheus_checks_causes_and_restarts_once(
    shell_bot: Container, fake: FakeBackend, programs: Programs
) -> None:
    err = "high-error-rate"
    error_spike(fake)

    # the team's standard Alertmanager notification: no rate in its text at all
    walk = await open_run(shell_bot, firing("HighErrorRate"), err)

    assert walk.opened.message == f"{walk.run_id} opened: High Error Rate (5xx)"
    found = await walk.findings()
    assert found["error_rate"] == (
        "5xx error rate over the last 5 minutes: 7.12% of requests (threshold 2%)"
    )
    assert found["error_rate_sustained"] == (
        "5xx error rate over the last 15 minutes: 3.10% → 7.12% (rising; lowest 3.10%, highest "
        "7.12%); above 2% throughout"
    )
    assert found["error_distribution"] == (
        "5xx answers per second over the last 5 minutes, by route: /api/v1/orders 502 (1.25/s), "
        "/api/v1/cart 500 (0.10/s)"
    )
    assert found["memory_leak"] == (
        "Memory climbing on 1 of 2 series (a leak?): api-1 heap 120.0 MB → 410.0 MB (rising); "
        "api-1 resident 300.0 MB → 305.0 MB (steady)"
    )
    assert found["instances_up"] == "1 of 2 backend instances up; down: api-2"
    for step_id in ("error_rate", "error_rate_sustained", "memory_leak", "instances_up"):
        assert await walk.state(step_id) is StepState.FAILED, step_id
    [measured] = [
        r for r in fake.requests("GET", "/api/v1/query") if r.url.params["query"] == RATIO
    ]
    assert "Authorization" not in measured.headers
    assert re.fullmatch(
        r"Database connections: \d+ of \d+ in use \(\d+\.\d%\); \d+ active, \d+ idle in "
        r"transaction, \d+ waiting on locks",
        found["connection_pool"],
    ), found["connection_pool"]
    assert re.fullmatch(r"Redis: reachable \(\d+ ms\)", found["redis_ping"])
    assert found["backend_health"] == "Backend /healthz: ok (HTTP 200); db: ok, redis: ok"
    assert re.fullmatch(
        r"Paystack status page: indicator none \(HTTP 200, \d+ ms\)", found["paystack_status"]
    )
    assert re.fullmatch(
        r"Cloudinary status page answered HTTP 200 in \d+ ms; open "
        r"https://status.cloudinary.com for incidents",
        found["cloudinary_status"],
    )
    for step_id in ("connection_pool", "redis_ping", "backend_health", "paystack_status"):
        assert await walk.state(step_id) is StepState.PASSED

    refused = await walk.click("restart_app", STRANGER)
    assert refused.message == f"“Restart app” requires a responder ({RESPONDERS})"
    assert programs.calls("docker-compose") == []
    programs.fail_next("docker-compose")
    failed = await walk.click("restart_app", RESPONDER)
    assert failed.message == (
        "`docker-compose restart app` failed with exit code 1: ERROR: No such service: app"
    )
    assert await walk.state("restart_app") is StepState.FAILED
    restarted = await walk.click("restart_app", RESPONDER)
    assert restarted.message == "`docker-compose restart app` succeeded (exit code 0)"
    assert (await walk.redeliver()).duplicate
    assert programs.calls("docker-compose") == ["restart app", "restart app"]

    # the restart worked: the rate falls back under 2% and responses are quick again
    fake.measure(err, "watch_error_rate", Series({}, ("0.07", "0.03", "0.008")))
    fake.measure(err, "response_times", Series({}, ("0.42",)))
    watched = await walk.click("watch_error_rate", RESPONDER)
    assert watched.message == (
        "5xx error rate over the last 30 minutes: 7.00% → 0.80% (falling; highest 7.00%); "
        "now below 2%"
    )
    assert await walk.state("watch_error_rate") is StepState.PASSED
    timed = await walk.click("response_times", RESPONDER)
    assert timed.message == "p95 response time over the last 5 minutes: 420 ms (threshold 1000 ms)"
    assert await walk.state("response_times") is StepState.PASSED


async def test_high_error_rate_with_redis_down_names_it_the_likely_cause_in_the_headline(
    backend_db: str, fake: FakeBackend, tmp_path: Path
) -> None:
    error_spike(fake)
    dead_redis = "redis://127.0.0.1:1/0"
    async with running_bot(settings(backend_db, dead_redis, tmp_path)) as bot:
        walk = await open_run(bot, firing("HighErrorRate", "api-1"), "high-error-rate")
        headline = (await bot.engine.view(walk.run_id)).headline

    ranks = [(p.rank, p.step_id) for p in headline.items]
    assert ranks[:2] == [(Rank.FOUND, "error_rate"), (Rank.FOUND, "error_rate_sustained")]
    assert [p.step_id for p in headline.items if p.likely_cause] == ["redis_ping"]
    assert headline.problems[ranks.index((Rank.CAUSE, "redis_ping"))].startswith(
        "Redis reachability: Redis: unreachable (connection refused)"
    )
    pages = [p for p in headline.items if "status page" in p.text]
    assert all(p.warning for p in pages), pages


async def test_high_error_rate_says_plainly_when_prometheus_cannot_answer(
    bot: Container, fake: FakeBackend
) -> None:
    fake.router.get(url__startswith=f"{PROMETHEUS}/api/v1/").mock(
        return_value=httpx.Response(
            400,
            json={"status": "error", "errorType": "bad_data", "error": "unknown function"},
        )
    )
    walk = await open_run(bot, firing("HighErrorRate"), "high-error-rate")
    found = await walk.findings()
    assert found["error_rate"] == (
        "5xx error rate, measured in Prometheus: Prometheus rejected the query as invalid "
        "PromQL (HTTP 400, bad_data): unknown function; fix the runbook step's query"
    )
    assert await walk.state("error_rate") is StepState.ERROR
    assert await walk.state("redis_ping") is StepState.PASSED  # the run goes on


# --- 7. Queue Backlog -------------------------------------------------------------------------


def email_backlog(redis_db: str, fake: FakeBackend) -> None:
    """150 emails waiting (two failed), invoices waiting 20 minutes, in BullMQ and as the admin
    API reports them."""
    failures = {"e-912": "Resend API 429: rate limited", "e-911": "SMTP timeout"}
    bullmq_queue(redis_db, "email", waiting=150, oldest_age_s=1500, active=2, failed=failures)
    bullmq_queue(redis_db, "invoice", waiting=3, oldest_age_s=1200)
    fake.queues = {
        "email": {
            "waiting": 150,
            "active": 2,
            "delayed": 0,
            "failed": 2,
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


async def test_queue_backlog_counts_waiting_jobs_per_queue_and_runs_the_backend_scripts(
    shell_bot: Container, fake: FakeBackend, programs: Programs, redis_db: str
) -> None:
    email_backlog(redis_db, fake)

    walk = await open_run(shell_bot, firing("EmailQueueBacklog", "worker-1"), "queue-backlog")

    assert walk.opened.message == f"{walk.run_id} opened: Queue Backlog"
    assert await walk.findings() == {
        "email_backlog": (
            "Email queue backlog: 150 pending jobs (threshold 100); invoice queue backlog: 3; "
            "email: 150 waiting, 2 active, 0 delayed, 2 failed; "
            "invoice: 3 waiting, 0 active, 0 delayed, 0 failed"
        ),
        "invoice_delay": "Invoice queue: 3 pending, the oldest waiting 20 min (threshold 15 min)",
    }
    assert await walk.state("email_backlog") is StepState.FAILED
    assert await walk.state("invoice_delay") is StepState.FAILED

    stats = await walk.click("admin_queue_stats", RESPONDER)
    assert stats.message == (
        "Admin API queue statistics: 153 jobs waiting in all; "
        "email: 150 waiting, 2 active, 2 failed; invoice: 3 waiting, 1 active, 0 failed"
    )
    [asked] = fake.requests("GET", "/api/v1/admin/queues/stats")
    assert asked.headers["authorization"] == f"Bearer {ADMIN_TOKEN}"
    recent = await walk.click("recent_failures", RESPONDER)
    assert recent.message == (
        "2 failed jobs: email job e-912 (email-job): Resend API 429: rate limited; "
        "email job e-911 (email-job): SMTP timeout"
    )

    processed = await walk.click("process_email_queue", RESPONDER)
    assert processed.message == "`node scripts/process-queue.js email` succeeded (exit code 0)"
    refused = await walk.click("clear_failed_jobs", RESPONDER)
    assert refused.message == f"“Clear failed jobs” requires an approver ({APPROVERS})"
    cleared = await walk.click("clear_failed_jobs", APPROVER)
    assert cleared.message == "`node scripts/clear-failed-jobs.js` succeeded (exit code 0)"
    assert programs.calls("node") == [
        "scripts/process-queue.js email",
        "scripts/clear-failed-jobs.js",
    ]


async def test_with_shell_off_clear_dead_jobs_hands_over_its_command_and_asks_nothing(
    bot: Container, fake: FakeBackend, programs: Programs, redis_db: str
) -> None:
    email_backlog(redis_db, fake)
    walk = await open_run(bot, firing("EmailQueueBacklog", "worker-1"), "queue-backlog")
    step = (await bot.engine.view(walk.run_id)).step("clear_failed_jobs")
    # From the start: the command to copy, a button that says so, no question to answer.
    assert step.by_hand == "node scripts/clear-failed-jobs.js"
    assert [(b.label, b.changes, b.confirm) for b in step.buttons] == [
        ("Show command", False, None)
    ]
    assert step.confirm is None

    refused = await walk.click("clear_failed_jobs", RESPONDER, confirmed=False)
    assert refused.message == f"“Clear failed jobs” requires an approver ({APPROVERS})"
    handed = await walk.click("clear_failed_jobs", APPROVER, confirmed=False)

    assert handed.ok, handed.message
    assert handed.message == (
        "Shell steps are off (OPS_ALLOW_SHELL): run it by hand: node scripts/clear-failed-jobs.js"
    )
    assert handed.result is not None
    assert handed.result.text == "node scripts/clear-failed-jobs.js"
    assert await walk.state("clear_failed_jobs") is StepState.HANDED_OVER
    timeline = await bot.engine.timeline(walk.run_id)
    [event] = [e for e in timeline if e.step_id == "clear_failed_jobs" and e.actor == APPROVER]
    assert (event.kind, event.outcome, event.actor) == (
        "step.handed_over",
        "handed_over",
        APPROVER,
    )
    assert event.detail["command"] == "node scripts/clear-failed-jobs.js"
    assert programs.calls("node") == []  # nothing ran
    shown = (await bot.engine.view(walk.run_id)).step("clear_failed_jobs")
    assert (shown.state_words, shown.error) == ("handed over", None)
    assert "handed over" in await bot.engine.export(walk.run_id)


async def test_a_drained_queue_passes_with_its_figures(
    bot: Container, fake: FakeBackend, redis_db: str
) -> None:
    bullmq_queue(redis_db, "email", waiting=4, oldest_age_s=30)
    bullmq_queue(redis_db, "invoice", waiting=0)
    walk = await open_run(bot, firing("EmailQueueBacklog", "worker-1"), "queue-backlog")
    assert await walk.findings() == {
        "email_backlog": (
            "Email queue backlog: 4 pending jobs (threshold 100); invoice queue backlog: 0; "
            "email: 4 waiting, 0 active, 0 delayed, 0 failed; "
            "invoice: 0 waiting, 0 active, 0 delayed, 0 failed"
        ),
        "invoice_delay": "Invoice queue: 0 pending",
    }
    assert await walk.state("email_backlog") is StepState.PASSED
    assert await walk.state("invoice_delay") is StepState.PASSED


async def test_a_queue_missing_from_redis_is_a_problem_not_an_empty_queue(
    bot: Container, fake: FakeBackend, redis_db: str
) -> None:
    bullmq_queue(redis_db, "email", waiting=4, oldest_age_s=30)  # no invoice queue at all
    walk = await open_run(bot, firing("EmailQueueBacklog", "worker-1"), "queue-backlog")
    assert await walk.findings() == {
        "email_backlog": (
            "Email queue backlog: 4 pending jobs (threshold 100); invoice queue backlog: none to "
            "count, the queue does not exist; email: 4 waiting, 0 active, 0 delayed, 0 failed; "
            "invoice: no such queue in Redis (check the queue name and the BullMQ prefix)"
        ),
        "invoice_delay": (
            "No invoice queue found in Redis (check the queue name and the BullMQ prefix)"
        ),
    }
    assert await walk.state("email_backlog") is StepState.FAILED
    assert await walk.state("invoice_delay") is StepState.FAILED


# --- every button, every refusal --------------------------------------------------------------

#: What each step that changes something says on its button: what it does, in a verb phrase.
BUTTONS = {
    ("failed-webhook-processing", "reprocess_webhook"): "Reprocess",
    ("database-failover", "promote_replica"): "Promote replica",
    ("inventory-oversell", "correct_stock"): "Correct stock",
    ("security-incident", "revoke_sessions"): "Revoke sessions",
    ("security-incident", "force_password_reset"): "Force password reset",
    ("high-error-rate", "restart_app"): "Restart app",
    ("queue-backlog", "process_email_queue"): "Process email queue",
    ("queue-backlog", "clear_failed_jobs"): "Clear failed jobs",
}
ROW_BUTTONS = {
    ("failed-webhook-processing", "pending_orders", "verify_payment"): "Verify with Paystack",
    ("failed-webhook-processing", "failed_webhooks", "reprocess_webhook"): "Reprocess",
    ("security-incident", "unusual_logins", "revoke_sessions"): "Revoke sessions",
    ("security-incident", "find_user", "revoke_sessions"): "Revoke sessions",
}


def test_every_button_is_named_by_what_it_does_and_no_check_is_titled_as_a_question() -> None:
    catalog = load_catalog([REPO / "runbooks"])
    assert catalog.problems == []
    runbooks = catalog.runbooks.values()
    buttons = {(r.id, s.id): s.button for r in runbooks for s in r.steps() if s.changes_things}
    assert buttons == BUTTONS
    rows = {
        (r.id, s.id, a.step): a.button for r in runbooks for s in r.steps() for a in s.row_actions
    }
    assert rows == ROW_BUTTONS
    for runbook in runbooks:
        for step in runbook.steps():
            if step.manual is None:
                assert "?" not in step.title, f"{runbook.id}/{step.id}: {step.title!r}"
                assert step.finding, f"{runbook.id}/{step.id} has no finding to state"


async def test_every_change_is_refused_to_the_wrong_people_saying_who_may(
    bot: Container, fake: FakeBackend
) -> None:
    for (runbook_id, step_id), button in BUTTONS.items():
        step = bot.catalog.runbooks[runbook_id].step(step_id)
        assert step is not None
        opened = await bot.engine.execute(
            StartRun(runbook_id, "alertmanager", f"open-{step_id}", auto=False)
        )
        assert opened.run is not None
        walk = walkthrough_seed.Walk(bot, opened.run.id, opened, "by hand")
        who = (
            f"an approver ({APPROVERS})"
            if step.risk is Risk.DANGEROUS
            else f"a responder ({RESPONDERS})"
        )
        wrong = [STRANGER, RESPONDER] if step.risk is Risk.DANGEROUS else [STRANGER]
        for actor in wrong:
            refused = await walk.click(step_id, actor)
            assert not refused.ok
            assert refused.message == f"“{button}” requires {who}"
        assert step_id not in await walk.steps()
    assert list(fake.router.calls) == []
