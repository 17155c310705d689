"""`agape-ops console`, `runs` and `timeline` as a person uses them: the real command in a
subprocess, real PostgreSQL and Redis, loopback fakes for Paystack, the admin API and
Prometheus, and no Slack configuration at all.

Every wait is for text the console prints, with a deadline (pexpect), never a sleep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import psycopg
import pytest
import redis
from fake_prometheus import Series, prometheus_series_route, promql
from pexpect.popen_spawn import PopenSpawn

from agape_ops.demo.standins import FakeService, admin_api_route, paystack_route, serve

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AGAPE = str(Path(sys.executable).with_name("agape-ops"))
PAYSTACK_KEY = "sk_test_console_0123456789"
ADMIN_TOKEN = "admin-token-console-0123"
PERSON = "alice"
DEADLINE_S = 20

NEGATIVE_STOCK = "alert [FIRING:1] NegativeStock agape-backend (prod api-1 critical)"
WEBHOOKS_FAILED = "alert [FIRING:1] WebhookProcessingFailed agape-backend (prod api-1 critical)"
EMAIL_BACKLOG = "alert [FIRING:1] EmailQueueBacklog agape-backend (prod worker-1 warning)"
HIGH_ERROR_RATE = "alert [FIRING:1] HighErrorRate agape-backend (prod api-1 critical)"

WEBHOOK_NEW = "5b0c7a52-1d1e-4a8e-9a55-0f6f3c1e0001"
WEBHOOK_OLD = "5b0c7a52-1d1e-4a8e-9a55-0f6f3c1e0002"


@dataclass
class Services:
    paystack: FakeService
    admin: FakeService
    prometheus: FakeService


UP = [
    Series({"__name__": "up", "job": "agape-backend", "instance": "api-1"}, ("1",)),
    Series({"__name__": "up", "job": "agape-backend", "instance": "api-2"}, ("0",)),
]
#: What the fake Prometheus measures: High Error Rate's 5xx rate at 7.12%, one instance down
#: (``up`` is what `agape-ops check` asks).
MEASURED = {
    promql("high-error-rate", "error_rate"): [Series({}, ("0.0712",))],
    promql("high-error-rate", "instances_up"): UP,
    "up": UP,
}


@pytest.fixture
def services() -> Iterator[Services]:
    transactions = {"T-PAID-1": "success", "T-FAILED-2": "failed"}
    admin = admin_api_route(ADMIN_TOKEN, webhooks={WEBHOOK_NEW, WEBHOOK_OLD})
    with (
        serve(paystack_route(PAYSTACK_KEY, transactions)) as paystack,
        serve(admin) as api,
        serve(prometheus_series_route(MEASURED)) as prometheus,
    ):
        yield Services(paystack=paystack, admin=api, prometheus=prometheus)


@pytest.fixture
def env(backend_db: str, redis_db: str, services: Services, tmp_path: Path) -> dict[str, str]:
    """Return the console's whole environment: no SLACK_* variable, nothing inherited."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "220",
        "DATABASE_URL": backend_db,
        "REDIS_URL": redis_db,
        "PAYSTACK_API_URL": services.paystack.url,
        "PAYSTACK_STATUS_URL": services.paystack.url,
        "PAYSTACK_SECRET_KEY": PAYSTACK_KEY,
        "ADMIN_API_URL": services.admin.url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "PROMETHEUS_URL": services.prometheus.url,
        "OPS_DATABASE_URL": f"sqlite:///{tmp_path}/ops.db",
        "RUNBOOKS_DIR": str(REPO / "runbooks"),
        "OPS_TEAM_FILE": str(REPO / "team.yaml"),
        "OPS_RESPONDERS": f"{PERSON},bob",
        "OPS_APPROVERS": PERSON,
    }


