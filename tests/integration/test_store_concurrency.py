"""The store settles races itself: between tasks, between engines, and between processes.

Half the callers in each test go through a second store with its own connections, as another
process would; one test runs real worker processes.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
import store_fixtures
from store_fixtures import event, new_run, together

from agape_ops.errors import Conflict
from agape_ops.store import SqlStore, open_store

pytestmark = pytest.mark.integration

store_url = store_fixtures.store_url
store = store_fixtures.store
other = store_fixtures.other


# Concurrency: half the callers go through a second store, as another process would


async def test_only_one_of_fifty_concurrent_claims_of_a_key_wins(
    store: SqlStore, other: SqlStore
) -> None:
    claims = await together(
        *((store if n % 2 else other).claim_command("key", "INC-1") for n in range(50))
    )
    assert sum(c.claimed for c in claims) == 1
    assert all(c.outcome is None for c in claims)


async def test_concurrent_create_run_gives_distinct_consecutive_numbers(
    store: SqlStore, other: SqlStore
) -> None:
    created = await together(
        *((store if n % 2 else other).create_run(new_run()) for n in range(20))
    )
    assert sorted(r.number for r in created) == list(range(1, 21))
    assert {r.id for r in created} == {f"INC-{n}" for n in range(1, 21)}
    assert len(await store.list_runs()) == 20


async def test_concurrent_creates_of_one_fingerprint_leave_one_active_run(
    store: SqlStore, other: SqlStore
) -> None:
    async def create(target: SqlStore) -> str:
        try:
            return (await target.create_run(new_run(fingerprint="fp"))).id
        except Conflict:
            return "conflict"

    made = await together(*(create(store if n % 2 else other) for n in range(20)))

    opened = [m for m in made if m != "conflict"]
    assert len(opened) == 1
    assert made.count("conflict") == 19
    active = await other.find_active_run("fp")
    assert active is not None
    assert active.id == opened[0]


async def test_concurrent_appends_number_the_timeline_without_gaps(
    store: SqlStore, other: SqlStore
) -> None:
    run = await store.create_run(new_run())
    appended = await together(
        *((store if n % 2 else other).append_event(event(run.id, f"e{n}")) for n in range(30))
    )
    assert sorted(e.seq for e in appended) == list(range(1, 31))
    timeline = await other.events(run.id)
    assert [e.seq for e in timeline] == list(range(1, 31))
    assert {e.kind for e in timeline} == {f"e{n}" for n in range(30)}


async def test_concurrent_lock_attempts_leave_one_holder(store: SqlStore, other: SqlStore) -> None:
    answers = await together(
        *((store if n % 2 else other).acquire_lock("failover", f"INC-{n}") for n in range(20))
    )
    winners = [f"INC-{n}" for n, answer in enumerate(answers) if answer is None]
    assert len(winners) == 1
    assert {a for a in answers if a is not None} == set(winners)


async def test_concurrent_approvals_by_one_approver_count_once(
    store: SqlStore, other: SqlStore
) -> None:
    await together(
        *((store if n % 2 else other).add_approval("INC-1", "s", "U1") for n in range(10))
    )
    assert await store.add_approval("INC-1", "s", "U2") in (["U1", "U2"], ["U2", "U1"])


WORKER = """
import asyncio, sys
from datetime import UTC, datetime
from agape_ops.engine.records import Run, RunState
from agape_ops.store import open_store

async def main(url, name):
    store = await open_store(url)
    try:
        for n in range(10):
            run = Run("INC", 0, "rb", "t", "high", RunState.OPEN, name, datetime.now(UTC))
            created = await store.create_run(run)
            claim = await store.claim_command(f"key-{n}", created.id)
            print(created.number, int(claim.claimed), flush=True)
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_separate_processes_share_numbers_and_claims_safely(store_url: str) -> None:
    store = await open_store(store_url)  # migrate once, so both workers race on the data only
    await store.close()
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, store_url, f"P{n}", stdout=asyncio.subprocess.PIPE
        )
        for n in range(2)
    ]
    outputs = [await worker.communicate() for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    lines = [line.split() for out, _ in outputs for line in out.decode().splitlines()]
    assert sorted(int(number) for number, _ in lines) == list(range(1, 21))
    assert sum(int(claimed) for _, claimed in lines) == 10
