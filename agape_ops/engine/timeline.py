"""The run's timeline: append an event to the store, then tell every listening surface."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from agape_ops.engine.records import Event, Run
from agape_ops.engine.store import RunStore

log = logging.getLogger(__name__)

Listener = Callable[[Event], Awaitable[None]]


class Timeline:
    """Appends events (who, when, what, outcome, duration) and fans them out to listeners."""

    def __init__(self, store: RunStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self.listeners: list[Listener] = []

    async def record(self, run: Run, actor: str, kind: str, summary: str, **fields: Any) -> Event:
        """Append one event to the run's timeline and hand it to every listener."""
        event = Event(
            run_id=run.id, at=self.clock(), actor=actor, kind=kind, summary=summary, **fields
        )
        stored = await self.store.append_event(event)
        for listener in self.listeners:
            try:
                await listener(stored)
            except Exception:  # a broken surface must not break the run; report it
                log.exception("event listener failed on %s", stored.kind)
        return stored
