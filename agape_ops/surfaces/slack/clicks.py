"""Clicks and modal submissions: the bot's buttons, menus and forms become engine commands.

A click's idempotency key is Slack's own (the message, the action and its ``action_ts``), a
form's is the modal's id, so a redelivery acts once. A button carries what its presser saw (how
many times the step had run); the engine asks again rather than repeat a change made since, so
a double click acts once. A change without inputs was confirmed in Slack's dialog before the
click reached the bot; one with inputs is confirmed by submitting its modal.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agape_ops.engine.commands import (
    Acknowledge,
    Command,
    MarkItemDone,
    RunStep,
    SetState,
    StartRun,
)
from agape_ops.engine.views import RunView
from agape_ops.errors import AgapeError, InputError
from agape_ops.surfaces.slack import blocks, ids, modals
from agape_ops.surfaces.slack.bot import Press, SlackBot
from agape_ops.surfaces.slack.relay import where


@dataclass
class Clicks:
    """What the bot does with a press of its buttons and a submission of its modals."""

    bot: SlackBot

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
            view = await self.bot.engine.view(target.run_id)
            thread = where(view.run)[1] or thread_ts
            if action_id in (ids.STEP, ids.ROW):
                press = Press(user, channel, thread, key, trigger_id)
                await self.press_step(view, target, press)
            elif action_id == ids.CHECKLIST:
                step = view.step(target.step_id or "")
                modal = modals.checklist_modal(view, step)
                modal["private_metadata"] = ids.Target(
                    view.run.id, step.id, channel=channel, thread_ts=thread
                ).encode()
                await self.bot.open_modal(trigger_id, modal)
            elif action_id == ids.EXPORT:
                await self.bot.export(view.run, user, channel, thread, "md")
            else:
                command = _run_command(action_id, view.run.id, user, key)
                if command is None:
                    return
                outcome = await self.bot.engine.execute(command)
                await self.bot.answer(outcome, user, channel, thread)
        except AgapeError as exc:
            await self.bot.tell(user, channel, f"⚠️ {exc.message}", thread_ts=thread_ts)

    async def press_step(self, view: RunView, target: ids.Target, press: Press) -> None:
        step = view.step(target.step_id or "")
        given = dict(target.inputs)
        asks = [f for f in step.inputs if f.name not in given]
        if asks and (step.changes or any(f.prefilled is None for f in asks)):
            modal = modals.step_modal(
                view, step, inputs=given, channel=press.channel, thread_ts=press.thread
            )
            if await self.bot.open_modal(press.trigger_id, modal):
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
        outcome = await self.bot.engine.execute(command)
        await self.bot.answer(
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
        fingerprint = ids.fingerprint_of(action.get("block_id"))
        outcome = await self.bot.engine.execute(
            StartRun(runbook_id, user, key, fingerprint=fingerprint, surface={"source": source})
        )
        await self.bot.answer(outcome, user, channel, thread_ts)

    # -- modals --------------------------------------------------------------------------------

    async def check_step_form(self, view: Mapping[str, Any]) -> dict[str, str]:
        """Validate a step form's values; return errors by block id (empty when all good)."""
        target = ids.decode(view.get("private_metadata"))
        run_view = await self.bot.engine.view(target.run_id)
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
        run_view = await self.bot.engine.view(target.run_id)
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
        outcome = await self.bot.engine.execute(command)
        public = {f.name: inputs[f.name] for f in step.inputs if not f.secret and f.name in inputs}
        await self.bot.answer(
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
            outcome = await self.bot.engine.execute(command)
            if not outcome.ok:
                await self.bot.answer(outcome, user, target.channel, target.thread_ts)
                return


def _user(body: Mapping[str, Any]) -> str:
    user = body.get("user") or {}
    return str(user.get("id", "")) if isinstance(user, Mapping) else str(body.get("user_id", ""))


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
        # Resolve is pressed through Slack's confirmation dialog: that press is the answer to
        # "a check still shows the problem; resolve anyway?".
        confirmed = action_id == ids.RESOLVE
        return SetState(run_id, states[action_id], user, key, confirmed=confirmed)
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
