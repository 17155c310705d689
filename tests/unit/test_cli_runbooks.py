"""The runbook commands: lint, schema, runbooks and show, driven through click's test runner."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agape_ops.cli import build

FIXTURES = Path(__file__).parent.parent / "fixtures"
PROBLEM_LINE = re.compile(r"^(?P<path>[^:]+\.ya?ml):(?P<line>\d+):(?P<col>\d+): .+$")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with RUNBOOKS_DIR pointing at an empty runbooks/ inside it."""
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNBOOKS_DIR", str(runbooks))
    monkeypatch.delenv("OPS_TEAM_FILE", raising=False)
    return tmp_path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build(), list(args), catch_exceptions=False)


def add(home: Path, *names: str) -> None:
    for name in names:
        kind = "good" if (FIXTURES / "good" / name).exists() else "broken"
        shutil.copy(FIXTURES / kind / name, home / "runbooks" / name)


# --- lint -------------------------------------------------------------------------------------


def test_lint_of_good_runbooks_exits_0_and_says_so_on_stderr(home: Path) -> None:
    result = invoke("lint", str(FIXTURES / "good"))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.strip() == "2 runbooks OK"


def test_lint_prints_one_located_line_per_problem_and_exits_1(home: Path) -> None:
    broken = FIXTURES / "broken"
    result = invoke("lint", str(broken / "unknown-field.yaml"), str(broken / "placeholders.yaml"))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 7
    for line in lines:
        assert PROBLEM_LINE.match(line), line
    assert f"{broken / 'unknown-field.yaml'}:11:11: when reads `failure_rate`" in result.stdout
    assert result.stderr.strip() == "7 problems in 2 files"


def test_lint_without_paths_reads_runbooks_dir_and_the_local_team_file(home: Path) -> None:
    add(home, "minimal.yaml")
    (home / "team.yaml").write_text("responders: U1\n")
    result = invoke("lint")
    assert result.exit_code == 1
    assert result.stdout.startswith("team.yaml:1:13: responders: Input should be a valid list")
    (home / "team.yaml").write_text("responders: [U1]\n")
    result = invoke("lint")
    assert result.exit_code == 0
    assert result.stderr.strip() == "1 runbook OK (and team file team.yaml)"


def test_lint_takes_the_team_file_from_ops_team_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(home, "minimal.yaml")
    monkeypatch.setenv("OPS_TEAM_FILE", str(home / "elsewhere.yaml"))
    result = invoke("lint")
    assert result.exit_code == 1
    assert result.stdout.strip() == (
        f"{home / 'elsewhere.yaml'}:1:1: no such team file (OPS_TEAM_FILE names it)"
    )


def test_lint_of_an_empty_runbooks_dir_fails(home: Path) -> None:
    result = invoke("lint")
    assert result.exit_code == 1
    assert "no runbook files (*.yaml) in this folder" in result.stdout


def test_lint_rewords_a_string_shell_command(home: Path) -> None:
    result = invoke("lint", str(FIXTURES / "broken" / "shell-string-command.yaml"))
    assert result.exit_code == 1
    assert result.stdout.strip().endswith(
        ":12:16: shell command must be an argument list, e.g. [pm2, restart, agape-backend], "
        "not a string"
    )


def test_invalid_settings_are_named_without_their_values(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "not-a-port")
    result = CliRunner().invoke(build(), ["lint"])
    assert result.exit_code == 1
    assert "invalid settings: PORT" in result.stderr
    assert "not-a-port" not in result.stderr


# --- schema -----------------------------------------------------------------------------------


def test_schema_prints_the_runbook_json_schema(home: Path) -> None:
    result = invoke("schema")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["title"] == "agape-ops runbook"
    assert {"id", "title", "severity", "detection", "recovery"} <= set(document["properties"])
    assert document["additionalProperties"] is False
    assert "json" in document["$defs"]["AdminApiCall"]["properties"]


def test_schema_team_prints_the_team_file_schema(home: Path) -> None:
    document = json.loads(invoke("schema", "--team").stdout)
    assert document["title"] == "agape-ops team file"
    assert {"responders", "approvers", "escalation"} <= set(document["properties"])


# --- runbooks ---------------------------------------------------------------------------------


def test_runbooks_lists_id_severity_steps_title_and_alerts(home: Path) -> None:
    add(home, "minimal.yaml", "full.yaml")
    result = invoke("runbooks")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines]
    assert cells == [
        ["ID", "SEVERITY", "STEPS", "TITLE", "ALERTS"],
        ["full", "sev2", "21", "Everything at once", "PaymentGatewayOutage"],
        ["minimal", "sev4", "0", "Minimal runbook", "-"],
    ]
    assert result.stderr == ""


