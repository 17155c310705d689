"""A bot replica for the multi-process tests: one engine in its own process over a shared store.

Run as ``python replica.py STORE_URL LEASE_S``. It reads JSON lines on stdin, each a batch of
commands (``{"commands": [...]}``); it answers ``ready`` and waits for a line ``go``, then
executes the batch concurrently and prints one JSON line: the outcomes, and how many times each
step reached the fake adapters. A batch naming ``hold`` makes that step's adapter call wait
forever (and prints ``entered <step>`` when the call starts), so a test can kill the process
while it holds the step.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from datetime import timedelta
from typing import Any

from engine_fixtures import RealClock, build_engine, fake_adapters

from agape_ops.alerts.model import Alert
from agape_ops.engine import commands as engine_commands
from agape_ops.engine.commands import Outcome
from agape_ops.store import open_store


def say(line: str) -> None:
    """Write one line to the test driving this replica."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def command_of(spec: dict[str, Any]) -> engine_commands.Command:
    kind = getattr(engine_commands, spec.pop("type"))
    if isinstance(spec.get("alert"), dict):
        spec["alert"] = Alert.model_validate(spec["alert"])
    command: engine_commands.Command = kind(**spec)
    return command


def answer(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status.value,
        "first": outcome.first.value if outcome.first else None,
        "message": outcome.message,
        "run_id": outcome.run.id if outcome.run else None,
        "error": outcome.error,
    }


async def main(url: str, lease_s: float) -> None:
    store = await open_store(url)
    adapters = fake_adapters()
    engine = build_engine(store, adapters, RealClock())
    engine.step_lease = timedelta(seconds=lease_s)
    loop = asyncio.get_running_loop()

    async def read() -> str:
        return await loop.run_in_executor(None, sys.stdin.readline)

    try:
        while line := await read():
            batch = json.loads(line)
            for step_id in batch.get("hold", []):
                for adapter in adapters.values():
                    adapter.hold(step_id)
            commands = [command_of(spec) for spec in batch["commands"]]
            say("ready")
            assert (await read()).strip() == "go"
            watchers = [
                asyncio.create_task(announce(adapter.entered[step_id], step_id))
                for step_id in batch.get("hold", [])
                for adapter in adapters.values()
            ]
            outcomes = await asyncio.gather(*(engine.execute(c) for c in commands))
            for watcher in watchers:
                watcher.cancel()
            calls = Counter(r.step.id for a in adapters.values() for r in a.requests)
            say(json.dumps({"outcomes": [answer(o) for o in outcomes], "calls": calls}))
    finally:
        await store.close()


async def announce(entered: asyncio.Event, step_id: str) -> None:
    await entered.wait()
    say(f"entered {step_id}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
