"""The backend's PostgreSQL, read for detection and diagnosis and written only by guarded steps.

Every call is one transaction on a connection from the pool the composition root built with
``open_pool``: reads run READ ONLY, every transaction sets its own ``statement_timeout`` and
``lock_timeout``, and values reach SQL only as bound parameters. ``pgstatement`` refuses, before
anything runs, all SQL but a plain SELECT for reads and one UPDATE, DELETE or INSERT for writes.
Rows are read through a server-side cursor (a huge result is counted, never held in memory, and
the server itself accepts only one query there). A write first counts the rows it will touch and
refuses, changing nothing, when that is more than the step's ``max_rows``; it is rolled back if
it changes more than that or more than its preview listed. Every connection is reset
(``DISCARD ALL``) when it goes back to the pool, so nothing a step did lingers in the session.
"""

from __future__ import annotations

import math
import time
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool

from agape_ops.adapters.pgerrors import NAME, Location
from agape_ops.adapters.pgrequirements import Requirements, first_missing
from agape_ops.adapters.pgsession import Sessions, fetch, given_database, reset_session
from agape_ops.adapters.pgstatement import Statement, Use, analyse
from agape_ops.engine.ports import AdapterRequest, Probe
from agape_ops.engine.results import StepResult, table
from agape_ops.errors import AdapterError, AdapterNotConfigured, UnsafeOperation
from agape_ops.runbooks.model import PostgresCall, Risk

NOT_CONFIGURED = "PostgreSQL is not configured: set DATABASE_URL"

#: The longest statement timeout a step may ask for (unless the adapter's default is longer).
MAX_TIMEOUT_MS = 60_000


