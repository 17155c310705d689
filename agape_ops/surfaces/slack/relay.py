"""Send to Slack what the engine commits, exactly once across every bot process.

Two paths bring committed events here: this process's engine publishes its own right after
each commit, and a follower reads the store's event log for everything any process (another
replica, a console, the scheduler) committed. Whichever path sees an event first claims it in
the store (``claim_delivery``), so each event is told once however many replicas follow the
log; what a process claimed and died before sending is taken over once its lease runs out.
Events are handled per run, in order: the opening posts the run card in the alert's thread (and
records where, so every process and restart updates the same message), step results and state
changes become thread replies, and the card is re-rendered from the engine's view once per
batch, which coalesces updates during a storm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from agape_ops.engine.commands import RecordSurface
from agape_ops.engine.engine import DELIVERY_LEASE, Engine
from agape_ops.engine.records import Delivery, Event, Run
from agape_ops.engine.steps import BOT
from agape_ops.engine.views import RunView, StepView
from agape_ops.errors import AgapeError
from agape_ops.surfaces.slack import blocks, card, replies, watching
from agape_ops.surfaces.slack.metrics import Metrics
from agape_ops.surfaces.slack.outbox import Outbox

log = logging.getLogger(__name__)

RESULT_KINDS = frozenset({"step.finished", "step.done", "step.error", "step.handed_over"})
REPLY_KINDS = frozenset(
    {
        "run.acknowledged",
        "run.mitigated",
        "run.resolved",
        "run.closed",
        "note.added",
        "step.approved",
        "step.late",
    }
)
#: Events a thread is told of (a card posted, a reply); the rest only change the card. The
#: scheduler's (``watching.WATCH_KINDS``) are told as ``watching.told`` says.
TOLD_KINDS = RESULT_KINDS | REPLY_KINDS | {"run.opened", "alert.resolved"}
#: A run's card is edited at most this often; what happens meanwhile is shown together.
CARD_EVERY_S = 1.0
#: How long a reply waits for its run's card when the run has no alert message to reply under.
CARD_WAIT_S = 10.0
#: On start, how far back a process looks for events nobody told: positions, and age.
CATCH_UP_EVENTS = 500
CATCH_UP_AGE = timedelta(minutes=15)
#: Positions remembered as handled here, so the follower skips what this process published.
REMEMBERED = 10_000


def where(run: Run) -> tuple[str | None, str | None]:
    """Return the channel and thread a run's messages go to (None, None: not in Slack)."""
    source = run.surface.get("source") or {}
    card = run.surface.get("card") or {}
    channel = source.get("channel") or card.get("channel")
    thread = source.get("ts") or card.get("ts")
    return (
        channel if isinstance(channel, str) else None,
        thread if isinstance(thread, str) else None,
    )


def told(event: Event) -> bool:
    """Say whether an event is told in the thread (claimed and sent once) or only shown: a
    scheduled re-check's or monitor sample's result changes the card or the monitor's message,
    and a flapping run's clear or return only the card."""
    if event.kind in RESULT_KINDS and watching.purpose(event) in watching.QUIET_PURPOSES:
        return False
    if event.kind in watching.WATCH_KINDS:
        return watching.told(event)
    return event.kind in TOLD_KINDS


def _key(event: Event) -> str:
    """The delivery key of an event's Slack outputs: one per event in the store's log."""
    return f"slack:{event.position}"


@dataclass(frozen=True)
class Placed:
    """A message a run keeps one of, edited in place: its card, or a monitor's message."""

    run_id: str
    place: str  # the name the run records it under (``card``, or the monitor's)
    text: str
    blocks: list[dict[str, Any]]

    @property
    def key(self) -> str:
        """The key recording where it went: once, whichever process posts it."""
        return (
            f"card:{self.run_id}" if self.place == "card" else f"surface:{self.run_id}:{self.place}"
        )

    @property
    def remembered(self) -> str:
        """What this process calls it in its memory of the last blocks it sent."""
        return self.run_id if self.place == "card" else f"{self.run_id}:{self.place}"


