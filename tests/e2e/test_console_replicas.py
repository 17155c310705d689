"""Eight `agape-ops console` processes on one store, typing the same alert at the same moment.

They are eight bots as far as the store knows: each its own process, engine and connections.
The alert must land in one run (the store allows one active run per alert fingerprint), every
console must end up on that run, and a note typed in each must be on its timeline.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pexpect
import pytest
from pexpect.popen_spawn import PopenSpawn
from test_console import AGAPE, DEADLINE_S, NEGATIVE_STOCK, REPO

from agape_ops.store import open_store

pytestmark = pytest.mark.e2e

CONSOLES = 8


def console_env(tmp_path: Path, store_url: str) -> dict[str, str]:
    """No backend at all: the detection checks say so, which is all this test needs of them."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        "OPS_DATABASE_URL": store_url,
        "RUNBOOKS_DIR": str(REPO / "runbooks"),
        "OPS_TEAM_FILE": str(REPO / "team.yaml"),
        "OPS_RESPONDERS": ",".join(f"person{n}" for n in range(CONSOLES)),
    }


@pytest.fixture
def shared_store(empty_db: str) -> str:
    """The store a highly available deployment shares: PostgreSQL (the replica tests of the
    engine race two processes on a SQLite file too)."""
    return empty_db


def test_eight_consoles_typing_one_alert_at_once_share_one_run(
    shared_store: str, tmp_path: Path
) -> None:
    env = console_env(tmp_path, shared_store)
    consoles = [
        PopenSpawn(
            [AGAPE, "console", "--as", f"person{n}"],
            env=env,
            cwd=str(tmp_path),
            encoding="utf-8",
            timeout=DEADLINE_S * 3,
        )
        for n in range(CONSOLES)
    ]
    try:
        for console in consoles:
            console.expect_exact("agape-ops> ")
        for console in consoles:  # as close to the same moment as eight pipes allow
            console.sendline(NEGATIVE_STOCK)
        for console in consoles:
            console.expect_exact("INC-1> ")
        for n, console in enumerate(consoles):
            console.sendline(f"/ops note from console {n}")
            console.expect_exact(f"person{n}: from console {n}")
            console.expect_exact("INC-1> ")
        for console in consoles:
            console.sendeof()
            console.expect(pexpect.EOF)
    finally:
        for console in consoles:
            if console.proc.poll() is None:
                console.proc.kill()
            console.proc.wait()
            for pipe in (console.proc.stdin, console.proc.stdout):
                if pipe is not None:
                    pipe.close()

    runs, notes, count = asyncio.run(what_the_store_holds(shared_store))
    assert runs == ["INC-1"]
    assert count == CONSOLES
    assert sorted(notes) == sorted(f"from console {n}" for n in range(CONSOLES))


async def what_the_store_holds(url: str) -> tuple[list[str], list[str], int]:
    driver = url.replace("postgresql://", "postgresql+psycopg://", 1)
    driver = driver.replace("sqlite:///", "sqlite+aiosqlite:///", 1)
    store = await open_store(driver)
    try:
        runs = await store.list_runs()
        events = await store.events(runs[0].id) if runs else []
        notes = [e.summary for e in events if e.kind == "note.added"]
        return [r.id for r in runs], notes, runs[0].alert_count if runs else 0
    finally:
        await store.close()
