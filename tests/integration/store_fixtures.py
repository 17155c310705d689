"""What the store's integration tests share: a fresh store on each backend, and record makers.

Test modules take the fixtures by assigning them at module level
(``store = store_fixtures.store``), since only the root conftest may register plugins.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from agape_ops.engine.records import Event, Run, RunState
from agape_ops.store import SqlStore, open_store

T0 = datetime(2025, 3, 1, 2, 30, 15, 123456, tzinfo=UTC)
T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of a fresh, empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    dsn: str = request.getfixturevalue("empty_db")
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    """Open the store (creating its schema) and close it after the test."""
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def other(store_url: str, store: SqlStore) -> AsyncIterator[SqlStore]:
    """Open a second store on the same database (after ``store`` migrated it), with its own
    connections: the view another process has."""
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()


def new_run(**changes: Any) -> Run:
    """Return a run as the engine hands it to ``create_run`` (prefix as id, no number yet)."""
    values: dict[str, Any] = {
        "id": "INC",
        "number": 0,
        "runbook_id": "payment-gateway-outage",
        "title": "Payment Gateway Outage",
        "severity": "critical",
        "state": RunState.OPEN,
        "created_by": "U123",
        "created_at": T0,
    }
    values.update(changes)
    return Run(**values)


async def together(*calls: Awaitable[T]) -> list[T]:
    """Run the calls concurrently; wait for every one to end before reporting any failure."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(list[T], outcomes)


def event(run_id: str, kind: str = "note", **changes: Any) -> Event:
    """Return a timeline event of ``kind`` for the run, not yet numbered."""
    values: dict[str, Any] = {"run_id": run_id, "at": T0, "actor": "U123", "kind": kind}
    values.update(summary=f"{kind} happened", **changes)
    return Event(**values)