class Session:
    """The console as a subprocess with piped stdin: type lines, wait for what it prints."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.child = PopenSpawn(
            [AGAPE, "console", *args],
            env=env,
            cwd=str(cwd),
            encoding="utf-8",
            timeout=DEADLINE_S,
        )
        self.transcript: list[str] = []
        self.banner = self.expect("agape-ops> ")

    def expect(self, text: str) -> str:
        """Wait for ``text``; return what came before it."""
        try:
            self.child.expect_exact(text)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            seen = "".join(self.transcript) + str(self.child.before)
            raise AssertionError(f"console never printed {text!r}; it printed:\n{seen}") from exc
        before = str(self.child.before)
        self.transcript.append(before + text)
        return before

    def type(self, line: str, then: str) -> str:
        """Type a line and return everything printed until ``then`` (inclusive)."""
        self.child.sendline(line)
        return self.expect(then) + then

    def finish(self) -> int:
        """Close stdin (end of input) and return the exit status."""
        self.child.sendeof()
        self.child.expect(pexpect.EOF)
        self.transcript.append(str(self.child.before))
        status = self.child.wait()
        assert isinstance(status, int)
        return status

    def close(self) -> None:
        """Stop the process if it still runs and close its pipes."""
        if self.child.proc.poll() is None:
            self.child.proc.kill()
            self.child.proc.wait()
        for pipe in (self.child.proc.stdin, self.child.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def open_console(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Session]]:
    """Start consoles with the test's environment; stop and close them all afterwards."""
    started: list[Session] = []

    def start(*args: str) -> Session:
        session = Session(env, tmp_path, *args)
        started.append(session)
        return session

    yield start
    for session in started:
        session.close()


def agape(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGAPE, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def seed_oversell(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email, name, password_hash) VALUES "
            "('00000000-0000-0000-0000-000000000001', 'ada@example.com', 'Ada', 'x')"
        )
        conn.execute(
            "INSERT INTO products (id, name) VALUES "
            "('00000000-0000-0000-0000-0000000000a1', 'Ankara dress')"
        )
        conn.execute(
            "INSERT INTO product_variants (id, product_id, sku, stock) VALUES "
            "('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1',"
            " 'DRESS-RED-M', -2),"
            "('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000a1',"
            " 'DRESS-BLU-S', -1),"
            "('00000000-0000-0000-0000-0000000000b3', '00000000-0000-0000-0000-0000000000a1',"
            " 'DRESS-GRN-L', 4)"
        )
        conn.execute(
            "INSERT INTO orders (id, order_number, user_id, status, total_kobo) VALUES "
            "('00000000-0000-0000-0000-0000000000c1', 'AG-1001',"
            " '00000000-0000-0000-0000-000000000001', 'paid', 5000000),"
            "('00000000-0000-0000-0000-0000000000c2', 'AG-1002',"
            " '00000000-0000-0000-0000-000000000001', 'paid', 2500000)"
        )
        conn.execute(
            "INSERT INTO order_items (order_id, product_id, variant_id, quantity, unit_price_kobo)"
            " VALUES ('00000000-0000-0000-0000-0000000000c1',"
            " '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1',"
            " 2, 2500000),"
            "('00000000-0000-0000-0000-0000000000c2', '00000000-0000-0000-0000-0000000000a1',"
            " '00000000-0000-0000-0000-0000000000b2', 1, 2500000)"
        )


def stock(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT sku, stock FROM product_variants").fetchall()
    return {str(sku): int(value) for sku, value in rows}


def seed_failed_webhooks(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email, name, password_hash) VALUES "
            "('00000000-0000-0000-0000-000000000001', 'ada@example.com', 'Ada', 'x')"
        )
        conn.execute(
            "INSERT INTO webhook_events (id, event_type, reference, status, error_message,"
            " retry_count, created_at) VALUES "
            f"('{WEBHOOK_NEW}', 'charge.success', 'T-PAID-1', 'failed', 'order lookup timed out',"
            " 3, now() - interval '5 minutes'),"
            f"('{WEBHOOK_OLD}', 'charge.success', 'T-FAILED-2', 'failed', 'signature mismatch',"
            " 1, now() - interval '50 minutes'),"
            "(gen_random_uuid(), 'charge.success', 'T-OK-3', 'processed', NULL, 0, now())"
        )
        conn.execute(
            "INSERT INTO orders (order_number, user_id, status, total_kobo, payment_reference,"
            " created_at) VALUES "
            "('AG-2001', '00000000-0000-0000-0000-000000000001', 'pending_payment', 2500000,"
            " 'T-PAID-1', now() - interval '30 minutes')"
        )


