"""The scheduler: APScheduler's AsyncIOScheduler in the bot's event loop, its jobs kept in the
bot's own store, each job only issuing an engine command.

Which jobs exist follows from the runs (``engine/schedule.py``): when a process takes the
scheduler over it plans every run that is not closed, then follows the store's event log and
plans again each run that changed, whichever process changed it. A job, when it fires, plans its
run once more and issues the command for what is still due, with the key of that repetition
(``escalate:INC-7:2``), through ``Engine.execute``: permissions, locks and exactly-once hold
as for a click, and a job fired twice (a restart, a takeover) acts once. A job that raises is
logged, counted and tried again shortly; an interval job also comes round again by itself.

APScheduler 3's job stores must not be shared between schedulers, so only the process that
holds the scheduler lease (``leader.py``) runs this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_REMOVED, JobEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from agape_ops.engine.commands import Command, Escalate, Recheck, Remind, RunStep
from agape_ops.engine.engine import Engine
from agape_ops.engine.records import ACTIVE_STATES, Event, RunState
from agape_ops.engine.schedule import ESCALATE, MONITOR, RECHECK, JobPlan, job_kind, plan
from agape_ops.engine.steps import BOT

log = logging.getLogger(__name__)

#: The job store's table in the bot's store (the ``ops_`` prefix, like every other table).
JOB_TABLE = "ops_scheduler_jobs"
#: How soon a job that raised is tried again.
RETRY_AFTER = timedelta(seconds=30)
#: How often the event log is read for runs that changed.
FOLLOW_POLL_S = 0.5
#: How many jobs run at once: fewer than the store's connections (5 + 10 overflow), so a burst
#: of due jobs (1,000 runs re-checked in the same minute) queues instead of failing for want
#: of a connection.
CONCURRENT_JOBS = 8  # pages are not counted: they never wait for a slot
#: How long stopping waits for jobs already running to finish.
STOP_WAIT_S = 10.0

#: The scheduler this process runs, for the job function APScheduler stores by reference.
_running: Scheduler | None = None


async def fire(
    run_id: str,
    job_id: str,
    planned: tuple[Any, ...] = (),
    retry_of: str = "",
    attempt: int = 0,
) -> None:
    """The one job function: hand the job to this process's scheduler. ``planned`` is the
    plan the job was added with, kept so a restarted scheduler knows its stored jobs; a retry
    carries the key of the command that raised and which attempt it is."""
    if _running is None:
        raise RuntimeError(f"job {job_id} fired with no scheduler running here")
    await _running.fire(run_id, job_id, retry_of=retry_of, attempt=attempt)


#: Events that never change what a run needs scheduled: the scheduler's own re-check and
#: sample results (a monitor's start and stop come as events of their own), what it told.
_PLAN_NEUTRAL = frozenset(
    {"run.cleared", "run.returned", "run.reminded", "note.added", "alert.refired"}
)


def may_change_plan(event: Event) -> bool:
    """Say whether an event may change the jobs its run needs (so the run is planned again)."""
    if event.kind in _PLAN_NEUTRAL:
        return False
    return event.detail.get("purpose") not in {"recheck", "monitor"}


def command_for(job: JobPlan, now: datetime, key: str | None = None) -> Command:
    """Return the engine command a planned job issues at ``now``, with its fixed key (or the
    key given: a retry's)."""
    key = key or job.key(now)
    if job.kind == ESCALATE:
        return Escalate(job.run_id, int(job.arg), BOT, key)
    if job.kind == RECHECK:
        return Recheck(job.run_id, BOT, key)
    if job.kind == MONITOR:
        step_id = job.arg.split(":", 1)[0]
        return RunStep(job.run_id, step_id, BOT, key, purpose="monitor")
    return Remind(job.run_id, job.kind, BOT, key)


def trigger_for(job: JobPlan) -> BaseTrigger:
    if job.at is not None:
        return DateTrigger(run_date=job.at, timezone=UTC)
    return IntervalTrigger(
        seconds=job.every_s or 60.0, start_date=job.start, end_date=job.end, timezone=UTC
    )


def _signature(job: JobPlan) -> tuple[Any, ...]:
    return (job.kind, job.arg, job.at, job.every_s, job.start, job.end)


def job_store(sync_url: sa.URL | str) -> SQLAlchemyJobStore:
    """Return APScheduler's job store on the bot's own store (a synchronous connection)."""
    options: dict[str, Any] = {"pool_pre_ping": True}
    return SQLAlchemyJobStore(url=sync_url, tablename=JOB_TABLE, engine_options=options)


class Scheduler:
    """Keep one process's APScheduler in step with the runs, and issue what falls due."""

    def __init__(
        self,
        engine: Engine,
        sync_url: sa.URL | str,
        *,
        follow_poll_s: float = FOLLOW_POLL_S,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.sync_url = sync_url
        self.follow_poll_s = follow_poll_s
        self.on_failure = on_failure
        self.aps: AsyncIOScheduler | None = None
        self._planned: dict[str, tuple[Any, ...]] = {}
        self._follower: asyncio.Task[None] | None = None
        self.fired = 0
        self.failed = 0
        self._slots = asyncio.Semaphore(CONCURRENT_JOBS)
        self._in_flight: set[asyncio.Task[Any]] = set()

    # -- starting and stopping -----------------------------------------------------------------

    async def start(self) -> None:
        """Start APScheduler on the stored jobs, plan every run, then follow the event log."""
        global _running  # noqa: PLW0603 - APScheduler finds the job function by reference
        if _running is not None and _running is not self:
            raise RuntimeError("another scheduler runs in this process")
        _running = self
        aps = AsyncIOScheduler(
            jobstores={"default": job_store(self.sync_url)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )
        aps.add_listener(self._forget, EVENT_JOB_REMOVED)
        aps.start()
        self.aps = aps
        try:
            self._planned = {job.id: self._stored_signature(job) for job in aps.get_jobs()}
            position = await self.engine.last_position()
            await self.plan_all()
        except BaseException:
            await self.stop()  # a half-started scheduler must not keep firing
            raise
        self._follower = asyncio.create_task(self._follow(position))

    async def stop(self, within_s: float = STOP_WAIT_S) -> None:
        """Stop firing, then give jobs already running ``within_s`` to finish (their
        commands commit or roll back whole either way; waiting spares a half-told page)."""
        global _running  # noqa: PLW0603
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        if self.aps is not None:
            self.aps.pause()  # nothing new fires while the running ones finish
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=within_s)
            self.aps.shutdown(wait=False)
            self.aps = None
        if _running is self:
            _running = None

    async def settled(self, within_s: float = STOP_WAIT_S) -> None:
        """Wait until no job is running here (a job just handed to the loop counts too): a job
        still running when its next time comes is skipped (one instance at a time)."""
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            for _ in range(3):  # let jobs APScheduler has just submitted take their first step
                await asyncio.sleep(0)
            if not self._in_flight:
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"{len(self._in_flight)} job(s) still running")
            await asyncio.wait(
                set(self._in_flight), timeout=deadline - asyncio.get_running_loop().time()
            )

    def wakeup(self) -> None:
        """Look for due jobs now (after a clock was moved, in tests)."""
        if self.aps is not None:
            self.aps.wakeup()

    # -- keeping jobs in step with runs ------------------------------------------------------

    async def plan_all(self) -> None:
        """Plan every run that is not closed (what a process does when it takes over)."""
        states = [*ACTIVE_STATES, RunState.RESOLVED]
        runs = await self.engine.store.list_runs(states=states, limit=100_000)
        known = {run.id for run in runs}
        for run in runs:
            await self.plan_run(run.id)
        for job_id in [j for j in self._planned if j.split(":", 1)[0] not in known]:
            self._remove(job_id)

    async def plan_run(self, run_id: str) -> list[JobPlan]:
        """Add, move or remove a run's jobs so they are what its state calls for now."""
        jobs = await self._plan(run_id)
        wanted = {job.id for job in jobs}
        for job in jobs:
            if self._planned.get(job.id) != _signature(job):
                self._add(job)
        for job_id in [j for j in self._planned if j.startswith(f"{run_id}:")]:
            if job_id not in wanted and not job_id.endswith(":retry"):
                self._remove(job_id)
        return jobs

    async def _plan(self, run_id: str) -> list[JobPlan]:
        run = await self.engine.find_run(run_id)
        if run is None:
            return []
        steps = await self.engine.store.get_steps(run.id)
        return plan(run, self.engine.runbooks.get(run.runbook_id), steps, self.engine.team)

    def _add(self, job: JobPlan) -> None:
        assert self.aps is not None  # noqa: S101 - only called while running
        self.aps.add_job(
            fire,
            trigger_for(job),
            args=(job.run_id, job.id),
            kwargs={"planned": _signature(job)},
            id=job.id,
            name=job.what,
            replace_existing=True,
        )
        self._planned[job.id] = _signature(job)

    def _remove(self, job_id: str) -> None:
        self._planned.pop(job_id, None)
        if self.aps is not None:
            with contextlib.suppress(JobLookupError):
                self.aps.remove_job(job_id)

    def _forget(self, event: JobEvent) -> None:
        self._planned.pop(event.job_id, None)  # a one-off that ran, or a finished interval

    def _stored_signature(self, job: Any) -> tuple[Any, ...]:
        """The plan a stored job was added with: unchanged, it is left as it is, so a job that
        fell due while no scheduler ran still runs (late) instead of being moved on."""
        return tuple(job.kwargs.get("planned", ())) or ("stored", job.id)

    async def _follow(self, position: int) -> None:
        """Plan again every run another command changed, from ``position`` on, in order."""
        while True:
            try:
                batch = await self.engine.events_after(position)
            except Exception:  # noqa: BLE001 - the store may be away for a moment
                log.warning("the scheduler could not read the event log; trying again")
                batch = []
            if not batch:
                await asyncio.sleep(self.follow_poll_s)
                continue
            position = batch[-1].position
            changed = (event.run_id for event in batch if may_change_plan(event))
            for run_id in dict.fromkeys(changed):
                try:
                    await self.plan_run(run_id)
                except Exception:  # a store fault: planned again on its next event
                    log.exception("could not plan the jobs of %s", run_id)

    # -- firing --------------------------------------------------------------------------------

    async def fire(self, run_id: str, job_id: str, *, retry_of: str = "", attempt: int = 0) -> None:
        """Issue what a job stands for, if its run still calls for it; retry what raised.

        The engine answers a key it has seen with that key's first outcome, and a command that
        raised is on record as stopped: a retry under the same key would only be told so, and
        the page would never be sent. So a retry issues the command under a key of its own
        (``escalate:INC-7:1:retry1``), fixed per attempt: the handlers' own state (the level
        paged, the tick re-checked) keeps it from acting twice.
        """
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            if job_kind(job_id) == ESCALATE:  # a page never queues behind a thousand re-checks
                await self._fire(run_id, job_id, retry_of=retry_of, attempt=attempt)
            else:
                async with self._slots:
                    await self._fire(run_id, job_id, retry_of=retry_of, attempt=attempt)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _fire(self, run_id: str, job_id: str, *, retry_of: str, attempt: int) -> None:
        base_id = job_id.removesuffix(":retry")
        key = ""
        try:
            jobs = {job.id: job for job in await self._plan(run_id)}
            job = jobs.get(base_id)
            if job is None:
                return  # no longer due (acknowledged, resolved, recovered): nothing to do
            now = self.engine.clock()
            key = f"{retry_of}:retry{attempt}" if retry_of else job.key(now)
            outcome = await self.engine.execute(command_for(job, now, key))
            self.fired += 1
            if not outcome.ok and not outcome.duplicate:
                log.info("job %s: %s", job_id, outcome.message)
        except Exception as exc:
            self.failed += 1
            log.exception("job %s failed; trying again in %s", job_id, RETRY_AFTER)
            if self.on_failure is not None:
                self.on_failure(f"{job_id}: {type(exc).__name__}")
            self._retry(run_id, base_id, retry_of or key, attempt + 1)

    def _retry(self, run_id: str, job_id: str, retry_of: str, attempt: int) -> None:
        if self.aps is None:
            return
        at = self.engine.clock() + RETRY_AFTER
        self.aps.add_job(
            fire,
            DateTrigger(run_date=at, timezone=UTC),
            args=(run_id, f"{job_id}:retry"),
            kwargs={"retry_of": retry_of, "attempt": attempt},
            id=f"{job_id}:retry",
            name=f"retry {job_id} (attempt {attempt + 1})",
            replace_existing=True,
        )
