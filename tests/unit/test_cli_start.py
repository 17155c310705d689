"""Starting a command: the version, malformed settings, unknown runs, and one-line log faults."""

from __future__ import annotations

import gc
import logging
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agape_ops.bootstrap import OneLineFormatter, configure_logging
from agape_ops.cli import build
from agape_ops.cli.startup import settle_heap
from agape_ops.redaction import Redactor
from agape_ops.settings import Settings


@pytest.fixture
def home(bare_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, with the user's data folder inside it and no agape settings."""
    monkeypatch.setenv("XDG_DATA_HOME", str(bare_folder / "data"))
    return bare_folder


def invoke(*args: str) -> Result:
    return CliRunner().invoke(build(), list(args), catch_exceptions=False)


def test_version_prints_the_installed_version(home: Path) -> None:
    result = invoke("--version")

    assert result.exit_code == 0
    assert result.stdout.strip() == f"agape-ops {version('agape-ops')}"


@pytest.mark.parametrize("command", [["console"], ["runs"], ["check"], ["timeline", "INC-1"]])
def test_a_malformed_database_url_stops_every_command_at_start_naming_it(
    home: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "not-a-url")

    result = invoke(*command)

    assert result.exit_code == 2
    assert "DATABASE_URL is not a PostgreSQL URL; e.g. postgresql://" in result.stderr
    assert "not-a-url" not in result.stderr
    assert "ProgrammingError" not in result.stderr


def test_timeline_of_an_unknown_run_points_at_the_runs_command(home: Path) -> None:
    result = invoke("timeline", "INC-99")

    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert last == "agape-ops: no run INC-99; `agape-ops runs` lists them"


def test_runs_keeps_its_store_in_the_data_folder_not_the_working_directory(home: Path) -> None:
    result = invoke("runs")

    assert result.exit_code == 0, result.stderr
    assert not (home / "agape-ops.db").exists()
    assert (home / "data" / "agape-ops" / "agape-ops.db").exists()


def test_a_missing_runbooks_folder_is_said_with_where_it_looked(home: Path) -> None:
    result = invoke("runs")

    first = result.stderr.splitlines()[0]
    assert first == (
        f"warning: agape_ops.runbooks: no runbooks loaded: {home}/runbooks does not exist "
        "(RUNBOOKS_DIR or OPS_RUNBOOKS_DIR names the folder, relative to the directory "
        f"agape-ops starts in, {home})"
    )


def test_a_fault_is_logged_as_one_line_without_a_traceback() -> None:
    formatter = OneLineFormatter(verbose=False)
    try:
        raise ConnectionError("refused\nsecond line")
    except ConnectionError:
        record = logging.LogRecord(
            "psycopg.pool", logging.WARNING, __file__, 1, "error connecting: %s", ("x",), None
        )
        record.exc_info = sys.exc_info()

    text = formatter.format(record)

    assert text == "warning: psycopg.pool: error connecting: x (ConnectionError)"


def test_library_chatter_is_quiet_unless_verbose(home: Path) -> None:
    configure_logging(Settings(_env_file=None), Redactor([]))
    assert logging.getLogger("psycopg.pool").getEffectiveLevel() > logging.WARNING

    configure_logging(Settings(_env_file=None, ops_log_level="DEBUG"), Redactor([]))
    assert logging.getLogger("psycopg.pool").getEffectiveLevel() == logging.DEBUG
    configure_logging(Settings(_env_file=None), Redactor([]))


def test_verbose_on_the_command_line_logs_at_debug(home: Path) -> None:
    result = invoke("--verbose", "runs")

    assert result.exit_code == 0
    assert logging.getLogger().level == logging.DEBUG
    configure_logging(Settings(_env_file=None), Redactor([]))


def test_a_missing_team_file_says_where_it_looked_and_how_to_have_none(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_TEAM_FILE", "team.yaml")

    result = invoke("runs")

    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"agape-ops: the team file {home}/team.yaml does not exist (OPS_TEAM_FILE names it, "
        f"relative to the directory agape-ops starts in, {home}); leave it empty for none"
    )


def test_settling_the_heap_leaves_start_up_objects_out_of_collections() -> None:
    made_at_start_up = [{"n": n} for n in range(1000)]
    try:
        settle_heap()
        frozen = gc.get_freeze_count()
        tracked = len(gc.get_objects())
    finally:
        gc.unfreeze()
    assert frozen >= len(made_at_start_up)
    assert tracked < frozen  # a full collection now scans only what came after