def test_console_walks_inventory_oversell_from_alert_to_closed_run(
    open_console: Callable[..., Session], env: dict[str, str], backend_db: str, tmp_path: Path
) -> None:
    seed_oversell(backend_db)
    console = open_console("--as", PERSON)
    assert "acting as alice" in console.banner
    opened = console.type(NEGATIVE_STOCK, "INC-1> ")
    assert "INC-1 opened: Inventory Oversell (sev2) by alert" in opened
    assert "(matched alertname=NegativeStock)" in opened
    assert "2 SKUs have stock below zero: DRESS-RED-M (-2), DRESS-BLU-S (-1)" in opened
    assert "DRESS-GRN-L" not in opened

    again = console.type(NEGATIVE_STOCK, "INC-1> ")
    assert "belongs to INC-1" in again
    assert "no new run" in again

    orders = console.type("3", "INC-1> ")
    assert "orders AG-1001, AG-1002" in orders

    plan = console.type("5", "Type yes to go ahead")
    assert "UPDATE product_variants" in plan
    assert "would change 2 rows" in plan
    assert "Set stock to 0 on every product variant whose stock is below zero" in plan
    corrected = console.type("yes", "INC-1> ")
    assert "Stock set to 0 on 2 product variants (version bumped)" in corrected
    assert stock(backend_db) == {"DRESS-RED-M": 0, "DRESS-BLU-S": 0, "DRESS-GRN-L": 4}

    items = console.type("4", "Mark done which items")
    assert "1. [ ] Email affected customers immediately" in items
    done = console.type("1 2 3", "INC-1> ")
    assert "done: Provide discount for inconvenience" in done

    assert "INC-1 resolved by alice: stock corrected" in console.type(
        "/ops resolve stock corrected", "INC-1> "
    )
    assert "INC-1 closed by alice" in console.type("/ops close", "INC-1> ")
    assert console.finish() == 0

    markdown = agape(env, tmp_path, "timeline", "INC-1")
    assert markdown.returncode == 0, markdown.stderr
    text = markdown.stdout
    assert text.startswith("# INC-1: Inventory Oversell")
    assert "Rehearsal" not in text
    assert "| alice | Stock set to 0 on 2 product variants (version bumped) | done |" in text
    assert "| agape-ops | 2 SKUs have stock below zero" in text
    assert "- Time to resolve: " in text
    assert "- [ ] Enable strict inventory checks" in text

    exported = agape(env, tmp_path, "timeline", "INC-1", "--format", "json")
    document = json.loads(exported.stdout)
    kinds = [event["kind"] for event in document["events"]]
    assert kinds[0] == "run.opened"
    assert kinds[-2:] == ["run.resolved", "run.closed"]
    assert {event["actor"] for event in document["events"]} == {"alice", "agape-ops"}
    finished = [e for e in document["events"] if e["step_id"] == "correct_stock"]
    assert finished[0]["duration_ms"] is not None

    listed = agape(env, tmp_path, "runs")
    assert listed.returncode == 0
    assert "INC-1" in listed.stdout
    assert "closed" in listed.stdout
    assert "Inventory Oversell" in listed.stdout


def test_a_correction_re_checks_the_stock_and_a_second_one_has_nothing_to_ask(
    open_console: Callable[..., Session], backend_db: str
) -> None:
    seed_oversell(backend_db)
    console = open_console("--as", PERSON)
    console.type(NEGATIVE_STOCK, "INC-1> ")
    console.type("5", "Type yes to go ahead")
    corrected = console.type("yes", "INC-1> ")
    assert "Stock set to 0 on 2 product variants (version bumped)" in corrected
    assert "agape-ops: 0 SKUs have stock below zero" in corrected  # re-checked at once
    # The check is shown with the write it ran for, before and after it.
    assert "[checked before “Correct stock levels”]" in corrected
    assert "[checked again after “Correct stock levels”]" in corrected

    nothing = console.type("5", "INC-1> ")

    assert "Nothing to change: 0 SKUs have stock below zero" in nothing
    assert "Type yes" not in nothing
    assert "UPDATE product_variants" not in nothing  # no plan either
    assert console.finish() == 0  # nothing to do is not a failure


