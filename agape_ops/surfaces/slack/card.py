"""The run card: one message in the alert's thread, edited in place as the run moves.

It shows the view's headline (state, severity, owner, age, what is wrong now), every step with
its state and finding, a button per step, the run's own buttons, the contacts and dashboards.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from agape_ops.engine.headline import Problem, Rank
from agape_ops.engine.records import Run, StepState
from agape_ops.engine.results import duration_words
from agape_ops.engine.views import (
    Button,
    RunView,
    StepView,
    Style,
)
from agape_ops.surfaces.slack import ids
from agape_ops.surfaces.slack.blocks import (
    _VERB_ACTION,
    MAX_CONFIRM_BUTTON,
    MAX_FALLBACK,
    RUN_MARKS,
    STATE_MARKS,
    Block,
    actions,
    button,
    confirm_dialog,
    contacts_text,
    context,
    cut,
    dashboards_text,
    escape,
    fit,
    header,
    section,
    who,
)


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
    elif step.by_hand:  # shell off: the command is there to copy from the start
        command = escape(cut(step.by_hand, 300)).replace("`", "'")
        line += f" — run by hand: `{command}`"
    elif step.state is not StepState.PENDING:
        line += f" — {escape(step.state_words)}"
    return line + monitor_suffix(step)


def monitor_suffix(step: StepView) -> str:
    """A monitor's latest figure and trend for its line on the card ("" when not a monitor)."""
    if step.monitor is None or not step.monitor.state:
        return ""
    return f" · 📈 {escape(step.monitor.line)}"


def watch_line(view: RunView) -> str:
    """The card's line about the run's watch: pages sent, re-checks clear or not, flapping."""
    parts = []
    watch = view.watch
    if watch.escalation_words:
        parts.append(f"📟 {escape(watch.escalation_words)}")
    if watch.recheck_words:
        mark = "🟢" if watch.clear else "🔴" if watch.clear is False else "🔁"
        parts.append(f"{mark} {escape(watch.recheck_words)}")
    return " · ".join(parts)


def step_label(step: StepView) -> str:
    """What a step's button says on the card: its number and what it does."""
    if step.is_checklist:
        return f"{step.number}. Tick: {step.title}"
    if step.by_hand:
        return cut(f"{step.number}. Show command: {step.title}", 75)
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
    if watching := watch_line(view):
        blocks.append(context(watching))
    if view.headline.items:
        blocks.append(section(f"*What is wrong now*\n{wrong_now(view.headline.items)}"))
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


#: How each rank of the headline reads on the card: the likely cause stands out, warnings recede.
_PROBLEM_LINES = {
    Rank.FOUND: "• {}",
    Rank.CAUSE: "🔴 *Likely cause:* {}",
    Rank.FINDING: "• {}",
    Rank.WARNING: "⚠️ Warning: {}",
}


def wrong_now(items: tuple[Problem, ...], shown: int = 8) -> str:
    """The lines of "What is wrong now", most severe first, each marked by its rank."""
    lines = [_PROBLEM_LINES[p.rank].format(escape(cut(p.text, 300))) for p in items[:shown]]
    if len(items) > shown:
        lines.append(f"… and {len(items) - shown} more")
    return "\n".join(lines)


def card_text(view: RunView) -> str:
    """The notification text of the card (what a phone shows, what screen readers read)."""
    problems = "; ".join(view.headline.problems[:2])
    lead = f"{view.run.id} {view.run.title} ({view.run.state.value})"
    return escape(cut(f"{lead}: {problems}" if problems else lead, MAX_FALLBACK))
