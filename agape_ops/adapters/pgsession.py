"""Hand the PostgreSQL adapter one guarded transaction at a time on the pool's connections.

A transaction comes with its limits already set (statement, lock and idle timeouts, READ ONLY
for reads, and ``standard_conforming_strings`` on, so the server reads a string as pglast did
when the SQL was checked), within a deadline, and with a diagnosis in words when no connection
can be had. Rows are read through a server-side cursor: the server accepts exactly one query
there, and a huge result is counted on the server instead of being held in the bot's memory.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agape_ops.adapters.pgerrors import NAME, Location, connection_error, query_error
from agape_ops.adapters.pgvalues import render_row, unique_columns
from agape_ops.errors import AdapterError, AdapterTimeout, AdapterUnavailable

#: Seconds allowed, beyond the statement timeouts, before a stuck network is given up on.
SLACK_S = 5.0
#: Seconds spent finding out why the pool had no connection (one direct attempt).
_DIAGNOSE_S = 1.5
#: The server-side cursor rows are read through.
_CURSOR = "agape_ops_rows"

Rows = tuple[int, list[str], list[dict[str, Any]], dict[str, str]]


class Sessions:
    """Lend the pool's connections, each inside one transaction with a step's limits."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        location: Location,
        *,
        statement_timeout_ms: int,
        lock_timeout_ms: int,
    ) -> None:
        self._pool = pool
        self._location = location
        self._statement_timeout_ms = statement_timeout_ms
        self._lock_timeout_ms = lock_timeout_ms

    @asynccontextmanager
    async def transaction(
        self, step_id: str, *, timeout_ms: int, read_only: bool
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Yield a connection inside one transaction with these limits; roll back on error.

        Each statement may run for the statement timeout (a read is a FETCH then a MOVE, a write
        adds its preview), so the whole call is given up on after that many timeouts.
        """
        deadline_s = (2 if read_only else 3) * timeout_ms / 1000 + SLACK_S
        async with self.connection(step_id, deadline_s=deadline_s) as conn:
            limits = Limits(timeout_ms, self._lock_timeout_ms, deadline_s, read_only=read_only)
            async with limited(conn, self._location, step_id, limits):
                yield conn

    @asynccontextmanager
    async def connection(
        self, step_id: str | None, *, deadline_s: float = SLACK_S
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Yield a pooled connection; say why none could be had, within a deadline."""
        pool = self._pool
        try:
            async with asyncio.timeout(pool.timeout + deadline_s):
                try:
                    async with pool.connection() as conn:
                        yield conn
                except PoolTimeout as exc:
                    raise await self._diagnose(step_id) from exc
                except psycopg.Error as exc:
                    raise query_error(
                        exc,
                        self._location,
                        step_id=step_id,
                        statement_timeout_ms=self._statement_timeout_ms,
                        lock_timeout_ms=self._lock_timeout_ms,
                    ) from exc
        except TimeoutError as exc:
            raise AdapterTimeout(
                f"PostgreSQL: no answer from {self._location.where} within the "
                f"{pool.timeout + deadline_s:.0f} s deadline; the server or the network is stuck",
                adapter=NAME,
                step_id=step_id,
            ) from exc

    async def _diagnose(self, step_id: str | None) -> AdapterError:
        """Find out why the pool had no connection: try one directly and name the failure."""
        pool = self._pool
        if not isinstance(pool.conninfo, str) or callable(pool.kwargs):
            return AdapterUnavailable(
                f"PostgreSQL: no connection within {pool.timeout:.0f} s",
                adapter=NAME,
                step_id=step_id,
            )
        kwargs = {**(pool.kwargs or {}), "connect_timeout": 2}
        try:
            async with asyncio.timeout(_DIAGNOSE_S):
                conn = await psycopg.AsyncConnection.connect(pool.conninfo, **kwargs)
        except psycopg.OperationalError as exc:
            error = connection_error(exc, self._location)
        except TimeoutError:
            error = AdapterUnavailable(
                f"PostgreSQL: unreachable (connection timed out) at {self._location.where}",
                adapter=NAME,
            )
        else:
            await conn.close()
            error = AdapterTimeout(
                f"PostgreSQL: all {pool.max_size} of the bot's connections stayed busy for "
                f"{pool.timeout:.0f} s; try again",
                adapter=NAME,
            )
        error.step_id = step_id
        return error


@dataclass(frozen=True)
class Limits:
    """What one transaction may take: its statement and lock timeouts, its whole deadline."""

    statement_timeout_ms: int
    lock_timeout_ms: int
    deadline_s: float
    read_only: bool


@asynccontextmanager
async def limited(
    conn: psycopg.AsyncConnection[Any], location: Location, step_id: str | None, limits: Limits
) -> AsyncIterator[None]:
    """Hold one transaction on ``conn`` with ``limits`` set in it; roll back on error."""
    try:
        await conn.set_read_only(limits.read_only)
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('statement_timeout', %(statement)s, true),"
                " set_config('lock_timeout', %(lock)s, true),"
                " set_config('idle_in_transaction_session_timeout', %(idle)s, true),"
                " set_config('standard_conforming_strings', 'on', true)",
                {
                    "statement": str(limits.statement_timeout_ms),
                    "lock": str(limits.lock_timeout_ms),
                    "idle": str(round(limits.deadline_s * 1000)),
                },
            )
            yield
    except psycopg.Error as exc:
        raise query_error(
            exc,
            location,
            step_id=step_id,
            statement_timeout_ms=limits.statement_timeout_ms,
            lock_timeout_ms=limits.lock_timeout_ms,
        ) from exc