async def open_pool(
    dsn: str, *, connect_timeout_s: float = 3.0, max_size: int = 4
) -> AsyncConnectionPool:
    """Open a small pool that reports an unreachable database within seconds, not 30.

    The pool connects in the background (opening never waits), hands out a connection only
    after checking it is alive, and gives up on a request after ``connect_timeout_s``. Its
    connections are in autocommit (the adapter opens every transaction itself), never keep
    prepared statements, and are reset when they come back (see ``reset_session``).
    """
    pool: AsyncConnectionPool = AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        timeout=connect_timeout_s,
        kwargs={
            "connect_timeout": max(2, math.ceil(connect_timeout_s)),
            "application_name": "agape-ops",
            "autocommit": True,
            "prepare_threshold": None,
        },
        check=AsyncConnectionPool.check_connection,
        reset=reset_session,
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
        requirements: Requirements | None = None,
        connect_timeout_s: float = 3.0,
    ) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._requirements = requirements or Requirements(())
        self._user = ""
        self._statement_timeout_ms = statement_timeout_ms
        self._lock_timeout_ms = lock_timeout_ms
        self._sessions: Sessions | None = None
        if pool is not None:
            conninfo = pool.conninfo if isinstance(pool.conninfo, str) else ""
            self._user = Location(conninfo).user
            self._sessions = Sessions(
                pool,
                Location(conninfo),
                statement_timeout_ms=statement_timeout_ms,
                lock_timeout_ms=lock_timeout_ms,
            )

    # --- the Adapter protocol ----------------------------------------------------------------

    async def execute(self, request: AdapterRequest) -> StepResult:
        """Run the step's SQL: a read-only query, or a write guarded by its preview."""
        call, params, statement = self._prepare(request)
        read = request.step.risk is Risk.READ
        if not read and call.max_rows is None:
            raise UnsafeOperation(
                f"step {request.step.id} writes without max_rows, so nothing bounds how many "
                "rows it changes; give it max_rows; nothing was run",
                adapter=NAME,
                step_id=request.step.id,
            )
        if call.dsn_input is not None:
            if not read:
                raise UnsafeOperation(
                    f"step {request.step.id} would write to the database a person named "
                    f"({call.dsn_input}); only reads may; nothing was run",
                    adapter=NAME,
                    step_id=request.step.id,
                )
            return await self._read_given(request, call, params)
        async with self._transaction(request, call, read_only=read) as conn:
            if read:
                return await self._read(conn, call, params)
            return await self._write(conn, request, call, params, statement)

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        """List the rows a write step would change, in a read-only transaction."""
        if request.step.risk is Risk.READ:
            return None
        call, params, statement = self._prepare(request)
        preview_sql, preview_params = self._preview_sql(request, call, params, statement)
        if preview_sql is None:
            return StepResult(
                summary="no preview: this statement's rows cannot be listed beforehand; "
                + _guard_words(call.max_rows),
                values={"preview_count": None},
            )
        async with self._transaction(request, call, read_only=True) as conn:
            count, columns, rows, types = await fetch(conn, preview_sql, preview_params, call.limit)
        changes = f"would change {_rows(count)}"
        if call.max_rows is not None and count > call.max_rows:
            changes += f", more than its limit of {call.max_rows}: it will be refused"
        return table(
            changes,
            columns,
            rows,
            total=count,
            values={"preview_count": count, "column_types": types},
            limit=call.limit,
        )

    def describe(self, request: AdapterRequest) -> str:
        """Say exactly what ``execute`` runs: the SQL, its parameters, and the row guard."""
        call = _call(request)
        params = _params(request, call)
        timeout_ms = self._timeout_ms(call)
        mode = "a read-only transaction" if request.step.risk is Risk.READ else "a transaction"
        lines = [
            f"Runs in {mode} (statement timeout {timeout_ms} ms, lock timeout "
            f"{self._lock_timeout_ms} ms):",
            call.sql.strip(),
        ]
        if call.dsn_input:  # not DATABASE_URL: the database a person named
            lines.insert(0, f"Connects to the URL given as {call.dsn_input} (not DATABASE_URL).")
        if params:
            bound = ", ".join(f"{name} = {value!r}" for name, value in params.items())
            lines.append(f"with bound parameters: {bound}")
        if request.step.risk is not Risk.READ:
            try:
                statement = analyse(call.sql, params, use="write", step_id=request.step.id)
                preview_sql, _ = self._preview_sql(request, call, params, statement)
            except AdapterError as exc:
                preview_sql = f"(none: {exc})"
            lines.append(f"First lists the rows it will change with: {preview_sql}")
            lines.append(_guard_words(call.max_rows))
        return "\n".join(lines)

    async def probe(self) -> Probe:
        """Run SELECT 1 and time it, then check the runbooks' tables, columns and rights.

        Report, never raise: ``ok`` only when the database answers and has what the loaded
        runbooks use (the first thing missing is named).
        """
        if self._sessions is None:
            return Probe(self.name, ok=False, detail=NOT_CONFIGURED, configured=False)
        started = time.monotonic()
        try:
            async with self._sessions.connection(None) as conn:
                await conn.execute("SELECT 1")
                latency = _ms_since(started)
                missing = None
                if self._requirements:
                    missing = await first_missing(
                        conn, self._requirements, role=self._user or "current_user"
                    )
        except AdapterError as exc:
            return Probe(self.name, ok=False, detail=exc.message, latency_ms=_ms_since(started))
        except psycopg.Error as exc:
            detail = f"PostgreSQL answered but its schema could not be read ({exc.sqlstate})"
            return Probe(self.name, ok=False, detail=detail, latency_ms=latency)
        if missing is not None:
            return Probe(self.name, ok=False, detail=f"answered, but {missing}", latency_ms=latency)
        detail = f"answered in {latency} ms"
        if self._requirements:
            detail += "; has the tables, columns and rights the runbooks use"
        return Probe(self.name, ok=True, detail=detail, latency_ms=latency)

    # --- reads and writes --------------------------------------------------------------------

    async def _read(
        self, conn: psycopg.AsyncConnection[Any], call: PostgresCall, params: dict[str, Any]
    ) -> StepResult:
        count, columns, rows, types = await fetch(conn, call.sql, params, call.limit)
        summary = _rows(count)
        if count > len(rows):
            summary += f" (first {len(rows)} shown)"
        return table(
            summary, columns, rows, total=count, values={"column_types": types}, limit=call.limit
        )

    async def _read_given(
        self, request: AdapterRequest, call: PostgresCall, params: dict[str, Any]
    ) -> StepResult:
        """Read from the database a secret input names, on a connection of its own."""
        step_id = request.step.id
        dsn = given_dsn(request, call)
        async with given_database(
            dsn,
            step_id,
            timeout_ms=self._timeout_ms(call),
            lock_timeout_ms=self._lock_timeout_ms,
            connect_timeout_s=self._connect_timeout_s,
        ) as conn:
            result = await self._read(conn, call, params)
        result.summary += f" from {Location(dsn).where} (the URL given as {call.dsn_input})"
        return result

    async def _write(
        self,
        conn: psycopg.AsyncConnection[Any],
        request: AdapterRequest,
        call: PostgresCall,
        params: dict[str, Any],
        statement: Statement,
    ) -> StepResult:
        step_id = request.step.id
        limit = call.max_rows
        assert limit is not None  # noqa: S101 - execute refuses a write without max_rows
        preview_sql, preview_params = self._preview_sql(request, call, params, statement)
        preview_count: int | None = None
        columns: list[str] = []
        rows: list[dict[str, Any]] = []
        if preview_sql is not None:
            preview_count, columns, rows, _ = await fetch(
                conn, preview_sql, preview_params, call.limit
            )
            if preview_count > limit:
                raise UnsafeOperation(
                    f"step {step_id} would change {_rows(preview_count)}, more than its limit "
                    f"of {limit} (max_rows); nothing was changed",
                    adapter=NAME,
                    step_id=step_id,
                )
        async with conn.cursor() as cursor:
            # binary results force the extended protocol: the server runs one statement only
            await cursor.execute(call.sql, params or None, binary=True)
            changed = max(cursor.rowcount, 0)
        # Raising below, inside the transaction, rolls the write back.
        if changed > limit:
            raise UnsafeOperation(
                f"step {step_id} changed {_rows(changed)}, more than its limit of "
                f"{limit} (max_rows), so it was rolled back; nothing was changed",
                adapter=NAME,
                step_id=step_id,
            )
        if preview_count is not None and changed > preview_count:
            raise UnsafeOperation(
                f"step {step_id} changed {_rows(changed)} but its preview listed only "
                f"{preview_count}, so it was rolled back; nothing was changed. Its preview must "
                "select every row the write changes",
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
            analyse(call.preview, params, use="preview", step_id=request.step.id)
            return call.preview, params or None
        if statement.derived_preview is None:
            return None, None
        return statement.derived_preview, params if statement.binds else None

    # --- plumbing ----------------------------------------------------------------------------

    def _prepare(self, request: AdapterRequest) -> tuple[PostgresCall, dict[str, Any], Statement]:
        call = _call(request)
        if self._sessions is None and call.dsn_input is None:
            raise AdapterNotConfigured(NOT_CONFIGURED, adapter=NAME, step_id=request.step.id)
        params = _params(request, call)
        use: Use = "read" if request.step.risk is Risk.READ else "write"
        return call, params, analyse(call.sql, params, use=use, step_id=request.step.id)

    def _timeout_ms(self, call: PostgresCall) -> int:
        """Return the step's statement timeout, within the ceiling a step may ask for."""
        ceiling = max(MAX_TIMEOUT_MS, self._statement_timeout_ms)
        return min(call.timeout_ms or self._statement_timeout_ms, ceiling)

    def _transaction(
        self, request: AdapterRequest, call: PostgresCall, *, read_only: bool
    ) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        if self._sessions is None:
            raise AdapterNotConfigured(NOT_CONFIGURED, adapter=NAME, step_id=request.step.id)
        return self._sessions.transaction(
            request.step.id, timeout_ms=self._timeout_ms(call), read_only=read_only
        )


def _call(request: AdapterRequest) -> PostgresCall:
    call = request.call
    if not isinstance(call, PostgresCall):
        raise TypeError(f"the postgres adapter was given a {type(call).__name__}")
    return call


def given_dsn(request: AdapterRequest, call: PostgresCall) -> str:
    """Return the URL a person gave for a ``dsn_input`` read; refuse anything but a plain
    ``postgresql://`` URL (no options that reach files or the session's settings)."""
    dsn = str(request.extra.get("dsn") or "")
    parts = urlsplit(dsn)
    extra = set(parse_qs(parts.query)) - {"sslmode", "connect_timeout"}
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname or extra:
        why = f"options {', '.join(sorted(extra))} are not allowed" if extra else "not one"
        raise UnsafeOperation(
            f"PostgreSQL: {call.dsn_input} must be a postgresql://user:password@host:port/db "
            f"URL ({why}); nothing was run",
            adapter=NAME,
            step_id=request.step.id,
        )
    return dsn


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
