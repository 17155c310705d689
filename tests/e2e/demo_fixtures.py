"""Run agape-ops as a person does, from a shell: a subprocess with its own environment.

The demo's sandbox gets a database name of its own per test and a claimed Redis logical
database, and the user's data folder is the test's, so tests never see each other's worlds
(or a person's demo) and everything is dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
AGAPE = str(Path(sys.executable).with_name("agape-ops"))
ADMIN_DSN = os.environ.get("AGAPE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
#: How long one command may take before the test gives up on it (a deadline, not a sleep).
DEADLINE_S = 90


@dataclass(frozen=True)
class Demo:
    """A demo world's place: the environment that points agape-ops at it, and its database."""

    env: dict[str, str]
    database: str
    database_url: str

    def run(
        self, *args: str, stdin: str = "", cwd: Path = REPO, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``agape-ops ARGS`` with ``stdin`` typed in, and return what it printed."""
        return subprocess.run(
            [AGAPE, *args],
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env={**self.env, **(env or {})},
            cwd=cwd,
            timeout=DEADLINE_S,
            check=False,
        )


def base_env(home: Path) -> dict[str, str]:
    """Return an environment with nothing of the caller's agape settings in it."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "COLUMNS": "100",
    }


@pytest.fixture
def demo(redis_db: str, tmp_path: Path) -> Iterator[Demo]:
    """A place for one demo world: a fresh database name and a claimed, empty Redis database."""
    name = f"agape_demo_t_{os.getpid()}_{secrets.token_hex(3)}"
    database_url = f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    env = {
        **base_env(tmp_path),
        "OPS_DEMO_DATABASE_URL": database_url,
        "OPS_DEMO_REDIS_URL": redis_db,
    }
    try:
        yield Demo(env, name, database_url)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
