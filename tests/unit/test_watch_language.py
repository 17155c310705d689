"""The language the scheduler reads: ``monitor:`` and ``recheck:`` durations, their lint rules,
and the team file's escalation and reminders, each mistake one problem at its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agape_ops.errors import Problem
from agape_ops.runbooks.lint import lint_paths
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.timing import Monitor

FIXTURES = Path(__file__).parent.parent / "fixtures"
HEADER = "id: inline\ntitle: Inline\nseverity: sev3\nsummary: Inline runbook.\nowner: platform\n"


def monitor(**given: Any) -> Monitor:
    return Monitor.model_validate({"every": "30s", "for": "10m", **given})


def lint_text(tmp_path: Path, body: str) -> list[Problem]:
    path = tmp_path / "inline.yaml"
    path.write_text(HEADER + body, encoding="utf-8")
    return lint_paths([path])


def lint_team(tmp_path: Path, text: str) -> list[Problem]:
    team = tmp_path / "team.yaml"
    team.write_text(text, encoding="utf-8")
    return lint_paths([FIXTURES / "good" / "minimal.yaml"], team_file=team)


# --- the Monitor and recheck models ---------------------------------------------------------


def test_monitor_reads_its_durations_in_seconds() -> None:
    watched = monitor(every="1m", **{"for": "1h30m"}, until="lag < 5", figure="lag", unit="s")
    assert (watched.every_s, watched.for_s) == (60.0, 5400.0)
    assert (watched.until, watched.figure, watched.unit) == ("lag < 5", "lag", "s")
    assert monitor().until is None  # without until: it watches for its time


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ({"every": "soon"}, "'soon' is not a duration"),
        ({"every": 30}, "30 has no unit: write 30m"),
        ({"for": "10 minutes"}, "'10 minutes' is not a duration"),
        ({"every": "5s"}, "5s is too short: at least 10s"),
        ({"every": "500ms", "for": "1m"}, "500ms is too short"),
        ({"for": "2d"}, "2d is too long: at most 86400s"),
        ({"every": "10m", "for": "5m"}, "`for: 5m` is shorter than `every: 10m`"),
        ({"unit": "seconds behind"}, "at most 12 characters"),
        ({"until_": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_monitor_refuses_what_cannot_be_watched(given: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        monitor(**given)
    assert fragment in str(excinfo.value)


def test_monitor_may_watch_exactly_once_and_at_the_shortest_interval() -> None:
    assert monitor(every="10s", **{"for": "10s"}).for_s == 10.0


@pytest.mark.parametrize(
    ("recheck", "fragment"),
    [("5", "5 has no unit"), ("every 5m", "not a duration"), ("1s", "too short")],
)
def test_recheck_must_be_a_duration_of_ten_seconds_or_more(
    tmp_path: Path, recheck: str, fragment: str
) -> None:
    [problem] = lint_text(tmp_path, f"recheck: {recheck}\n")
    assert (problem.line, problem.column) == (6, 10)
    assert problem.message.startswith("recheck: ")
    assert fragment in problem.message


def test_recheck_runs_the_automatic_reads_with_a_condition_but_not_alert_checks() -> None:
    runbook = Runbook.model_validate(
        {
            "id": "x",
            "title": "X",
            "severity": "sev2",
            "summary": "s",
            "owner": "o",
            "recheck": "5m",
            "detection": [
                {"id": "alert_rate", "title": "A", "alert": {"values": ["r"]}, "when": "r > 1"},
                {"id": "count", "title": "C", "when": "n > 0", "postgres": {"sql": "SELECT 1"}},
                {"id": "bare", "title": "B", "postgres": {"sql": "SELECT 1"}},
            ],
            "diagnosis": [
                {"id": "late", "title": "L", "when": "n > 0", "postgres": {"sql": "SELECT 1"}},
            ],
        }
    )
    assert runbook.recheck == "5m"
    assert [s.id for s in runbook.recheck_steps()] == ["count"]


# --- lint ------------------------------------------------------------------------------------

LAG_STEP = """detection:
  - id: lag
    title: Lag
    when: lag_s > 30
    postgres:
      sql: SELECT 12.5::float8 AS lag_s
    monitor:
