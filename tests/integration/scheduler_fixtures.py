"""What the scheduler's integration tests share: a clock the test moves (for the engine and for
APScheduler alike), a drill runbook and team, and a harness running the real scheduler service
over a real store (SQLite or PostgreSQL).

The drill's detection check reads the backend's real PostgreSQL (a scratch copy): a test makes
the problem appear or clear by changing rows. Its monitor step reads a fake ``redis`` adapter
whose answers (and failures) the test sets.

APScheduler 3 reads the time with ``datetime.now(...)`` in ``apscheduler.schedulers.base`` and
``apscheduler.executors.base``; the ``fake_time`` fixture gives those two modules a ``datetime``
whose ``now`` is the test's clock. A test moves the clock, wakes the scheduler, and waits with a
deadline for what should follow (events in the store): it never sleeps to synchronise.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, ClassVar

import apscheduler.executors.base
import apscheduler.schedulers.base
import psycopg
import pytest
import sqlalchemy.exc as sa_exc
from engine_fixtures import ALERTS, PERMISSIONS, RESPONDER, FakeAdapter, FakeClock, poll_until

from agape_ops.adapters.postgres import PostgresAdapter, open_pool
from agape_ops.engine.commands import (
    Acknowledge,
    AddNote,
    MarkItemDone,
    RunStep,
    SetState,
    StartRun,
)
from agape_ops.engine.engine import Engine
from agape_ops.engine.ports import Adapter
from agape_ops.engine.records import Event, Run
from agape_ops.engine.results import table
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.team import Team
from agape_ops.scheduler.service import SchedulerService
from agape_ops.store import SqlStore, open_store

DRILL = "sched-drill"
LEVELS = (("5m", "U0ONCALL1"), ("10m", "U0DEVOPS1"), ("15m", "U0CTO0001"))

RUNBOOK: dict[str, Any] = {
    "id": DRILL,
    "title": "Stock drill",
    "severity": "sev1",
    "summary": "Stock went below zero.",
    "owner": "devops",
    "recheck": "1m",
    "detection": [
        {
            "id": "negative_stock",
            "title": "SKUs with stock below zero",
            "when": "row_count > 0",
            "finding": "{{ row_count }} SKUs have stock below zero",
            "postgres": {"sql": "SELECT sku, stock FROM product_variants WHERE stock < 0"},
        }
    ],
    "diagnosis": [
        {
            "id": "backlog",
            "title": "Email backlog",
            "finding": "{{ depth }} emails waiting",
            "monitor": {
                "every": "30s",
                "for": "2m",
                "until": "depth < 10",
                "figure": "depth",
                "unit": "jobs",
            },
            "redis": {"command": "queue_stats", "queues": ["email"]},
        }
    ],
    "post_incident": [
        {
            "id": "follow_up",
            "title": "Follow-up",
            "manual": {"items": ["Write the postmortem", "File the tickets"]},
        }
    ],
}


def drill_team() -> Team:
    return Team.model_validate(
        {
            "escalation": [{"after": after, "notify": [who]} for after, who in LEVELS],
            "reminders": {"status_update": {"sev1": "30m"}, "post_incident": "24h"},
        }
    )


class _FakeDatetime(datetime):
    """``datetime`` whose ``now`` is the test's clock (for APScheduler's modules only)."""

    clock: ClassVar[Callable[[], datetime]]

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        now = cls.clock()
        return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Return the clock the engine and APScheduler both read; the test moves it."""
    clock = FakeClock()

    class Now(_FakeDatetime):
        pass

    Now.clock = clock
    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", Now)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", Now)
    return clock


async def _now(value: bool) -> bool:
    return value


class Outage:
    """A handler that fails as a store that went away (``times`` times), then works."""

    def __init__(self, handler: Any, times: int) -> None:
        self.handler = handler
        self.left = times
        self.raised = 0

    async def __call__(self, *args: Any) -> Any:
        if self.left > 0:
            self.left -= 1
            self.raised += 1
            raise sa_exc.OperationalError("UPDATE ops_runs", {}, ConnectionError("store away"))
        return await self.handler(*args)


