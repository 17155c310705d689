"""The post-incident export: a Markdown draft for the postmortem, or the same as JSON."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from agape_ops.engine.records import Event, Run, StepRecord, StepState
from agape_ops.engine.results import duration_words as words_for
from agape_ops.engine.steps import REHEARSED
from agape_ops.runbooks.model import SECTION_TITLES, Runbook


def duration_words(delta: timedelta | None) -> str:
    """Say a duration the way a person would ("1 h 05 min", "42 s"), or "not yet"."""
    return "not yet" if delta is None else words_for(delta)


def time_to_acknowledge(run: Run) -> timedelta | None:
    return run.acknowledged_at - run.created_at if run.acknowledged_at else None


def time_to_resolve(run: Run) -> timedelta | None:
    return run.resolved_at - run.created_at if run.resolved_at else None


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def render_markdown(
    run: Run, runbook: Runbook | None, steps: dict[str, StepRecord], events: list[Event]
) -> str:
    """Return the postmortem draft: summary, alert, timeline, steps, actors, open checklist."""
    lines = [f"# {run.id}: {run.title}", ""]
    if run.rehearsal:
        lines += ["> **Rehearsal** — changes were shown, not executed.", ""]
    actors = sorted({e.actor for e in events})
    lines += [
        "## Summary",
        "",
        f"- Runbook: `{run.runbook_id}` ({run.severity})",
        f"- State: {run.state.value}",
        f"- Opened: {_at(run.created_at)} by {run.created_by}",
        f"- Time to acknowledge: {duration_words(time_to_acknowledge(run))}"
        + (f" ({run.acknowledged_by})" if run.acknowledged_by else ""),
        f"- Time to resolve: {duration_words(time_to_resolve(run))}"
        + (f" ({run.resolved_by})" if run.resolved_by else ""),
        f"- People and systems who acted: {', '.join(actors)}",
        "",
    ]
    if run.alert:
        lines += ["## Alert", "", f"**{run.alert.get('title') or '(untitled)'}**", ""]
        if run.alert.get("text"):
            lines += ["```", str(run.alert["text"])[:2000], "```", ""]
        labels = run.alert.get("labels") or {}
        if labels:
            lines += [", ".join(f"`{k}={v}`" for k, v in sorted(labels.items())), ""]
    lines += [
        "## Timeline",
        "",
        "| time (UTC) | who | what | outcome | took |",
        "|---|---|---|---|---|",
    ]
    for event in events:
        took = f"{event.duration_ms} ms" if event.duration_ms is not None else ""
        what = event.summary.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {event.at.strftime('%H:%M:%S')} | {event.actor} | {what} | "
            f"{_outcome_words(event.outcome)} | {took} |"
        )
    lines.append("")
    if runbook is not None:
        lines += _steps_section(runbook, steps)
        lines += _open_checklist(runbook, steps)
    return "\n".join(lines).rstrip() + "\n"


def _outcome_words(outcome: str | None) -> str:
    """Say an event's outcome as the walkthrough does ("problem", not "failed")."""
    if outcome is None:
        return ""
    try:
        return StepState(outcome).words
    except ValueError:  # not a step state: "refused" and the like read as they are
        return outcome


def _steps_section(runbook: Runbook, steps: dict[str, StepRecord]) -> list[str]:
    lines = ["## Steps run", ""]
    ran = False
    for section, section_steps in runbook.sections():
        for step in section_steps:
            record = steps.get(step.id)
            if record is None or record.state is StepState.PENDING:
                continue
            ran = True
            who = f" by {record.actor}" if record.actor else ""
            finding = record.finding or ""
            if finding.startswith(REHEARSED):  # what it would run is in the timeline and JSON
                finding = "rehearsed: shown, not executed"
            lines.append(
                f"- **{step.title}** ({SECTION_TITLES[section]}): {record.state.words}{who}"
                + (f" — {finding}" if finding else "")
            )
    if not ran:
        lines.append("- none")
    return [*lines, ""]


def _open_checklist(runbook: Runbook, steps: dict[str, StepRecord]) -> list[str]:
    lines = ["## Post-incident checklist", ""]
    for step in runbook.post_incident:
        record = steps.get(step.id)
        items = step.manual.items if step.manual else []
        done = set(record.items_done) if record else set()
        finished = record is not None and record.state in (StepState.DONE, StepState.SKIPPED)
        if items:
            for index, item in enumerate(items):
                mark = "x" if finished or index in done else " "
                lines.append(f"- [{mark}] {item.text}")
        else:
            lines.append(f"- [{'x' if finished else ' '}] {step.title}")
    if len(lines) == 2:
        lines.append("- (this runbook has no post-incident items)")
    return [*lines, ""]


def render_json(
    run: Run, runbook: Runbook | None, steps: dict[str, StepRecord], events: list[Event]
) -> dict[str, Any]:
    """Return the same export as data."""
    ack, resolve = time_to_acknowledge(run), time_to_resolve(run)
    return {
        "run": _jsonable(asdict(run)),
        "time_to_acknowledge_s": ack.total_seconds() if ack is not None else None,
        "time_to_resolve_s": resolve.total_seconds() if resolve is not None else None,
        "steps": {k: _jsonable(asdict(v)) for k, v in steps.items()},
        "events": [_jsonable(asdict(e)) for e in events],
        "runbook": runbook.id if runbook else None,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value