def test_runbooks_reports_invalid_ones_loudly_and_still_lists_the_rest(home: Path) -> None:
    add(home, "minimal.yaml", "unknown-table.yaml", "yaml-syntax.yaml")
    result = invoke("runbooks")
    assert result.exit_code == 1
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["ID", "minimal"]
    assert result.stderr.startswith("INVALID: 4 problems kept runbooks out of")
    assert "unknown-table.yaml:10:27: sql: table webhook_event" in result.stderr
    assert "yaml-syntax.yaml:10:15: YAML syntax: the [ opened" in result.stderr


def test_runbooks_with_nothing_loaded_fails(home: Path) -> None:
    result = invoke("runbooks")
    assert result.exit_code == 1
    assert "no runbooks loaded from" in result.stderr


# --- show -------------------------------------------------------------------------------------


def test_show_prints_the_runbook_as_an_outline(home: Path) -> None:
    add(home, "full.yaml")
    result = invoke("show", "full")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("Everything at once (full)\nseverity sev2 · owner platform\n")
    for expected in (
        "Triggers\n  - alertname PaymentGatewayOutage\n",
        "  - service=payments, text /(?i)webhook failure rate \\d+%/\n",
        "  reference: Paystack transaction reference (pattern ^[A-Za-z0-9.=-]+$; e.g. T123-abc)",
        "Detection\n  1. Webhook failure rate, last 15 minutes [webhook_failure_rate] "
        "(postgres, risk read, runs by itself)\n",
        "       when: failure_rate > 0.05 and total >= 20\n       sql:\n"
        "         SELECT count(*) FILTER (WHERE status = 'failed') AS failed,\n",
        "Immediate actions\n",
        "(shell, risk write, lock backend_restart)\n       button: Enable maintenance\n",
        "       command: pm2 restart agape-backend --update-env\n",
        '       [ ] Post the status update\n             $ echo "payments degraded"\n',
        "per row: [Reprocess] runs reprocess_webhook (webhook_id <- id)",
        "(postgres, risk dangerous, two-person)",
        "       preview:\n         SELECT s.id, s.ip, s.created_at FROM sessions s\n",
        "       max_rows: 500\n",
        "       paystack: verify_many pending_orders.payment_reference\n",
        '       admin api: call POST /api/v1/admin/webhooks/reprocess {"webhookId":',
        "[measured_error_rate] (prometheus, risk read)\n       when: (value or 0) > 0.02\n"
        "       promql (instant):\n"
        '         sum(rate(http_requests_total{service="agape-backend",status=~"5.."}[5m]))\n',
        "       promql (range over the last 1h, every 5m):\n"
        "         sum by (instance) (process_resident_memory_bytes",
    ):
        assert expected in out


def test_show_of_an_unknown_runbook_names_the_known_ones(home: Path) -> None:
    add(home, "minimal.yaml")
    result = invoke("show", "nope")
    assert result.exit_code == 1
    assert "no runbook 'nope' in" in result.stderr
    assert "(known: minimal)" in result.stderr


def test_show_of_an_invalid_runbook_prints_its_problems(home: Path) -> None:
    add(home, "unknown-table.yaml")
    result = invoke("show", "unknown-table")
    assert result.exit_code == 1
    assert result.stderr.startswith("runbook unknown-table does not load:\n")
    assert result.stderr.count("is not in the backend schema") == 3


def test_show_names_a_writes_precondition_and_the_checks_it_runs_again(home: Path) -> None:
    shipped = Path(__file__).parent.parent.parent / "runbooks" / "inventory-oversell.yaml"
    shutil.copy(shipped, home / "runbooks" / shipped.name)
    result = invoke("show", "inventory-oversell")
    assert result.exit_code == 0
    assert (
        "       requires: negative_stock finds the problem first (otherwise: Nothing to change)\n"
        "       verifies: runs negative_stock again after it succeeds\n"
    ) in result.stdout


def test_show_says_what_an_unreachable_system_means_and_which_url_a_read_connects_to(
    home: Path,
) -> None:
    shutil.copy(FIXTURES.parent.parent / "runbooks" / "database-failover.yaml", home / "runbooks")
    out = invoke("show", "database-failover").stdout

    assert "[db_reachable] (postgres, risk read, runs by itself, unreachable: problem)" in out
    assert "connects to the URL given as new_primary_url, not DATABASE_URL\n" in out
