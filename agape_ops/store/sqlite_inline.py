"""SQLite for the store's async engine, called on the event loop instead of through a thread.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a thread of its own and
wakes the loop for each answer: about eighty wake-ups for one click, most of its cost. SQLite
answers the store's small statements in microseconds, so this connection runs them where they
are asked, under SQLAlchemy's aiosqlite dialect (``async_creator``).

The one wait SQLite makes is for a lock another process holds: its busy handler sleeps inside
the call, which here would stall the whole loop. So the connection has no busy timeout: a
statement told "database is locked" is tried again after an asynchronous pause, until the
store's busy timeout runs out, as the busy handler would. A statement refused as busy changed
nothing, so trying it again is safe; a stale snapshot (``SQLITE_BUSY_SNAPSHOT``) cannot succeed
by waiting, and the busy handler does not wait for it either.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

#: Extended result code of a read snapshot too old to write from: waiting cannot help.
_BUSY_SNAPSHOT = 517
_FIRST_PAUSE_S = 0.001
_LONGEST_PAUSE_S = 0.025


class InlineCursor:
    """An aiosqlite-shaped cursor whose awaitables finish without leaving the loop."""

    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection.raw.cursor()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        await self._connection.patiently(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Sequence[Sequence[Any]]) -> InlineCursor:
        await self._connection.patiently(self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """An aiosqlite-shaped connection over a ``sqlite3`` connection used on the loop's thread."""

    def __init__(self, raw: sqlite3.Connection, *, busy_timeout_s: float) -> None:
        self.raw = raw
        self._busy_timeout_s = busy_timeout_s
        self._closed = False

    @property
    def _connection(self) -> sqlite3.Connection | None:
        # SQLAlchemy's adapter commits and rolls back only while this is set.
        return None if self._closed else self.raw

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    async def patiently(self, call: Any, *args: Any) -> Any:
        """Make a call, waiting (without blocking the loop) while another process holds a lock."""
        deadline: float | None = None
        pause = _FIRST_PAUSE_S
        while True:
            try:
                return call(*args)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                now = time.monotonic()
                deadline = now + self._busy_timeout_s if deadline is None else deadline
                if now >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE_S)

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def commit(self) -> None:
        await self.patiently(self.raw.commit)

    async def rollback(self) -> None:
        self.raw.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.raw.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate, also from garbage collection)."""
        if not self._closed:
            self._closed = True
            self.raw.close()


def _busy(exc: sqlite3.OperationalError) -> bool:
    code: int = exc.sqlite_errorcode
    return code & 0xFF == sqlite3.SQLITE_BUSY and code != _BUSY_SNAPSHOT


def creator(database: str, *, busy_timeout_s: float) -> Any:
    """Return the ``async_creator`` that opens the store's file this way."""

    async def connect() -> InlineConnection:
        # No busy timeout inside SQLite (see the module's text); SQLAlchemy's pool may close a
        # connection from the garbage collector's thread, hence check_same_thread.
        raw = sqlite3.connect(database, timeout=0, isolation_level=None, check_same_thread=False)
        return InlineConnection(raw, busy_timeout_s=busy_timeout_s)

    return connect
