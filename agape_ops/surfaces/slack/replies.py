"""Thread replies and answers: step results (tables, row follow-ups, the whole result as a
file), state changes, a resolved alert, quick looks, and the lists `/ops` answers with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agape_ops.engine.ports import Probe
from agape_ops.engine.records import Event, Run, StepState
from agape_ops.engine.results import StepResult, cell_text
from agape_ops.engine.views import (
    RowAction,
    RunView,
    StepView,
    Style,
    Verb,
)
from agape_ops.engine.watch_views import checked_for
from agape_ops.runbooks.model import Runbook
from agape_ops.surfaces.slack import ids
from agape_ops.surfaces.slack.blocks import (
    ACTION_ROWS,
    MAX_CONFIRM_BUTTON,
    MAX_OPTION,
    MAX_OPTIONS,
    MAX_SECTION,
    RUN_MARKS,
    SHOWN_ROWS,
    STATE_MARKS,
    Block,
    actions,
    button,
    code_block,
    confirm_dialog,
    context,
    cut,
    duration_words_ms,
    escape,
    figures_text,
    fit,
    mention_actor,
    plain_text,
    section,
    table_text,
    who,
)
from agape_ops.surfaces.slack.card import run_button


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
    # Values that share a prefix (time-ordered ids) differ at the end: keep each value's end.
    ends = ", ".join(f"{k}={v if len(v) <= 20 else '…' + v[-19:]}" for k, v in inputs.items())
    label = f"{action.button} ({cut(ends, 48)})" if ends else f"{action.button} (row {index})"
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
    # A check that found nothing wrong says so in its finding; its figures would be noise.
    detailed = step.state not in (StepState.ERROR, StepState.PASSED) or bool(step.row_actions)
    if result is not None and detailed:
        if result.columns and result.rows:
            if step.changes:
                blocks.append(context("The rows it changed, as they were before the change:"))
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
    around = checked_for(event.detail)
    why = f" · {escape(around)}" if around is not None else ""
    blocks.append(context(f"{who(event.actor)}{why}{took} · {event.at:%H:%M:%S} UTC"))
    return fit(blocks)


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


def unmatched_reply(
    title: str, runbooks: Iterable[Runbook], fingerprint: str | None = None
) -> list[Block]:
    """Under an alert no runbook matches: say so once and offer to start one from a menu. The
    menu's block carries the alert's fingerprint, so the run picked owns the alert's re-fires
    and its resolution."""
    options = [
        {"text": plain_text(rb.title, MAX_OPTION), "value": rb.id[:150]}
        for rb in sorted(runbooks, key=lambda r: r.title)
    ][:MAX_OPTIONS]
    blocks = [section(f"No runbook matches “{escape(cut(title, 200))}”.")]
    if options:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"{ids.START_BLOCK}{fingerprint or ''}",
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