class Relay:
    """Turn committed events into Slack messages, once per event across processes."""

    def __init__(self, engine: Engine, outbox: Outbox, metrics: Metrics) -> None:
        self.engine = engine
        self.outbox = outbox
        self.metrics = metrics
        self._pending: dict[str, list[Event]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._seen: dict[int, None] = {}
        self._posted: dict[str, str] = {}  # run id -> the card blocks last sent from here
        self._held: list[tuple[float, Event]] = []  # another process is sending these
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._last_refresh: dict[str, float] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    # -- intake of events ---------------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """The engine's listener: queue the event and return at once (never hold a command)."""
        self.offer([event])

    def offer(self, events: Iterable[Event], *, again: bool = False) -> None:
        """Queue events for their runs' workers (each once, unless asked ``again``)."""
        for event in events:
            if event.position in self._seen and not again:
                continue
            self._seen[event.position] = None
            if len(self._seen) > REMEMBERED:
                self._seen.pop(next(iter(self._seen)))
            self._pending.setdefault(event.run_id, []).append(event)
            if event.run_id not in self._workers:
                self._idle.clear()
                task = asyncio.create_task(self._work(event.run_id))
                self._workers[event.run_id] = task

    async def follow(self, poll_s: float = 0.5) -> None:
        """Follow the store's event log from now on (run as a task; cancel to stop), after
        telling what recent events nobody told (``catch_up``)."""
        position = await self.engine.last_position()
        await self.catch_up(position)
        while True:
            try:
                batch = await self.engine.events_after(position)
            except Exception:  # noqa: BLE001 - the store may be briefly away; keep following
                log.warning("could not read the event log; trying again")
                batch = []
            if batch:
                position = batch[-1].position
                self.offer(batch)
            else:
                self._ask_again()
                await asyncio.sleep(poll_s)

    async def catch_up(self, position: int) -> None:
        """Offer the recent told events up to ``position`` once more: one committed while no
        bot process was running, or by a process stopped before it told it (a page that fell
        due during a restart), is told now; one told already is claimed done and skipped."""
        start = max(0, position - CATCH_UP_EVENTS)
        try:
            batch = await self.engine.events_after(start, limit=CATCH_UP_EVENTS)
        except Exception:  # noqa: BLE001 - the store may be briefly away; following goes on
            log.warning("could not read the recent event log to catch up")
            return
        since = self.engine.clock() - CATCH_UP_AGE
        self.offer([e for e in batch if e.position <= position and e.at >= since and told(e)])

    def _ask_again(self) -> None:
        """Offer again the events another process held once their lease may have run out:
        if that process died before sending them, this one takes them over."""
        now = time.monotonic()
        due = [event for at, event in self._held if at <= now]
        if due:
            self._held = [(at, event) for at, event in self._held if at > now]
            self.offer(due, again=True)

    async def drained(self, within_s: float = 30.0) -> None:
        """Wait until every queued event has been handled (for shutdown and tests)."""
        await asyncio.wait_for(self._idle.wait(), within_s)

    async def close(self) -> None:
        tasks = [*self._workers.values(), *self._refreshing.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- per run ------------------------------------------------------------------------------

    async def _work(self, run_id: str) -> None:
        try:
            while self._pending.get(run_id):
                batch = self._pending.pop(run_id)
                try:
                    await self._handle(run_id, batch)
                except asyncio.CancelledError:
                    raise
                except SlackApiError as exc:
                    error = exc.response.get("error")
                    log.warning("Slack refused %s's update: %s", run_id, error)
                except Exception:  # a store fault: told in the log, the bot goes on
                    log.exception("could not send %s's events to Slack", run_id)
        finally:
            self._workers.pop(run_id, None)
            if not self._workers and not self._refreshing:
                self._idle.set()

    async def _handle(self, run_id: str, batch: list[Event]) -> None:
        run = await self.engine.find_run(run_id)
        if run is None or where(run)[0] is None:
            return  # a console run: Slack has no place for it
        mine = []
        shown_only = False
        for event in batch:
            if not told(event):
                shown_only = True  # only the card shows it: refreshed below
                continue
            claim = await self.engine.claim_delivery(_key(event))
            if claim is Delivery.CLAIMED:
                mine.append(event)
            elif claim is Delivery.HELD:
                retry_at = time.monotonic() + DELIVERY_LEASE.total_seconds() + 1
                self._held.append((retry_at, event))
        if not mine:
            if shown_only:  # told events sent by another process: that process refreshed it
                self._refresh_soon(run_id)
            return
        view = await self.engine.view(run_id)
        results: list[Event] = []
        for event in mine:
            if event.kind in RESULT_KINDS and event.step_id:
                results.append(event)  # told together: a batch of checks is one reply
                continue
            await self._tell_results(view, results)
            results = []
            try:
                if event.kind == "run.opened":
                    view = await self._post_card(view)
                elif event.kind == "alert.resolved":
                    await self._reply(view, replies.resolved_alert_reply(view, event))
                elif event.kind in REPLY_KINDS:
                    await self._reply(view, replies.event_reply(event))
                elif event.kind in watching.WATCH_KINDS:
                    view = await self._tell_watch(view, event)
            finally:
                await self.engine.finish_delivery(_key(event))
        await self._tell_results(view, results)
        self._refresh_soon(run_id)

    def _refresh_soon(self, run_id: str) -> None:
        """Refresh a run's card now, or once its last update is ``CARD_EVERY_S`` old: during a
        storm a card is edited about once a second, showing everything committed by then."""
        if run_id in self._refreshing:
            self._dirty.add(run_id)
            return
        self._idle.clear()
        task = asyncio.create_task(self._refresher(run_id))
        self._refreshing[run_id] = task

    async def _refresher(self, run_id: str) -> None:
        try:
            while True:
                self._dirty.discard(run_id)
                wait = self._last_refresh.get(run_id, 0.0) + CARD_EVERY_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    self._dirty.discard(run_id)
                self._last_refresh[run_id] = time.monotonic()
                try:
                    await self.refresh(run_id)
                except Exception:  # a store fault: the next event refreshes it again
                    log.exception("could not refresh %s's card", run_id)
                if run_id not in self._dirty:
                    return
        finally:
            self._refreshing.pop(run_id, None)
            if not self._workers and not self._refreshing:
                self._idle.set()

    async def _tell_results(self, view: RunView, events: list[Event]) -> None:
        try:
            await self._reply_results(view, events)
        finally:
            for event in events:
                await self.engine.finish_delivery(_key(event))

    async def _post_card(self, view: RunView) -> RunView:
        run = view.run
        channel, thread = where(run)
        if channel is None or run.surface.get("card"):
            return view
        # A new run's card goes ahead of other runs' results.
        posted = Placed(run.id, "card", card.card_text(view), card.card(view))
        return await self._post_placed(posted, channel, thread, urgent=True)

    async def _tell_watch(self, view: RunView, event: Event) -> RunView:
        """Tell what the scheduler did: a page, a clear or return, a reminder, a monitor."""
        if event.kind == "run.escalated":
            await self._reply(view, watching.escalation_reply(view, event))
        elif event.kind == "run.cleared":
            await self._reply(view, watching.cleared_reply(view, event))
        elif event.kind == "run.returned":
            await self._reply(view, watching.returned_reply(event))
        elif event.kind == "run.reminded":
            await self._reply(view, watching.reminder_reply(view, event))
        elif event.kind == "monitor.started":
            return await self._post_monitor(view, event.step_id or "")
        elif event.kind == "monitor.stopped":
            step = next((s for s in view.steps if s.id == event.step_id), None)
            if step is not None:
                await self._update_monitor(view, step)
            await self._reply(view, watching.monitor_stopped_reply(step, event))
        return view

    async def _post_monitor(self, view: RunView, step_id: str) -> RunView:
        """Post a monitor's one message and record where, so every process edits that one."""
        run = view.run
        step = next((s for s in view.steps if s.id == step_id), None)
        place = watching.monitor_place(step) if step is not None else None
        if step is None or place is None or run.surface.get(place):
            return view
        channel, thread = await self.thread_of(run)
        if channel is None:
            return view
        text, rendered = watching.monitor_text(step), watching.monitor_message(view, step)
        posted = Placed(run.id, place, text, rendered)
        return await self._post_placed(posted, channel, thread)

    async def _post_placed(
        self, posted: Placed, channel: str, thread: str | None, *, urgent: bool = False
    ) -> RunView:
        """Post a message the run keeps one of (its card, a monitor's) and record where, so
        every process edits that one; return the run's view as it is now."""
        run_id = posted.run_id
        data = await self.outbox.call(
            "chat.postMessage",
            channel,
            urgent=urgent,
            thread_ts=thread,
            text=posted.text,
            blocks=posted.blocks,
            unfurl_links=False,
        )
        ts = data.get("ts")
        if isinstance(ts, str):
            spot = {"channel": channel, "ts": ts}
            if posted.place == "card":  # replies go to the card's thread, or start one under it
                spot["thread_ts"] = thread or ts
            await self.engine.execute(RecordSurface(run_id, posted.place, spot, BOT, posted.key))
            self._posted[posted.remembered] = json.dumps(posted.blocks, sort_keys=True)
        return await self.engine.view(run_id)

    async def _update_monitor(self, view: RunView, step: StepView) -> None:
        """Edit a monitor's message from the current view, when it changed."""
        place = watching.monitor_place(step)
        spot = view.run.surface.get(place) if place else None
        rendered = watching.monitor_message(view, step)
        text = watching.monitor_text(step)
        await self._edit(f"{view.run.id}:{place}", spot, text, rendered, f"{step.id}'s monitor")

    async def _edit(
        self, remembered: str, spot: object, text: str, rendered: list[dict[str, Any]], what: str
    ) -> None:
        """Edit the message at ``spot`` (a card or a monitor's) to ``rendered``, unless this
        process sent exactly that last; a refusal is logged, the next change tries again."""
        if not isinstance(spot, dict) or not isinstance(spot.get("ts"), str):
            return
        encoded = json.dumps(rendered, sort_keys=True)
        if self._posted.get(remembered) == encoded:
            return
        try:
            await self.outbox.call(
                "chat.update", spot["channel"], ts=spot["ts"], text=text, blocks=rendered
            )
        except SlackApiError as exc:
            log.warning("could not update %s: %s", what, exc.response.get("error"))
            return
        self._posted[remembered] = encoded

    async def refresh(self, run_id: str) -> None:
        """Re-render a run's card and its monitors' messages from its current view; send each
        only when it changed."""
        view = await self.engine.view(run_id)
        for step in view.steps:
            if step.monitor is not None:
                await self._update_monitor(view, step)
        spot = view.run.surface.get("card")
        await self._edit(run_id, spot, card.card_text(view), card.card(view), f"{run_id}'s card")

    async def thread_of(self, run: Run) -> tuple[str | None, str | None]:
        """Return where a run's replies go, waiting a little for a card still being posted."""
        channel, thread = where(run)
        deadline = time.monotonic() + CARD_WAIT_S
        while channel is not None and thread is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            fresh = await self.engine.find_run(run.id)
            channel, thread = where(fresh) if fresh else (None, None)
        return channel, thread

    async def _reply(self, view: RunView, content: list[dict[str, Any]]) -> None:
        channel, thread = await self.thread_of(view.run)
        if channel is None:
            return
        await self.outbox.call(
            "chat.postMessage",
            channel,
            thread_ts=thread,
            text=blocks.message_text(content),
            blocks=content,
            unfurl_links=False,
        )

    async def _reply_results(self, view: RunView, events: list[Event]) -> None:
        """Tell step results in the thread: one reply for a batch (the automatic checks that
        finished together), split only where Slack's block limit says so; a result too big
        for its reply is attached whole as a file."""
        parts: list[list[dict[str, Any]]] = []
        attach = []
        for event in events:
            try:
                step = view.step(event.step_id or "")
            except AgapeError:
                continue
            self.metrics.steps.labels(kind=step.kind, outcome=event.outcome or "unknown").inc()
            if event.duration_ms is not None:
                seconds = event.duration_ms / 1000
                self.metrics.adapter_latency.labels(kind=step.kind).observe(seconds)
            parts.append(replies.result_reply(view, step, event))
            if step.result is not None and replies.needs_file(step.result):
                attach.append(step)
        for message in blocks.pack(parts):
            await self._reply(view, message)
        for step in attach:
            await self._attach(view, step)

    async def _attach(self, view: RunView, step: StepView) -> None:
        channel, thread = await self.thread_of(view.run)
        if channel is None or step.result is None:
            return
        try:
            await self.outbox.upload(
                channel,
                thread_ts=thread,
                filename=f"{view.run.id}-{step.id}.md",
                title=f"{view.run.id} · {step.number}. {step.title}",
                content=replies.result_file(step, step.result),
            )
        except SlackApiError as exc:
            log.warning("could not attach %s's result: %s", step.id, exc.response.get("error"))
