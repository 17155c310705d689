"""`agape-ops jobs`: what the scheduler holds, read by a process that does not schedule."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agape_ops.bootstrap import build as build_container
from agape_ops.cli import build
from agape_ops.engine.commands import StartRun
from agape_ops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEAM = """\
escalation:
  - {after: 5m, notify: [S0ONCALL]}
  - {after: 15m, notify: [U0DEVOPS]}
reminders:
  status_update: {sev1: 30m}
"""


@pytest.fixture
def home(bare_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder with a store, the repository's runbooks and a short team file."""
    (bare_folder / "team.yaml").write_text(TEAM)
    monkeypatch.setenv("OPS_DATABASE_URL", f"sqlite:///{bare_folder}/ops.db")
    monkeypatch.setenv("RUNBOOKS_DIR", str(ROOT / "runbooks"))
    monkeypatch.setenv("OPS_TEAM_FILE", str(bare_folder / "team.yaml"))
    return bare_folder


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build(), list(args), catch_exceptions=False)


def test_no_jobs_and_an_unknown_run_are_said(home: Path) -> None:
    assert invoke("jobs").stdout == "No scheduled jobs.\n"
    unknown = invoke("jobs", "INC-9")
    assert unknown.exit_code == 1
    assert "no run INC-9" in unknown.stderr


async def _open_a_run_and_plan_it() -> None:
    container = await build_container(Settings(), configure_logs=False)
    try:
        opened = await container.engine.execute(
            StartRun("database-failover", "U1", "open-1", auto=False)
        )
        assert opened.run is not None
        await container.scheduler.start()
        assert container.scheduler.leading
    finally:
        await container.aclose()  # the jobs stay in the store; nothing schedules now


def test_jobs_lists_what_the_scheduler_planned_for_a_run_soonest_first(home: Path) -> None:
    asyncio.run(_open_a_run_and_plan_it())

    result = invoke("jobs", "inc-1")

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["INC-1", "recheck"],  # every 2 min: the first comes before the first page
        ["INC-1", "escalate"],
        ["INC-1", "escalate"],
        ["INC-1", "status"],
    ]
    assert "page level 1 (S0ONCALL) unless acknowledged" in lines[1]
    assert "page level 2 (U0DEVOPS) unless acknowledged" in lines[2]
    assert re.search(r"UTC \(in [45] min( \d+ s)?\)", lines[1])  # five minutes after opening
