"""Translate psycopg's errors into agape-ops errors an on-call engineer can act on.

Connection failures say where and why in words ("PostgreSQL: unreachable (connection refused)
at db.internal:5432"), never the DSN's password; SQL errors carry PostgreSQL's own message and
the step; timeouts name the limit that fired.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg
from psycopg.conninfo import conninfo_to_dict

from agape_ops.errors import (
    AdapterAuthError,
    AdapterError,
    AdapterResponseError,
    AdapterTimeout,
    AdapterUnavailable,
    UnsafeOperation,
)

NAME = "postgres"

#: Words libpq uses for a failed connection, and how we say them.
_REASONS = (
    ("connection refused", "connection refused"),
    ("could not translate host name", "host name not found"),
    ("name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("temporary failure in name resolution", "host name not found"),
    ("timeout expired", "connection timed out"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network unreachable"),
    ("the database system is starting up", "the database system is starting up"),
    ("the database system is shutting down", "the database system is shutting down"),
    ("the database system is in recovery mode", "the database system is in recovery"),
    ("too many clients", "too many connections"),
    ("server closed the connection unexpectedly", "the server closed the connection"),
    ("terminating connection", "the server terminated the connection"),
)


class Location:
    """Where the database is, for messages: host and port, and the password to scrub."""

    def __init__(self, conninfo: str) -> None:
        try:
            parts = conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError:
            parts = {}
        host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
        self.where = f"{host}:{parts.get('port') or 5432}"
        self.database = str(parts.get("dbname") or "")
        self.user = str(parts.get("user") or "")
        self._password = str(parts.get("password") or "")

    def scrub(self, text: str) -> str:
        """Remove the password from ``text``, however it got there."""
        return text.replace(self._password, "***") if self._password else text


def connection_error(exc: BaseException, location: Location) -> AdapterError:
    """Say why a connection failed: unreachable, refused credentials, or no such database."""
    text = location.scrub(str(exc))
    lowered = text.lower()
    role = location.user or "(default)"
    if "password authentication failed" in lowered or "no pg_hba.conf entry" in lowered:
        return AdapterAuthError(
            f"PostgreSQL: authentication failed: the server at {location.where} rejected the "
            f"credentials of role {role}; check DATABASE_URL",
            adapter=NAME,
        )
    if "role" in lowered and "does not exist" in lowered:
        return AdapterAuthError(
            f"PostgreSQL: authentication failed: role {role} does not exist at "
            f"{location.where}; check DATABASE_URL",
            adapter=NAME,
        )
    if "does not exist" in lowered and "database" in lowered:
        return AdapterUnavailable(
            f"PostgreSQL: database {location.database!r} does not exist at {location.where}; "
            "check DATABASE_URL",
            adapter=NAME,
        )
    reason = next((said for words, said in _REASONS if words in lowered), None)
    if reason is None:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        reason = lines[-1] if lines else type(exc).__name__
        reason = reason.removeprefix("connection failed: ")
    return AdapterUnavailable(
        f"PostgreSQL: unreachable ({reason}) at {location.where}", adapter=NAME
    )


def query_error(
    exc: psycopg.Error,
    location: Location,
    *,
    step_id: str | None,
    statement_timeout_ms: int,
    lock_timeout_ms: int,
) -> AdapterError:
    """Translate an error raised while a step's SQL ran."""
    diag = exc.diag
    primary = location.scrub(diag.message_primary or str(exc).strip())
    hint = f" (hint: {location.scrub(diag.message_hint)})" if diag.message_hint else ""
    step = f"step {step_id}" if step_id else "the step"
    if isinstance(exc, pg.QueryCanceled):
        return AdapterTimeout(
            f"PostgreSQL: {step}'s query ran past the {statement_timeout_ms} ms statement "
            "timeout and was cancelled; nothing was changed",
            adapter=NAME,
            step_id=step_id,
        )
    if isinstance(exc, pg.LockNotAvailable):
        return AdapterTimeout(
            f"PostgreSQL: {step} waited past the {lock_timeout_ms} ms lock timeout for rows "
            "another session holds; nothing was changed, try again",
            adapter=NAME,
            step_id=step_id,
        )
    if isinstance(exc, pg.ReadOnlySqlTransaction):
        return UnsafeOperation(
            f"read step tried to write ({primary}); nothing was changed. Mark the step "
            "`risk: write` with a confirmation if it is meant to change data",
            adapter=NAME,
            step_id=step_id,
        )
    if isinstance(exc, pg.InsufficientPrivilege):
        return AdapterAuthError(
            f"PostgreSQL: the bot's role {location.user or ''} may not do this in {step}: "
            f"{primary}; grant the right or run it by hand",
            adapter=NAME,
            step_id=step_id,
        )
    if isinstance(exc, pg.InvalidAuthorizationSpecification | pg.InvalidPassword):
        return connection_error(exc, location)
    sqlstate = exc.sqlstate or ""
    lost = exc.sqlstate is None or sqlstate.startswith(("08", "57P", "53"))
    if lost and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return connection_error(exc, location)
    return AdapterResponseError(
        f"PostgreSQL rejected {step}: {primary}{hint}", adapter=NAME, step_id=step_id
    )
