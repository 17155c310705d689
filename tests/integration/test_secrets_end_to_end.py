"""Nothing secret reaches Slack, the console or the logs: the whole bot, end to end.

The bot is built by the composition root with every secret configured (Slack tokens and signing
secret, the Paystack key, the admin token, passwords in all three DSNs) and walks a runbook whose
steps carry a secret input through each adapter kind: the admin API (in a URL path and a JSON
body, answered by a server that echoes it back), PostgreSQL (a bound parameter), the shell (an
argument) and findings that name it. Success, failure and rehearsal paths, plans and input
errors all run; then everything that could be shown or logged is collected (every stored run,
step record and event, both postmortem exports, the log handler's stream, the console's whole
transcript and the CLI's output) and searched for every secret.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg import sql

from agape_ops.alerts.model import Alert
from agape_ops.bootstrap import Container, build, permissions_for
from agape_ops.demo.standins import Answer, FakeService, Route, Seen, serve
from agape_ops.engine.commands import Command, Outcome, ProvideInput, RunStep, SetState, StartRun
from agape_ops.engine.engine import Engine
from agape_ops.engine.postmortem import render_json, render_markdown
from agape_ops.engine.records import Event
from agape_ops.redaction import MASK, RedactingFilter
from agape_ops.settings import Settings

pytestmark = pytest.mark.integration

AGAPE = str(Path(sys.executable).with_name("agape-ops"))
PERSON = "alice"
ADMIN = "https://admin.agape.test"
PAYSTACK = "https://api.paystack.test"

SLACK_BOT_TOKEN = "xoxb-2718281828-3141592653-e2eBotTokenQ7"
SLACK_APP_TOKEN = "xapp-1-A0E2E-1618033988-e2eAppTokenW3"
SLACK_SIGNING_SECRET = "8f7e6d5c4b3a29180716f5e4d3c2b1a0"
PAYSTACK_KEY = "sk_test_e2e9f8e7d6c5b4a3928170"
ADMIN_TOKEN = "adm-e2e-token-4f9Qx"
DB_PASSWORD = "Pg-e2e-pa55w0rd"
REDIS_PASSWORD = "Rd-e2e-pa55w0rd"
OPS_DB_PASSWORD = "Ops-e2e/pa55w0rd"  # "/" is %2F in the DSN: both forms must stay hidden
CONFIGURED = {
    "SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
    "SLACK_APP_TOKEN": SLACK_APP_TOKEN,
    "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
    "PAYSTACK_SECRET_KEY": PAYSTACK_KEY,
    "ADMIN_TOKEN": ADMIN_TOKEN,
    "DATABASE_URL password": DB_PASSWORD,
    "REDIS_URL password": REDIS_PASSWORD,
    "OPS_DATABASE_URL password": OPS_DB_PASSWORD,
}
#: Values of the runbook's secret input, each given a different way.
TOKEN_AT_START = "sessAtStart7734Zx"
TOKEN_PROVIDED = "sessProvided5521Qw"
TOKEN_PER_STEP = "sessPerStep9902Er"
TOKEN_INVALID = "sessInvalid!3310Ty"  # fails the input's pattern
TOKEN_IN_CONSOLE = "sessConsole4471Ui"
TOKEN_REHEARSED = "sessRehearsed6068Op"
SECRETS = {
    **CONFIGURED,
    "OPS_DATABASE_URL password, encoded": OPS_DB_PASSWORD.replace("/", "%2F"),
    "secret input given at start": TOKEN_AT_START,
    "secret input provided": TOKEN_PROVIDED,
    "secret input given to a step": TOKEN_PER_STEP,
    "secret input that failed validation": TOKEN_INVALID,
    "secret input typed in the console": TOKEN_IN_CONSOLE,
    "secret input of a rehearsal": TOKEN_REHEARSED,
}

RUNBOOK = """\
id: secret-drill
title: Secret Drill
severity: sev3
summary: Walk steps that carry a secret session token through every kind of adapter.
owner: devops
triggers:
  - alertname: SecretDrill
inputs:
  user_id:
    description: User id
    pattern: '^[a-z0-9-]+$'
    example: u-7
  reference:
    description: Paystack transaction reference
    pattern: '^[A-Za-z0-9.=-]+$'
  token:
    description: Admin session token
    pattern: '^[A-Za-z0-9-]{8,}$'
    secret: true