def test_dry_run_shows_the_write_changes_nothing_and_marks_the_run_a_rehearsal(
    open_console: Callable[..., Session], env: dict[str, str], backend_db: str, tmp_path: Path
) -> None:
    seed_oversell(backend_db)
    console = open_console("--as", PERSON, "--dry-run")
    assert "REHEARSAL (--dry-run)" in console.banner
    opened = console.type(NEGATIVE_STOCK, "REH-1> ")
    assert "2 SKUs have stock below zero" in opened  # reads run for real
    assert "REHEARSAL: writes are shown, not executed" in opened

    plan = console.type("5", "Type yes to go ahead")
    assert "UPDATE product_variants" in plan
    rehearsed = console.type("yes", "REH-1> ")
    assert "Rehearsal, not executed. Would run:" in rehearsed
    assert "SET stock = 0" in rehearsed
    assert stock(backend_db) == {"DRESS-RED-M": -2, "DRESS-BLU-S": -1, "DRESS-GRN-L": 4}

    runs = console.type("/ops runs", "REH-1> ")
    assert "Inventory Oversell" in runs
    assert "rehearsal" in runs
    in_console = console.type("/ops timeline", "REH-1> ")
    assert "> **Rehearsal**" in in_console
    # a rehearsal changed nothing: the stock check still shows the problem, so resolve asks
    asked = console.type("/ops resolve", "Type yes to resolve it anyway (anything else cancels): ")
    assert "REH-1 may not be over" in asked
    console.type("yes", "REH-1> ")
    console.type("/ops close", "REH-1> ")
    closed = console.type("3", "REH-1> ")
    assert "REH-1 is closed; nothing more can be done on it" in closed
    assert console.finish() == 1  # a piped session with a failing command

    markdown = agape(env, tmp_path, "timeline", "REH-1").stdout
    assert "> **Rehearsal** — changes were shown, not executed." in markdown
    assert "Rehearsal, not executed" in markdown
    listed = agape(env, tmp_path, "runs").stdout
    assert "rehearsal" in listed


def test_a_dry_run_console_never_executes_a_write_on_a_real_run(
    open_console: Callable[..., Session], backend_db: str
) -> None:
    seed_oversell(backend_db)
    real = open_console("--as", PERSON)
    real.type(NEGATIVE_STOCK, "INC-1> ")
    assert real.finish() == 0
    rehearsal = open_console("--as", PERSON, "--dry-run")
    rehearsal.type("/ops use INC-1", "INC-1> ")
    shown = rehearsal.type("5", "INC-1> ")
    assert "UPDATE product_variants" in shown
    assert "not executed: this console is a rehearsal (--dry-run) and INC-1 is a real run" in shown
    assert "Type yes" not in shown
    assert rehearsal.finish() == 1
    assert stock(backend_db) == {"DRESS-RED-M": -2, "DRESS-BLU-S": -1, "DRESS-GRN-L": 4}


def test_reprocess_on_a_row_calls_the_admin_api_once_with_that_webhook_and_a_key(
    open_console: Callable[..., Session], backend_db: str, services: Services
) -> None:
    seed_failed_webhooks(backend_db)
    console = open_console("--as", PERSON)
    opened = console.type(WEBHOOKS_FAILED, "INC-1> ")
    assert "2 webhooks are stuck in failed status" in opened
    assert "1 of 1 orders still in pending_payment are paid at Paystack: T-PAID-1" in opened

    listed = console.type("6", "INC-1> ")
    assert f"r1 │ {WEBHOOK_NEW}" in listed
    assert f"r2 │ {WEBHOOK_OLD}" in listed
    assert "“Reprocess” on a row: type r<row> (r1-r2)" in listed

    plan = console.type("r2", "Type yes to go ahead")
    assert f'/api/v1/admin/webhooks/reprocess body {{"webhookId": "{WEBHOOK_OLD}"}}' in plan
    assert ADMIN_TOKEN not in plan
    assert services.admin.requests("POST") == []  # nothing is sent before the yes
    done = console.type("yes", "INC-1> ")
    assert f"Webhook {WEBHOOK_OLD}: queued (HTTP 202)" in done
    assert console.finish() == 0

    posts = services.admin.requests("POST", "/api/v1/admin/webhooks/reprocess")
    assert len(posts) == 1
    assert posts[0].body == {"webhookId": WEBHOOK_OLD}
    assert posts[0].headers["idempotency-key"].startswith("INC-1:reprocess_webhook:")
    assert posts[0].headers["authorization"] == f"Bearer {ADMIN_TOKEN}"


