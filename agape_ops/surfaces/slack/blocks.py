"""Block Kit for the engine's view of a run: the run card, step results, modals and Home.

Pure functions of the view (no Slack calls, no store), so every replica renders the same card
and a test can check every message the bot can build against Slack's limits. Text that comes
from data (a table cell, an alert title, a note) is escaped, so ``<!channel>`` in a webhook's
payload is shown, never obeyed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from agape_ops.engine.ports import Probe
from agape_ops.engine.records import Event, Run, RunState, StepState
from agape_ops.engine.results import StepResult, cell_text, duration_words
from agape_ops.engine.views import (
    Button,
    InputField,
    RowAction,
    RunView,
    StepView,
    Style,
    Verb,
)
from agape_ops.runbooks.model import Contact, Dashboard, Runbook, Team
from agape_ops.surfaces.slack import ids

Block = dict[str, Any]

_BROKEN_FENCE = "`\u200b`\u200b`"
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,20}")

# Slack's limits (https://api.slack.com/reference/block-kit): kept below, with room to spare.
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


# -- text ---------------------------------------------------------------------------------


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


# -- the run card -------------------------------------------------------------------------


def run_title(run: Run) -> str:
    rehearsal = " (rehearsal)" if run.rehearsal else ""
    return f"{RUN_MARKS.get(run.state, '')} {run.id} · {run.title}{rehearsal}".strip()


def status_line(view: RunView) -> str:
    """The card's second line: state, severity, owner, age, and what monitoring says."""
    run, headline = view.run, view.headline
    parts = [
        f"*{run.state.value.capitalize()}*",
        escape(headline.severity),
        f"owner: {escape(headline.owner)}" if headline.owner else "",
        _age(headline.age) if view.active else "",
    ]
    if run.acknowledged_by:
        parts.append(f"acknowledged by {who(run.acknowledged_by)}")
    if run.alert_count > 1:
        parts.append(f"the alert fired {run.alert_count} times")
    if run.alert_resolved_at is not None and view.active:
        parts.append(f"monitoring reports it resolved at {run.alert_resolved_at:%H:%M} UTC")
    return " · ".join(p for p in parts if p)


def _age(age: timedelta) -> str:
    return "opened just now" if age < timedelta(minutes=1) else f"open {duration_words(age)}"


def step_line(step: StepView) -> str:
    mark = STATE_MARKS.get(step.state, "")
    line = f"{mark} {step.number}. {escape(step.title)}"
    if step.state is StepState.PENDING and step.items and any(i.done for i in step.items):
        line += f" — {escape(step.state_words)}"
    elif step.finding and step.state is not StepState.PENDING:
        line += f" — {escape(cut(step.finding, 300))}"
    elif step.state is not StepState.PENDING:
        line += f" — {escape(step.state_words)}"
    return line


def step_label(step: StepView) -> str:
    """What a step's button says on the card: its number and what it does."""
    if step.is_checklist:
        return f"{step.number}. Tick: {step.title}"
    label = step.label
    if not step.changes and label == "Run":
        label = step.title
    return f"{step.number}. {label}"


def step_button(view: RunView, step: StepView) -> dict[str, Any]:
    """A step's button on the card. A change without inputs to ask is confirmed in Slack's
    dialog with the view's exact confirmation; one with inputs opens a modal that is both."""
    target = ids.Target(view.run.id, step.id, seen=step.attempts).encode()
    main = step.buttons[0] if step.buttons else None
    style = main.style if main else Style.DEFAULT
    if step.is_checklist:
        return button(step_label(step), ids.CHECKLIST, target)
    confirm = None
    if step.changes and not step.inputs and main is not None:
        confirm = confirm_dialog(
            f"{cut(step.label, 90)}?",
            main.confirm or f"Run “{step.title}”?",
            cut(step.label, MAX_CONFIRM_BUTTON),
            danger=style is Style.DANGER,
        )
    return button(step_label(step), ids.STEP, target, style=style, confirm=confirm)


def run_button(view: RunView, item: Button) -> dict[str, Any]:
    confirm = None
    if item.confirm:
        confirm = confirm_dialog(f"{item.label}?", item.confirm, item.label, danger=False)
    action_id = _VERB_ACTION[item.action.verb]
    return button(
        item.label, action_id, ids.Target(view.run.id).encode(), style=item.style, confirm=confirm
    )


