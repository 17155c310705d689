"""Two bot processes on one store, on PostgreSQL and on a SQLite file.

Each replica is its own process (``replica.py``) with its own engine and connections, as two
``agape-ops serve`` would be. Every pair of commands is raced on one run many times: both
replicas are handed their command, say they are ready, and are told to go at the same moment.
Nothing may be lost, nothing may run twice, and the store's event log must hold every event
exactly once, in order. A replica killed while it holds a step leaves it to the other, which
reports it interrupted once its lease runs out, and the run goes on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import engine_fixtures as ef
import pytest
from engine_fixtures import APPROVER, RESPONDER, Harness
from engine_runbook import RUNBOOK_ID, alert

from agape_ops.alerts.fingerprint import fingerprint
from agape_ops.engine.commands import (
    Acknowledge,
    AddNote,
    Command,
    MarkItemDone,
    OpenForAlert,
    ProvideInput,
    RunStep,
    SetState,
    SkipStep,
    StartRun,
)
from agape_ops.engine.records import RunState, StepState

pytestmark = pytest.mark.integration

store_url = ef.any_store_url
harness = ef.harness

HERE = Path(__file__).parent
TRIALS = 8
LEASE_S = 1.0


class Replica:
    """A replica process: hand it commands, tell it to go, read what came of them."""

    def __init__(self, url: str, lease_s: float = 30.0) -> None:
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "replica.py"), url, str(lease_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def line(self) -> str:
        assert self.process.stdout is not None
        read = self.process.stdout.readline()
        assert read, f"the replica stopped (exit status {self.process.poll()})"
        return read.strip()

    def write(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def load(self, commands: Sequence[Command], hold: tuple[str, ...] = ()) -> None:
        """Hand the replica a batch and wait until it is ready to go."""
        specs = [spec_of(c) for c in commands]
        self.write(json.dumps({"commands": specs, "hold": list(hold)}))
        assert self.line() == "ready"

    def result(self) -> dict[str, Any]:
        while True:
            line = self.line()
            if line.startswith("{"):
                found: dict[str, Any] = json.loads(line)
                return found

    def close(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=20)
        self.process.stdin.close()
        self.process.stdout.close()


def spec_of(command: Command) -> dict[str, Any]:
    spec = {"type": type(command).__name__, **dataclasses.asdict(command)}
    if isinstance(command, OpenForAlert | StartRun) and command.alert is not None:
        spec["alert"] = command.alert.model_dump(mode="json")
    return spec


@pytest.fixture
def replicas(harness: Harness) -> Iterator[tuple[Replica, Replica]]:
    pair = (Replica(harness.url), Replica(harness.url))
    try:
        yield pair
    finally:
        for replica in pair:
            replica.close()


def race(
    pair: tuple[Replica, Replica], a: Sequence[Command], b: Sequence[Command]
) -> list[dict[str, Any]]:
    """Run batch ``a`` on one replica and ``b`` on the other at the same moment."""
    pair[0].load(a)
    pair[1].load(b)
    for replica in pair:
        replica.write("go")
    return [replica.result() for replica in pair]


async def fresh_run(harness: Harness) -> str:
    run = await harness.start_run(auto=False)
    return run.id


def keyed(prefix: str) -> Callable[[], str]:
    counter = iter(range(1_000_000))
    return lambda: f"{prefix}-{next(counter)}-{time.monotonic_ns()}"


async def test_concurrent_commands_on_one_run_from_two_replicas_lose_nothing(
    harness: Harness, replicas: tuple[Replica, Replica]
) -> None:
    key = keyed("race")
    checks = 0
    for _ in range(TRIALS):
        # The reproduction: an input given on one replica while the other resolves the run.
        run_id = await fresh_run(harness)
        race(
            replicas,
            [ProvideInput(run_id, "sku", "TEE-042", RESPONDER, key())],
            [SetState(run_id, "resolved", APPROVER, key())],
        )
        run = await harness.run(run_id)
        assert run.state is RunState.RESOLVED
        assert run.resolved_at is not None
        assert run.inputs == {"sku": "TEE-042"}
        assert {"input.provided", "run.resolved"} <= set(await harness.kinds(run_id))

        # Two people acknowledge at once: one acknowledgement, by one of them.
        run_id = await fresh_run(harness)
        race(
            replicas,
            [Acknowledge(run_id, RESPONDER, key())],
            [Acknowledge(run_id, APPROVER, key())],
        )
        run = await harness.run(run_id)
        assert run.state is RunState.ACKNOWLEDGED
        assert run.acknowledged_by in (RESPONDER, APPROVER)
        assert (await harness.kinds(run_id)).count("run.acknowledged") == 1

        # Two checklist items ticked at once: both are done.
        run_id = await fresh_run(harness)
        race(
            replicas,
            [MarkItemDone(run_id, "follow_up", 0, RESPONDER, key())],
            [MarkItemDone(run_id, "follow_up", 1, APPROVER, key())],
        )
        follow_up = (await harness.steps(run_id))["follow_up"]
        assert follow_up.items_done == [0, 1]
        assert follow_up.state is StepState.DONE

        # Resolved twice at once: once, and the other is told why not.
        run_id = await fresh_run(harness)
        results = race(
            replicas,
            [SetState(run_id, "resolved", RESPONDER, key())],
            [SetState(run_id, "resolved", APPROVER, key())],
        )
        statuses = sorted(r["outcomes"][0]["status"] for r in results)
        assert statuses == ["done", "failed"]
        assert (await harness.kinds(run_id)).count("run.resolved") == 1

        # A note and a skip while the run is acknowledged: all three land.
        run_id = await fresh_run(harness)
        race(
            replicas,
            [
                AddNote(run_id, "db-1 is down", RESPONDER, key()),
                Acknowledge(run_id, RESPONDER, key()),
            ],
            [SkipStep(run_id, "complaints", APPROVER, key(), reason="no one called")],
        )
        kinds = await harness.kinds(run_id)
        assert {"note.added", "run.acknowledged", "step.skipped"} <= set(kinds)
        assert (await harness.run(run_id)).state is RunState.ACKNOWLEDGED
        checks += 1
    assert checks == TRIALS
    await assert_the_log_holds_every_event_once_in_order(harness)


async def test_one_click_delivered_to_both_replicas_executes_once_and_both_are_told(
    harness: Harness, replicas: tuple[Replica, Replica]
) -> None:
    for trial in range(TRIALS):
        run_id = await fresh_run(harness)
        click = RunStep(
            run_id,
            "restock_sku",
            RESPONDER,
            f"restock-click-{trial}",
            inputs={"sku": "TEE-042"},
            confirmed=True,
        )
        results = race(replicas, [click], [click])

        calls = sum(r["calls"].get("restock_sku", 0) for r in results)
        assert calls == trial + 1  # one more execution per trial, across both replicas
        outcomes = [r["outcomes"][0] for r in results]
        assert sorted(o["status"] for o in outcomes) == ["done", "duplicate"]
        duplicate = next(o for o in outcomes if o["status"] == "duplicate")
        assert duplicate["first"] == "done"
        assert {o["message"] for o in outcomes} == {"Stock set to 0 on 1 variants"}
        steps = await harness.steps(run_id)
        assert steps["restock_sku"].attempts == 1
        assert (await harness.kinds(run_id)).count("step.finished") == 1
        assert (await harness.set_state(run_id, "resolved")).ok  # frees the step's lock
    await assert_the_log_holds_every_event_once_in_order(harness)


async def test_fifty_concurrent_intakes_of_one_alert_on_two_replicas_open_one_run(
    harness: Harness, replicas: tuple[Replica, Replica]
) -> None:
    fired = alert()
    digest = fingerprint(fired)

    def intake(n: int) -> OpenForAlert:
        return OpenForAlert(fired, digest, "alertmanager", f"delivery-{n}", auto=False)

    results = race(
        replicas, [intake(n) for n in range(0, 50, 2)], [intake(n) for n in range(1, 50, 2)]
    )

    runs = await harness.store.list_runs()
    assert [r.id for r in runs] == ["INC-1"]
    assert runs[0].alert_count == 50
    outcomes = [o for r in results for o in r["outcomes"]]
    assert {o["run_id"] for o in outcomes} == {"INC-1"}
    assert all(o["status"] == "done" for o in outcomes)
    kinds = await harness.kinds("INC-1")
    assert kinds.count("run.opened") == 1
    assert kinds.count("alert.refired") == 49
    await assert_the_log_holds_every_event_once_in_order(harness)


async def test_a_replica_killed_while_it_holds_a_step_leaves_it_to_the_other(
    harness: Harness,
) -> None:
    run_id = await fresh_run(harness)
    doomed = Replica(harness.url, lease_s=LEASE_S)
    survivor = Replica(harness.url, lease_s=LEASE_S)
    try:
        click = RunStep(
            run_id, "verify_payment", RESPONDER, "held-click", inputs={"reference": "T1"}
        )
        doomed.load([click], hold=("verify_payment",))
        doomed.write("go")
        assert doomed.line() == "entered verify_payment"
        doomed.process.kill()
        doomed.process.wait(timeout=10)
        assert (await harness.steps(run_id))["verify_payment"].state is StepState.RUNNING

        harness.engine.clock = ef.RealClock()

        async def reaped() -> bool:
            return bool(await harness.engine.reap_interrupted())

        await ef.poll_until(reaped, within_s=10 * LEASE_S, what="the step reported interrupted")

        step = (await harness.steps(run_id))["verify_payment"]
        assert step.state is StepState.ERROR
        assert step.error is not None
        assert "interrupted" in step.error
        assert "run it again" in step.error
        survivor.load(
            [RunStep(run_id, "verify_payment", RESPONDER, "again", inputs={"reference": "T1"})]
        )
        survivor.write("go")
        (again,) = survivor.result()["outcomes"]
        assert again["status"] == "done", again
        assert (await harness.steps(run_id))["verify_payment"].state is StepState.FAILED  # unpaid
        kinds = await harness.kinds(run_id)
        assert kinds[-2:] == ["step.error", "step.finished"]
        # The killed click's answer: it stopped, and a redelivery says so instead of hanging.
        redelivered = await harness.engine.execute(click)
        assert redelivered.duplicate
        assert not redelivered.ok
        assert "interrupted" in redelivered.message
    finally:
        survivor.close()
        doomed.close()


async def test_a_run_opened_by_hand_and_commands_on_it_from_both_replicas_share_one_log(
    harness: Harness, replicas: tuple[Replica, Replica]
) -> None:
    key = keyed("log")
    opened = [StartRun(RUNBOOK_ID, RESPONDER, key(), auto=False) for _ in range(5)]
    race(replicas, opened[:3], opened[3:])
    runs = await harness.store.list_runs()
    assert len(runs) == 5
    notes = [AddNote(r.id, f"note {n}", RESPONDER, key()) for n, r in enumerate(runs)]
    race(replicas, notes[::2], notes[1::2])
    await assert_the_log_holds_every_event_once_in_order(harness)


async def assert_the_log_holds_every_event_once_in_order(harness: Harness) -> None:
    log = await harness.engine.events_after(0, limit=100_000)
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    per_run: dict[str, list[int]] = {}
    for event in log:
        per_run.setdefault(event.run_id, []).append(event.seq)
    for run_id, seqs in per_run.items():
        assert seqs == list(range(1, len(seqs) + 1)), run_id
        assert len(await harness.events(run_id)) == len(seqs)
    runs = await harness.store.list_runs(limit=1000)
    assert {r.id for r in runs} == set(per_run)
