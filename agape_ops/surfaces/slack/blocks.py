"""Block Kit for the engine's view of a run: the run card, step results, modals and Home.

Pure functions of the view (no Slack calls, no store), so every replica renders the same card
and a test can check every message the bot can build against Slack's limits. Text that comes
from data (a table cell, an alert title, a note) is escaped, so ``<!channel>`` in a webhook's
payload is shown, never obeyed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from agape_ops.engine.records import RunState, StepState
from agape_ops.engine.results import StepResult, cell_text, duration_words
from agape_ops.engine.views import (
    Style,
    Verb,
)
from agape_ops.runbooks.team import Contact, Dashboard
from agape_ops.surfaces.slack import ids

Block = dict[str, Any]


_BROKEN_FENCE = "`\u200b`\u200b`"


_USER_ID = re.compile(r"[UW][A-Z0-9]{1,20}")


MAX_BLOCKS = 50


MAX_VIEW_BLOCKS = 100


MAX_SECTION = 3000


MAX_HEADER = 150


MAX_BUTTON = 75


MAX_CONFIRM_TEXT = 300


MAX_CONFIRM_TITLE = 100


MAX_CONFIRM_BUTTON = 30


MAX_MODAL_TITLE = 24


MAX_OPTION = 75


MAX_OPTIONS = 100


MAX_ELEMENTS = 25


MAX_CONTEXT = 10


MAX_FALLBACK = 3000


#: Buttons per row on the card: five read as a row on a laptop screen.
BUTTONS_PER_ROW = 5


#: Rows of a result shown in its thread reply; the full result is attached beyond that.
SHOWN_ROWS = 10


#: Rows a result offers follow-up buttons on.
ACTION_ROWS = 5


#: A cell longer than this is cut in the reply (the attached file has it whole).
CELL_WIDTH = 40


STATE_MARKS = {
    StepState.PENDING: "⚪",
    StepState.RUNNING: "⏳",
    StepState.PASSED: "✅",
    StepState.FAILED: "🔴",
    StepState.ERROR: "⚠️",
    StepState.DONE: "✅",
    StepState.SKIPPED: "⏭️",
    StepState.HANDED_OVER: "📋",
}


RUN_MARKS = {
    RunState.OPEN: "🚨",
    RunState.ACKNOWLEDGED: "👀",
    RunState.MITIGATED: "🩹",
    RunState.RESOLVED: "✅",
    RunState.CLOSED: "📁",
}


_VERB_ACTION = {
    Verb.ACK: ids.ACK,
    Verb.MITIGATED: ids.MITIGATED,
    Verb.RESOLVE: ids.RESOLVE,
    Verb.CLOSE: ids.CLOSE,
}


def escape(text: str) -> str:
    """Escape the three characters Slack reads as markup (``<!channel>``, ``<@U1>``, links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """Return ``text`` within ``limit`` characters, ending in … when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_user_id(actor: str | None) -> bool:
    """Say whether ``actor`` is a Slack user id (U… or W…, upper-case letters and digits)."""
    return bool(actor) and _USER_ID.fullmatch(actor or "") is not None


def who(actor: str | None) -> str:
    """Show an actor: a Slack user id as a mention, anything else (the bot, a console user)
    as escaped text."""
    if not actor:
        return "nobody"
    return f"<@{actor}>" if is_user_id(actor) else escape(actor)


def mention_actor(text: str, actor: str | None) -> str:
    """Escape ``text`` and turn its mentions of ``actor`` (a Slack user id) into mentions."""
    shown = escape(text)
    if actor and is_user_id(actor):
        shown = shown.replace(actor, who(actor))
    return shown


def plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text or " ", limit), "emoji": True}


def mrkdwn(text: str, limit: int = MAX_SECTION) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": cut(text or " ", limit)}


def section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": mrkdwn(text), **extra}


def context(*texts: str) -> Block:
    elements = [mrkdwn(t, MAX_SECTION) for t in texts if t][:MAX_CONTEXT]
    return {"type": "context", "elements": elements or [mrkdwn(" ")]}


def header(text: str) -> Block:
    return {"type": "header", "text": plain_text(text, MAX_HEADER)}


def confirm_dialog(title: str, text: str, yes: str, *, danger: bool) -> dict[str, Any]:
    """Slack's own confirmation dialog: the click reaches the bot only after "yes"."""
    dialog: dict[str, Any] = {
        "title": plain_text(title, MAX_CONFIRM_TITLE),
        "text": plain_text(text, MAX_CONFIRM_TEXT),
        "confirm": plain_text(yes, MAX_CONFIRM_BUTTON),
        "deny": plain_text("Cancel", MAX_CONFIRM_BUTTON),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def button(
    label: str,
    action_id: str,
    value: str,
    *,
    style: Style = Style.DEFAULT,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain_text(label, MAX_BUTTON),
        "action_id": ids.action_id(action_id, value),
        "value": value,
    }
    if style is not Style.DEFAULT:
        element["style"] = style.value
    if confirm is not None:
        element["confirm"] = confirm
    return element


def actions(elements: Sequence[dict[str, Any]], block_id: str) -> list[Block]:
    """Lay buttons out in rows; each row is one actions block with a unique block id."""
    rows = []
    for start in range(0, len(elements), BUTTONS_PER_ROW):
        chunk = list(elements[start : start + BUTTONS_PER_ROW])
        rows.append({"type": "actions", "block_id": f"{block_id}.{start}", "elements": chunk})
    return rows


def fit(blocks: list[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """Keep a message within Slack's block limit, saying what was left out."""
    if len(blocks) <= limit:
        return blocks
    kept = blocks[: limit - 1]
    kept.append(context(f"{len(blocks) - len(kept)} more blocks not shown: `/ops status`"))
    return kept


def contacts_text(contacts: Sequence[Contact]) -> str:
    shown = []
    for contact in contacts:
        parts = [escape(x) for x in (contact.name, contact.phone, contact.email) if x]
        if contact.slack and contact.slack.isalnum():
            parts.append(f"<@{contact.slack}>")
        shown.append(f"{escape(contact.role)}: {' '.join(parts)}".strip())
    return cut("📇 " + " · ".join(shown), MAX_SECTION) if shown else ""


def dashboards_text(dashboards: Sequence[Dashboard]) -> str:
    shown = []
    for board in dashboards:
        if board.url and board.url.startswith(("https://", "http://")):
            shown.append(f"<{escape(board.url)}|{escape(board.name)}>")
        else:
            shown.append(escape(board.name))
    return cut("📈 " + " · ".join(shown), MAX_SECTION) if shown else ""


def table_text(result: StepResult, rows: int = SHOWN_ROWS) -> str:
    """A result's table as aligned monospace text (a code block), within a section's limit."""
    columns = result.columns
    shown = result.rows[:rows]
    cells = [[cut(cell_text(row.get(c)), CELL_WIDTH) for c in columns] for row in shown]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]
    body = "\n".join(lines)
    limit = MAX_SECTION - 10
    if len(body) > limit:
        body = body[: limit - 2].rsplit("\n", 1)[0] + "\n…"
    return code_block(body)


def code_block(text: str) -> str:
    """Show text as a monospace block; three backticks inside would end it, so they are
    broken up with zero-width spaces."""
    return "```" + escape(text.replace("```", _BROKEN_FENCE)) + "```"


def figures_text(values: Mapping[str, Any]) -> str:
    lines = [f"*{escape(str(k))}*: {escape(cut(cell_text(v), 200))}" for k, v in values.items()]
    return cut("\n".join(lines), MAX_SECTION)


def pack(parts: Sequence[list[Block]], limit: int = MAX_BLOCKS) -> list[list[Block]]:
    """Pack several replies' blocks into as few messages as Slack's block limit allows,
    with a divider between them."""
    messages: list[list[Block]] = []
    current: list[Block] = []
    for part in parts:
        joined = [*current, {"type": "divider"}, *part] if current else list(part)
        if len(joined) <= limit:
            current = joined
            continue
        if current:
            messages.append(current)
        current = fit(list(part), limit)
    if current:
        messages.append(current)
    return messages


def message_text(content: Sequence[Mapping[str, Any]]) -> str:
    """The notification text of a message: its first section's words."""
    for block in content:
        text = block.get("text")
        if block.get("type") == "section" and isinstance(text, dict):
            return cut(str(text.get("text", "")), MAX_FALLBACK)
    return "agape-ops"


def duration_words_ms(milliseconds: int) -> str:
    return duration_words(timedelta(milliseconds=milliseconds))