def _sections(view: RunView) -> list[tuple[str, list[StepView]]]:
    grouped: dict[str, list[StepView]] = {}
    titles: dict[str, str] = {}
    for step in view.steps:
        grouped.setdefault(step.section, []).append(step)
        titles[step.section] = step.section_title
    return [(titles[name], steps) for name, steps in grouped.items()]


def card(view: RunView) -> list[Block]:
    """The run card: one message in the thread, updated in place as the run moves."""
    run = view.run
    blocks: list[Block] = [header(run_title(run)), section(status_line(view))]
    if view.headline.problems:
        lines = "\n".join(f"• {escape(cut(p, 300))}" for p in view.headline.problems[:8])
        more = len(view.headline.problems) - 8
        if more > 0:
            lines += f"\n… and {more} more"
        blocks.append(section(f"*What is wrong now*\n{lines}"))
    if not view.runbook_loaded:
        blocks.append(section(f"⚠️ The runbook {escape(run.runbook_id)} is no longer loaded."))
    active = view.active
    for title, steps in _sections(view):
        lines = "\n".join(step_line(s) for s in steps)
        blocks.append(section(f"*{escape(title)}*\n{lines}"))
        if active:
            buttons = [step_button(view, s) for s in steps if s.buttons]
            blocks.extend(actions(buttons, f"steps.{steps[0].section}"))
    for approval in view.approvals:
        approvers = ", ".join(who(a) for a in approval.approvers)
        values = ", ".join(f"{k}={v}" for k, v in approval.values.items())
        on = f" with {escape(values)}" if values else ""
        blocks.append(
            section(
                f"⏳ *{escape(approval.step_title)}*{on}: approved by {approvers}; waiting for "
                "a second, different approver"
            )
        )
    run_buttons = [run_button(view, b) for b in view.buttons]
    run_buttons.append(button("Export timeline", ids.EXPORT, ids.Target(run.id).encode()))
    blocks.extend(actions(run_buttons, "run"))
    people = contacts_text(view.contacts)
    if people:
        blocks.append(context(people))
    boards = dashboards_text(view.dashboards)
    if boards:
        blocks.append(context(boards))
    return fit(blocks)


def card_text(view: RunView) -> str:
    """The notification text of the card (what a phone shows, what screen readers read)."""
    problems = "; ".join(view.headline.problems[:2])
    lead = f"{view.run.id} {view.run.title} ({view.run.state.value})"
    return escape(cut(f"{lead}: {problems}" if problems else lead, MAX_FALLBACK))


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
        name = contact.name or ""
        reach = " ".join(x for x in (contact.phone, contact.email) if x)
        slack = f" <@{contact.slack}>" if contact.slack and contact.slack.isalnum() else ""
        shown.append(f"{escape(contact.role)}: {escape(name)} {escape(reach)}{slack}".strip())
    return cut("📇 " + " · ".join(shown), MAX_SECTION) if shown else ""


def dashboards_text(dashboards: Sequence[Dashboard]) -> str:
    shown = []
    for board in dashboards:
        if board.url and board.url.startswith(("https://", "http://")):
            shown.append(f"<{escape(board.url)}|{escape(board.name)}>")
        else:
            shown.append(escape(board.name))
    return cut("📈 " + " · ".join(shown), MAX_SECTION) if shown else ""


# -- step results -------------------------------------------------------------------------


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


def needs_file(result: StepResult) -> bool:
    """Say whether a result is too big for its reply, so the whole is attached as a file."""
    total = result.total_rows if result.total_rows is not None else len(result.rows)
    too_long = len(table_text(result)) >= MAX_SECTION - 12 if result.columns else False
    text_long = bool(result.text and len(result.text) > 1500)
    return total > SHOWN_ROWS or too_long or text_long


def result_file(step: StepView, result: StepResult) -> str:
    """The whole result as a Markdown file: every row kept, and the total when more existed."""
    out = [f"# {step.number}. {step.title}", "", result.summary, ""]
    if result.columns:
        out.append("| " + " | ".join(result.columns) + " |")
        out.append("|" + "---|" * len(result.columns))
        for row in result.rows:
            cells = [
                cell_text(row.get(c)).replace("|", "\\|").replace("\n", " ") for c in result.columns
            ]
            out.append("| " + " | ".join(cells) + " |")
        if result.truncated:
            out.append("")
            out.append(f"{len(result.rows)} of {result.total_rows} rows kept by the bot.")
    if result.values:
        out += ["", *(f"- {k}: {cell_text(v)}" for k, v in result.values.items())]
    if result.text:
        out += ["", "```", result.text, "```"]
    return "\n".join(out) + "\n"


