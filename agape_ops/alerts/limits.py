"""How big and how deep an alert may be, checked before anything parses or walks it.

Alerts arrive from outside: a JSON document 10,000 levels deep exhausts the parser's stack, and
one with values 400 levels deep does the same to the validator, the serialiser and the store.
These checks are loops, not recursion, and run before the payload is parsed or read, so such an
alert is turned away with a reason instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: How deep objects and lists may nest; Slack's own payloads stay under ten.
MAX_DEPTH = 32
#: The longest JSON document read as an alert.
MAX_JSON_CHARS = 512_000
#: The most objects, lists and values an alert payload may hold in all.
MAX_NODES = 20_000


def json_problem(text: str | bytes) -> str | None:
    """Say why a JSON document is too big or too deep to read as an alert, or None.

    Counts brackets outside strings in one pass, without parsing.
    """
    if len(text) > MAX_JSON_CHARS:
        return f"the alert is {len(text):,} characters long; at most {MAX_JSON_CHARS:,} are read"
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return f"the alert nests deeper than {MAX_DEPTH} levels"
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return None


def structure_problem(payload: Any) -> str | None:
    """Say why a parsed payload (a Slack event, a JSON object) is too big or deep, or None."""
    nodes = 0
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return f"the alert holds more than {MAX_NODES:,} values"
        if isinstance(item, Mapping | list | tuple):
            if depth > MAX_DEPTH:
                return f"the alert nests deeper than {MAX_DEPTH} levels"
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
    return None