def test_a_person_who_is_not_a_responder_is_refused_and_nothing_changes(
    open_console: Callable[..., Session], backend_db: str
) -> None:
    seed_oversell(backend_db)
    console = open_console("--as", "mallory")
    labels = {"alertname": "NegativeStock", "service": "agape-backend", "env": "prod"}
    opened = console.type(f"alert {json.dumps({'title': 'Stock', 'labels': labels})}", "INC-1> ")
    assert "INC-1 opened: Inventory Oversell (sev2) by alert" in opened
    assert "(matched alertname=NegativeStock)" in opened
    refused = console.type("5", "INC-1> ")
    assert "“Correct stock” requires an approver (alice)" in refused
    assert "Type yes" not in refused
    resolve = console.type("/ops resolve", "INC-1> ")
    assert "requires a responder" in resolve
    assert console.finish() == 1
    assert stock(backend_db) == {"DRESS-RED-M": -2, "DRESS-BLU-S": -1, "DRESS-GRN-L": 4}


def test_invalid_inputs_are_prompted_again_and_unknown_steps_are_named(
    open_console: Callable[..., Session], backend_db: str
) -> None:
    seed_failed_webhooks(backend_db)
    console = open_console("--as", PERSON)
    console.type(WEBHOOKS_FAILED, "INC-1> ")
    asked = console.type("9", "reference> ")
    assert "Paystack transaction reference (for example T685312322670591)" in asked
    again = console.type("not a reference!", "reference> ")
    assert "is not a valid paystack transaction reference" in again
    verified = console.type("T-PAID-1", "INC-1> ")
    assert "Paystack reports T-PAID-1 as success" in verified

    unknown = console.type("run nosuch", "INC-1> ")
    assert "failed-webhook-processing has no step 'nosuch'" in unknown
    numbered = console.type("42", "INC-1> ")
    assert "no step 42: failed-webhook-processing's steps are numbered 1-10" in numbered
    cancelled = console.type("8", "webhook_id> ")
    assert "Webhook event id" in cancelled
    assert "cancelled, nothing changed" in console.type("", "INC-1> ")
    assert "Unknown subcommand `reslove`" in console.type("/ops reslove", "INC-1> ")
    assert console.finish() == 1


def test_queue_backlog_alert_reads_bullmq_queues_from_redis(
    open_console: Callable[..., Session], redis_db: str
) -> None:
    client = redis.Redis.from_url(redis_db)
    try:
        for queue, waiting in (("email", 150), ("invoice", 3)):
            client.hset(f"bull:{queue}:meta", mapping={"version": "bullmq:5.7.0"})
            client.rpush(f"bull:{queue}:wait", *[f"{queue}-{n}" for n in range(waiting)])
    finally:
        client.close()
    console = open_console("--as", PERSON)
    opened = console.type(EMAIL_BACKLOG, "INC-1> ")
    assert "INC-1 opened: Queue Backlog" in opened
    assert "Email queue backlog: 150 pending jobs (threshold 100)" in opened
    # Shell steps are off: the command is there to copy from the start, and a press asks
    # nothing, runs nothing and hands it over.
    assert "run by hand: node scripts/clear-failed-jobs.js" in opened
    handed = console.type("/ops run clear_failed_jobs", "INC-1> ")
    assert "Type yes" not in handed
    assert "run it by hand: node scripts/clear-failed-jobs.js" in handed
    status = console.type("/ops status", "INC-1> ")
    assert "handed over" in status
    assert console.finish() == 0