def row_buttons(view: RunView, step: StepView, result: StepResult) -> list[Block]:
    """A follow-up button on each of the first rows (Reprocess this webhook), confirmed in
    Slack's dialog with the row's values, or through a modal when it needs more inputs."""
    blocks: list[Block] = []
    targets = {s.id: s for s in view.steps}
    for index, row in enumerate(result.rows[:ACTION_ROWS], start=1):
        elements = []
        for action in step.row_actions:
            target = targets.get(action.step_id)
            if target is None:
                continue
            element = _row_button(view, action, target, row, index)
            if element is not None:
                elements.append(element)
        if elements:
            blocks.append(
                {"type": "actions", "block_id": f"row.{step.id}.{index}", "elements": elements}
            )
    return blocks


def _row_button(
    view: RunView, action: RowAction, target: StepView, row: Mapping[str, Any], index: int
) -> dict[str, Any] | None:
    try:
        inputs = action.inputs_from(row)
    except ValueError:
        return None
    shown = ", ".join(f"{k}={v}" for k, v in inputs.items())
    label = f"{action.button} ({cut(shown, 40)})" if shown else f"{action.button} (row {index})"
    value = ids.Target(view.run.id, target.id, seen=target.attempts, inputs=inputs)
    try:
        encoded = value.encode()
    except ValueError:
        return None
    main = target.buttons[0] if target.buttons else None
    style = main.style if main else Style.DEFAULT
    confirm = None
    asks_more = any(f.name not in inputs for f in target.inputs)
    if target.changes and not asks_more:
        question = target.confirm or f"Run “{target.title}”?"
        confirm = confirm_dialog(
            f"{cut(action.button, 90)}?",
            f"{question} ({shown})" if shown else question,
            cut(action.button, MAX_CONFIRM_BUTTON),
            danger=style is Style.DANGER,
        )
    return button(label, ids.ROW, encoded, style=style, confirm=confirm)


def result_reply(view: RunView, step: StepView, event: Event) -> list[Block]:
    """A step's result as a thread reply: the finding, then its table or figures, then
    follow-ups on its rows; who ran it and how long it took underneath."""
    mark = STATE_MARKS.get(step.state, "")
    words = step.state_words
    finding = event.summary if event.kind != "step.done" else (step.finding or event.summary)
    blocks: list[Block] = [
        section(
            f"{mark} *{step.number}. {escape(step.title)}* — {escape(words)}\n"
            f"{mention_actor(cut(finding, 2500), event.actor)}"
        )
    ]
    result = step.result
    if result is not None and step.state is not StepState.ERROR:
        if result.columns and result.rows:
            blocks.append(section(table_text(result)))
            total = result.total_rows if result.total_rows is not None else len(result.rows)
            if total > SHOWN_ROWS:
                blocks.append(
                    context(
                        f"showing {min(SHOWN_ROWS, len(result.rows))} of {total} rows; "
                        "the whole result is attached"
                    )
                )
        elif result.values and not result.columns:
            blocks.append(section(figures_text(result.values)))
        if result.text:
            blocks.append(section(code_block(cut(result.text, 2000))))
        if step.row_actions and view.active and result.rows:
            blocks.extend(row_buttons(view, step, result))
    took = f" · {duration_words_ms(event.duration_ms)}" if event.duration_ms is not None else ""
    blocks.append(context(f"{who(event.actor)}{took} · {event.at:%H:%M:%S} UTC"))
    return fit(blocks)


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


def look_reply(title: str, finding: str, result: StepResult | None, *, failed: bool) -> list[Block]:
    """A quick look's answer (`/ops verify`, `/ops queues`): its finding, then its table."""
    mark = "⚠️" if failed else "🔎"
    content = [section(f"{mark} *{escape(title)}*\n{escape(cut(finding, 2500))}")]
    if result is not None and not failed:
        if result.columns and result.rows:
            content.append(section(table_text(result)))
        elif result.values:
            content.append(section(figures_text(result.values)))
    return content


def probes_text(probes: Iterable[Probe]) -> str:
    """`/ops health`: each system, whether it answers, and how fast."""
    lines = []
    for probe in probes:
        if not probe.configured:
            mark, state = "⚪", "not configured"
        else:
            mark, state = ("✅", "ok") if probe.ok else ("🔴", "failing")
        took = f" ({probe.latency_ms} ms)" if probe.latency_ms is not None else ""
        lines.append(
            f"{mark} *{escape(probe.name)}* {state}{took}: {escape(cut(probe.detail, 200))}"
        )
    return cut("\n".join(lines) or "No systems are configured.", MAX_SECTION)


