"""Convert the engine's records to table rows and back, and bound what a step result may weigh.

Column names equal the dataclass field names, so the mapping is by name; enums travel as their
values and come back as ``RunState`` / ``StepState``.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from sqlalchemy.engine import RowMapping

from agape_ops.engine.records import Event, Run, RunState, StepRecord, StepState

#: A stored step result is at most this many bytes of JSON; larger ones lose rows or text.
MAX_RESULT_BYTES = 256 * 1024


def run_values(run: Run) -> dict[str, Any]:
    """Return the row of a run."""
    values = {f.name: getattr(run, f.name) for f in fields(Run)}
    values["state"] = RunState(run.state).value
    return values


def run_from(row: RowMapping) -> Run:
    """Rebuild a run from its row."""
    values = {f.name: row[f.name] for f in fields(Run)}
    values["state"] = RunState(values["state"])
    values["rehearsal"] = bool(values["rehearsal"])
    return Run(**values)


def step_values(record: StepRecord) -> dict[str, Any]:
    """Return the row of a step record, its result bounded in size."""
    values = {f.name: getattr(record, f.name) for f in fields(StepRecord)}
    values["state"] = StepState(record.state).value
    values["result"] = bounded_result(record.result)
    return values


def step_from(row: RowMapping) -> StepRecord:
    """Rebuild a step record from its row."""
    values = {f.name: row[f.name] for f in fields(StepRecord)}
    values["state"] = StepState(values["state"])
    return StepRecord(**values)


def event_values(event: Event) -> dict[str, Any]:
    """Return the row of a timeline event."""
    return {f.name: getattr(event, f.name) for f in fields(Event)}


def event_from(row: RowMapping) -> Event:
    """Rebuild a timeline event from its row."""
    return Event(**{f.name: row[f.name] for f in fields(Event)})


def _size(value: Any) -> int:
    # The same encoding the engine's JSON columns use, so the bound is what gets stored.
    return len(json.dumps(value, default=str).encode())


def bounded_result(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the result unchanged if it fits in ``MAX_RESULT_BYTES``, else a trimmed copy.

    Rows go first (``total_rows`` keeps the full count, so the result still says it was
    truncated), then free text; the summary says what was left out. What comes back stays a
    valid ``StepResult`` when what went in was one.
    """
    if result is None or _size(result) <= MAX_RESULT_BYTES:
        return result
    original = _size(result)
    trimmed = dict(result)
    summary = str(trimmed.get("summary", ""))
    rows = trimmed.get("rows")
    if isinstance(rows, list) and rows:
        if trimmed.get("total_rows") is None:
            trimmed["total_rows"] = len(rows)
        kept = _rows_that_fit(trimmed, rows, summary)
        trimmed["rows"] = rows[:kept]
        trimmed["summary"] = _noted(summary, f"stored {kept} of {len(rows)} rows", original)
    text = trimmed.get("text")
    if _size(trimmed) > MAX_RESULT_BYTES and isinstance(text, str):
        trimmed["summary"] = _noted(str(trimmed.get("summary", "")), "output cut short", original)
        trimmed["text"] = _text_that_fits(trimmed, text)
    if _size(trimmed) <= MAX_RESULT_BYTES:
        return trimmed
    fallback: dict[str, Any] = {"summary": _noted(summary, "result not stored", original)}
    if isinstance(result.get("duration_ms"), int):
        fallback["duration_ms"] = result["duration_ms"]
    return fallback


def _rows_that_fit(trimmed: dict[str, Any], rows: list[Any], summary: str) -> int:
    """Return how many leading rows fit beside the rest of the result and the note."""
    # Price the note at its longest, so the row budget never leaves it without room.
    longest_note = _noted(summary, f"stored {len(rows)} of {len(rows)} rows", 10**12)
    shell = dict(trimmed, rows=[], summary=longest_note)
    budget = MAX_RESULT_BYTES - _size(shell)
    kept = 0
    for row in rows:
        cost = _size(row) + (2 if kept else 0)  # ", " between list items
        if cost > budget:
            break
        budget -= cost
        kept += 1
    return kept


def _noted(summary: str, what: str, original: int) -> str:
    note = f"({what}: the result was {original // 1024} KiB, over the store's limit)"
    return f"{summary} {note}" if summary else note


def _text_that_fits(trimmed: dict[str, Any], text: str) -> str:
    """Return the longest head of ``text``, marked as cut, that keeps the result in bounds."""
    marker = "\n... [cut: output too large to store]"
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _size(dict(trimmed, text=text[:middle] + marker)) <= MAX_RESULT_BYTES:
            low = middle
        else:
            high = middle - 1
    return text[:low] + marker
