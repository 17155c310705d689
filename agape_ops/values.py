"""What text the bot takes from people and alerts: valid Unicode, no NUL, no control codes, bounded.

A lone surrogate cannot be encoded (PostgreSQL and SQLite, Slack and the terminal all refuse it,
each differently), a NUL ends a C string early and PostgreSQL rejects it in text, control codes
steer a terminal, and a 65 KB value has no business in a step. Text a person types (inputs,
notes, `/ops` commands) is refused with the reason (``text_problem``, ``check_text``); text
monitoring sends (alerts) is cleaned instead (``clean_text``), because an alert cannot be sent
back. Either way what is stored is the same on both stores. Pure functions, no I/O.
"""

from __future__ import annotations

import unicodedata

from agape_ops.errors import InputError

#: The longest value a step input may have.
MAX_VALUE_CHARS = 1_000
#: The longest free text (a note, a reason, an `/ops` command line).
MAX_TEXT_CHARS = 4_000
#: Control characters text may keep: tab and line breaks.
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_REPLACEMENT = "\ufffd"


def _bad(character: str) -> str | None:
    """Name what is wrong with one character, or None when text may hold it."""
    if character in _ALLOWED_CONTROLS:
        return None
    category = unicodedata.category(character)
    if character == "\x00":
        return "a NUL character"
    if category == "Cs":
        return "an unpaired surrogate (not valid Unicode)"
    if category == "Cc":
        return f"a control character (U+{ord(character):04X})"
    return None


def text_problem(text: str, *, limit: int = MAX_VALUE_CHARS, what: str = "the value") -> str | None:
    """Say why ``text`` cannot be taken (too long, NUL, surrogate, control code), or None."""
    if len(text) > limit:
        return f"{what} is {len(text):,} characters long; at most {limit:,} are accepted"
    for position, character in enumerate(text, start=1):
        if (reason := _bad(character)) is not None:
            return f"{what} holds {reason} at character {position}"
    return None


def check_text(
    text: str, *, name: str | None = None, limit: int = MAX_VALUE_CHARS, what: str = "the value"
) -> str:
    """Return ``text`` unchanged, or raise InputError saying why it cannot be taken.

    The engine calls this on every input value before validating it against its pattern, so
    a refused value is never stored and never reaches a step.
    """
    problem = text_problem(text, limit=limit, what=f"`{name}`" if name else what)
    if problem is not None:
        raise InputError(problem, input_name=name)
    return text


def clean_text(text: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    """Return ``text`` fit to store: controls and NULs dropped, surrogates replaced, cut to size.

    A cut is marked with an ellipsis, so nobody mistakes it for the whole text.
    """
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if text.isprintable() or all(_bad(c) is None for c in text):
        return text
    return "".join(
        _REPLACEMENT if unicodedata.category(c) == "Cs" else c for c in text if not _dropped(c)
    )


def _dropped(character: str) -> bool:
    reason = _bad(character)
    return reason is not None and unicodedata.category(character) != "Cs"