def event_reply(event: Event) -> list[Block]:
    """A one-line reply for an event worth telling the thread (a state change, a note)."""
    if event.kind == "note.added":
        return [section(f"📝 {who(event.actor)}: {escape(event.summary)}")]
    return [
        section(f"{_EVENT_MARKS.get(event.kind, '•')} {mention_actor(event.summary, event.actor)}")
    ]


_EVENT_MARKS = {
    "run.acknowledged": "👀",
    "run.mitigated": "🩹",
    "run.resolved": "✅",
    "run.closed": "📁",
    "note.added": "📝",
    "step.approved": "☑️",
    "step.late": "⚠️",
    "alert.resolved": "🟢",
}


def resolved_alert_reply(view: RunView, event: Event) -> list[Block]:
    """Monitoring says the alert resolved: say so in the run's thread and offer to resolve."""
    blocks = [section(f"🟢 {mention_actor(event.summary, event.actor)}")]
    if view.active:
        resolve = next((b for b in view.buttons if b.action.verb is Verb.RESOLVE), None)
        if resolve is not None:
            blocks.extend(actions([run_button(view, resolve)], "resolved"))
    return blocks


# -- modals -------------------------------------------------------------------------------


def input_block(field: InputField) -> Block:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": ids.VALUE}
    if field.prefilled:
        element["initial_value"] = cut(field.prefilled, 3000)
    if field.example:
        element["placeholder"] = plain_text(f"e.g. {field.example}", 150)
    hint = "Secret: used for this step only, never stored or shown." if field.secret else None
    block: Block = {
        "type": "input",
        "block_id": field.name,
        "label": plain_text(f"{field.label} ({field.name})", 2000),
        "element": element,
    }
    if hint:
        block["hint"] = plain_text(hint, 2000)
    return block


def step_modal(
    view: RunView,
    step: StepView,
    *,
    inputs: Mapping[str, str] | None = None,
    channel: str | None = None,
    thread_ts: str | None = None,
    question: str | None = None,
) -> dict[str, Any]:
    """The modal a step with inputs opens: what it will do, its inputs (prefilled with what
    the run knows or the row gave), and a submit button that says the step's verb."""
    given = dict(inputs or {})
    fields = [
        InputField(
            f.name,
            f.label,
            f.pattern,
            f.example,
            f.secret,
            prefilled=given.get(f.name, f.prefilled) if not f.secret else None,
        )
        for f in step.inputs
    ]
    about = question or step.confirm or step.description or f"Run “{step.title}”."
    blocks: list[Block] = [
        section(
            f"*{view.run.id} · {step.number}. {escape(step.title)}*\n{escape(cut(about, 2500))}"
        )
    ]
    blocks += [input_block(f) for f in fields]
    who_may = step.buttons[0].role if step.buttons else "anyone"
    if step.changes:
        blocks.append(
            context(f"Changes things: requires {escape(who_may)}. Written to the timeline.")
        )
    verb = step.label if step.changes else "Run"
    metadata = ids.Target(
        view.run.id, step.id, seen=step.attempts, channel=channel, thread_ts=thread_ts
    ).encode()
    return {
        "type": "modal",
        "callback_id": ids.STEP_FORM,
        "private_metadata": metadata,
        "title": plain_text(f"{step.number}. {step.title}", MAX_MODAL_TITLE),
        "submit": plain_text(verb, MAX_MODAL_TITLE),
        "close": plain_text("Cancel", MAX_MODAL_TITLE),
        "blocks": blocks[:MAX_VIEW_BLOCKS],
    }


