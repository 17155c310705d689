"""Which process runs the scheduler: the one holding the scheduler's lease.

APScheduler 3 job stores must not be shared between schedulers, so of several bot processes on
one store exactly one schedules. On PostgreSQL the lease is a session advisory lock on a
connection of its own: the server drops it the moment that process or its connection dies, and
another process takes the lease on its next try (every ``poll_s``, well within a minute). On
SQLite (one machine) it is an exclusive ``flock`` on a file beside the store, which the kernel
drops with the process. A process that cannot confirm it still holds the lease stops
scheduling at once; the jobs' fixed keys keep a page from being sent twice even if two
processes schedule for a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Protocol

import psycopg

log = logging.getLogger(__name__)

#: The advisory lock key of the scheduler's lease (migrations use ...0001).
SCHEDULER_LOCK_KEY = 0x4167617065_0002
#: How often a process tries for the lease, and the holder checks it still has it.
POLL_S = 10.0
#: How long a check of the lease may take before the holder counts it as lost.
CHECK_TIMEOUT_S = 5.0


class Lease(Protocol):
    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; say whether this process holds it now."""
        ...

    async def held(self) -> bool:
        """Say whether this process still holds the lease."""
        ...

    async def release(self) -> None: ...


class AdvisoryLease:
    """The lease as a PostgreSQL session advisory lock on a dedicated connection."""

    def __init__(self, dsn: str, *, connect_timeout_s: float = 3.0) -> None:
        self._dsn = dsn
        self._connect_timeout_s = connect_timeout_s
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=max(1, int(self._connect_timeout_s))
                )
            query = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (SCHEDULER_LOCK_KEY,))
            cursor = await asyncio.wait_for(query, CHECK_TIMEOUT_S)
            row = await cursor.fetchone()
            return bool(row and row[0])
        except (psycopg.Error, OSError, TimeoutError):
            await self._drop()
            return False

    async def held(self) -> bool:
        if self._conn is None or self._conn.closed:
            return False
        try:
            await asyncio.wait_for(self._conn.execute("SELECT 1"), CHECK_TIMEOUT_S)
        except (psycopg.Error, OSError, TimeoutError):
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        await self._drop()  # closing the session releases its advisory locks

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class FileLease:
    """The lease as an exclusive ``flock`` on a file (one machine: SQLite)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    async def acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = self.path.open("a")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    async def held(self) -> bool:
        return self._file is not None

    async def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


class Leadership:
    """Run ``lead`` while this process holds the lease and ``follow`` when it loses it."""

    def __init__(
        self,
        lease: Lease,
        lead: Callable[[], Awaitable[None]],
        follow: Callable[[], Awaitable[None]],
        *,
        poll_s: float = POLL_S,
    ) -> None:
        self.lease = lease
        self._lead = lead
        self._follow = follow
        self.poll_s = poll_s
        self.leading = False
        self.changed = asyncio.Event()

    async def run(self) -> None:
        """Try for the lease, lead while holding it, and try again when it is lost; run as a
        task until cancelled (``close`` stops leading and gives the lease up)."""
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the lease loop die: the next try may do better
                log.exception("the scheduler's lease check failed")
            await asyncio.sleep(self.poll_s)

    async def step(self) -> None:
        """One try: take the lease and lead, or confirm it is still held, or step down."""
        if not self.leading:
            if await self.lease.acquire():
                log.info("this process runs the scheduler now")
                await self._lead()
                self.leading = True
                self.changed.set()
        elif not await self.lease.held():
            log.warning("lost the scheduler's lease; another process may take it over")
            self.leading = False
            await self._follow()
            self.changed.set()

    async def close(self) -> None:
        if self.leading:
            self.leading = False
            await self._follow()
        await self.lease.release()
