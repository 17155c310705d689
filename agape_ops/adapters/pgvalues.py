"""Turn the values psycopg returns into JSON-safe values a person can read.

A step's result is stored, rendered in Slack and evaluated by conditions, so every value must
survive JSON: uuid and inet as text, timestamps as ISO 8601, numerics as numbers, intervals as
words ("2 h 05 min"), bytes as their size. Pure functions, no database needed.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from agape_ops.engine.results import duration_words

#: Text longer than this is cut, with an ellipsis, so one cell cannot flood a Slack message.
MAX_TEXT = 500

_ADDRESSES = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
)


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    """Cut ``text`` to ``limit`` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _number(value: Decimal) -> int | float | str:
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def render_value(value: Any) -> Any:
    """Return ``value`` as a JSON-safe value (see the module docstring for each type)."""
    rendered = _render(value)
    return truncate(rendered) if isinstance(rendered, str) else rendered


def _render(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, (uuid.UUID, *_ADDRESSES)):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_words(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        # jsonb arrives as JSON already and stays as it is; only keys are made text
        return {str(k): _render(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        # PostgreSQL arrays (uuid[], text[]) and jsonb arrays: render each element
        return [_render(v) for v in value]
    return str(value)


def render_row(columns: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """Pair column names with rendered values."""
    return {name: render_value(v) for name, v in zip(columns, values, strict=True)}


def unique_columns(names: Sequence[str]) -> list[str]:
    """Make repeated column names distinct (``id``, ``id_2``) so no value is lost in a dict.

    A new name never takes one the query itself returns (``SELECT a.id, b.id, c.id AS id_2``).
    """
    taken = set(names)
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        unique, count = name, 1
        while unique in seen or (unique != name and unique in taken):
            count += 1
            unique = f"{name}_{count}"
        seen.add(unique)
        out.append(unique)
    return out
