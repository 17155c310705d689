"""The backend's PostgreSQL, read for detection and diagnosis and written only by guarded steps.

Every call is one transaction on a connection from the pool the composition root built with
``open_pool``: reads run READ ONLY, every transaction sets its own ``statement_timeout`` and
``lock_timeout``, and values reach SQL only as bound parameters. A write first counts the rows
it will touch and refuses, changing nothing, when that is more than the step's ``max_rows``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agape_ops.adapters.pgerrors import NAME, Location, connection_error, query_error
from agape_ops.adapters.pgstatement import Statement, analyse
from agape_ops.adapters.pgvalues import render_row, unique_columns
from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult, table
from agape_ops.errors import (
    AdapterError,
    AdapterNotConfigured,
    AdapterTimeout,
    AdapterUnavailable,
    UnsafeOperation,
)
from agape_ops.runbooks.model import PostgresCall, Risk

NOT_CONFIGURED = "PostgreSQL is not configured: set DATABASE_URL"

#: Seconds allowed, beyond the statement timeout, before a stuck network is given up on.
_SLACK_S = 5.0
#: Seconds spent finding out why the pool had no connection (one direct attempt).
_DIAGNOSE_S = 1.5


async def open_pool(
    dsn: str, *, connect_timeout_s: float = 3.0, max_size: int = 4
) -> AsyncConnectionPool:
    """Open a small pool that reports an unreachable database within seconds, not 30.

    The pool connects in the background (opening never waits), hands out a connection only
    after checking it is alive, and gives up on a request after ``connect_timeout_s``.
    """
    pool: AsyncConnectionPool = AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        timeout=connect_timeout_s,
        kwargs={
            "connect_timeout": max(2, math.ceil(connect_timeout_s)),
            "application_name": "agape-ops",
        },
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="agape-ops-backend",
    )
    await pool.open(wait=False)
    return pool


class PostgresAdapter:
    """Run runbook SQL against the backend's database, one guarded transaction per call."""

    name = NAME

    def __init__(
        self,
        pool: AsyncConnectionPool | None,
        *,
        statement_timeout_ms: int = 5000,
        lock_timeout_ms: int = 2000,
    ) -> None:
        self._pool = pool
        self._statement_timeout_ms = statement_timeout_ms
        self._lock_timeout_ms = lock_timeout_ms
        conninfo = pool.conninfo if pool is not None else ""
        self._location = Location(conninfo if isinstance(conninfo, str) else "")

    # --- the Adapter protocol ----------------------------------------------------------------

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Run the step's SQL: a read-only query, or a write guarded by its preview."""
        call, params, statement = self._prepare(request)
        started = time.monotonic()
        async with self._transaction(request, call, read_only=request.step.risk is Risk.READ) as (
            cursor
        ):
            if request.step.risk is Risk.READ:
                result = await self._read(cursor, call, params)
            else:
                result = await self._write(cursor, request, call, params, statement)
        return result.model_copy(update={"duration_ms": _ms_since(started)})

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """List the rows a write step would change, in a read-only transaction."""
        if request.step.risk is Risk.READ:
            return None
        call, params, statement = self._prepare(request)
        started = time.monotonic()
        preview_sql, preview_params = self._preview_sql(request, call, params, statement)
        if preview_sql is None:
            return StepResult(
                summary="no preview: this statement's rows cannot be listed beforehand; "
                + _guard_words(call.max_rows),
                values={"preview_count": None},
            )
        async with self._transaction(request, call, read_only=True) as cursor:
            count, columns, rows, types = await _fetch(cursor, preview_sql, preview_params, call)
        changes = f"would change {_rows(count)}"
        if call.max_rows is not None and count > call.max_rows:
            changes += f", more than its limit of {call.max_rows}: it will be refused"
        result = table(
            changes,
            columns,
            rows,
            total=count,
            values={"preview_count": count, "column_types": types},
            limit=call.limit,
        )
        return result.model_copy(update={"duration_ms": _ms_since(started)})

    def describe(self, request: AdapterRequest) -> str:
        """Say exactly what ``execute`` runs: the SQL, its parameters, and the row guard."""
        call = _call(request)
        params = _params(request, call)
        timeout_ms = call.timeout_ms or self._statement_timeout_ms
        mode = "a read-only transaction" if request.step.risk is Risk.READ else "a transaction"
        lines = [
            f"Runs in {mode} (statement timeout {timeout_ms} ms, lock timeout "
            f"{self._lock_timeout_ms} ms):",
            call.sql.strip(),
        ]
        if params:
            bound = ", ".join(f"{name} = {value!r}" for name, value in params.items())
            lines.append(f"with bound parameters: {bound}")
        if request.step.risk is not Risk.READ:
            try:
                statement = analyse(call.sql, params, step_id=request.step.id)
                preview_sql, _ = self._preview_sql(request, call, params, statement)
            except AdapterError as exc:
                preview_sql = f"(none: {exc})"
            lines.append(f"First lists the rows it will change with: {preview_sql}")
            lines.append(_guard_words(call.max_rows))
        return "\n".join(lines)

    async def probe(self) -> Probe:
        """Run SELECT 1 and time it; report, never raise."""
        if self._pool is None:
            return Probe(self.name, ok=False, detail=NOT_CONFIGURED, configured=False)
        started = time.monotonic()
        try:
            async with self._connection(None) as conn:
                await conn.execute("SELECT 1")
        except AdapterError as exc:
            return Probe(self.name, ok=False, detail=exc.message, latency_ms=_ms_since(started))
        latency = _ms_since(started)
        return Probe(self.name, ok=True, detail=f"answered in {latency} ms", latency_ms=latency)

    # --- reads and writes --------------------------------------------------------------------

    async def _read(
        self, cursor: psycopg.AsyncCursor[Any], call: PostgresCall, params: dict[str, Any]
    ) -> StepResult:
        count, columns, rows, types = await _fetch(cursor, call.sql, params, call)
        summary = _rows(count)
        if count > len(rows):
            summary += f" (first {len(rows)} shown)"
        return table(
            summary, columns, rows, total=count, values={"column_types": types}, limit=call.limit
        )

    async def _write(
        self,
        cursor: psycopg.AsyncCursor[Any],
        request: AdapterRequest,
        call: PostgresCall,
        params: dict[str, Any],
        statement: Statement,
    ) -> StepResult:
        step_id = request.step.id
        preview_sql, preview_params = self._preview_sql(request, call, params, statement)
        preview_count: int | None = None
        columns: list[str] = []
        rows: list[dict[str, Any]] = []
        if preview_sql is not None:
            preview_count, columns, rows, _ = await _fetch(
                cursor, preview_sql, preview_params, call
            )
            if call.max_rows is not None and preview_count > call.max_rows:
                raise UnsafeOperation(
                    f"step {step_id} would change {_rows(preview_count)}, more than its limit "
                    f"of {call.max_rows} (max_rows); nothing was changed",
                    adapter=NAME,
                    step_id=step_id,
                )
        await cursor.execute(call.sql, params or None)
        changed = max(cursor.rowcount, 0)
        if call.max_rows is not None and changed > call.max_rows:
            # Rows appeared between the preview and the write: raising rolls the write back.
            raise UnsafeOperation(
                f"step {step_id} changed {_rows(changed)}, more than its limit of "
                f"{call.max_rows} (max_rows), so it was rolled back; nothing was changed",
                adapter=NAME,
                step_id=step_id,
            )
        summary = f"changed {_rows(changed)}"
        if preview_count is not None and preview_count != changed:
            summary += f" (the preview listed {preview_count})"
        values = {"rows_changed": changed, "preview_count": preview_count}
        return table(
            summary,
            columns,
            rows,
            total=len(rows) if preview_count is None else preview_count,
            values=values,
            limit=call.limit,
        )

    def _preview_sql(
        self,
        request: AdapterRequest,
        call: PostgresCall,
        params: dict[str, Any],
        statement: Statement,
    ) -> tuple[str | None, dict[str, Any] | None]:
        """Return the SELECT that lists a write's rows, and the parameters it binds."""
        if call.preview is not None:
            preview = analyse(call.preview, params, step_id=request.step.id)
            if preview.kind != "SelectStmt":
                raise UnsafeOperation(
                    f"step {request.step.id}'s preview must be a SELECT; nothing was run",
                    adapter=NAME,
                    step_id=request.step.id,
                )
            return call.preview, params or None
        if statement.derived_preview is None:
            return None, None
        return statement.derived_preview, params if statement.binds else None

    # --- plumbing ----------------------------------------------------------------------------

    def _prepare(self, request: AdapterRequest) -> tuple[PostgresCall, dict[str, Any], Statement]:
        if self._pool is None:
            raise AdapterNotConfigured(NOT_CONFIGURED, adapter=NAME, step_id=request.step.id)
        call = _call(request)
        params = _params(request, call)
        read = request.step.risk is Risk.READ
        return call, params, analyse(call.sql, params, step_id=request.step.id, read=read)

    @asynccontextmanager
    async def _transaction(
        self, request: AdapterRequest, call: PostgresCall, *, read_only: bool
    ) -> AsyncIterator[psycopg.AsyncCursor[Any]]:
        """Yield a cursor inside one transaction with this call's timeouts; roll back on error."""
        timeout_ms = call.timeout_ms or self._statement_timeout_ms
        step_id = request.step.id
        async with self._connection(step_id, deadline_s=timeout_ms / 1000 + _SLACK_S) as conn:
            try:
                await conn.set_read_only(read_only)
                async with conn.transaction(), conn.cursor() as cursor:
                    await cursor.execute(
                        "SELECT set_config('statement_timeout', %(statement)s, true),"
                        " set_config('lock_timeout', %(lock)s, true)",
                        {"statement": str(timeout_ms), "lock": str(self._lock_timeout_ms)},
                    )
                    yield cursor
            except psycopg.Error as exc:
                raise query_error(
                    exc,
                    self._location,
                    step_id=step_id,
                    statement_timeout_ms=timeout_ms,
                    lock_timeout_ms=self._lock_timeout_ms,
                ) from exc

    @asynccontextmanager
    async def _connection(
        self, step_id: str | None, *, deadline_s: float = _SLACK_S
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Yield a pooled connection; say why none could be had, within a deadline."""
        if self._pool is None:
            raise AdapterNotConfigured(NOT_CONFIGURED, adapter=NAME, step_id=step_id)
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
                f"PostgreSQL: no answer from {self._location.where} within "
                f"{pool.timeout + deadline_s:.0f} s; the server or the network is stuck",
                adapter=NAME,
                step_id=step_id,
            ) from exc

    async def _diagnose(self, step_id: str | None) -> AdapterError:
        """Find out why the pool had no connection: try one directly and name the failure."""
        assert self._pool is not None  # noqa: S101 - only called with a pool
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


async def _fetch(
    cursor: psycopg.AsyncCursor[Any],
    sql: str,
    params: dict[str, Any] | None,
    call: PostgresCall,
) -> tuple[int, list[str], list[dict[str, Any]], dict[str, str]]:
    """Run a query; return all rows' count, column names, kept rows and column types."""
    await cursor.execute(sql, params or None)
    if cursor.description is None:
        return max(cursor.rowcount, 0), [], [], {}
    columns = unique_columns([column.name for column in cursor.description])
    types = {
        name: column.type_display for name, column in zip(columns, cursor.description, strict=True)
    }
    count = max(cursor.rowcount, 0)
    rows = [render_row(columns, row) for row in await cursor.fetchmany(call.limit)]
    return count, columns, rows, types


def _call(request: AdapterRequest) -> PostgresCall:
    call = request.call
    if not isinstance(call, PostgresCall):
        raise TypeError(f"the postgres adapter was given a {type(call).__name__}")
    return call


def _params(request: AdapterRequest, call: PostgresCall) -> dict[str, Any]:
    """Return the bound values: the call's own, overridden by those the engine rendered."""
    return {**call.params, **request.params}


def _rows(count: int) -> str:
    if count == 0:
        return "no rows"
    return "1 row" if count == 1 else f"{count} rows"


def _guard_words(max_rows: int | None) -> str:
    if max_rows is None:
        return "No max_rows guard: every row it matches will change."
    return (
        f"Refuses, changing nothing, if more than {max_rows} rows would change (max_rows); "
        "rolls back if more change when it runs."
    )


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
