"""What the bot does with each thing Slack sends: alerts, clicks, modal submissions, `/ops`.

Every listener acknowledges first (Slack allows three seconds) and works afterwards. Clicks,
submissions and commands become engine commands whose idempotency key comes from Slack's own
ids (the event id, the click's ``action_ts``, the modal's id, the command's trigger id), so a
retried delivery or a second replica acts once. A button says which state of the step its
presser saw; the engine asks again instead of repeating a change made since. The person who
clicked is the actor; a refusal is told to them alone, in an ephemeral message.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError

from agape_ops.alerts.fingerprint import fingerprint
from agape_ops.alerts.normalise import from_slack_event
from agape_ops.engine.commands import (
    Acknowledge,
    Command,
    Intake,
    MarkItemDone,
    OpenForAlert,
    Outcome,
    RunStep,
    SetState,
    StartRun,
    Status,
)
from agape_ops.engine.engine import Engine
from agape_ops.engine.records import Run
from agape_ops.engine.results import duration_words
from agape_ops.engine.views import RunView, StepView, Style
from agape_ops.errors import AgapeError, InputError
from agape_ops.surfaces.ops_actions import DIRECT, commands_for
from agape_ops.surfaces.ops_command import OpsCommand, OpsUsage, parse, usage_lines
from agape_ops.surfaces.slack import blocks, ids
from agape_ops.surfaces.slack.metrics import Metrics
from agape_ops.surfaces.slack.outbox import Outbox
from agape_ops.surfaces.slack.relay import Relay, where

log = logging.getLogger(__name__)

#: Alerts handled at once; more wait their turn (their events were acknowledged already).
INTAKE_AT_ONCE = 8
#: Subcommands answered in the acknowledgement itself: they read nothing slow.
INSTANT = frozenset({"help", "runbooks", "contacts", "dashboards"})
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
                user=user,
                text=blocks.message_text(content),
                blocks=content,
                thread_ts=thread_ts,
            )
        except SlackApiError as exc:
            log.warning("could not tell %s: %s", user, exc.response.get("error"))

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
            modal = blocks.step_modal(
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

    # -- alerts --------------------------------------------------------------------------------

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
            content = blocks.unmatched_reply(
                alert.title or alert.text, self.engine.runbooks.values()
            )
            await self.outbox.call(
                "chat.postMessage",
                channel,
                thread_ts=alert.ts,
                text=blocks.message_text(content),
                blocks=content,
            )

    # -- clicks --------------------------------------------------------------------------------

    async def on_action(self, body: Mapping[str, Any], action: Mapping[str, Any]) -> None:
        """A button or menu of the bot's was pressed (already acknowledged)."""
        user = _user(body)
        channel, thread_ts, message_ts = _where_clicked(body)
        action_id = ids.kind_of(str(action.get("action_id", "")))
        key = f"click:{message_ts}:{action_id}:{action.get('action_ts') or secrets.token_hex(8)}"
        trigger = body.get("trigger_id")
        trigger_id = trigger if isinstance(trigger, str) else None
        try:
            if action_id == ids.START:
                await self._start_from_menu(user, channel, thread_ts, action, key)
                return
            target = ids.decode(action.get("value"))
            channel = channel or target.channel
            view = await self.engine.view(target.run_id)
            thread = where(view.run)[1] or thread_ts
            if action_id in (ids.STEP, ids.ROW):
                press = Press(user, channel, thread, key, trigger_id)
                await self._press_step(view, target, press)
            elif action_id == ids.CHECKLIST:
                step = view.step(target.step_id or "")
                modal = blocks.checklist_modal(view, step)
                modal["private_metadata"] = ids.Target(
                    view.run.id, step.id, channel=channel, thread_ts=thread
                ).encode()
                await self.open_modal(trigger_id, modal)
            elif action_id == ids.EXPORT:
                await self.export(view.run, user, channel, thread, "md")
            else:
                command = _run_command(action_id, view.run.id, user, key)
                if command is None:
                    return
                outcome = await self.engine.execute(command)
                await self.answer(outcome, user, channel, thread)
        except AgapeError as exc:
            await self.tell(user, channel, f"⚠️ {exc.message}", thread_ts=thread_ts)

    async def _press_step(self, view: RunView, target: ids.Target, press: Press) -> None:
        step = view.step(target.step_id or "")
        given = dict(target.inputs)
        asks = [f for f in step.inputs if f.name not in given]
        if asks and (step.changes or any(f.prefilled is None for f in asks)):
            modal = blocks.step_modal(
                view, step, inputs=given, channel=press.channel, thread_ts=press.thread
            )
            if await self.open_modal(press.trigger_id, modal):
                return
        command = RunStep(
            view.run.id,
            step.id,
            press.user,
            press.key,
            inputs=given,
            confirmed=step.changes,  # Slack's dialog (or the confirm message) asked already
            seen=target.seen,
        )
        outcome = await self.engine.execute(command)
        await self.answer(
            outcome,
            press.user,
            press.channel,
            press.thread,
            step=step,
            view=view,
            trigger_id=press.trigger_id,
            inputs=given,
        )

    async def _start_from_menu(
        self,
        user: str,
        channel: str | None,
        thread_ts: str | None,
        action: Mapping[str, Any],
        key: str,
    ) -> None:
        selected = action.get("selected_option") or {}
        runbook_id = selected.get("value") if isinstance(selected, Mapping) else None
        if not isinstance(runbook_id, str) or channel is None:
            return
        source = {"channel": channel, "ts": thread_ts} if thread_ts else {"channel": channel}
        outcome = await self.engine.execute(
            StartRun(runbook_id, user, key, surface={"source": source})
        )
        await self.answer(outcome, user, channel, thread_ts)

    # -- modals --------------------------------------------------------------------------------

    async def check_step_form(self, view: Mapping[str, Any]) -> dict[str, str]:
        """Validate a step form's values; return errors by block id (empty when all good)."""
        target = ids.decode(view.get("private_metadata"))
        run_view = await self.engine.view(target.run_id)
        step = run_view.step(target.step_id or "")
        values = _form_values(view)
        errors = {}
        for form_field in step.inputs:
            try:
                form_field.validate(values.get(form_field.name, ""))
            except InputError as exc:
                errors[form_field.name] = blocks.cut(exc.message, 150)
        return errors

    async def on_step_form(self, body: Mapping[str, Any], view: Mapping[str, Any]) -> None:
        user = _user(body)
        target = ids.decode(view.get("private_metadata"))
        run_view = await self.engine.view(target.run_id)
        step = run_view.step(target.step_id or "")
        inputs = {**target.inputs, **_form_values(view)}
        inputs = {k: v for k, v in inputs.items() if k in {f.name for f in step.inputs}}
        command = RunStep(
            run_view.run.id,
            step.id,
            user,
            f"view:{view.get('id')}",
            inputs=inputs,
            confirmed=True,  # the modal stated what it does; submitting confirms
            seen=target.seen,
        )
        outcome = await self.engine.execute(command)
        public = {f.name: inputs[f.name] for f in step.inputs if not f.secret and f.name in inputs}
        await self.answer(
            outcome, user, target.channel, target.thread_ts, step=step, view=run_view, inputs=public
        )

    async def on_checklist_form(self, body: Mapping[str, Any], view: Mapping[str, Any]) -> None:
        user = _user(body)
        target = ids.decode(view.get("private_metadata"))
        numbers = _checked(view)
        for number in numbers:
            command = MarkItemDone(
                target.run_id,
                target.step_id or "",
                number - 1,
                user,
                f"view:{view.get('id')}:{number}",
                confirmed=True,
            )
            outcome = await self.engine.execute(command)
            if not outcome.ok:
                await self.answer(outcome, user, target.channel, target.thread_ts)
                return

    # -- /ops ----------------------------------------------------------------------------------

    def instant_answer(self, parsed: OpsCommand | OpsUsage) -> str | None:
        """Return the answer to a subcommand that needs nothing slow, else None."""
        if isinstance(parsed, OpsUsage):
            return f"{blocks.escape(parsed.message)}\n" + blocks.code_block(
                "\n".join(usage_lines())
            )
        if parsed.name == "help":
            return "`/ops` subcommands:\n" + blocks.code_block("\n".join(usage_lines()))
        if parsed.name == "runbooks":
            return blocks.runbooks_text(self.engine.runbooks.values())
        if parsed.name == "contacts":
            return (
                blocks.contacts_text(self.engine.team.contacts) or "No contacts in the team file."
            )
        if parsed.name == "dashboards":
            text = blocks.dashboards_text(self.engine.team.dashboards)
            return text or "No dashboards in the team file."
        return None

    async def on_command(self, command: Mapping[str, Any], parsed: OpsCommand) -> None:
        """A `/ops` subcommand that reads or changes runs (already acknowledged)."""
        user = str(command.get("user_id", ""))
        channel = command.get("channel_id") if isinstance(command.get("channel_id"), str) else None
        trigger_id = command.get("trigger_id")
        key = f"cmd:{trigger_id or secrets.token_hex(8)}"
        try:
            await self._command(parsed, user, channel, trigger_id, key)
        except AgapeError as exc:
            await self.tell(user, channel, f"⚠️ {exc.message}")

    async def _command(
        self, parsed: OpsCommand, user: str, channel: str | None, trigger_id: Any, key: str
    ) -> None:
        name = parsed.name
        if name == "start":
            source = {"channel": channel} if channel else {}
            outcome = await self.engine.execute(
                StartRun(
                    parsed.target or "",
                    user,
                    key,
                    inputs=dict(parsed.inputs),
                    surface={"source": source},
                )
            )
            text = outcome.message if outcome.ok else f"⚠️ {outcome.message}"
            await self.tell(user, channel, text)
            return
        if name in ("status", "runs") and parsed.run_id is None:
            runs = await self.engine.runs(active=name == "status", limit=20)
            lines = [(run, self._age(run)) for run in runs]
            empty = "No runs are open." if name == "status" else "No runs yet."
            await self.tell(user, channel, blocks.runs_text(lines, empty=empty), markup=True)
            return
        if name == "use":
            await self.tell(
                user,
                channel,
                "In Slack, name the run in the command instead: "
                "`/ops ack INC-3`, or type it in the run's channel.",
            )
            return
        run = await self._run_for(parsed, channel)
        if run is None:
            await self.tell(user, channel, await self._which_run(channel))
            return
        view = await self.engine.view(run.id)
        thread = where(run)[1]
        if name == "status":
            await self.tell(user, channel, blocks.card_text(view), content=blocks.card(view))
        elif name == "timeline":
            await self.export(run, user, channel, thread, parsed.text or "md")
        elif name == "run":
            step = view.step(parsed.target or "")
            # A typed command is answered where it was typed (Slack sends no thread), never in
            # the run's thread: that may be another channel's, and an ephemeral in a thread
            # shows only to whoever opens the thread.
            press = Press(
                user, channel, None, key, trigger_id if isinstance(trigger_id, str) else None
            )
            if step.changes:
                await self._confirm_by_modal(view, step, parsed.inputs, press)
            else:
                target = ids.Target(run.id, step.id, seen=step.attempts, inputs=dict(parsed.inputs))
                await self._press_step(view, target, press)
        elif name in DIRECT:
            counter = iter(range(1000))
            commands = commands_for(parsed, view, user, lambda: f"{key}:{next(counter)}")
            said = []
            for each in commands:
                outcome = await self.engine.execute(each)
                if not outcome.ok:
                    await self.answer(outcome, user, channel, None)
                    return
                said.append(outcome.message)
            await self.tell(user, channel, "✅ " + "; ".join(said))

    async def _confirm_by_modal(
        self, view: RunView, step: StepView, inputs: Mapping[str, str], press: Press
    ) -> None:
        """A change typed as `/ops run`: its modal shows what it does and asks to confirm."""
        modal = blocks.step_modal(
            view, step, inputs=inputs, channel=press.channel, thread_ts=press.thread
        )
        if not await self.open_modal(press.trigger_id, modal):
            await self.tell(
                press.user,
                press.channel,
                "Could not open the confirmation; press the step's button on the run's card.",
            )

    async def _run_for(self, parsed: OpsCommand, channel: str | None) -> Run | None:
        if parsed.run_id:
            return await self.engine.get_run(parsed.run_id)
        here = [r for r in await self.engine.runs(active=True, limit=200) if where(r)[0] == channel]
        return here[0] if len(here) == 1 else None

    async def _which_run(self, channel: str | None) -> str:
        runs = await self.engine.runs(active=True, limit=200)
        here = [r for r in runs if where(r)[0] == channel]
        if not here:
            return (
                "No run is open in this channel: name one (`/ops ack INC-3`); "
                "`/ops status` lists them."
            )
        names = ", ".join(r.id for r in here[:10])
        return f"Several runs are open here ({names}): name one, e.g. `/ops ack {here[0].id}`."

    def _age(self, run: Run) -> str:
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
        view = blocks.home_view(
            [(run, self._age(run)) for run in runs], self.engine.runbooks.values(), self.engine.team
        )
        try:
            await self.outbox.call("views.publish", user_id=user, view=view)
        except SlackApiError as exc:
            log.warning("could not publish the Home tab: %s", exc.response.get("error"))


