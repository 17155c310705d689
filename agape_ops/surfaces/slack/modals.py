"""Modals and the Home tab: a step's inputs (its confirmation too), a checklist's items, and
the open runs, runbooks and who is on call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agape_ops.engine.records import Run
from agape_ops.engine.views import (
    InputField,
    RunView,
    StepView,
)
from agape_ops.runbooks.model import Runbook
from agape_ops.runbooks.team import Team
from agape_ops.runbooks.timing import interval_words
from agape_ops.surfaces.slack import ids
from agape_ops.surfaces.slack.blocks import (
    MAX_MODAL_TITLE,
    MAX_OPTION,
    MAX_SECTION,
    MAX_VIEW_BLOCKS,
    Block,
    contacts_text,
    context,
    cut,
    escape,
    header,
    plain_text,
    section,
    who,
)
from agape_ops.surfaces.slack.replies import runbooks_text, runs_text


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
        after = interval_words(step.after_s)
        only = f", {'/'.join(step.severities)} only" if step.severities else ""
        lines.append(f"Level {level} (after {after}{only}): {people}")
    people = contacts_text(team.contacts)
    if people:
        lines.append(people)
    return cut("\n".join(lines) or "No escalation or contacts in the team file.", MAX_SECTION)


def _group_or_user(target: str) -> str:
    if target.startswith("S") and target.isalnum():
        return f"<!subteam^{target}>"
    return who(target)