def checklist_modal(view: RunView, step: StepView) -> dict[str, Any]:
    """A checklist's open items as checkboxes (ten to a group, Slack's limit)."""
    open_items = [i for i in step.items if not i.done]
    blocks: list[Block] = [section(f"*{view.run.id} · {step.number}. {escape(step.title)}*")]
    if step.confirm:
        blocks.append(section(f"⚠️ {escape(cut(step.confirm, 2500))}"))
    listed = "\n".join(
        f"{i.number}. {escape(i.text)}" + (f"\n    `{escape(i.command)}`" if i.command else "")
        for i in open_items
    )
    if listed:
        blocks.append(section(cut(listed, MAX_SECTION)))
    for start in range(0, len(open_items), 10):
        chunk = open_items[start : start + 10]
        options = [
            {"text": plain_text(f"{i.number}. {i.text}", MAX_OPTION), "value": str(i.number)}
            for i in chunk
        ]
        blocks.append(
            {
                "type": "input",
                "block_id": f"items.{start}",
                "optional": True,
                "label": plain_text("Done" if start == 0 else "More", 2000),
                "element": {"type": "checkboxes", "action_id": ids.VALUE, "options": options},
            }
        )
    done = [i for i in step.items if i.done]
    if done:
        blocks.append(context("Already done: " + escape(", ".join(str(i.number) for i in done))))
    metadata = ids.Target(view.run.id, step.id).encode()
    return {
        "type": "modal",
        "callback_id": ids.CHECKLIST_FORM,
        "private_metadata": metadata,
        "title": plain_text(f"{step.number}. {step.title}", MAX_MODAL_TITLE),
        "submit": plain_text("Mark done", MAX_MODAL_TITLE),
        "close": plain_text("Cancel", MAX_MODAL_TITLE),
        "blocks": blocks[:MAX_VIEW_BLOCKS],
    }


# -- messages outside a run ---------------------------------------------------------------


def unmatched_reply(title: str, runbooks: Iterable[Runbook]) -> list[Block]:
    """Under an alert no runbook matches: say so once and offer to start one from a menu."""
    options = [
        {"text": plain_text(rb.title, MAX_OPTION), "value": rb.id[:150]}
        for rb in sorted(runbooks, key=lambda r: r.title)
    ][:MAX_OPTIONS]
    blocks = [section(f"No runbook matches “{escape(cut(title, 200))}”.")]
    if options:
        blocks.append(
            {
                "type": "actions",
                "block_id": "start",
                "elements": [
                    {
                        "type": "static_select",
                        "action_id": ids.START,
                        "placeholder": plain_text("Start a runbook…", 150),
                        "options": options,
                    }
                ],
            }
        )
    return blocks


def runbooks_text(runbooks: Iterable[Runbook]) -> str:
    lines = [
        f"• `{rb.id}` — *{escape(rb.title)}* ({rb.severity.value}): {escape(cut(rb.summary, 150))}"
        for rb in sorted(runbooks, key=lambda r: r.id)
    ]
    return cut("\n".join(lines) or "No runbooks are loaded.", MAX_SECTION)


def thread_link(run: Run) -> str | None:
    """A link to the run's thread in Slack, when it has one."""
    place = run.surface.get("card") or run.surface.get("source") or {}
    channel, ts = place.get("channel"), place.get("thread_ts") or place.get("ts")
    if not isinstance(channel, str) or not isinstance(ts, str):
        return None
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def run_line(run: Run, age: str) -> str:
    link = thread_link(run)
    name = f"<{link}|{run.id}>" if link else run.id
    owner = f" · acknowledged by {who(run.acknowledged_by)}" if run.acknowledged_by else ""
    state = f"{run.state.value} · {escape(run.severity)} · {age}{owner}"
    return f"{RUN_MARKS.get(run.state, '')} *{name}* {escape(run.title)} · {state}"


def runs_text(runs: Sequence[tuple[Run, str]], *, empty: str = "No runs are open.") -> str:
    return cut("\n".join(run_line(run, age) for run, age in runs) or empty, MAX_SECTION)


def home_view(
    runs: Sequence[tuple[Run, str]], runbooks: Iterable[Runbook], team: Team
) -> dict[str, Any]:
    """The Home tab: open runs (state, owner, age, link), the runbooks, and who is on call."""
    blocks: list[Block] = [header("Open incidents"), section(runs_text(runs))]
    blocks += [{"type": "divider"}, header("Runbooks"), section(runbooks_text(runbooks))]
    on_call = on_call_text(team)
    blocks += [{"type": "divider"}, header("On call"), section(on_call)]
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def on_call_text(team: Team) -> str:
    lines = []
    for level, step in enumerate(team.escalation, start=1):
        people = ", ".join(_group_or_user(x) for x in step.notify)
        lines.append(f"Level {level} (after {step.after_minutes} min): {people}")
    people = contacts_text(team.contacts)
    if people:
        lines.append(people)
    return cut("\n".join(lines) or "No escalation or contacts in the team file.", MAX_SECTION)


def _group_or_user(target: str) -> str:
    if target.startswith("S") and target.isalnum():
        return f"<!subteam^{target}>"
    return who(target)


def metadata_json(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data), separators=(",", ":"))
