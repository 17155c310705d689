"""The demo world, driven as a person drives it: `agape-ops demo` in a shell, lines typed in.

The README's example session is the first test's script and its expected output, so the
README cannot drift from what the demo prints.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from demo_fixtures import AGAPE, DEADLINE_S, REPO, Demo, base_env, demo
from fake_slack import FakeSlack
from slack_fixtures import free_port

from agape_ops.demo.world import ALERTS

pytestmark = pytest.mark.e2e

__all__ = ["demo"]  # the fixture, used by name below

#: Where the console waits for a line: its prompt, and the question before a write.
PROMPT = re.compile(
    r"^(?:agape-ops> |DEMO-\d+> |Type yes to go ahead \(anything else cancels\): )(?P<typed>.*)$"
)
CLOCK = re.compile(r"\b\d\d:\d\d:\d\d\b")
DURATION = re.compile(r"\(\d+ ms\)")


@dataclass
class Script:
    """The README's session: what is typed, and the lines it shows, in order."""

    typed: list[str]
    shown: list[str]


def readme_session() -> Script:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- demo-session -->", 1)[1].split("<!-- /demo-session -->", 1)[0]
    lines = [line.removeprefix("    ") for line in block.strip("\n").splitlines()]
    assert lines[0] == "$ make demo"
    script = Script([], [])
    for line in lines[1:]:
        if line == "...":
            continue
        script.shown.append(line)
        if match := PROMPT.match(line):
            script.typed.append(match.group("typed"))
    return script


def normal(line: str) -> str:
    """A line with its clock times and durations blanked: they differ from run to run."""
    return DURATION.sub("(N ms)", CLOCK.sub("HH:MM:SS", line.rstrip()))


def shows(output: list[str], expected: str) -> bool:
    if expected.endswith("…"):
        return any(line.startswith(expected[:-1]) for line in output)
    return expected in output


def test_the_readme_session_is_what_the_demo_prints(demo: Demo) -> None:
    script = readme_session()

    result = demo.run(
        "demo", "--reset", stdin="\n".join(script.typed) + "\n", env={"COLUMNS": "200"}
    )

    assert result.returncode == 0, result.stdout + result.stderr
    output = [normal(line) for line in result.stdout.splitlines()]
    assert output[0].startswith("DEMO: ")
    position = 0
    for expected in (normal(line) for line in script.shown):
        later = output[position:]
        assert shows(later, expected), f"the demo never printed (after line {position}):\n" + (
            f"{expected}\n--- it printed:\n" + "\n".join(output)
        )
        position += next(
            i for i, line in enumerate(later) if line == expected or line.startswith(expected[:-1])
        )


def test_every_runbook_finds_its_trouble_in_the_demo_world(demo: Demo) -> None:
    typed = "".join(f"alert {text}\n" for text in ALERTS.values())

    result = demo.run("demo", "--reset", stdin=typed, env={"COLUMNS": "400"})

    assert result.returncode == 0, result.stdout + result.stderr
    runs = re.split(r"(?m)^\d\d:\d\d:\d\d · alice: DEMO-\d+ opened: ", result.stdout)[1:]
    assert len(runs) == 7
    expected = [
        "Webhook failure rate over the last 15 minutes: 23.1% (3 of 13 webhooks failed)",
        "1 of 3 orders still in pending_payment are paid at Paystack: PSK-1001 (order AG-2001, "
        "failed webhook",
        "Backend /healthz: error (HTTP 503); db: timeout acquiring a connection (pool exhausted)",
        "2 SKUs have stock below zero: TEE-RED-M (-3), CAP-BLK (-1)",
        "Failed logins in the last hour by IP: 185.220.101.7 (40), 41.58.12.9 (3)",
        "5xx error rate over the last 5 minutes: 7.10% of requests (threshold 2%)",
        "Email queue backlog: 150 pending jobs (threshold 100)",
    ]
    for run, finding in zip(runs, expected, strict=True):
        assert f"! agape-ops: {finding}" in run, run