detection:
  - id: backend_health
    title: Backend health
    admin_api:
      action: health
  - id: redis_ping
    title: Redis answers
    redis:
      command: ping
diagnosis:
  - id: session_lookup
    title: Look the session up
    inputs: [token]
    finding: 'Session {{ inputs.token }} is {{ body.sessions[inputs.token].state }}'
    admin_api:
      action: call
      method: GET
      path: '/api/v1/admin/sessions/{{ inputs.token | segment }}'
  - id: session_rows
    title: Users whose email is the token
    inputs: [token]
    finding: '{{ row_count }} rows match {{ inputs.token | upper }}'
    postgres:
      sql: SELECT count(*) AS matches FROM users WHERE email = %(token)s
      params:
        token: '{{ inputs.token }}'
  - id: verify_payment
    title: Verify a payment
    inputs: [reference]
    paystack:
      action: verify
      reference: '{{ inputs.reference }}'
actions:
  - id: revoke_sessions
    title: Revoke the user's sessions
    risk: write
    button: Revoke sessions
    confirm: Revoke every session of this user?
    inputs: [user_id, token]
    finding: >-
      Revoked the sessions of {{ inputs.user_id }} with token {{ inputs.token }}
      (HTTP {{ http_status }})
    admin_api:
      action: call
      method: POST
      path: /api/v1/admin/sessions/revoke
      json:
        userId: '{{ inputs.user_id }}'
        token: '{{ inputs.token }}'
  - id: revoke_by_hand
    title: Revoke from the shell
    risk: write
    confirm: Run agape-revoke for this token?
    inputs: [token]
    shell:
      command: [agape-revoke, --token, '{{ inputs.token }}']
"""


def leaks(texts: list[str]) -> list[str]:
    """Name each secret found in the texts in any case, with the text around it."""
    found = []
    for text in texts:
        for name, secret in SECRETS.items():
            at = text.lower().find(secret.lower())
            if at >= 0:
                found.append(f"{name}: …{text[max(at - 120, 0) : at + len(secret) + 40]}…")
    return found


def with_password(dsn: str, user: str, password: str) -> str:
    """Put a password into a DSN (trust authentication ignores it, so it still connects)."""
    scheme, rest = dsn.split("://", 1)
    host = rest.split("@", 1)[-1]
    return f"{scheme}://{user}:{password.replace('/', '%2F')}@{host}"


@dataclass
class Deployment:
    """The bot's settings as environment variables, every secret among them set."""

    backend_db: str
    redis_db: str
    empty_db: str
    folder: Path
    admin_url: str = ADMIN
    paystack_url: str = PAYSTACK
    runbooks: Path = field(init=False)

    def __post_init__(self) -> None:
        self.runbooks = self.folder / "runbooks"
        self.runbooks.mkdir(exist_ok=True)
        (self.runbooks / "secret-drill.yaml").write_text(RUNBOOK)

    def environment(self) -> dict[str, str]:
        return {
            "SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
            "SLACK_APP_TOKEN": SLACK_APP_TOKEN,
            "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
            "DATABASE_URL": with_password(self.backend_db, "postgres", DB_PASSWORD),
            "REDIS_URL": with_password(self.redis_db, "", REDIS_PASSWORD),
            "OPS_DATABASE_URL": with_password(self.empty_db, "postgres", OPS_DB_PASSWORD),
            "PAYSTACK_SECRET_KEY": PAYSTACK_KEY,
            "PAYSTACK_API_URL": self.paystack_url,
            "PAYSTACK_STATUS_URL": self.paystack_url,
            "ADMIN_API_URL": self.admin_url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "RUNBOOKS_DIR": str(self.runbooks),
            "OPS_RESPONDERS": f"{PERSON},bob",
            "OPS_APPROVERS": PERSON,
            "LOG_LEVEL": "DEBUG",  # the most the log ever says
        }


# In-process: the engine, the store, the exports and the log, wired by the composition root


def echo(
    request: httpx.Request, status: int, extra: dict[str, Any] | None = None
) -> httpx.Response:
    """Answer like a careless server: repeat the credentials, path and body it was sent."""
    return httpx.Response(
        status,
        json={
            "authorization": request.headers.get("Authorization", ""),
            "path": request.url.path,
            "received": request.content.decode() or None,
            **(extra or {}),
        },
    )


