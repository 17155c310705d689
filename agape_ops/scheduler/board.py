"""The scheduled jobs as any process can read them (``agape-ops jobs``, ``/ops status``).

Only the process holding the scheduler's lease writes the job store; every process may read it.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC

import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from agape_ops.engine.records import ScheduledJob
from agape_ops.scheduler.runner import job_store


class StoredJobs:
    """Read the scheduler's job store (a ``JobBoard`` for the engine)."""

    def __init__(self, sync_url: sa.URL | str) -> None:
        self._sync_url = sync_url
        self._store: SQLAlchemyJobStore | None = None
        self._lock = threading.Lock()

    def _open(self) -> SQLAlchemyJobStore:
        with self._lock:
            if self._store is None:
                store = job_store(self._sync_url)
                # A scheduler that never starts: the store needs one to rebuild its jobs.
                store.start(BackgroundScheduler(timezone=UTC), "default")
                self._store = store
            return self._store

    def _read(self, run_id: str | None) -> list[ScheduledJob]:
        found = []
        for job in self._open().get_all_jobs():
            owner = str(job.args[0]) if job.args else ""
            if run_id is not None and owner != run_id:
                continue
            planned = job.kwargs.get("planned") or ("",)
            kind = str(planned[0]) or ("retry" if job.id.endswith(":retry") else "")
            found.append(ScheduledJob(job.id, owner, kind, job.name, job.next_run_time))
        return found

    async def jobs(self, run_id: str | None = None) -> list[ScheduledJob]:
        """Return the scheduled jobs (of one run, or all), soonest first."""
        return await asyncio.to_thread(self._read, run_id)

    def close(self) -> None:
        if self._store is not None:
            self._store.shutdown()
            self._store.engine.dispose()
            self._store = None