def test_the_demo_never_touches_the_configured_backend(demo: Demo, backend_db: str) -> None:
    result = demo.run(
        "demo",
        "--reset",
        stdin=f"alert {ALERTS['inventory-oversell']}\n5\nyes\n",
        env={"DATABASE_URL": backend_db},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stock set to 0 on 2 product variants" in result.stdout
    with psycopg.connect(backend_db) as conn:
        row = conn.execute("SELECT count(*) FROM product_variants").fetchone()
    assert row == (0,)  # the backend's database got no demo rows and no write


def test_the_demo_refuses_to_reuse_the_backends_database_as_its_sandbox(demo: Demo) -> None:
    result = demo.run("demo", env={"DATABASE_URL": demo.database_url})

    assert result.returncode == 2
    assert "OPS_DEMO_DATABASE_URL names the same database as DATABASE_URL" in result.stderr


def test_the_world_is_kept_between_sessions_and_reset_lays_it_out_afresh(demo: Demo) -> None:
    fix = f"alert {ALERTS['inventory-oversell']}\n5\nyes\n"
    assert demo.run("demo", "--reset", stdin=fix).returncode == 0

    kept = demo.run("demo", stdin="/ops start inventory-oversell\n")
    again = demo.run("demo", "--reset", stdin=f"alert {ALERTS['inventory-oversell']}\n")

    assert "kept from last time" in kept.stdout.splitlines()[0]
    assert "✓ agape-ops: 0 SKUs have stock below zero" in kept.stdout  # the fix stayed
    assert "DEMO-2 opened" in kept.stdout  # and so did the demo's own runs
    assert "laid out now" in again.stdout.splitlines()[0]
    assert "2 SKUs have stock below zero: TEE-RED-M (-3), CAP-BLK (-1)" in again.stdout
    assert "DEMO-1 opened" in again.stdout


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (
            "OPS_DEMO_DATABASE_URL",
            "postgresql://postgres@127.0.0.1:1/agape_ops_demo",
            "the demo needs PostgreSQL and none is answering at 127.0.0.1:1",
        ),
        (
            "OPS_DEMO_REDIS_URL",
            "redis://127.0.0.1:1/15",
            "the demo needs Redis and none is answering at redis://127.0.0.1:1/15",
        ),
    ],
)
def test_a_server_that_is_not_running_is_named_with_how_to_start_it(
    demo: Demo, variable: str, value: str, said: str
) -> None:
    result = demo.run("demo", env={variable: value})

    assert result.returncode == 2
    assert said in result.stderr
    assert "start it (" in result.stderr
    assert "Traceback" not in result.stderr


def test_make_run_without_a_backend_opens_the_demo_and_says_so(demo: Demo) -> None:
    result = demo.run("run", stdin="")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("No backend is configured")
    assert lines[1].startswith("DEMO: ")
    assert "agape-ops> " in result.stdout


def test_env_example_as_shipped_starts_every_command(demo: Demo, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text((REPO / ".env.example").read_text(encoding="utf-8"))
    (project / "runbooks").symlink_to(REPO / "runbooks")
    (project / "team.yaml").symlink_to(REPO / "team.yaml")
    # The status page is the only default that leaves the machine: keep the test on loopback.
    offline = {**base_env(tmp_path), "PAYSTACK_STATUS_URL": "http://127.0.0.1:1"}
    for args, stdin, codes in (
        (["check"], "", {0}),
        (["lint"], "", {0}),
        (["runbooks"], "", {0}),
        (["show", "inventory-oversell"], "", {0}),
        (["schema"], "", {0}),
        (["runs"], "", {0}),
        (["timeline", "INC-1"], "", {1}),
        (["console"], "quit\n", {0}),
    ):
        result = demo.run(*args, stdin=stdin, cwd=project, env=offline)
        said = result.stdout + result.stderr
        assert result.returncode in codes, f"{args}: {said}"
        assert "invalid settings" not in said, args
        assert "Traceback" not in said, args
    assert not (project / "agape-ops.db").exists()


def test_the_console_started_elsewhere_says_where_it_looked_for_runbooks(
    demo: Demo, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    result = demo.run("console", stdin="quit\n", cwd=elsewhere)

    first = result.stderr.splitlines()[0]
    assert f"no runbooks loaded: {elsewhere}/runbooks does not exist" in first
    assert "OPS_RUNBOOKS_DIR" in first
    assert not (elsewhere / "agape-ops.db").exists()
    assert (tmp_path / "data" / "agape-ops" / "agape-ops.db").exists()


def test_make_run_with_a_backend_and_slack_serves_slack(demo: Demo, backend_db: str) -> None:
    with FakeSlack.in_thread() as slack:
        port = free_port()
        env = {
            **demo.env,
            "DATABASE_URL": backend_db,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": "signing-secret",
            "SLACK_API_URL": slack.api_url,
            "PORT": str(port),
        }
        with subprocess.Popen(
            [AGAPE, "run"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        ) as bot:
            try:
                deadline = time.monotonic() + DEADLINE_S
                while not _answers(f"http://127.0.0.1:{port}/healthz"):
                    assert bot.poll() is None, bot.stderr.read() if bot.stderr else ""
                    assert time.monotonic() < deadline, "serve never answered /healthz"
                    time.sleep(0.1)
            finally:
                bot.send_signal(signal.SIGTERM)
                out, _err = bot.communicate(timeout=DEADLINE_S)
        assert bot.returncode == 0
        assert out.splitlines()[0] == "Slack is configured: serving it (`agape-ops serve`)."
        assert not any(line.startswith("DEMO") for line in out.splitlines())


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_make_run_with_a_backend_and_no_slack_opens_the_console(
    demo: Demo, backend_db: str
) -> None:
    result = demo.run("run", stdin="", env={"DATABASE_URL": backend_db})

    assert result.returncode == 0, result.stderr
    assert not any(line.startswith("DEMO") for line in result.stdout.splitlines())
    assert "agape-ops console: 7 runbooks loaded" in result.stdout
