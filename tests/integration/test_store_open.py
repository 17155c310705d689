"""Opening the store: where it lands by default, and clear refusals when it cannot be used."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest

from agape_ops.bootstrap import build
from agape_ops.errors import StoreError
from agape_ops.settings import Settings
from agape_ops.store import open_store

pytestmark = pytest.mark.integration


async def test_the_default_url_opens_a_wal_sqlite_file_in_the_users_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("OPS_DATABASE_URL", raising=False)
    settings = Settings(_env_file=None, runbooks_dir=tmp_path)
    container = await build(settings, configure_logs=False)  # creates the data folder
    try:
        assert container.store.place == str(tmp_path / "data" / "agape-ops" / "agape-ops.db")
        assert await container.store.schema_version() == 3
    finally:
        await container.aclose()
    assert not (tmp_path / "agape-ops.db").exists()
    with sqlite3.connect(tmp_path / "data" / "agape-ops" / "agape-ops.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert {"ops_runs", "ops_events", "ops_schema_version", "ops_seen_events"} <= tables


async def test_a_plain_sqlite_url_is_given_the_async_driver(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'ops.db'}")
    try:
        assert await store.schema_version() == 3
    finally:
        await store.close()


async def test_a_missing_directory_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "ops.db"
    with pytest.raises(StoreError) as caught:
        await open_store(f"sqlite+aiosqlite:///{path}")
    assert str(caught.value) == (
        f"cannot open the store at {path}: directory {path.parent} does not exist"
    )


async def test_a_file_where_the_directory_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a directory")
    with pytest.raises(StoreError, match="plain-file is not a directory"):
        await open_store(f"sqlite+aiosqlite:///{tmp_path / 'plain-file' / 'ops.db'}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any directory")
async def test_an_unwritable_directory_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreError, match=r"cannot open the store at .*: directory .* is not"):
            await open_store(f"sqlite+aiosqlite:///{locked / 'ops.db'}")
    finally:
        locked.chmod(0o700)


async def test_a_directory_the_bot_may_not_write_is_refused_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_access = os.access

    def access(path: os.PathLike[str] | str, mode: int) -> bool:
        # What os.access answers for a read-only directory (root is never refused by mode bits).
        return False if Path(path) == tmp_path and mode & os.W_OK else real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(StoreError) as caught:
        await open_store(f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}")
    assert str(caught.value) == (
        f"cannot open the store at {tmp_path / 'ops.db'}: directory {tmp_path} is not writable"
    )
    assert not (tmp_path / "ops.db").exists()


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    path.write_bytes(b"this is no SQLite file, just some text " * 100)
    with pytest.raises(StoreError, match=f"cannot open the store at {path}: .*not a database"):
        await open_store(f"sqlite+aiosqlite:///{path}")


async def test_an_in_memory_store_is_refused_because_it_would_lose_every_run() -> None:
    with pytest.raises(StoreError, match="in-memory SQLite store loses every run"):
        await open_store("sqlite+aiosqlite://")


async def test_an_unsupported_url_scheme_is_refused() -> None:
    with pytest.raises(StoreError, match="cannot use 'mysql' URLs"):
        await open_store("mysql://ops:secret@db/ops")


async def test_unreachable_postgresql_fails_fast_without_showing_the_password() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        await open_store("postgresql+psycopg://ops:Sup3r-s3cret@127.0.0.1:1/agape_ops")
    assert time.monotonic() - started < 6
    message = str(caught.value)
    assert message == "store database unreachable: connection refused (127.0.0.1:1/agape_ops)"
    assert "Sup3r-s3cret" not in message


async def test_a_missing_postgresql_database_is_named(empty_db: str) -> None:
    server = empty_db.replace("postgresql://", "postgresql+psycopg://", 1).rsplit("/", 1)[0]
    with pytest.raises(
        StoreError, match="refused the connection: database agape_no_such_db does not exist"
    ):
        await open_store(f"{server}/agape_no_such_db")


async def test_a_postgresql_server_that_never_answers_times_out_within_the_limit() -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            await open_store(f"postgresql+psycopg://ops@127.0.0.1:{port}/ops", connect_timeout_s=2)
        elapsed = time.monotonic() - started
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert elapsed < 6
    assert str(caught.value) == (
        f"store database unreachable: no answer within 2 s (127.0.0.1:{port}/ops)"
    )