"""


def test_a_monitor_with_a_figure_and_no_until_lints_clean(tmp_path: Path) -> None:
    body = LAG_STEP + "      every: 30s\n      for: 10m\n      figure: lag_s\n      unit: s\n"
    assert lint_text(tmp_path, "recheck: 5m\n" + body) == []


def test_a_monitor_with_only_a_finding_lints_clean(tmp_path: Path) -> None:
    body = LAG_STEP.replace("    when:", "    finding: '{{ lag_s }} s'\n    when:")
    body += "      every: 30s\n      for: 10m\n      until: lag_s < 1\n"
    assert lint_text(tmp_path, body) == []


@pytest.mark.parametrize(
    ("lines", "line", "fragment"),
    [
        ("      until: lag_s <= 1 and lagg < 2\n", 15, "monitor.until reads `lagg`"),
        ("      until: lag_s ==\n", 15, "monitor.until does not parse"),
        ("      figure: lag_s | nope\n", 15, "monitor.figure does not parse: No filter named"),
        ("      figure: steps.later.x\n", 15, "which is not a step of this runbook"),
        ("      figure: not lag_s\n", 15, "monitor.figure is a condition"),
        ("      until: lag_s  >  30\n      figure: lag_s\n", 15, "says the same as `when:`"),
        ("      until: lag_s < 1\n", 12, "a monitor shows each reading"),
    ],
)
def test_each_monitor_mistake_is_one_problem_at_its_line(
    tmp_path: Path, lines: str, line: int, fragment: str
) -> None:
    figure = "" if "figure" in lines or "reading" in fragment else "      figure: lag_s\n"
    body = LAG_STEP + "      every: 30s\n      for: 10m\n" + lines + figure
    [problem] = lint_text(tmp_path, body)
    assert problem.line == line, problem
    assert fragment in problem.message


@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        ("    manual: {items: [Look]}\n", "a checklist calls no system"),
        ("    alert: {values: [rate]}\n", "a check over the alert"),
        (
            "    risk: write\n    confirm: Sure?\n    postgres:\n"
            "      sql: UPDATE sessions SET revoked_at = now() WHERE user_id IS NULL\n"
            "      max_rows: 5\n",
            "only a read can be monitored: this step is `risk: write`",
        ),
    ],
)
def test_only_a_read_that_calls_a_system_is_monitored(
    tmp_path: Path, step: str, fragment: str
) -> None:
    body = (
        "diagnosis:\n  - id: watched\n    title: Watched\n    finding: shown\n"
        + step
        + "    monitor: {every: 1m, for: 1h}\n"
    )
    [problem] = lint_text(tmp_path, body)
    assert problem.line == body.splitlines().index("    monitor: {every: 1m, for: 1h}") + 6
    assert fragment in problem.message


def test_recheck_without_a_detection_check_says_why(tmp_path: Path) -> None:
    body = "recheck: 5m\ndetection:\n  - id: c\n    title: C\n    postgres: {sql: SELECT 1}\n"
    [problem] = lint_text(tmp_path, body)
    assert (problem.line, problem.column) == (6, 10)
    assert "runs the automatic detection checks with a `when:` again" in problem.message
    assert lint_text(tmp_path, body + "    when: 'true'\n") == []


# --- the team file ---------------------------------------------------------------------------

LEVELS = "escalation:\n  - after: 5m\n    notify: [S1]\n"


@pytest.mark.parametrize(
    ("text", "at", "fragment"),
    [
        ("responders: [U1, alice]\n", (1, 18), "responders.1: 'alice' is not a Slack user"),
        ("approvers:\n  - U1\n  - '@bob'\n", (3, 5), "approvers.1: '@bob' is not a Slack"),
        (
            "escalation:\n  - after: 10m\n    notify: [S1, bob]\n",
            (3, 18),
            "'bob' is not a Slack user",
        ),
        ("escalation:\n  - after: 10\n    notify: [S1]\n", (2, 12), "10 has no unit: write 10m"),
        ("escalation:\n  - after: 5x\n    notify: [S1]\n", (2, 12), "'5x' is not a duration"),
        (
            LEVELS + "  - after: 30m\n    notify: [U2]\n  - after: 10m\n    notify: [U3]\n",
            (6, 5),
            "level 3 pages sev1 no later than the level before it (after 30m)",
        ),
        (
            LEVELS + "  - after_minutes: 5\n    notify: [U2]\n",
            (4, 5),
            "level 2 pages sev1 no later than the level before it (after 5m)",
        ),
        (
            LEVELS + "  - after: 10m\n    notify: [U2]\n    severities: [sev5]\n",
            (6, 18),
            "Input should be 'sev1', 'sev2', 'sev3' or 'sev4'",
        ),
        (
            "reminders:\n  status_update:\n    sev1: 30m\n    sev2: soon\n",
            (4, 11),
            "status_update.sev2: 'soon' is not a duration",
        ),
        (
            "reminders:\n  status_update:\n    sev1: 30m\n    sev9: 1h\n",
            (4, 11),
            "'sev9' is not a severity",
        ),
        ("reminders:\n  status_update: {sev1: 30}\n", (2, 25), "30 has no unit"),
        ("reminders:\n  post_incident: 30s\n", (2, 18), "30s is too short: at least 60s"),
    ],
)
def test_each_team_file_mistake_is_one_problem_at_its_line(
    tmp_path: Path, text: str, at: tuple[int, int], fragment: str
) -> None:
    [problem] = lint_team(tmp_path, text)
    assert problem.path.endswith("team.yaml")
    assert (problem.line, problem.column) == at, problem
    assert fragment in problem.message


def test_levels_for_other_severities_may_share_a_delay(tmp_path: Path) -> None:
    text = (
        "escalation:\n  - after: 5m\n    notify: [S1]\n    severities: [sev1]\n"
        "  - after: 5m\n    notify: [S2]\n    severities: [sev2, sev3]\n"
        "  - after: 15m\n    notify: [U1, W2]\nreminders:\n  status_update: {sev1: 30m}\n"
    )
    assert lint_team(tmp_path, text) == []