class Sessions:
    """The admin API's session endpoints: one answer per call, from a script of statuses.

    Each answer lists the session the path names, except when the script says ``(status,
    False)``: then a finding that looks the session up cannot render.
    """

    def __init__(self, script: list[tuple[int, bool]]) -> None:
        self.script = script
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        status, listed = self.script.pop(0) if self.script else (500, True)
        token = request.url.path.rsplit("/", 1)[-1]
        return echo(request, status, {"sessions": {token: {"state": "active"}} if listed else {}})


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Give the root logger back as it was: the composition root replaces its handlers."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
async def bot(
    backend_db: str, redis_db: str, empty_db: str, tmp_path: Path, restore_logging: None
) -> AsyncIterator[tuple[Container, io.StringIO]]:
    """Build the bot with every secret set; return it and its log handler's stream."""
    env = Deployment(backend_db, redis_db, empty_db, tmp_path).environment()
    settings = Settings.model_validate({key.lower(): value for key, value in env.items()})
    assert set(CONFIGURED.values()) <= set(settings.secrets())
    container = await build(settings)
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield container, stream
    finally:
        await container.aclose()


@dataclass
class Shown:
    """Drives the engine as a surface would, keeping everything a surface would show."""

    engine: Engine
    texts: list[str] = field(default_factory=list)
    clicks: int = 0

    def __post_init__(self) -> None:
        self.engine.subscribe(self.event)

    async def event(self, event: Event) -> None:
        self.texts.append(json.dumps(asdict(event), default=str))

    def key(self) -> str:
        self.clicks += 1
        return f"click-{self.clicks}"

    async def send(self, command: Command) -> Outcome:
        outcome = await self.engine.execute(command)
        self.texts.append(outcome.message)
        if outcome.result is not None:
            self.texts.append(outcome.result.model_dump_json())
        for record in (outcome.step, outcome.run):
            if record is not None:
                self.texts.append(json.dumps(asdict(record), default=str))
        return outcome

    async def step(self, run_id: str, step_id: str, **inputs: str) -> Outcome:
        return await self.send(RunStep(run_id, step_id, PERSON, self.key(), inputs=inputs))

    async def confirmed(self, run_id: str, step_id: str, **inputs: str) -> Outcome:
        command = RunStep(run_id, step_id, PERSON, self.key(), inputs=inputs, confirmed=True)
        return await self.send(command)

    async def plan(self, run_id: str, step_id: str, **inputs: str) -> None:
        planned = await self.engine.plan(run_id, step_id, inputs)
        self.texts.extend([planned.description, planned.error or ""])
        if planned.preview is not None:
            self.texts.append(planned.preview.model_dump_json())


