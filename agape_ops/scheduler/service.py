"""The scheduler as a bot process runs it: the lease, the scheduler while holding it, and the
job board every process reads."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import sqlalchemy as sa

from agape_ops.engine.engine import Engine
from agape_ops.engine.records import ScheduledJob, SchedulerState
from agape_ops.scheduler.board import StoredJobs
from agape_ops.scheduler.leader import POLL_S, AdvisoryLease, FileLease, Leadership, Lease
from agape_ops.scheduler.runner import FOLLOW_POLL_S, Scheduler
from agape_ops.store.connect import StoreTarget


def places(target: StoreTarget) -> tuple[sa.URL, Lease]:
    """Return where the jobs are kept and the lease that picks the scheduling process.

    PostgreSQL keeps the jobs in the store's own database. SQLite allows one writer at a time
    and APScheduler 3's job store is synchronous, so there the jobs live in a file beside the
    store: a job store write never waits on a store transaction the event loop is running.
    """
    if target.is_sqlite:
        path = Path(target.url.database or "agape-ops.db")
        jobs = path.with_name(f"{path.stem}-jobs{path.suffix or '.db'}")
        lease: Lease = FileLease(path.with_name(f"{path.name}.scheduler-lock"))
        return sa.URL.create("sqlite", database=str(jobs)), lease
    dsn = target.url.set(drivername="postgresql").render_as_string(hide_password=False)
    lease = AdvisoryLease(dsn, connect_timeout_s=target.connect_timeout_s)
    return target.url.set(drivername="postgresql+psycopg"), lease


class SchedulerService:
    """Try for the scheduler's lease and schedule while holding it; let every process read
    the jobs (``Engine.jobs``)."""

    def __init__(
        self,
        engine: Engine,
        target: StoreTarget,
        *,
        poll_s: float = POLL_S,
        follow_poll_s: float = FOLLOW_POLL_S,
    ) -> None:
        sync_url, lease = places(target)
        self.scheduler = Scheduler(engine, sync_url, follow_poll_s=follow_poll_s)
        self.leadership = Leadership(
            lease, self.scheduler.start, self.scheduler.stop, poll_s=poll_s
        )
        self.board = StoredJobs(sync_url)
        engine.job_board = self
        self.started = False
        self._task: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return self.leadership.leading

    async def jobs(self, run_id: str | None = None) -> list[ScheduledJob]:
        """Return the scheduled jobs (of one run, or all), as stored."""
        return await self.board.jobs(run_id)

    def state(self) -> SchedulerState:
        if not self.started:
            return SchedulerState("off")
        role = "leading" if self.leading else "standby"
        return SchedulerState(role, self.scheduler.fired, self.scheduler.failed)

    async def start(self) -> None:
        """Take the lease now if it is free (so a single bot schedules at once), then keep
        trying in the background."""
        self.started = True
        await self.leadership.step()
        self._task = asyncio.create_task(self.leadership.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.leadership.close()
        self.board.close()