@dataclass
class Drill:
    """The scheduler service over a real store, with the engine on the test's clock."""

    url: str
    backend_dsn: str
    store: SqlStore
    engine: Engine
    clock: FakeClock
    backlog: FakeAdapter
    service: SchedulerService | None = None
    keys: itertools.count[int] = field(default_factory=itertools.count)

    def key(self) -> str:
        return f"click-{next(self.keys)}"

    # -- the scheduler -------------------------------------------------------------------------

    async def start_scheduler(self) -> SchedulerService:
        """Start a scheduler service (a bot process's) on the store; it takes the lease."""
        service = SchedulerService(
            self.engine, self.store.target, poll_s=3600.0, follow_poll_s=0.02
        )
        await service.start()
        assert service.leading, "a lone scheduler did not take the lease"
        self.service = service
        return service

    async def stop_scheduler(self) -> None:
        if self.service is not None:
            await self.service.close()
            self.service = None

    def fired(self) -> int:
        """Return how many jobs the running scheduler has issued a command for."""
        assert self.service is not None
        return self.service.scheduler.fired

    async def wait_fired(self, count: int) -> None:
        await poll_until(
            lambda: _now(self.fired() >= count), within_s=10, what=f"{count} jobs fired"
        )

    def store_outage(self, command: type, *, times: int) -> Outage:
        """Make the next ``times`` commands of this type fail as a store that went away."""
        outage = Outage(self.engine.handlers[command], times)
        self.engine.handlers[command] = outage
        return outage

    async def advance(self, **delta: float) -> None:
        """Let the jobs running now finish (one still running when its next time comes would
        be skipped, as in production), move the clock on, and let the scheduler look for what
        fell due."""
        assert self.service is not None
        await self.service.scheduler.settled()
        self.clock.advance(**delta)
        self.service.scheduler.wakeup()

    # -- the backend's data ---------------------------------------------------------------------

    async def set_stock(self, stock: int) -> None:
        """Make the drill's detection condition hold (stock < 0) or clear (stock >= 0)."""
        async with await psycopg.AsyncConnection.connect(self.backend_dsn, autocommit=True) as c:
            await c.execute(
                "INSERT INTO products (id, name) VALUES ('00000000-0000-0000-0000-000000000001',"
                " 'Tee') ON CONFLICT DO NOTHING"
            )
            await c.execute(
                "INSERT INTO product_variants (product_id, sku, stock) VALUES"
                " ('00000000-0000-0000-0000-000000000001', 'TEE-042', %s)"
                " ON CONFLICT (sku) DO UPDATE SET stock = EXCLUDED.stock",
                (stock,),
            )

    def set_backlog(self, depth: int) -> None:
        self.backlog.failures.pop("backlog", None)
        self.backlog.results["backlog"] = table(
            f"{depth} waiting", ["queue", "depth"], [{"queue": "email", "depth": depth}]
        )

    # -- commands and what they left ------------------------------------------------------------

    async def open_run(self) -> Run:
        outcome = await self.engine.execute(StartRun(DRILL, actor=ALERTS, key=self.key()))
        assert outcome.ok, outcome.message
        assert outcome.run is not None
        return outcome.run

    async def acknowledge(self, run_id: str) -> None:
        outcome = await self.engine.execute(Acknowledge(run_id, RESPONDER, self.key()))
        assert outcome.ok, outcome.message

    async def note(self, run_id: str, text: str) -> None:
        outcome = await self.engine.execute(AddNote(run_id, text, RESPONDER, self.key()))
        assert outcome.ok, outcome.message

    async def resolve(self, run_id: str) -> None:
        outcome = await self.engine.execute(
            SetState(run_id, "resolved", RESPONDER, self.key(), confirmed=True)
        )
        assert outcome.ok, outcome.message

    async def tick_item(self, run_id: str, item: int) -> None:
        command = MarkItemDone(run_id, "follow_up", item, RESPONDER, self.key(), confirmed=True)
        outcome = await self.engine.execute(command)
        assert outcome.ok, outcome.message

    async def watch_backlog(self, run_id: str) -> None:
        """Run the monitor step as a responder (its first sample) and wait for its job."""
        outcome = await self.engine.execute(RunStep(run_id, "backlog", RESPONDER, self.key()))
        assert outcome.ok, outcome.message
        await self.wait_events(run_id, "monitor.started", 1)
        job = f"{run_id}:monitor:backlog"
        await self.wait_jobs(run_id, lambda found: job in found, "the monitor's job")

    async def wait_samples(self, run_id: str, count: int) -> None:
        """Wait until the monitor step holds ``count`` samples."""

        async def enough() -> bool:
            record = (await self.store.get_steps(run_id)).get("backlog")
            samples = (record.monitor or {}).get("samples", []) if record else []
            return len(samples) >= count

        await poll_until(enough, within_s=10, what=f"{count} samples of the monitor")

    async def events(self, run_id: str, kind: str) -> list[Event]:
        return [e for e in await self.store.events(run_id) if e.kind == kind]

    async def wait_events(self, run_id: str, kind: str, count: int, within_s: float = 10) -> None:
        """Wait until the run has ``count`` events of ``kind`` (failing after a deadline)."""

        async def enough() -> bool:
            return len(await self.events(run_id, kind)) >= count

        await poll_until(enough, within_s=within_s, what=f"{count} x {kind} on {run_id}")

    async def wait_rechecked(self, run_id: str) -> Run:
        """Wait until a re-check ran at the clock's present time; return the run then."""
        found: Run | None = None

        async def rechecked() -> bool:
            nonlocal found
            found = await self.store.get_run(run_id)
            assert found is not None
            return found.watch.get("rechecked_at") == self.clock.now.isoformat()

        await poll_until(rechecked, within_s=10, what=f"a re-check of {run_id} now")
        assert found is not None
        return found

    async def wait_jobs(
        self, run_id: str, check: Callable[[list[str]], bool], what: str
    ) -> list[str]:
        """Wait until the run's scheduled job ids satisfy ``check``; return them."""
        found: list[str] = []

        async def ready() -> bool:
            nonlocal found
            found = [job.id for job in await self.engine.jobs(run_id)]
            return check(found)

        await poll_until(ready, within_s=10, what=what)
        return found


@pytest.fixture
async def drill(store_url: str, backend_db: str, fake_time: FakeClock) -> AsyncIterator[Drill]:
    """Return a drill: store, engine (real PostgreSQL check, fake monitor adapter), clock."""
    runbooks, team = {DRILL: Runbook.model_validate(RUNBOOK)}, drill_team()
    store = await open_store(store_url)
    pool = await open_pool(backend_db)
    backlog = FakeAdapter("redis")
    adapters: dict[str, Adapter] = {"postgres": PostgresAdapter(pool), "redis": backlog}
    engine = Engine(
        runbooks=runbooks,
        store=store,
        adapters=adapters,
        permissions=PERMISSIONS,
        team=team,
        clock=fake_time,
    )
    opened = Drill(store_url, backend_db, store, engine, fake_time, backlog)
    await opened.set_stock(-3)
    opened.set_backlog(50)
    try:
        yield opened
    finally:
        await opened.stop_scheduler()
        await pool.close()
        await store.close()
