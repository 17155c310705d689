"""Shared fixtures: scratch PostgreSQL databases and Redis logical databases, one per test.

Every test that touches a server gets its own database (cloned from a template loaded with the
backend's schema) or its own Redis logical database, so runs never see each other's data, and
everything is dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

from agape_ops.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
# The black-box tier (tests/e2e) drives the command against the integration tier's loopback
# fakes (Paystack, the admin API): make that folder's helpers importable from there too.
INTEGRATION = str(Path(__file__).parent / "integration")
if INTEGRATION not in sys.path:
    sys.path.append(INTEGRATION)
ADMIN_DSN = os.environ.get("AGAPE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("AGAPE_TEST_REDIS", "redis://127.0.0.1:6379")
# The backend's schema ships with the package (the linter checks runbook SQL against it); the
# tests load that same file, so there is one copy to keep in step with the backend.
SCHEMA = resources.files("agape_ops.runbooks").joinpath("backend_schema.sql").read_bytes()
DROP = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def _dsn(database: str) -> str:
    base = ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{database}"


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_DSN, autocommit=True)


@pytest.fixture
def bare_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in an empty folder with no agape-ops setting in the environment, as a new shell."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for alias in ("LOG_LEVEL", "OPS_RUNBOOKS_DIR"):
        monkeypatch.delenv(alias, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def backend_template() -> Iterator[str]:
    """Create, once per session, a template database holding the backend's schema."""
    name = f"agape_tmpl_{os.getpid()}_{secrets.token_hex(3)}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(_dsn(name), autocommit=True) as conn:
        conn.execute(SCHEMA)
    yield name
    with _admin() as conn:
        conn.execute(DROP.format(sql.Identifier(name)))


def _scratch_database(template: str | None) -> Iterator[str]:
    name = f"agape_t_{os.getpid()}_{secrets.token_hex(4)}"
    with _admin() as conn:
        if template:
            create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        else:
            create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        conn.execute(create)
    try:
        yield _dsn(name)
    finally:
        with _admin() as conn:
            conn.execute(DROP.format(sql.Identifier(name)))


@pytest.fixture
def backend_db(backend_template: str) -> Iterator[str]:
    """Return the DSN of a scratch copy of the backend's database (schema, no rows)."""
    yield from _scratch_database(backend_template)


@pytest.fixture
def empty_db() -> Iterator[str]:
    """Return the DSN of an empty scratch database (for the bot's own store)."""
    yield from _scratch_database(None)


@pytest.fixture
def redis_db() -> Iterator[str]:
    """Claim a free Redis logical database (1-15) for this test; flush it before and after."""
    claimer = redis.Redis.from_url(f"{REDIS_BASE}/0")
    token = secrets.token_hex(8)
    claimed: int | None = None
    for number in range(1, 16):
        if claimer.set(f"agape-test:claim:{number}", token, nx=True, ex=600):
            claimed = number
            break
    if claimed is None:
        pytest.fail("no free Redis logical database (1-15) for this test")
    url = f"{REDIS_BASE}/{claimed}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
        if claimer.get(f"agape-test:claim:{claimed}") == token.encode():
            claimer.delete(f"agape-test:claim:{claimed}")
        claimer.close()


@pytest.fixture
async def backend_conn(backend_db: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """An autocommit connection to the scratch backend database, for arranging rows."""
    conn = await psycopg.AsyncConnection.connect(backend_db, autocommit=True)
    try:
        yield conn
    finally:
        await conn.close()