@asynccontextmanager
async def given_database(
    dsn: str, step_id: str, *, timeout_ms: int, lock_timeout_ms: int, connect_timeout_s: float
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Yield a connection of its own to a database a person named (the new primary of a
    failover, not the pool's), inside one read-only transaction with the usual limits; it is
    closed afterwards and never pooled. Failures say where and why, never the password."""
    location = Location(dsn)
    try:
        async with asyncio.timeout(connect_timeout_s + SLACK_S):
            conn = await psycopg.AsyncConnection.connect(
                dsn,
                connect_timeout=max(2, math.ceil(connect_timeout_s)),
                application_name="agape-ops",
                autocommit=True,
                prepare_threshold=None,
            )
    except psycopg.OperationalError as exc:
        error = connection_error(exc, location)
        error.message = error.message.replace("check DATABASE_URL", "check the URL given")
        error.step_id = step_id
        raise error from exc
    except TimeoutError as exc:
        raise AdapterUnavailable(
            f"PostgreSQL: unreachable (connection timed out) at {location.where}",
            adapter=NAME,
            step_id=step_id,
        ) from exc
    limits = Limits(timeout_ms, lock_timeout_ms, 2 * timeout_ms / 1000 + SLACK_S, read_only=True)
    try:
        async with asyncio.timeout(limits.deadline_s):
            async with limited(conn, location, step_id, limits):
                yield conn
    except TimeoutError as exc:
        raise AdapterTimeout(
            f"PostgreSQL: no answer from {location.where} within {limits.deadline_s:.0f} s; "
            "the server or the network is stuck",
            adapter=NAME,
            step_id=step_id,
        ) from exc
    finally:
        await conn.close()


async def fetch(
    conn: psycopg.AsyncConnection[Any], query: str, params: dict[str, Any] | None, limit: int
) -> Rows:
    """Run a query; return all rows' count, column names, the first ``limit`` rows and types.

    The rows stay on the server: the first ``limit`` are fetched and the rest only counted.
    """
    async with conn.cursor(name=_CURSOR) as cursor:
        await cursor.execute(query, params or None)
        description = cursor.description or []
        kept = await cursor.fetchmany(limit)
        rest = await conn.execute(
            sql.SQL("MOVE FORWARD ALL FROM {}").format(sql.Identifier(_CURSOR))
        )
    count = len(kept) + max(rest.rowcount, 0)
    columns = unique_columns([column.name for column in description])
    types = {name: column.type_display for name, column in zip(columns, description, strict=True)}
    return count, columns, [render_row(columns, row) for row in kept], types


async def reset_session(conn: psycopg.AsyncConnection[Any]) -> None:
    """Drop what a step may have left in the session (settings, locks, LISTENs, cursors).

    The pool calls this on every connection given back, outside any transaction; a connection
    it fails on is closed instead of reused.
    """
    await conn.set_autocommit(True)
    await conn.execute("DISCARD ALL")
