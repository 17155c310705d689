"""Shell and URL hazards are lint errors: what the red team ran through lint no longer passes.

A template as the program, an interpreter given code with ``-c``/``-e``, a shell step that runs
by itself or as a read, a URL built from an input, an admin path an input can climb out of.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agape_ops.runbooks.hazards import path_escape, shell_hazard
from agape_ops.runbooks.lint import lint_paths
from agape_ops.runbooks.loader import load_runbook_file
from agape_ops.runbooks.model import Risk

HEADER = (
    "id: hazard\ntitle: Hazard\nseverity: sev3\nsummary: Hostile.\nowner: platform\n"
    "inputs:\n  prog: {description: a program}\n  p: {description: a path part}\n"
)


def lint(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "hazard.yaml"
    path.write_text(HEADER + body, encoding="utf-8")
    return [problem.message for problem in lint_paths([path])]


def shell_step(command: str, *, extra: str = "    risk: write\n    confirm: Run?\n") -> str:
    return (
        f"actions:\n  - id: run\n    title: Run\n{extra}    inputs: [prog]\n"
        f"    shell:\n      command: {command}\n"
    )


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ('["{{ inputs.prog }}", --help]', "is a template; a shell step names its program"),
        ('[sh, -c, "pm2 restart all"]', "sh -c runs code given as text"),
        ('[/bin/bash, -lc, "pm2 restart all"]', "/bin/bash -lc runs code"),
        ('[dash, -e, -c, "id"]', "dash -c runs code"),
        ('[env, zsh, -c, "id"]', "zsh -c runs code"),
        ('[bash, -o, pipefail, -c, "id"]', "bash -c runs code"),
        ('[python3.11, -c, "print(1)"]', "python3.11 -c runs code"),
        ('[node, --eval, "1"]', "node --eval runs code"),
        ('[perl, -e, "1"]', "perl -e runs code"),
    ],
)
def test_a_shell_step_never_runs_a_chosen_program_or_code_given_as_text(
    tmp_path: Path, command: str, words: str
) -> None:
    messages = lint(tmp_path, shell_step(command))
    assert any(words in m for m in messages), messages


@pytest.mark.parametrize(
    "command",
    [
        "[pm2, restart, agape-backend]",
        "[bash, scripts/drain.sh, -c]",  # -c after the script is the script's own argument
        '[python3, scripts/requeue.py, "{{ inputs.prog }}"]',
    ],
)
def test_argument_lists_that_run_a_named_program_pass(tmp_path: Path, command: str) -> None:
    assert lint(tmp_path, shell_step(command)) == []


def test_a_shell_step_is_never_a_read_and_never_runs_by_itself(tmp_path: Path) -> None:
    messages = lint(tmp_path, shell_step("[pm2, status]", extra="    auto: true\n"))
    assert any("mark it `risk: write`" in m for m in messages), messages
    assert any("never runs by itself" in m for m in messages), messages
    path = tmp_path / "detect.yaml"
    path.write_text(
        HEADER.replace("id: hazard", "id: detect")
        + "detection:\n  - id: ps\n    title: Processes\n    risk: write\n    confirm: Run?\n"
        "    shell: {command: [pm2, status]}\n"
        "  - id: up\n    title: Up\n    http: {url: 'https://shop.test/healthz'}\n",
        encoding="utf-8",
    )
    runbook, _ = load_runbook_file(path)
    runbook = runbook.model_copy(
        update={"detection": [s.model_copy(update={"risk": Risk.READ}) for s in runbook.detection]}
    )
    assert [s.id for s in runbook.auto_steps()] == ["up"]


def http_step(url: str) -> str:
    return (
        "diagnosis:\n  - id: fetch\n    title: Fetch\n    inputs: [p]\n"
        f"    http: {{url: '{url}'}}\n"
    )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("{{ inputs.p }}", "http url must start with an origin"),
        ("https://{{ inputs.p }}/x", "http url must start with an origin"),
        ("{{ settings.admin_api_url }}/{{ inputs.p }}", "inserts '{{ inputs.p }}' unencoded"),
        ("https://shop.test/api/{{ inputs.p | lower }}", "unencoded"),
        ("https://shop.test/a/../admin", "would leave its endpoint"),
        ("https://shop.test/a/%2e%2E/admin", "would leave its endpoint"),
        ("https://shop.test/x?q={{ inputs.p | segment }}", "not in the query string"),
        ("https://shop.test{{ inputs.p | segment }}", "must go on with / after its origin"),
    ],
)
def test_an_http_url_is_a_declared_origin_plus_a_path_of_encoded_segments(
    tmp_path: Path, url: str, words: str
) -> None:
    messages = lint(tmp_path, http_step(url))
    assert any(words in m for m in messages), messages


@pytest.mark.parametrize(
    "url",
    [
        "{{ settings.paystack_status_url }}/api/v2/status.json",
        "https://status.cloudinary.com",
        "https://shop.test/orders/{{ inputs.p | segment }}/status?verbose=1",
    ],
)
def test_declared_origins_with_encoded_segments_pass(tmp_path: Path, url: str) -> None:
    assert lint(tmp_path, http_step(url)) == []


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/api/v1/admin/{{ inputs.p }}", "unencoded"),
        ("/api/healthz", "must start with /api/v1/admin/"),
        ("/api/v1/admin/../../healthz", "would leave its endpoint"),
    ],
)
def test_an_admin_path_stays_under_the_admin_api(tmp_path: Path, path: str, words: str) -> None:
    body = (
        "diagnosis:\n  - id: call\n    title: Call\n    inputs: [p]\n"
        f"    admin_api: {{action: call, method: GET, path: '{path}'}}\n"
    )
    messages = lint(tmp_path, body)
    assert any(words in m for m in messages), messages


@pytest.mark.parametrize(
    "path",
    ["/a/../b", "/a/%2e%2e/b", "/a/%252E%252e/b", "/a/b%2fc", "/a?b", "/a%23b", "/a\\b", "/."],
)
def test_every_spelling_of_a_climb_is_an_escape(path: str) -> None:
    assert path_escape(path) is not None


def test_plain_paths_and_programs_are_no_hazard() -> None:
    assert path_escape("/api/v1/admin/sessions/abc.def-1%20x") is None
    assert shell_hazard(["docker-compose", "restart", "api"]) is None


DSN_INPUTS = (
    "  url: {description: the new primary, secret: true}\n"
    "  plain: {description: a URL anyone may read}\n"
)


def dsn_step(name: str, *, inputs: str, extra: str = "") -> str:
    return (
        f"actions:\n  - id: probe\n    title: Probe\n{extra}    inputs: {inputs}\n"
        f"    postgres:\n      dsn_input: {name}\n      sql: SELECT 1 AS one\n"
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (dsn_step("url", inputs="[url]"), None),
        (dsn_step("plain", inputs="[plain]"), "needs `plain` declared under `inputs:` with"),
        (dsn_step("nowhere", inputs="[]"), "needs `nowhere` declared under `inputs:` with"),
        (dsn_step("url", inputs="[]"), "needs `url` in the step's `inputs:`, so it is asked"),
        (
            dsn_step("url", inputs="[url]", extra="    risk: write\n    confirm: Go?\n"),
            "`dsn_input` is for reads only",
        ),
    ],
)
def test_a_read_of_a_named_database_takes_its_url_from_a_secret_input_it_asks(
    tmp_path: Path, body: str, words: str | None
) -> None:
    path = tmp_path / "hazard.yaml"
    path.write_text(HEADER + DSN_INPUTS + body, encoding="utf-8")
    messages = [p.message for p in lint_paths([path])]
    dsn = [m for m in messages if "dsn_input" in m]
    assert dsn == ([] if words is None else [next(m for m in dsn if words in m)]), messages
