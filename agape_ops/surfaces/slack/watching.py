"""What the scheduler's events say in a run's thread: pages, a cleared or returned problem,
reminders, and the one message a monitor keeps updated in place; the card's watch line, a
monitor's figure on its step line, and the jobs `/ops status` lists.

Pure functions of the view and the event, like ``replies``; text from data is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agape_ops.engine.records import Event, ScheduledJob
from agape_ops.engine.views import RunView, StepView, Verb
from agape_ops.engine.watch_views import job_lines
from agape_ops.runbooks.timing import interval_words
from agape_ops.surfaces.slack.blocks import (
    MAX_SECTION,
    Block,
    actions,
    context,
    cut,
    escape,
    header,
    mention_actor,
    section,
)
from agape_ops.surfaces.slack.card import run_button

#: Kinds of events the scheduler commits; a surface tells or shows each.
WATCH_KINDS = frozenset(
    {
        "run.escalated",
        "run.cleared",
        "run.returned",
        "run.reminded",
        "monitor.started",
        "monitor.stopped",
    }
)
#: Why the bot ran a step by itself, when the result is only shown (never a reply).
QUIET_PURPOSES = frozenset({"recheck", "monitor"})

_GROUP_ID = re.compile(r"S[A-Z0-9]{2,20}")
_PERSON_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def purpose(event: Event) -> str:
    value = event.detail.get("purpose") if isinstance(event.detail, dict) else None
    return value if isinstance(value, str) else ""


def told(event: Event) -> bool:
    """Say whether a scheduler's event is told in the thread (the rest only change the card
    or a monitor's message): a flapping run's clear and return are shown, not told."""
    if event.kind in ("run.cleared", "run.returned"):
        return bool(event.detail.get("told"))
    return event.kind in WATCH_KINDS


def mention(slack_id: str) -> str:
    """Mention a user group (S…) or a person (U…/W…); anything else is shown as text."""
    if _GROUP_ID.fullmatch(slack_id):
        return f"<!subteam^{slack_id}>"
    if _PERSON_ID.fullmatch(slack_id):
        return f"<@{slack_id}>"
    return escape(slack_id)


def _run_button(view: RunView, verb: Verb, block_id: str) -> list[Block]:
    if not view.active:
        return []
    found = next((b for b in view.buttons if b.action.verb is verb), None)
    return actions([run_button(view, found)], block_id) if found is not None else []


def escalation_reply(view: RunView, event: Event) -> list[Block]:
    """A page: who is paged, how long the run has waited, level n of m; Acknowledge on it."""
    notify = [str(n) for n in event.detail.get("notify", []) if isinstance(n, str)]
    level, of = event.detail.get("level", "?"), event.detail.get("of", "?")
    waited = interval_words(max(0.0, (event.at - view.run.created_at).total_seconds()))
    who = ", ".join(mention(n) for n in notify) or "nobody"
    run = view.run
    text = (
        f"📟 {who}: *{escape(run.id)}* {escape(cut(run.title, 200))} has not been acknowledged "
        f"for {waited} (level {escape(str(level))} of {escape(str(of))})."
    )
    blocks = [section(text)]
    acknowledge = _run_button(view, Verb.ACK, f"escalated.{level}")
    if acknowledge:
        blocks.extend(acknowledge)
    elif run.acknowledged_by:
        blocks.append(context("Acknowledged since: nobody more is paged."))
    return blocks


def cleared_reply(view: RunView, event: Event) -> list[Block]:
    """Every re-checked condition is clear: say so and offer Resolve (its dialog asks first)."""
    blocks = [section(f"🟢 {mention_actor(cut(event.summary, 2500), event.actor)}")]
    resolve = _run_button(view, Verb.RESOLVE, "cleared")
    if resolve:
        blocks.append(context("Resolve the run when you agree it is over."))
        blocks.extend(resolve)
    return blocks


def returned_reply(event: Event) -> list[Block]:
    flaps = int(event.detail.get("flaps", 0) or 0)
    more = " Further returns are shown on the card only." if flaps == 1 else ""
    return [section(f"🔴 {mention_actor(cut(event.summary, 2500), event.actor)}.{more}")]


def reminder_reply(view: RunView, event: Event) -> list[Block]:
    """A reminder: a status update is due (with the `/ops note` hint), or the post-incident
    work still outstanding, item by item."""
    if event.detail.get("what") == "post_incident":
        left = [str(item) for item in event.detail.get("left", [])]
        lines = "\n".join(f"• {escape(cut(item, 200))}" for item in left[:20])
        more = f"\n… and {len(left) - 20} more" if len(left) > 20 else ""
        return [
            section(
                cut(
                    f"📋 Post-incident work of *{escape(view.run.id)}* is not done yet:\n"
                    f"{lines}{more}",
                    MAX_SECTION,
                )
            ),
            context(escape(f"Tick items with `/ops done {view.run.id} <step> [items]`.")),
        ]
    return [section(f"⏰ {escape(cut(event.summary, 2500))}")]  # it says how: `/ops note`


def monitor_place(step: StepView) -> str | None:
    """Where a monitor's message of its current round is kept on the run's surface."""
    if step.monitor is None or not step.monitor.state:
        return None
    return f"monitor:{step.id}:{step.monitor.round}"


def monitor_message(view: RunView, step: StepView) -> list[Block]:
    """A monitor's one message: what it watches, the latest figure and trend, how it ended."""
    monitor = step.monitor
    if monitor is None:
        return [section(escape(step.title))]
    mark = {"watching": "👁️", "met": "✅", "expired": "⌛"}.get(monitor.state, "👁️")
    verb = "Watching" if monitor.state == "watching" else "Watched"
    trend = f"  `{monitor.trend}`" if monitor.trend.strip() else ""
    samples = len(monitor.figures)
    return [
        header(cut(f"{mark} {verb} {step.number}. {step.title}", 150)),
        section(
            f"*{escape(monitor.latest)}*{trend}\n{escape(monitor.state_words)}"
            + (f"\n{escape(cut(step.finding, 500))}" if step.finding else "")
        ),
        context(
            f"{escape(view.run.id)} · {escape(cut(monitor.settings, 500))} · "
            f"{samples} sample{'s' if samples != 1 else ''}"
        ),
    ]


def monitor_text(step: StepView) -> str:
    monitor = step.monitor
    latest = f": {monitor.latest} ({monitor.state_words})" if monitor else ""
    return escape(cut(f"Watching {step.title}{latest}", 3000))


def monitor_stopped_reply(step: StepView | None, event: Event) -> list[Block]:
    """A monitor stopped: its condition holds, or its time ran out (the summary says which)."""
    met = step is not None and step.monitor is not None and step.monitor.state == "met"
    mark = "✅" if met else "⌛"
    return [section(f"{mark} {mention_actor(cut(event.summary, 2500), event.actor)}")]


def jobs_text(jobs: Sequence[ScheduledJob]) -> str:
    """`/ops status`: the run's scheduled jobs, what each does next and when."""
    if not jobs:
        return ""
    lines = [f"• {escape(line)}" for line in job_lines(jobs)]
    return cut("*Scheduled*\n" + "\n".join(lines), MAX_SECTION)