async def walk_a_real_run(shown: Shown) -> str:
    """Open a run with a secret input and run every step, on success and failure paths."""
    opened = await shown.send(
        StartRun(
            "secret-drill",
            PERSON,
            shown.key(),
            inputs={"user_id": "u-7", "token": TOKEN_AT_START},
        )
    )
    assert opened.ok, opened.message
    assert opened.run is not None
    run_id = opened.run.id
    # A read whose URL path carries the secret: found, then a finding that cannot render (its
    # error names the key it missed), then refused (the error names the path). A secret is
    # never kept, so each step that needs it is given it.
    token = TOKEN_AT_START
    await shown.plan(run_id, "session_lookup", token=token)
    assert (await shown.step(run_id, "session_lookup", token=token)).ok
    unrendered = await shown.step(run_id, "session_lookup", token=token)
    assert "finding not rendered" in unrendered.message
    assert not (await shown.step(run_id, "session_lookup", token=token)).ok
    asked = await shown.step(run_id, "session_lookup")
    assert asked.needs_inputs == ["token"]
    # A bound SQL parameter, planned and run; a configured secret echoed by Paystack.
    await shown.plan(run_id, "session_rows", token=token)
    assert (await shown.step(run_id, "session_rows", token=token)).ok
    assert not (await shown.step(run_id, "verify_payment", reference="T-1")).ok
    # A secret offered to the run is refused (never kept); bad ones, later and at the start.
    provided = await shown.send(ProvideInput(run_id, "token", TOKEN_PROVIDED, PERSON, shown.key()))
    assert not provided.ok
    assert "never keeps it" in provided.message
    bad = await shown.send(ProvideInput(run_id, "token", TOKEN_INVALID, PERSON, shown.key()))
    assert not bad.ok
    bad_start = StartRun("secret-drill", PERSON, shown.key(), inputs={"token": TOKEN_INVALID})
    assert not (await shown.send(bad_start)).ok
    # The write: planned, asked to confirm, done; then given another token, and failing.
    await shown.plan(run_id, "revoke_sessions", user_id="u-7", token=TOKEN_PROVIDED)
    asked = await shown.step(run_id, "revoke_sessions", user_id="u-7", token=TOKEN_PROVIDED)
    assert asked.needs_confirmation
    done = await shown.confirmed(run_id, "revoke_sessions", user_id="u-7", token=TOKEN_PROVIDED)
    assert done.ok, done.message
    assert done.message == f"Revoked the sessions of u-7 with token {MASK} (HTTP 200)"
    await shown.plan(run_id, "revoke_sessions", user_id="u-7", token=TOKEN_PER_STEP)
    again = await shown.confirmed(run_id, "revoke_sessions", user_id="u-7", token=TOKEN_PER_STEP)
    assert not again.ok
    # Shell steps are off: the step hands over the command to run by hand, its token masked.
    await shown.plan(run_id, "revoke_by_hand", token=TOKEN_PER_STEP)
    handed = await shown.step(run_id, "revoke_by_hand", token=TOKEN_PER_STEP)
    assert handed.ok, handed.message
    assert handed.message.endswith(f"run it by hand: agape-revoke --token '{MASK}'")
    for state in ("resolved", "closed"):
        assert (await shown.send(SetState(run_id, state, PERSON, shown.key()))).ok
    return run_id


async def walk_a_rehearsal(shown: Shown) -> None:
    """Open a rehearsal with a secret input, from an alert that quotes configured secrets:
    its writes are shown instead of made."""
    alert = Alert(
        title=f"DB down: postgresql://app:{DB_PASSWORD}@db.internal/agape",
        text=f"admin API refused Bearer {ADMIN_TOKEN}",
        labels={"alertname": "SecretDrill", "key": PAYSTACK_KEY},
    )
    opened = await shown.send(
        StartRun(
            "secret-drill",
            PERSON,
            shown.key(),
            alert=alert,
            inputs={"user_id": "u-8", "token": TOKEN_REHEARSED},
            rehearsal=True,
        )
    )
    assert opened.run is not None
    for step_id in ("revoke_sessions", "revoke_by_hand"):
        given = {"token": TOKEN_REHEARSED} | (
            {"user_id": "u-8"} if step_id == "revoke_sessions" else {}
        )
        await shown.plan(opened.run.id, step_id, **given)
        rehearsed = await shown.confirmed(opened.run.id, step_id, **given)
        assert rehearsed.message.startswith("Rehearsal, not executed. Would run: ")
        assert MASK in rehearsed.message


async def stored_and_exported(container: Container, store_dsn: str) -> list[str]:
    """Return every row of every table of the store, and each run as the exports show it."""
    texts = []
    async with await psycopg.AsyncConnection.connect(store_dsn) as conn:
        tables = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in await tables.fetchall():
            rows = await conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
            texts.append(f"{table}: {await rows.fetchall()!r}")
    assert any(text.startswith("ops_commands: ") for text in texts)
    store = container.store
    for run in await store.list_runs(limit=10):
        runbook = container.catalog.runbooks.get(run.runbook_id)
        steps = await store.get_steps(run.id)
        events = await store.events(run.id)
        texts.append(json.dumps(asdict(run), default=str))
        texts.extend(json.dumps(asdict(record), default=str) for record in steps.values())
        texts.extend(json.dumps(asdict(event), default=str) for event in events)
        texts.append(render_markdown(run, runbook, steps, events))
        texts.append(json.dumps(render_json(run, runbook, steps, events)))
    return texts


