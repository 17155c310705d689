"""What the engine's integration tests share: fake adapters, a fake clock, a harness, fixtures.

The engine runs over the real store (a SQLite file, or PostgreSQL where a test module asks for
both) and over fake adapters that implement the engine's own ``Adapter`` port: they record every
request (to prove what executed and how often), answer with results shaped as
``agape_ops.runbooks.fields`` says, and can be told to fail or to wait on an ``asyncio.Event``.

Test modules import the fixtures they use by assigning them at module level
(``harness = engine_fixtures.harness``), since only the root conftest may register plugins.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_runbook import (
    DEFAULT_RESULTS,
    RUNBOOK_ID,
    alert,
    runbook,
)

from agape_ops.engine.commands import (
    MarkItemDone,
    Outcome,
    ProvideInput,
    RunStep,
    SetState,
    StartRun,
)
from agape_ops.engine.engine import Engine
from agape_ops.engine.permissions import Permissions
from agape_ops.engine.ports import Adapter, AdapterRequest, Probe
from agape_ops.engine.records import Event, Run, StepRecord
from agape_ops.engine.results import StepResult, table
from agape_ops.runbooks.model import Runbook
from agape_ops.store import SqlStore, open_store

T0 = datetime(2025, 3, 1, 2, 0, 0, tzinfo=UTC)
RESPONDER = "U_RESPONDER"
APPROVER = "U_APPROVER_1"
SECOND_APPROVER = "U_APPROVER_2"
STRANGER = "U_STRANGER"
ALERTS = "U_ALERTMANAGER"


class FakeAdapter:
    """An adapter that records its requests and answers from a table, a failure, or a gate."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[AdapterRequest] = []
        self.previews: list[AdapterRequest] = []
        self.results: dict[str, StepResult] = dict(DEFAULT_RESULTS)
        self.failures: dict[str, BaseException] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def calls(self, step_id: str) -> list[AdapterRequest]:
        """Return the requests that executed the given step."""
        return [r for r in self.requests if r.step.id == step_id]

    def hold(self, step_id: str) -> asyncio.Event:
        """Make the step's calls wait until the returned event is set."""
        gate = self.gates[step_id] = asyncio.Event()
        return gate

    async def execute(self, request: AdapterRequest) -> StepResult:
        self.requests.append(request)
        step_id = request.step.id
        self.entered[step_id].set()
        gate = self.gates.get(step_id)
        if gate is not None:
            await gate.wait()
        failure = self.failures.get(step_id)
        if failure is not None:
            raise failure
        result = self.results.get(step_id) or StepResult(summary=f"{step_id}: fine")
        return result.model_copy(deep=True)

    async def preview(self, request: AdapterRequest) -> StepResult | None:
        self.previews.append(request)
        return table("would change 1 row", ["sku"], [{"sku": request.params.get("sku")}])

    def describe(self, request: AdapterRequest) -> str:
        return f"{self.name} {request.step.id} with {request.params}"

    async def probe(self) -> Probe:
        return Probe(self.name, ok=True, detail="fake")


def fake_adapters() -> dict[str, FakeAdapter]:
    """Return one fake per adapter kind the test runbook uses."""
    return {name: FakeAdapter(name) for name in ("postgres", "redis", "paystack", "admin_api")}


class FakeClock:
    """A clock the test moves by hand, so durations are exact."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class RealClock(FakeClock):
    """The wall clock, for tests where time passes across processes (leases running out)."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


