"""`agape-ops check` probes every configured system and says which answer, against real
PostgreSQL and Redis and loopback stand-ins for Paystack, the admin API and Prometheus."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_console import Services, agape, env, services

pytestmark = pytest.mark.e2e

__all__ = ["env", "services"]  # fixtures used by name below


def row(output: str, system: str) -> str:
    return next(line for line in output.splitlines() if line.strip("│ ").startswith(system))


def test_check_reports_every_configured_system_ok(env: dict[str, str], tmp_path: Path) -> None:
    result = agape(env, tmp_path, "check")

    assert result.returncode == 0, result.stdout + result.stderr
    for system in ("postgres", "redis", "paystack", "admin_api", "prometheus", "store"):
        assert " ok " in row(result.stdout, system), result.stdout
    assert "1 of 2 scrape targets up" in row(result.stdout, "prometheus")
    assert "7 runbooks loaded" in result.stdout
    assert env["PAYSTACK_SECRET_KEY"] not in result.stdout + result.stderr
    assert env["ADMIN_TOKEN"] not in result.stdout + result.stderr


def test_check_fails_and_names_what_is_unreachable(
    env: dict[str, str], services: Services, tmp_path: Path
) -> None:
    broken = {**env, "DATABASE_URL": "postgresql://ops:hunter2@127.0.0.1:1/agape"}

    result = agape(broken, tmp_path, "check")

    assert result.returncode == 1
    postgres = row(result.stdout, "postgres")
    assert "FAILING" in postgres
    assert "refused" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


def test_check_shows_details_as_they_are_never_as_markup(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "[bold]"
    folder.mkdir()
    store = {**env, "OPS_DATABASE_URL": f"sqlite:///{folder}/ops.db"}

    result = agape(store, tmp_path, "check")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{folder}/ops.db (schema v2)" in result.stdout