async def test_no_secret_reaches_the_timeline_the_store_the_exports_or_the_log(
    bot: tuple[Container, io.StringIO], empty_db: str
) -> None:
    container, log = bot
    shown = Shown(container.engine)
    sessions = Sessions([(200, True), (200, False), (401, True)])
    revokes = Sessions([(200, True), (500, True)])
    with respx.mock(assert_all_called=False) as mock:
        mock.get(f"{ADMIN}/healthz").mock(
            return_value=httpx.Response(200, json={"status": "ok", "checks": {"db": "ok"}})
        )
        mock.get(url__startswith=f"{ADMIN}/api/v1/admin/sessions/").mock(side_effect=sessions)
        mock.post(f"{ADMIN}/api/v1/admin/sessions/revoke").mock(side_effect=revokes)
        mock.get(url__startswith=f"{PAYSTACK}/api/v2/").mock(side_effect=lambda r: echo(r, 503))
        mock.get(f"{PAYSTACK}/transaction/verify/T-1").mock(side_effect=lambda r: echo(r, 418))
        await walk_a_real_run(shown)
        await walk_a_rehearsal(shown)
        for adapter in container.adapters.values():
            shown.texts.append((await adapter.probe()).detail)

    # The secrets reached the systems that needed them: the bot used them, it did not lose them.
    assert TOKEN_AT_START in sessions.seen[0].url.path
    assert json.loads(revokes.seen[0].content) == {"userId": "u-7", "token": TOKEN_PROVIDED}
    assert json.loads(revokes.seen[1].content) == {"userId": "u-7", "token": TOKEN_PER_STEP}
    assert len(revokes.seen) == 2  # the rehearsal sent nothing
    stored = await stored_and_exported(container, empty_db)
    logged = log.getvalue()
    everything = [*shown.texts, *stored, logged]
    assert not leaks(everything), "\n".join(leaks(everything))
    assert f"{ADMIN}/api/v1/admin/sessions/{MASK}" in logged  # httpx logged the URL, masked
    assert any("Would run: POST" in text and MASK in text for text in stored)


async def test_a_secret_input_is_never_stored_so_another_process_asks_for_it_again(
    bot: tuple[Container, io.StringIO],
) -> None:
    container, _ = bot
    shown = Shown(container.engine)
    inputs = {"user_id": "u-7", "token": TOKEN_AT_START}
    opened = await shown.send(StartRun("secret-drill", PERSON, "open", inputs=inputs, auto=False))
    assert opened.run is not None
    stored = await container.store.get_run(opened.run.id)
    assert stored is not None
    assert stored.inputs == {"user_id": "u-7"}
    here = await container.engine.plan(opened.run.id, "revoke_sessions", {})
    assert here.missing_inputs == ("user_id", "token")  # a change asks its presser for both
    given = await container.engine.plan(
        opened.run.id, "revoke_sessions", {"user_id": "u-7", "token": TOKEN_AT_START}
    )
    assert f'"token": "{MASK}"' in given.description

    elsewhere = Engine(  # another process (or this one restarted) over the same store
        runbooks=container.catalog.runbooks,
        store=container.store,
        adapters=container.adapters,
        permissions=permissions_for(container.settings, container.team),
    )
    there = await elsewhere.plan(opened.run.id, "revoke_sessions", {"user_id": "u-7"})
    assert there.missing_inputs == ("token",)
    await shown.send(SetState(opened.run.id, "resolved", PERSON, "resolve"))
    await shown.send(SetState(opened.run.id, "closed", PERSON, "close"))


# The console and the CLI, as a person runs them


def admin_route(seen: list[Seen]) -> Route:
    """Answer the admin API like a careless server: echo the credentials, path and body."""

    def route(request: Seen) -> Answer:
        seen.append(request)
        if request.path == "/healthz":
            return Answer(200, {"status": "ok", "checks": {"db": "ok"}})
        token = request.path.rsplit("/", 1)[-1]
        return Answer(
            200,
            {
                "authorization": request.headers.get("authorization"),
                "path": request.path,
                "received": request.body,
                "sessions": {token: {"state": "active"}},
            },
        )

    return route


def paystack_route(request: Seen) -> Answer:
    """Answer the status page; answer every API call with an error that echoes the key."""
    if request.path == "/api/v2/status.json":
        return Answer(200, {"status": {"indicator": "none", "description": "All good"}})
    return Answer(
        418, {"message": "upstream failure", "echo": request.headers.get("authorization")}
    )


