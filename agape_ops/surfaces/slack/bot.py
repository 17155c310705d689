"""The Slack surface's core: the bot's identity, its background work, how it tells people,
and what it does with an alert in the alerts channel.

Every listener acknowledges first (Slack allows three seconds) and hands its work to ``later``.
Alerts become the engine's intake command with the event id as its key, so a retried delivery,
a restart or a second replica acts once. A refusal or a question is told to the presser alone,
in an ephemeral message; what the thread shows comes from the relay, from committed events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from agape_ops.alerts.fingerprint import fingerprint
from agape_ops.alerts.normalise import from_slack_event
from agape_ops.engine.commands import PRECONDITION_UNMET, Intake, OpenForAlert, Outcome, Status
from agape_ops.engine.engine import Engine
from agape_ops.engine.records import Run
from agape_ops.engine.results import duration_words
from agape_ops.engine.views import RunView, StepView, Style
from agape_ops.surfaces.slack import blocks, ids, modals, replies
from agape_ops.surfaces.slack.metrics import Metrics
from agape_ops.surfaces.slack.outbox import Outbox
from agape_ops.surfaces.slack.relay import Relay, where

log = logging.getLogger(__name__)

#: Alerts handled at once; more wait their turn (their events were acknowledged already).
INTAKE_AT_ONCE = 8
#: The response URL of the `/ops` command being answered (each command runs in its own task).
RESPONSE_URL: ContextVar[str | None] = ContextVar("RESPONSE_URL", default=None)
#: Errors of an ephemeral message in a channel the bot is not in: answer by the response URL.
NOT_HERE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
#: Engine failures that are about the step's call: its result is told in the thread.
STEP_ERRORS = frozenset({"StepError"})


@dataclass
class Identity:
    """Who the bot is in Slack (from auth.test), to tell its own messages from alerts."""

    token: str
    bot_id: str | None = None
    user_id: str | None = None
    team_id: str | None = None


@dataclass(frozen=True)
class Press:
    """One press of a button or one typed command: who, where, its key and its trigger."""

    user: str
    channel: str | None
    thread: str | None
    key: str
    trigger_id: str | None


@dataclass
class SlackBot:
    """The Slack surface's state: the engine it drives and how it talks to Slack."""

    engine: Engine
    outbox: Outbox
    relay: Relay
    metrics: Metrics
    identity: Identity
    alerts_channel: str | None
    run_prefix: str
    _intake: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(INTAKE_AT_ONCE))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # -- who the bot is ------------------------------------------------------------------------

    async def learn_identity(self) -> bool:
        """Ask Slack who the bot is (one auth.test); say whether Slack answered."""
        try:
            data = await self.outbox.call("auth.test")
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("Slack did not answer auth.test (%s); will ask again", type(exc).__name__)
            return False
        self.identity.bot_id = data.get("bot_id") or self.identity.bot_id
        self.identity.user_id = data.get("user_id") or self.identity.user_id
        self.identity.team_id = data.get("team_id") or self.identity.team_id
        return True

    async def keep_learning_identity(self, every_s: float = 30.0) -> None:
        """Ask who the bot is until Slack answers (run as a task at start-up)."""
        for _attempt in range(10_000):
            if await self.learn_identity():
                return
            await asyncio.sleep(every_s)

    def authorization(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        """Bolt's authorisation for one workspace: the bot token, whatever the team id. It
        never calls Slack, so no acknowledgement waits on Slack."""
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id or self.identity.team_id,
            bot_token=self.identity.token,
            bot_id=self.identity.bot_id,
            bot_user_id=self.identity.user_id,
        )

    # -- background work -----------------------------------------------------------------------

    def later(self, work: Any) -> None:
        """Run ``work`` (a coroutine) after the acknowledgement; keep it until it ends."""
        task: asyncio.Task[None] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack work failed", exc_info=task.exception())

    async def settle(self, within_s: float = 30.0) -> None:
        """Wait for work in progress (shutdown, tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=within_s)

    # -- telling people ------------------------------------------------------------------------

    async def tell(
        self,
        user: str,
        channel: str | None,
        text: str,
        *,
        thread_ts: str | None = None,
        content: Sequence[Mapping[str, Any]] | None = None,
        markup: bool = False,
    ) -> None:
        """Say something to one person only (an ephemeral message where they are). ``text``
        is plain words (escaped here) unless ``markup`` says it is mrkdwn built by the bot."""
        if channel is None:
            return
        shown = text if markup else blocks.escape(text)
        content = list(content) if content else [blocks.section(shown)]
        try:
            await self.outbox.call(
                "chat.postEphemeral",
                channel,
                urgent=True,  # the person who pressed is waiting for it
                user=user,
                text=blocks.message_text(content),
                blocks=content,
                thread_ts=thread_ts,
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            url = RESPONSE_URL.get()
            if url and error in NOT_HERE:
                await self._respond(url, content)
                return
            log.warning("could not tell %s: %s", user, error)

    async def _respond(self, url: str, content: list[Mapping[str, Any]]) -> None:
        """Answer a command through its response URL (where the bot is not a member)."""
        try:
            await AsyncWebhookClient(url, timeout=10).send(
                text=blocks.message_text(content),
                blocks=[dict(block) for block in content],
                response_type="ephemeral",
            )
        except (OSError, TimeoutError, SlackApiError) as exc:
            log.warning("could not answer through the response URL: %s", type(exc).__name__)

    async def open_modal(self, trigger_id: str | None, modal: dict[str, Any]) -> bool:
        if not trigger_id:
            return False
        try:
            await self.outbox.call("views.open", trigger_id=trigger_id, view=modal)
        except SlackApiError as exc:
            log.warning("could not open a modal: %s", exc.response.get("error"))
            return False
        return True

    async def answer(
        self,
        outcome: Outcome,
        user: str,
        channel: str | None,
        thread_ts: str | None,
        *,
        step: StepView | None = None,
        view: RunView | None = None,
        trigger_id: str | None = None,
        inputs: Mapping[str, str] | None = None,
    ) -> None:
        """Tell the presser what came of their press, when the thread does not show it."""
        status = outcome.status
        if status is Status.DONE or status is Status.DUPLICATE:
            return
        if status is Status.FAILED and outcome.error in STEP_ERRORS:
            return  # the result reply in the thread says what went wrong
        if status is Status.REFUSED and outcome.error == PRECONDITION_UNMET:
            await self.tell(user, channel, f"👌 {outcome.message}", thread_ts=thread_ts)
            return
        if status is Status.REFUSED:
            await self.tell(
                user, channel, f"🚫 Not allowed: {outcome.message}", thread_ts=thread_ts
            )
            return
        if status is Status.NEEDS_CONFIRMATION and view is not None and step is not None:
            again = ids.Target(view.run.id, step.id, seen=step.attempts, inputs=dict(inputs or {}))
            question = blocks.escape(outcome.message)
            content = [
                blocks.section(f"⚠️ {question}"),
                *blocks.actions(
                    [
                        blocks.button(
                            "Confirm: " + step.label,
                            ids.ROW,
                            again.encode(),
                            style=Style.DANGER,
                        )
                    ],
                    "again",
                ),
            ]
            await self.tell(user, channel, outcome.message, thread_ts=thread_ts, content=content)
            return
        if status is Status.NEEDS_INPUTS and view is not None and step is not None:
            modal = modals.step_modal(
                view, step, inputs=inputs, channel=channel, thread_ts=thread_ts
            )
            if await self.open_modal(trigger_id, modal):
                return
            names = ", ".join(outcome.needs_inputs)
            await self.tell(
                user,
                channel,
                f"{outcome.message}: `/ops run {view.run.id} {step.number} {names}=…`",
                thread_ts=thread_ts,
            )
            return
        mark = "⏳" if status is Status.AWAITING_APPROVAL else "⚠️"
        await self.tell(user, channel, f"{mark} {outcome.message}", thread_ts=thread_ts)

    # -- alerts ------------------------------------------------------------------------------

    async def on_message(self, body: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """A message in a channel: an alert when it is in the alerts channel."""
        channel = event.get("channel")
        if self.alerts_channel is None or channel != self.alerts_channel:
            return
        if _made_here(event):
            return
        alert = from_slack_event(
            event, own_bot_id=self.identity.bot_id, own_user_id=self.identity.user_id
        )
        if alert is None:
            return
        event_id = body.get("event_id")
        key = f"event:{event_id}" if isinstance(event_id, str) else f"message:{channel}:{alert.ts}"
        actor = _poster(event)
        command = OpenForAlert(
            alert,
            fingerprint(alert),
            actor,
            key,
            source={"channel": channel, "ts": alert.ts},
        )
        async with self._intake:
            outcome = await self.engine.execute(command)
        if outcome.intake is not None:
            self.metrics.alerts.labels(intake=outcome.intake.value).inc()
        if outcome.intake is Intake.UNMATCHED and isinstance(channel, str):
            content = replies.unmatched_reply(
                alert.title or alert.text, self.engine.runbooks.values(), command.fingerprint
            )
            await self.outbox.call(
                "chat.postMessage",
                channel,
                thread_ts=alert.ts,
                text=blocks.message_text(content),
                blocks=content,
            )

    def age(self, run: Run) -> str:
        return duration_words(self.engine.clock() - run.created_at)

    async def export(
        self, run: Run, user: str, channel: str | None, thread: str | None, fmt: str
    ) -> None:
        """Upload the run's timeline (its postmortem draft) as a file in the thread."""
        if channel is None:
            return
        text = await self.engine.export(run.id, "json" if fmt == "json" else "md")
        suffix = "json" if fmt == "json" else "md"
        same_channel = where(run)[0] == channel
        try:
            await self.outbox.upload(
                channel,
                thread_ts=thread if same_channel else None,
                filename=f"{run.id}-timeline.{suffix}",
                title=f"{run.id} timeline",
                content=text,
                comment=f"{run.id} timeline, exported by {blocks.who(user)}",
            )
        except SlackApiError as exc:
            await self.tell(
                user, channel, f"⚠️ Could not upload the timeline: {exc.response.get('error')}"
            )

    # -- home ----------------------------------------------------------------------------------

    async def on_home(self, user: str) -> None:
        runs = await self.engine.runs(active=True, limit=40)
        view = modals.home_view(
            [(run, self.age(run)) for run in runs], self.engine.runbooks.values(), self.engine.team
        )
        try:
            await self.outbox.call("views.publish", user_id=user, view=view)
        except SlackApiError as exc:
            log.warning("could not publish the Home tab: %s", exc.response.get("error"))


# -- reading payloads ----------------------------------------------------------------------


def _poster(event: Mapping[str, Any]) -> str:
    message = event.get("message") if event.get("subtype") == "message_changed" else event
    message = message if isinstance(message, Mapping) else event
    profile = message.get("bot_profile")
    if isinstance(profile, Mapping) and isinstance(profile.get("name"), str):
        return str(profile["name"])[:80]
    for field_name in ("username", "user", "bot_id"):
        value = message.get(field_name)
        if isinstance(value, str) and value:
            return value[:80]
    return "monitoring"


def _made_here(event: Mapping[str, Any]) -> bool:
    """Say whether a message is one of this bot's (its buttons carry the bot's action ids),
    even before Slack has said who the bot is."""
    message = event.get("message") if event.get("subtype") == "message_changed" else event
    if not isinstance(message, Mapping) or not message.get("bot_id"):
        return False
    for block in message.get("blocks") or []:
        elements = block.get("elements") if isinstance(block, Mapping) else None
        for element in elements or []:
            action_id = element.get("action_id") if isinstance(element, Mapping) else None
            if isinstance(action_id, str) and action_id.startswith(ids.PREFIX):
                return True
    return False