def test_high_error_rate_alert_reports_the_5xx_rate_measured_in_prometheus(
    open_console: Callable[..., Session], services: Services
) -> None:
    console = open_console("--as", PERSON)
    opened = console.type(HIGH_ERROR_RATE, "INC-1> ")
    assert "INC-1 opened: High Error Rate (5xx)" in opened
    assert "5xx error rate over the last 5 minutes: 7.12% of requests (threshold 2%)" in opened
    assert "1 of 2 backend instances up; down: api-2" in opened
    assert "does not report error_rate" not in opened
    # The headline: the problems found first; a status page the bot cannot reach (no network
    # here) is a warning, never the likely cause.
    wrong = opened.split("What is wrong now\n", 1)[1].split("\n┏", 1)[0].splitlines()
    assert wrong[0].startswith("  ! 5xx error rate over the last 5 minutes: 7.12%"), wrong
    assert not [line for line in wrong if "Likely cause" in line and "status page" in line]
    asked = services.prometheus.requests("GET", "/api/v1/query")
    assert promql("high-error-rate", "error_rate") in [s.query["query"][0] for s in asked]
    assert console.finish() == 0


def test_alert_that_matches_no_runbook_says_what_to_do_instead(
    open_console: Callable[..., Session],
) -> None:
    console = open_console("--as", PERSON)
    said = console.type("alert the coffee machine is empty", "agape-ops> ")
    assert "No runbook matches “the coffee machine is empty”" in said
    assert "`/ops runbooks`" in said
    assert "`/ops start <runbook>`" in said
    assert "that JSON does not parse" in console.type("alert {nope", "agape-ops> ")
    unknown = console.type("/ops start nosuch", "agape-ops> ")
    assert "no runbook 'nosuch' (runbooks: database-failover, failed-webhook-processing" in unknown
    assert "no current run" in console.type("3", "agape-ops> ")
    assert console.finish() == 1


def test_a_step_whose_system_is_not_configured_names_the_missing_setting(
    open_console: Callable[..., Session], env: dict[str, str]
) -> None:
    del env["DATABASE_URL"], env["ADMIN_API_URL"]
    console = open_console("--as", PERSON)
    opened = console.type(WEBHOOKS_FAILED, "INC-1> ")
    assert "PostgreSQL is not configured: set DATABASE_URL" in opened
    console.type("8", "webhook_id> ")
    # Reprocess first looks the webhook up in PostgreSQL: without it, nothing is asked or sent
    failed = console.type(WEBHOOK_OLD, "INC-1> ")
    assert "“Reprocess a failed webhook” was not run: its precondition" in failed
    assert "PostgreSQL is not configured: set DATABASE_URL" in failed
    assert "Type yes" not in failed
    assert console.finish() == 1


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("OPS_DATABASE_URL", "sqlite:///{tmp}/not-a-directory/ops.db", "cannot open the store"),
        (
            "OPS_DATABASE_URL",
            "postgresql://postgres:hunter2@127.0.0.1:1/ops",
            "store database unreachable",
        ),
        ("OPS_STATEMENT_TIMEOUT_MS", "soon", "OPS_STATEMENT_TIMEOUT_MS"),
    ],
    ids=["store-file-unwritable", "store-server-unreachable", "malformed-setting"],
)
def test_a_console_that_cannot_start_says_why_in_one_line_with_status_2(
    env: dict[str, str], tmp_path: Path, setting: str, value: str, said: str
) -> None:
    (tmp_path / "not-a-directory").write_text("")
    env[setting] = value.format(tmp=tmp_path)
    result = agape(env, tmp_path, "console", "--as", PERSON)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("agape-ops: ")
    assert said in lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr


def test_timeline_of_an_unknown_run_is_one_line_and_status_1(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = agape(env, tmp_path, "timeline", "INC-99")
    assert result.returncode == 1
    assert result.stderr.strip() == "agape-ops: no run INC-99; `agape-ops runs` lists them"


def test_a_write_that_cannot_run_says_why_and_asks_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    without_postgres = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    console = Session(without_postgres, tmp_path, "--as", PERSON)
    try:
        console.type(NEGATIVE_STOCK, "INC-1> ")
        shown = console.type("5", "INC-1> ")
        after = console.type("/ops status", "INC-1> ")
    finally:
        console.close()

    # its precondition (SKUs below zero) cannot be checked: the write is not offered
    assert "“Correct stock levels” was not run: its precondition" in shown
    assert "PostgreSQL is not configured: set DATABASE_URL); nothing was changed" in shown
    assert "Type yes" not in shown
    assert "Set stock to 0 on every product variant" not in shown  # no question to answer
    assert "not a command" not in after
