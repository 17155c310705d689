"""What a step produced: the value type shared by adapters, the engine, the store and surfaces.

Adapters return a ``StepResult`` whose values are already JSON-safe (uuid and inet as text,
timestamps as ISO 8601, numerics as float, intervals as words), so a result is stored, rendered
and evaluated the same way everywhere.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Results keep at most this many rows; the total is stated when more existed.
MAX_ROWS = 200


class StepResult(BaseModel):
    """The outcome of one adapter call, in the shape every surface renders."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="One sentence a person reads, e.g. '3 failed webhooks'.")
    columns: list[str] = Field(default_factory=list)
    rows: list[dict[str, Any]] = Field(default_factory=list)
    total_rows: int | None = Field(
        default=None, description="Rows that existed before truncation (None: no table)."
    )
    values: dict[str, Any] = Field(default_factory=dict, description="Named figures.")
    text: str | None = Field(default=None, description="Free text output (shell, bodies).")
    duration_ms: int = 0

    @property
    def truncated(self) -> bool:
        return self.total_rows is not None and self.total_rows > len(self.rows)

    def context(self) -> dict[str, Any]:
        """Return the names a step's ``when:`` and ``finding:`` may read.

        ``rows``, ``row_count`` (all rows, not just those kept), ``columns``, ``first`` (the
        first row or {}), ``values``, ``text``, ``summary``; and, for convenience, the first
        row's columns and every named value at the top level (values win on a clash).
        """
        first = self.rows[0] if self.rows else {}
        context: dict[str, Any] = {}
        context.update(first)
        context.update(self.values)
        context.update(
            rows=self.rows,
            row_count=self.total_rows if self.total_rows is not None else len(self.rows),
            columns=self.columns,
            first=first,
            values=self.values,
            text=self.text,
            summary=self.summary,
            truncated=self.truncated,
        )
        return context


def table(
    summary: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    *,
    total: int | None = None,
    values: dict[str, Any] | None = None,
    limit: int = MAX_ROWS,
) -> StepResult:
    """Build a table result, keeping at most ``limit`` rows and stating the total."""
    kept = rows[:limit]
    return StepResult(
        summary=summary,
        columns=columns,
        rows=kept,
        total_rows=total if total is not None else len(rows),
        values=values or {},
    )


def duration_words(value: timedelta) -> str:
    """Say a duration the way an engineer would: "340 ms", "4.2 s", "2 h 05 min", "3 d 04 h"."""
    total_ms = round(value.total_seconds() * 1000)
    sign = "-" if total_ms < 0 else ""
    total_ms = abs(total_ms)
    if total_ms < 1000:
        return f"{sign}{total_ms} ms"
    seconds = total_ms / 1000
    if seconds < 10:
        return f"{sign}{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{sign}{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{sign}{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours:02d} h"


def figure(value: float) -> str:
    """Show a float as a person reads it, never in exponent notation.

    Whole numbers stay whole (an amount of 25000.0 naira reads 25000), others keep two
    decimals, and ratios below 1 keep four significant digits (0.1428571 reads 0.1429); the
    finding beside the table carries the words.
    """
    if not math.isfinite(value):
        return str(value)
    if value.is_integer():
        return str(int(value))
    if abs(value) >= 1:
        return f"{value:.2f}"
    return format(Decimal(f"{value:.4g}"), "f")


def cell_text(value: Any) -> str:
    """Show one value of a result: numbers and text as they are, structures as compact JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, float):
        return figure(value)
    return str(value)
