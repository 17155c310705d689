"""Build the store's database engine from its URL and say, in words, why it cannot be used.

SQLite (the default) gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for writes, so several
processes can share the file safely, and is called on the event loop's thread
(``sqlite_inline``); PostgreSQL gets a connect timeout and pre-ping. Driver
errors become ``StoreError`` here, with the place named and any DSN password removed.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agape_ops.errors import StoreError
from agape_ops.settings import dsn_passwords
from agape_ops.store import sqlite_inline

#: Execution option naming how a SQLite transaction begins (``IMMEDIATE`` unless told).
SQLITE_BEGIN = "agape_sqlite_begin"

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


@dataclass(frozen=True)
class StoreTarget:
    """Where the store lives: the URL to connect with and how to name it to a person."""

    url: URL
    place: str
    secrets: tuple[str, ...] = field(repr=False)
    connect_timeout_s: float
    busy_timeout_s: float

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"


def resolve_target(raw_url: str, *, connect_timeout_s: float, busy_timeout_s: float) -> StoreTarget:
    """Parse and check the store URL, refusing what cannot work before connecting."""
    secrets = tuple(dsn_passwords(raw_url))
    try:
        url = make_url(raw_url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            "OPS_DATABASE_URL is not a database URL: use sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+psycopg://user@host/database"
        ) from exc
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise StoreError(
            f"the store cannot use {url.drivername!r} URLs: use sqlite+aiosqlite:///file.db "
            "or postgresql+psycopg://user@host/database"
        )
    url = url.set(drivername=driver)
    if url.get_backend_name() == "sqlite":
        place = _check_sqlite_file(url)
    else:
        place = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
    return StoreTarget(url, place, secrets, connect_timeout_s, busy_timeout_s)


def _check_sqlite_file(url: URL) -> str:
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        raise StoreError(
            "an in-memory SQLite store loses every run when the bot restarts: name a file, "
            "e.g. OPS_DATABASE_URL=sqlite:///agape-ops.db"
        )
    path = Path(database).absolute()
    parent = path.parent
    reason: str | None = None
    if not parent.exists():
        reason = f"directory {parent} does not exist"
    elif not parent.is_dir():
        reason = f"{parent} is not a directory"
    elif path.is_dir():
        reason = "it is a directory"
    elif not os.access(parent, os.W_OK | os.X_OK):
        # The journal (-wal, -shm) lives beside the file, so the directory must be writable.
        reason = f"directory {parent} is not writable"
    elif path.exists() and not os.access(path, os.R_OK | os.W_OK):
        reason = "the file is not readable and writable"
    if reason is not None:
        raise StoreError(f"cannot open the store at {path}: {reason}")
    return str(path)


def build_engine(target: StoreTarget) -> AsyncEngine:
    """Create the engine (connecting lazily), tuned for its backend."""
    serializer = functools.partial(json.dumps, default=str)
    if target.is_sqlite:
        database = str(Path(target.url.database or "").absolute())
        engine = create_async_engine(
            target.url,
            json_serializer=serializer,
            async_creator=sqlite_inline.creator(database, busy_timeout_s=target.busy_timeout_s),
        )
        _tune_sqlite(engine)
        return engine
    return create_async_engine(
        target.url,
        json_serializer=serializer,
        pool_pre_ping=True,
        pool_timeout=max(target.connect_timeout_s, 10.0),
        # libpq counts whole seconds and treats less than 2 as 2.
        connect_args={"connect_timeout": max(2, round(target.connect_timeout_s))},
    )


def _tune_sqlite(engine: AsyncEngine) -> None:
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # BEGIN is ours (the connection opens with no isolation level), so that reads and DDL
        # run inside real transactions; waits for other processes' locks are the connection's.
        cursor = dbapi_connection.cursor()
        try:
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a transaction that reads and then writes
        # can never fail half way because another process wrote in between.
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _use_wal(cursor: Any) -> None:
    """Put the file in WAL mode (it stays so): only the first connection to a new file has to.

    Switching needs the file to itself, and SQLite's busy handler does not wait for that: a
    second process opening a brand-new store at the same moment is told "database is locked"
    at once. So read the mode first; a switch told so is tried again by the connection, which
    waits (without blocking the loop) up to the busy timeout.
    """
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() != "wal":
        cursor.execute("PRAGMA journal_mode = WAL")


@contextmanager
def translated(target: StoreTarget) -> Iterator[None]:
    """Turn driver and pool failures inside the block into a ``StoreError`` a person can act on."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        raise StoreError(describe_failure(exc, target)) from exc
    except sa.exc.TimeoutError as exc:
        raise StoreError(
            f"the store at {target.place} is overloaded: no free connection within "
            f"{max(target.connect_timeout_s, 10.0):g} s"
        ) from exc


def describe_failure(exc: sa.exc.DBAPIError, target: StoreTarget) -> str:
    """Say what went wrong with the store in one line, without any password in it."""
    original = str(exc.orig if exc.orig is not None else exc)
    detail = _redact(original.strip().splitlines()[0] if original.strip() else "", target)
    lowered = original.lower()
    if target.is_sqlite:
        if "locked" in lowered or "busy" in lowered:
            return (
                f"the store at {target.place} is busy: another process held it locked for "
                f"more than {target.busy_timeout_s:g} s"
            )
        if "unable to open" in lowered or "readonly" in lowered or "not a database" in lowered:
            return f"cannot open the store at {target.place}: {detail}"
        return f"the store at {target.place} failed: {detail}"
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return f"store database error: {detail} ({target.place})"
    refused = _postgres_refusal(lowered, target)
    if refused is not None:
        return f"store database refused the connection: {refused} ({target.place})"
    reason = _postgres_unreachable(lowered, target) or detail
    return f"store database unreachable: {reason} ({target.place})"


def _postgres_unreachable(lowered: str, target: StoreTarget) -> str | None:
    if "connection refused" in lowered:
        return "connection refused"
    if "timeout expired" in lowered or "timed out" in lowered:
        return f"no answer within {max(2, round(target.connect_timeout_s))} s"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"unknown host {target.url.host}"
    return None


def _postgres_refusal(lowered: str, target: StoreTarget) -> str | None:
    if "authentication failed" in lowered or "no password supplied" in lowered:
        return f"the credentials for user {target.url.username or '?'} were rejected"
    if "role" in lowered and "does not exist" in lowered:
        return f"user {target.url.username or '?'} does not exist"
    if "database" in lowered and "does not exist" in lowered:
        return f"database {target.url.database} does not exist"
    return None


def _redact(text: str, target: StoreTarget) -> str:
    for secret in target.secrets:
        text = text.replace(secret, "***")
    return text