@pytest.fixture
def services() -> Iterator[tuple[FakeService, FakeService, list[Seen]]]:
    seen: list[Seen] = []
    with serve(admin_route(seen)) as admin, serve(paystack_route) as paystack:
        yield admin, paystack, seen


Invocation = tuple[dict[str, str], tuple[str, ...], str]


def agape(*invocations: Invocation, cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Run `agape-ops` once per (environment, arguments, stdin), all at once; wait for all."""
    started = [
        (
            subprocess.Popen(
                [AGAPE, *args],
                env=env,
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
            stdin,
        )
        for env, args, stdin in invocations
    ]
    done = []
    for process, stdin in started:
        out, err = process.communicate(stdin, timeout=60)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


#: A console session typed in full: steps are 1 health, 2 Redis, 3 session lookup, 4 session
#: rows, 5 verify, 6 revoke, 7 revoke from the shell. The token is never kept, so every step
#: that needs it asks for it.
CONSOLE_SESSION = [
    "/ops start secret-drill user_id=u-7",
    "3",
    TOKEN_IN_CONSOLE,
    "4",
    TOKEN_IN_CONSOLE,
    "5",
    "T-1",
    "6",
    "",  # user_id: Enter keeps the one the run was started with
    TOKEN_IN_CONSOLE,
    "yes",
    "7",
    TOKEN_IN_CONSOLE,
    "yes",
    "/ops status",
    "/ops timeline",
    "/ops timeline json",
    "/ops resolve",
    "/ops close",
]
REHEARSAL_SESSION = ["/ops start secret-drill user_id=u-8", "6", "", TOKEN_REHEARSED, "yes"]


def test_no_secret_reaches_the_console_or_the_command_line_output(
    backend_db: str,
    redis_db: str,
    empty_db: str,
    tmp_path: Path,
    services: tuple[FakeService, FakeService, list[Seen]],
) -> None:
    admin, paystack, seen = services
    deployment = Deployment(backend_db, redis_db, empty_db, tmp_path, admin.url, paystack.url)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "COLUMNS": "220",
        **deployment.environment(),
    }
    misconfigured = {**env, "OPS_CONNECT_TIMEOUT_S": ADMIN_TOKEN}  # pasted in the wrong place
    unreachable = f"postgresql://ops:{OPS_DB_PASSWORD.replace('/', '%2F')}@127.0.0.1:1/ops"

    [console] = agape((env, ("console", "--as", PERSON), "\n".join(CONSOLE_SESSION)), cwd=tmp_path)
    [rehearsal] = agape(
        (env, ("console", "--as", PERSON, "--dry-run"), "\n".join(REHEARSAL_SESSION)), cwd=tmp_path
    )
    commands = agape(
        (env, ("timeline", "INC-1"), ""),
        (env, ("timeline", "INC-1", "--format", "json"), ""),
        (env, ("timeline", "REH-1", "--format", "json"), ""),
        (env, ("runs",), ""),
        (env, ("check",), ""),
        (misconfigured, ("check",), ""),
        ({**env, "OPS_DATABASE_URL": unreachable}, ("runs",), ""),
        cwd=tmp_path,
    )

    outputs = [console.stdout, console.stderr, rehearsal.stdout, rehearsal.stderr]
    outputs += [text for done in commands for text in (done.stdout, done.stderr)]
    assert not leaks(outputs), "\n".join(leaks(outputs))
    assert console.returncode == 1, console.stderr  # the verify and shell steps failed
    assert "token> (hidden)" in console.stdout
    assert "Revoke every session of this user?" in console.stdout
    assert f"Revoked the sessions of u-7 with token {MASK}" in console.stdout
    assert "INC-1 closed by alice" in console.stdout
    assert "Rehearsal, not executed. Would run: POST" in rehearsal.stdout
    assert [done.returncode for done in commands] == [0, 0, 0, 0, 0, 2, 2]
    assert "invalid settings: OPS_CONNECT_TIMEOUT_S" in commands[5].stderr
    assert "store database unreachable: connection refused" in commands[6].stderr
    assert "Traceback" not in "".join(outputs)
    revokes = [s for s in seen if s.path == "/api/v1/admin/sessions/revoke"]
    assert [r.body for r in revokes] == [{"userId": "u-7", "token": TOKEN_IN_CONSOLE}]
    assert any(TOKEN_IN_CONSOLE in s.path for s in seen)