async def poll_until(
    condition: Callable[[], Awaitable[bool]], *, within_s: float, what: str
) -> None:
    """Wait until an async condition holds, checking every 50 ms, failing after a deadline."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


PERMISSIONS = Permissions.of([RESPONDER], [APPROVER, SECOND_APPROVER])


def build_engine(
    store: SqlStore,
    adapters: dict[str, FakeAdapter],
    clock: FakeClock,
    runbooks: dict[str, Runbook] | None = None,
) -> Engine:
    """Wire an engine the way the composition root does, with fakes for the outside world."""
    ports: dict[str, Adapter] = dict(adapters)
    return Engine(
        runbooks=runbooks if runbooks is not None else {RUNBOOK_ID: runbook()},
        store=store,
        adapters=ports,
        permissions=PERMISSIONS,
        settings_context={"admin_api_url": "http://admin.test"},
        clock=clock,
    )


@dataclass
class Harness:
    """An engine over a real store, with fake adapters and clock, and shorthands for commands."""

    url: str
    store: SqlStore
    engine: Engine
    clock: FakeClock
    adapters: dict[str, FakeAdapter]
    keys: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    async def open(cls, url: str) -> Harness:
        store = await open_store(url)
        clock, adapters = FakeClock(), fake_adapters()
        return cls(url, store, build_engine(store, adapters, clock), clock, adapters)

    async def reopen(self) -> None:
        """Close the store and build a fresh store and engine on the same database."""
        await self.store.close()
        self.store = await open_store(self.url)
        self.engine = build_engine(self.store, self.adapters, self.clock)

    def key(self) -> str:
        """Return a fresh idempotency key, as a new click would carry."""
        return f"click-{next(self.keys)}"

    @property
    def postgres(self) -> FakeAdapter:
        return self.adapters["postgres"]

    async def start(
        self, *, with_alert: bool = True, actor: str = ALERTS, **options: Any
    ) -> Outcome:
        """Open a run of the test runbook, from the alert unless told otherwise."""
        return await self.engine.execute(
            StartRun(
                RUNBOOK_ID,
                actor=actor,
                key=self.key(),
                alert=alert() if with_alert else None,
                **options,
            )
        )

    async def start_run(self, **options: Any) -> Run:
        """Open a run and return it, failing the test if it did not open."""
        outcome = await self.start(**options)
        assert outcome.ok, outcome.message
        assert outcome.run is not None
        return outcome.run

    async def step(
        self,
        run_id: str,
        step_id: str,
        actor: str = RESPONDER,
        *,
        key: str | None = None,
        **options: Any,
    ) -> Outcome:
        return await self.engine.execute(
            RunStep(run_id, step_id, actor=actor, key=key or self.key(), **options)
        )

    async def provide(self, run_id: str, name: str, value: str, actor: str = RESPONDER) -> Outcome:
        return await self.engine.execute(
            ProvideInput(run_id, name, value, actor=actor, key=self.key())
        )

    async def mark(self, run_id: str, step_id: str, item: int, actor: str = RESPONDER) -> Outcome:
        return await self.engine.execute(
            MarkItemDone(run_id, step_id, item, actor=actor, key=self.key())
        )

    async def set_state(
        self,
        run_id: str,
        state: str,
        actor: str = RESPONDER,
        note: str = "",
        *,
        confirmed: bool = False,
    ) -> Outcome:
        return await self.engine.execute(
            SetState(run_id, state, actor=actor, key=self.key(), note=note, confirmed=confirmed)
        )

    async def run(self, run_id: str) -> Run:
        found = await self.store.get_run(run_id)
        assert found is not None
        return found

    async def steps(self, run_id: str) -> dict[str, StepRecord]:
        return await self.store.get_steps(run_id)

    async def events(self, run_id: str) -> list[Event]:
        return await self.store.events(run_id)

    async def kinds(self, run_id: str) -> list[str]:
        return [e.kind for e in await self.store.events(run_id)]


def pg_store_url(dsn: str) -> str:
    """Turn a scratch database's DSN into the store URL naming the async driver."""
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Return the URL of a fresh SQLite store file."""
    return f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return the URL of a fresh store on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}"
    return pg_store_url(request.getfixturevalue("empty_db"))


@pytest.fixture
async def harness(store_url: str) -> AsyncIterator[Harness]:
    """Return an engine over a fresh store at ``store_url`` (the module picks the backends)."""
    opened = await Harness.open(store_url)
    try:
        yield opened
    finally:
        await opened.store.close()


async def wait_for(event: asyncio.Event) -> None:
    """Wait for an event the code under test sets, failing after a deadline."""
    await asyncio.wait_for(event.wait(), timeout=10)
