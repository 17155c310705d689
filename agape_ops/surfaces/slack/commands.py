"""`/ops` in Slack: the console's subcommands and parser, on the run named or the one open here.

Subcommands that read nothing slow are answered in the acknowledgement itself; the rest are
acknowledged at once and answered to the person who typed them (ephemeral), while what they
change reaches the run's thread through the relay. A change typed as `/ops run` is confirmed in
its modal, like a press of its button.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agape_ops.engine.commands import SetState, StartRun
from agape_ops.engine.records import Run
from agape_ops.engine.views import RunView, StepView
from agape_ops.errors import AgapeError
from agape_ops.surfaces.ops_actions import DIRECT, commands_for
from agape_ops.surfaces.ops_command import OpsCommand, OpsUsage, usage_lines
from agape_ops.surfaces.slack import blocks, card, ids, modals, replies, watching
from agape_ops.surfaces.slack.bot import RESPONSE_URL, Press, SlackBot
from agape_ops.surfaces.slack.clicks import Clicks
from agape_ops.surfaces.slack.relay import where


@dataclass
class Commands:
    """What the bot does with `/ops`."""

    bot: SlackBot
    clicks: Clicks

    def instant_answer(self, parsed: OpsCommand | OpsUsage) -> str | None:
        """Return the answer to a subcommand that needs nothing slow, else None."""
        if isinstance(parsed, OpsUsage):
            usage = blocks.code_block("\n".join(usage_lines()))
            return f"{blocks.escape(parsed.message)}\n{usage}"
        if parsed.name == "help":
            return "`/ops` subcommands:\n" + blocks.code_block("\n".join(usage_lines()))
        if parsed.name == "runbooks":
            return replies.runbooks_text(self.bot.engine.runbooks.values())
        if parsed.name == "contacts":
            return (
                blocks.contacts_text(self.bot.engine.team.contacts)
                or "No contacts in the team file."
            )
        if parsed.name == "dashboards":
            text = blocks.dashboards_text(self.bot.engine.team.dashboards)
            return text or "No dashboards in the team file."
        return None

    async def on_command(self, command: Mapping[str, Any], parsed: OpsCommand) -> None:
        """A `/ops` subcommand that reads or changes runs (already acknowledged)."""
        user = str(command.get("user_id", ""))
        channel = command.get("channel_id") if isinstance(command.get("channel_id"), str) else None
        trigger_id = command.get("trigger_id")
        key = f"cmd:{trigger_id or secrets.token_hex(8)}"
        url = command.get("response_url")
        RESPONSE_URL.set(
            url if isinstance(url, str) and url.startswith(("https://", "http://")) else None
        )
        try:
            await self._command(parsed, user, channel, trigger_id, key)
        except AgapeError as exc:
            await self.bot.tell(user, channel, f"⚠️ {exc.message}")

    async def _command(
        self, parsed: OpsCommand, user: str, channel: str | None, trigger_id: Any, key: str
    ) -> None:
        name = parsed.name
        if name == "start":
            source = {"channel": channel} if channel else {}
            outcome = await self.bot.engine.execute(
                StartRun(
                    parsed.target or "",
                    user,
                    key,
                    inputs=dict(parsed.inputs),
                    surface={"source": source},
                )
            )
            text = outcome.message if outcome.ok else f"⚠️ {outcome.message}"
            await self.bot.tell(user, channel, text)
            return
        if name in ("status", "runs") and parsed.run_id is None:
            runs = await self.bot.engine.runs(active=name == "status", limit=20)
            lines = [(run, self.bot.age(run)) for run in runs]
            empty = "No runs are open." if name == "status" else "No runs yet."
            await self.bot.tell(user, channel, replies.runs_text(lines, empty=empty), markup=True)
            return
        if name in ("verify", "queues"):
            look = await self.bot.engine.quick(name, [parsed.target] if parsed.target else [])
            content = replies.look_reply(look.title, look.finding, look.result, failed=look.failed)
            await self.bot.tell(user, channel, look.finding, content=content)
            return
        if name == "health":
            probes = await self.bot.engine.probes()
            await self.bot.tell(user, channel, replies.probes_text(probes.values()), markup=True)
            return
        if name == "use":
            await self.bot.tell(
                user,
                channel,
                "In Slack, name the run in the command instead: "
                "`/ops ack INC-3`, or type it in the run's channel.",
            )
            return
        run = await self._run_for(parsed, channel)
        if run is None:
            await self.bot.tell(user, channel, await self._which_run(channel))
            return
        view = await self.bot.engine.view(run.id)
        thread = where(run)[1]
        if name == "status":
            await self._status(view, user, channel)
        elif name == "timeline":
            await self.bot.export(run, user, channel, thread, parsed.text or "md")
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
                await self.clicks.press_step(view, target, press)
        elif name in DIRECT:
            counter = iter(range(1000))
            commands = commands_for(parsed, view, user, lambda: f"{key}:{next(counter)}")
            said = []
            for each in commands:
                outcome = await self.bot.engine.execute(each)
                if outcome.needs_confirmation and isinstance(each, SetState):
                    again = f"/ops resolve {run.id} --yes {parsed.text}".strip()
                    text = f"⚠️ {outcome.message} To resolve it anyway, type `{again}`."
                    await self.bot.tell(user, channel, text)
                    return
                if not outcome.ok:
                    await self.bot.answer(outcome, user, channel, None)
                    return
                said.append(outcome.message)
            await self.bot.tell(user, channel, "✅ " + "; ".join(said))

    async def _status(self, view: RunView, user: str, channel: str | None) -> None:
        """A run's card, with the jobs scheduled for it under its status line."""
        content = card.card(view)
        try:
            scheduled = watching.jobs_text(await self.bot.engine.jobs(view.run.id))
        except AgapeError as exc:  # the card is still worth showing
            scheduled = f"*Scheduled*\n{blocks.escape(exc.message)}"
        if scheduled:
            content = blocks.fit([*content[:2], blocks.section(scheduled), *content[2:]])
        await self.bot.tell(user, channel, card.card_text(view), content=content)

    async def _confirm_by_modal(
        self, view: RunView, step: StepView, inputs: Mapping[str, str], press: Press
    ) -> None:
        """A change typed as `/ops run`: its modal shows what it does and asks to confirm."""
        modal = modals.step_modal(
            view, step, inputs=inputs, channel=press.channel, thread_ts=press.thread
        )
        if not await self.bot.open_modal(press.trigger_id, modal):
            await self.bot.tell(
                press.user,
                press.channel,
                "Could not open the confirmation; press the step's button on the run's card.",
            )

    async def _run_for(self, parsed: OpsCommand, channel: str | None) -> Run | None:
        if parsed.run_id:
            return await self.bot.engine.get_run(parsed.run_id)
        here = [
            r for r in await self.bot.engine.runs(active=True, limit=200) if where(r)[0] == channel
        ]
        return here[0] if len(here) == 1 else None

    async def _which_run(self, channel: str | None) -> str:
        runs = await self.bot.engine.runs(active=True, limit=200)
        here = [r for r in runs if where(r)[0] == channel]
        if not here:
            return (
                "No run is open in this channel: name one (`/ops ack INC-3`); "
                "`/ops status` lists them."
            )
        names = ", ".join(r.id for r in here[:10])
        return f"Several runs are open here ({names}): name one, e.g. `/ops ack {here[0].id}`."
