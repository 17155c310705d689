"""`agape-ops check` probes every configured system and says which answer, against real
PostgreSQL and Redis and loopback stand-ins for Paystack, the admin API and Prometheus."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
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
    # the pool's own reconnect warnings never land above the table
    assert "psycopg" not in result.stderr
    assert "WARNING" not in result.stderr


def test_check_shows_details_as_they_are_never_as_markup(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "[bold]"
    folder.mkdir()
    store = {**env, "OPS_DATABASE_URL": f"sqlite:///{folder}/ops.db"}

    result = agape(store, tmp_path, "check")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{folder}/ops.db (schema v3)" in result.stdout


def test_an_empty_secret_key_is_not_configured_rather_than_failing(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = agape({**env, "PAYSTACK_SECRET_KEY": "", "ADMIN_API_URL": ""}, tmp_path, "check")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "not configured" in row(result.stdout, "paystack")
    assert "not configured" in row(result.stdout, "admin_api")


def test_a_database_without_the_backend_schema_is_failing_and_names_what_is_missing(
    env: dict[str, str], empty_db: str, tmp_path: Path
) -> None:
    result = agape({**env, "DATABASE_URL": empty_db}, tmp_path, "check")

    assert result.returncode == 1
    postgres = row(result.stdout, "postgres")
    assert "FAILING" in postgres
    assert "answered, but table" in result.stdout
    assert "is not in the database (used by" in result.stdout


def test_a_role_that_does_not_exist_is_authentication_failed_not_unreachable(
    env: dict[str, str], backend_db: str, tmp_path: Path
) -> None:
    nobody = backend_db.replace("postgres@", "no_such_role_x9@")

    result = agape({**env, "DATABASE_URL": nobody}, tmp_path, "check")

    assert result.returncode == 1
    assert "authentication failed: role no_such_role_x9 does not exist" in result.stdout
    assert "unreachable" not in row(result.stdout, "postgres")


@pytest.fixture
def reader_role(backend_db: str) -> Iterator[str]:
    """A login role that may only SELECT the backend's tables (no pg_monitor, no UPDATE)."""
    name = f"agape_reader_{secrets.token_hex(3)}"
    with psycopg.connect(backend_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(name)
            )
        )
    try:
        yield name
    finally:
        with psycopg.connect(backend_db, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_a_role_without_the_rights_the_runbooks_use_is_failing_with_the_grant_to_run(
    env: dict[str, str], backend_db: str, reader_role: str, tmp_path: Path
) -> None:
    as_reader = backend_db.replace("postgres@", f"{reader_role}@")

    result = agape({**env, "DATABASE_URL": as_reader}, tmp_path, "check")

    assert result.returncode == 1
    postgres = row(result.stdout, "postgres")
    assert "FAILING" in postgres
    assert f"TO {reader_role}" in result.stdout
    assert "pg_monitor" in result.stdout or "may not UPDATE" in result.stdout