# -- reading payloads ----------------------------------------------------------------------


def _user(body: Mapping[str, Any]) -> str:
    user = body.get("user") or {}
    return str(user.get("id", "")) if isinstance(user, Mapping) else str(body.get("user_id", ""))


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


class _QuietBolt(logging.Filter):
    """Drop bolt's start-up notes about the token: the bot passes its own client on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token`" not in record.getMessage()


def _where_clicked(body: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Return the channel, the thread and the message of a click."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel_obj = body.get("channel") or {}
    channel = container.get("channel_id") or (
        channel_obj.get("id") if isinstance(channel_obj, Mapping) else None
    )
    message_ts = container.get("message_ts") or message.get("ts")
    thread_ts = container.get("thread_ts") or message.get("thread_ts") or message_ts
    return (
        channel if isinstance(channel, str) else None,
        thread_ts if isinstance(thread_ts, str) else None,
        message_ts if isinstance(message_ts, str) else None,
    )


def _run_command(action_id: str, run_id: str, user: str, key: str) -> Command | None:
    if action_id == ids.ACK:
        return Acknowledge(run_id, user, key)
    states = {ids.MITIGATED: "mitigated", ids.RESOLVE: "resolved", ids.CLOSE: "closed"}
    if action_id in states:
        return SetState(run_id, states[action_id], user, key)
    return None


def _form_values(view: Mapping[str, Any]) -> dict[str, str]:
    """Return a modal's text inputs by block id (the input's name)."""
    state = (view.get("state") or {}).get("values") or {}
    values = {}
    for block_id, elements in state.items():
        element = elements.get(ids.VALUE) if isinstance(elements, Mapping) else None
        if isinstance(element, Mapping) and element.get("type") == "plain_text_input":
            values[str(block_id)] = str(element.get("value") or "")
    return values


def _checked(view: Mapping[str, Any]) -> list[int]:
    state = (view.get("state") or {}).get("values") or {}
    numbers = []
    for elements in state.values():
        element = elements.get(ids.VALUE) if isinstance(elements, Mapping) else None
        if isinstance(element, Mapping):
            for option in element.get("selected_options") or []:
                value = option.get("value") if isinstance(option, Mapping) else None
                if isinstance(value, str) and value.isdigit():
                    numbers.append(int(value))
    return sorted(set(numbers))


def now() -> datetime:
    return datetime.now(UTC)


# -- the bolt app --------------------------------------------------------------------------


def build_app(bot: SlackBot, *, signing_secret: str | None) -> AsyncApp:
    """Build the slack-bolt app: every listener acknowledges first, then hands over."""

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return bot.authorization(enterprise_id, team_id)

    bolt_log = logging.getLogger("agape_ops.slack.bolt")
    bolt_log.addFilter(_QuietBolt())
    app = AsyncApp(
        logger=bolt_log,
        client=bot.outbox.client,
        signing_secret=signing_secret,
        authorize=authorize,
        request_verification_enabled=signing_secret is not None,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    @app.event("message")
    async def message(body: dict[str, Any], event: dict[str, Any]) -> None:
        bot.metrics.events.labels(kind="event", outcome="received").inc()
        bot.later(bot.on_message(body, event))

    @app.event("app_home_opened")
    async def home(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and isinstance(event.get("user"), str):
            bot.later(bot.on_home(event["user"]))

    @app.action({"action_id": _OURS})
    async def action(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        bot.metrics.events.labels(kind="action", outcome="received").inc()
        bot.later(bot.on_action(body, action))

    @app.view(ids.STEP_FORM)
    async def step_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        bot.metrics.events.labels(kind="view", outcome="received").inc()
        try:
            errors = await asyncio.wait_for(bot.check_step_form(view), 2.0)
        except (AgapeError, TimeoutError):
            errors = {}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        bot.later(bot.on_step_form(body, view))

    @app.view(ids.CHECKLIST_FORM)
    async def checklist_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        bot.metrics.events.labels(kind="view", outcome="received").inc()
        bot.later(bot.on_checklist_form(body, view))

    @app.command("/ops")
    async def ops(ack: AsyncAck, command: dict[str, Any]) -> None:
        bot.metrics.events.labels(kind="command", outcome="received").inc()
        parsed = parse(str(command.get("text", "")), run_prefix=bot.run_prefix)
        instant = bot.instant_answer(parsed)
        if instant is not None or isinstance(parsed, OpsUsage):
            await ack(response_type="ephemeral", text=instant or "")
            return
        await ack()
        bot.later(bot.on_command(command, parsed))

    return app


_OURS = re.compile(r"^ops\.")
