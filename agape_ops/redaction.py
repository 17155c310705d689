"""Keep secrets out of everything the bot shows or logs: the one place redaction happens.

A ``Redactor`` knows the configured secret values (``Settings.secrets()``) and the shapes
secrets take anyway (DSN passwords, bearer tokens, Paystack and Slack keys). The composition
root wraps every adapter in ``RedactingAdapter`` and installs ``RedactingFilter`` on every log
handler, so results, previews, descriptions, error messages and log lines pass through it. The
engine masks runbook inputs declared ``secret: true`` wherever it renders them and teaches their
values to the same redactor (``Redactor.add``), so an answer or a log line echoing one is caught.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import quote

from agape_ops.engine.results import StepResult

MASK = "[REDACTED]"
#: Shorter values would redact ordinary words and digits ("a", "db", "123").
MIN_SECRET_LENGTH = 4

#: Learned secret forms kept at most; each use of a secret input teaches it again.
MAX_LEARNED = 1024

E = TypeVar("E", bound=BaseException)

#: (pattern, replacement) for secrets recognised by their shape alone.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://user:[REDACTED]@host
    (
        re.compile(
            r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*:)(?!\[REDACTED\]@)[^\s@/]+@"
        ),
        rf"\g<keep>{MASK}@",
    ),
    # "Bearer <token>": a token has a digit or is long, so "Bearer token" in prose stays
    (
        re.compile(
            r"(?P<keep>\bBearer\s+)(?=[\w.~+/=\-]*\d|[\w.~+/=\-]{20})[\w.~+/=\-]{8,}",
            re.IGNORECASE,
        ),
        rf"\g<keep>{MASK}",
    ),
    (re.compile(r"\bsk_(?:live|test)_[A-Za-z0-9]+"), MASK),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]+"), MASK),
    (re.compile(r"\bxapp-[A-Za-z0-9\-]+"), MASK),
)

_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def _forms(secrets: Iterable[str]) -> set[str]:
    """Return each secret long enough to redact, with its URL-encoded and JSON-escaped forms."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            continue
        forms.add(secret)
        forms.add(quote(secret, safe=""))
        forms.add(json.dumps(secret)[1:-1])
    return forms


class Redactor:
    """Replace configured secrets and secret-shaped strings with ``[REDACTED]``.

    ``add`` teaches it more secrets while the bot runs (the values of runbook inputs declared
    ``secret: true``), so the log lines it filters hide those too.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._configured = frozenset(_forms(secrets))
        self._learned: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
        self._secrets: re.Pattern[str] | None = None
        self._compile()

    def add(self, secrets: Iterable[str]) -> None:
        """Hide these values too from now on (most recently added kept when over the bound)."""
        new = [value for value in _forms(secrets) if value not in self._configured]
        fresh = any(value not in self._learned for value in new)
        for value in new:
            self._learned.pop(value, None)
            self._learned[value] = None
        while len(self._learned) > MAX_LEARNED:
            del self._learned[next(iter(self._learned))]
        if fresh:
            self._compile()

    def _compile(self) -> None:
        values = self._configured | self._learned.keys()
        ordered = sorted(values, key=len, reverse=True)  # longest first: no partial leftovers
        # One assignment, so a log line filtered on another thread sees the old or the new.
        self._secrets = (
            re.compile("|".join(re.escape(value) for value in ordered)) if ordered else None
        )

    def text(self, text: str) -> str:
        """Return ``text`` with every secret replaced."""
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def value(self, obj: Any) -> Any:
        """Return ``obj`` with every string inside dicts, lists and tuples redacted."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.value(key): self.value(item) for key, item in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(item) for item in obj]
        return obj

    def result(self, result: StepResult) -> StepResult:
        """Return the result with its summary, table, values and text redacted."""
        return StepResult.model_validate(self.value(result.model_dump()))

    def exception(self, exc: E) -> E:
        """Return an exception of the same type with its message and attributes redacted.

        Returns ``exc`` itself when nothing in it needed redacting, so its traceback stays.
        """
        args = self.value(list(exc.args))
        attributes = self.value(dict(vars(exc)))
        if args == list(exc.args) and attributes == vars(exc):
            return exc
        # Built without calling __init__: subclasses take different arguments.
        redacted = type(exc).__new__(type(exc), *args)
        vars(redacted).update(attributes)
        redacted.__traceback__ = exc.__traceback__
        return redacted


class RedactingFilter(logging.Filter):
    """Redact a log record's message, arguments, extra fields, exception and stack text.

    Install it on handlers (``handler.addFilter``): handler filters see every record the
    handler emits, whichever logger it came from.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place, redacted; always keep it."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # arguments that do not fit the format
            message = f"{record.msg} {record.args!r}"
        record.msg = self._redactor.text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.text(record.stack_info)
        for key, item in list(vars(record).items()):
            if key not in _RECORD_ATTRIBUTES:
                setattr(record, key, self._redactor.value(item))
        return True
