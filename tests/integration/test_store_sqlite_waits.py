"""A SQLite store waits for another process's write lock without stalling the event loop.

The store calls SQLite on the loop's thread (no aiosqlite thread hop), so SQLite's own busy
handler, which sleeps inside the call, is off; the store waits between tries instead. Another
process is stood in for by a plain ``sqlite3`` connection holding ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from store_fixtures import new_run

from agape_ops.errors import StoreError
from agape_ops.store import SqlStore, open_store
from agape_ops.store.sqlite_inline import _busy

pytestmark = pytest.mark.integration


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ops.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SqlStore]:
    opened = await open_store(f"sqlite+aiosqlite:///{path}", busy_timeout_s=0.5)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def holder(store: SqlStore, path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection to the file, holding its write lock until released."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        conn.close()


class Ticker:
    """Counts turns of the event loop while it runs: a stalled loop counts none."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._task.cancel()


async def test_a_write_waits_for_the_lock_and_lands_once_it_is_released(
    store: SqlStore, holder: sqlite3.Connection
) -> None:
    ticker = Ticker()
    write = asyncio.create_task(store.create_run(new_run()))
    done, _ = await asyncio.wait({write}, timeout=0.1)
    assert not done, "the write went through while another connection held the lock"
    assert ticker.ticks > 10, "the loop stalled while the write waited"
    holder.execute("COMMIT")
    created = await asyncio.wait_for(write, timeout=5)
    ticker.stop()
    assert created.id == "INC-1"
    assert await store.get_run("INC-1") is not None


async def test_a_lock_held_past_the_busy_timeout_is_a_clear_error_and_the_loop_kept_turning(
    store: SqlStore, holder: sqlite3.Connection, path: Path
) -> None:
    ticker = Ticker()
    with pytest.raises(StoreError) as caught:
        await store.create_run(new_run())
    ticker.stop()
    assert str(caught.value) == (
        f"the store at {path} is busy: another process held it locked for more than 0.5 s"
    )
    assert ticker.ticks > 10
    holder.execute("ROLLBACK")
    assert await store.list_runs() == []


async def test_reads_do_not_wait_for_a_writer(store: SqlStore, path: Path) -> None:
    created = await store.create_run(new_run(fingerprint="fp-read"))
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE ops_runs SET title = 'changed, not committed'")
        found = await asyncio.wait_for(store.get_run(created.id), timeout=0.4)
    finally:
        writer.close()
    assert found is not None
    assert found.title == "Payment Gateway Outage"


def test_only_a_lock_wait_is_retried() -> None:
    def error(code: int, text: str) -> sqlite3.OperationalError:
        exc = sqlite3.OperationalError(text)
        exc.sqlite_errorcode = code
        return exc

    assert _busy(error(5, "database is locked"))
    assert not _busy(error(517, "database is locked"))  # a stale snapshot: waiting cannot help
    assert not _busy(error(1, "no such table: ops_runs"))


OPENER = """
import asyncio, os, sys, time
from datetime import UTC, datetime
from agape_ops.engine.records import Run, RunState
from agape_ops.store import open_store

async def main(url, gate, name):
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(gate):  # all start together: the test opens the gate at once
        assert time.monotonic() < deadline, "the gate never opened"
        await asyncio.sleep(0.001)
    store = await open_store(url)
    try:
        run = Run("INC", 0, "rb", "t", "high", RunState.OPEN, name, datetime.now(UTC))
        print((await store.create_run(run)).number, flush=True)
    finally:
        await store.close()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_processes_opening_a_new_store_at_once_all_get_it(tmp_path: Path) -> None:
    """The first opener switches the file to WAL and migrates; the others wait, none fails."""
    url, gate = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}", tmp_path / "go"
    openers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPENER, url, str(gate), f"P{n}", stdout=asyncio.subprocess.PIPE
        )
        for n in range(6)
    ]
    for opener in openers:
        assert opener.stdout is not None
        assert await asyncio.wait_for(opener.stdout.readline(), timeout=30) == b"ready\n"
    gate.touch()
    outputs = [await asyncio.wait_for(opener.communicate(), timeout=60) for opener in openers]
    assert [opener.returncode for opener in openers] == [0] * 6
    assert sorted(int(out) for out, _ in outputs) == [1, 2, 3, 4, 5, 6]
    with contextlib.closing(sqlite3.connect(tmp_path / "new.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT count(*) FROM ops_schema_version").fetchone() == (3,)
