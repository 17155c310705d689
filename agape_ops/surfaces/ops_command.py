"""Read the text of an `/ops` command into a small value every surface can act on.

Pure: no engine, no Slack, no I/O. Slack's slash command and the console both parse what a
person typed here, so the two offer exactly the same subcommands with the same syntax.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field

from agape_ops.engine.records import REHEARSAL_PREFIX
from agape_ops.values import MAX_TEXT_CHARS, text_problem

#: Every subcommand: its syntax and what it does, in the order help lists them.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "help": ("help", "show these subcommands"),
    "runbooks": ("runbooks", "list the runbooks and what triggers them"),
    "start": ("start <runbook> [name=value ...]", "open a run of a runbook by hand"),
    "status": ("status [RUN]", "show a run's walkthrough (or the open runs)"),
    "runs": ("runs", "list recent runs"),
    "use": ("use RUN", "make RUN the current run"),
    "run": ("run <step|number> [name=value ...]", "run a step of the current run"),
    "done": (
        "done <step|number> [item numbers]",
        "mark checklist items done (all when none given)",
    ),
    "skip": ("skip <step|number> [reason]", "skip a step, saying why"),
    "ack": ("ack", "acknowledge the run: you are on it"),
    "mitigated": ("mitigated", "mark the run mitigated: the impact has stopped"),
    "resolve": (
        "resolve [--yes] [note]",
        "mark the run resolved (--yes: though a check still fails)",
    ),
    "close": ("close", "close a resolved run"),
    "note": ("note <text>", "add a note to the run's timeline"),
    "input": ("input <name>=<value>", "give the run a value its steps need"),
    "timeline": ("timeline [md|json]", "export the run's timeline (postmortem draft)"),
    "contacts": ("contacts", "list the emergency contacts"),
    "dashboards": ("dashboards", "list the monitoring dashboards"),
    "verify": ("verify <reference>", "ask Paystack how a transaction ended"),
    "queues": ("queues", "jobs waiting, active and failed in each queue"),
    "health": ("health", "probe every system the bot reaches"),
}

#: Subcommands that act on one run: they take an optional run id first (``ack INC-3``).
RUN_SCOPED = frozenset(
    {
        "status",
        "run",
        "done",
        "skip",
        "ack",
        "mitigated",
        "resolve",
        "close",
        "note",
        "input",
        "timeline",
    }
)
TIMELINE_FORMATS = ("md", "json")
#: Subcommands that take nothing after the name (but a run id, when run-scoped).
_BARE = frozenset(
    {
        "help",
        "runbooks",
        "runs",
        "status",
        "ack",
        "mitigated",
        "close",
        "contacts",
        "dashboards",
        "queues",
        "health",
    }
)

#: Numbers are ASCII digits only (``²`` and ``①`` are digits to Python, not numbers to int())
#: and short: a run number has at most 9, a step or item number at most 4.
_RUN_ID = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}-[0-9]{1,9}")
_STEP = re.compile(r"[a-z][a-z0-9_]{0,63}|[0-9]{1,4}")
_NUMBER = re.compile(r"[0-9]{1,4}")
_RUNBOOK_ID = re.compile(r"[a-z][a-z0-9-]*")
_REFERENCE = re.compile(r"[A-Za-z0-9.=-]{1,100}")
_INPUT_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: Slack turns typed quotes into typographic ones; read them as the plain quotes meant.
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


@dataclass(frozen=True)
class OpsCommand:
    """One parsed `/ops` subcommand.

    ``target`` is the runbook id (start), the step id or its number as typed (run, done, skip)
    or the run id (use). ``items`` are checklist item numbers as typed (1-based). ``text`` is a
    reason, note or timeline format.
    """

    name: str
    run_id: str | None = None
    target: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    items: tuple[int, ...] = ()
    text: str = ""
    confirmed: bool = False  # `resolve --yes`: resolve though a check still shows the problem


@dataclass(frozen=True)
class OpsUsage:
    """Text that is not a valid subcommand: what is wrong and what would be right."""

    message: str


def usage_lines() -> list[str]:
    """Return one line per subcommand: syntax, then what it does."""
    width = max(len(syntax) for syntax, _ in SUBCOMMANDS.values())
    return [f"{syntax.ljust(width)}  {what}" for syntax, what in SUBCOMMANDS.values()]


def number(word: str) -> int | None:
    """Return the step or item number a person typed (1 to 9999 in ASCII digits), or None."""
    return int(word) if _NUMBER.fullmatch(word) and int(word) > 0 else None


def parse(text: str, *, run_prefix: str | None = None) -> OpsCommand | OpsUsage:
    """Parse the text after `/ops` (a leading `/ops` is ignored); empty text means help.

    With ``run_prefix``, a run id is that prefix (or a rehearsal's, ``REH``) and a number
    (``INC-7``), and anything else is text: `/ops note db-1 is down` is a note about db-1, not
    a command on a run "DB-1".
    Text that is too long or holds a NUL, a control code or invalid Unicode is refused whole.
    """
    if (problem := text_problem(text, limit=MAX_TEXT_CHARS, what="the command")) is not None:
        return OpsUsage(f"{problem[0].upper()}{problem[1:]}; nothing was done.")
    text = text.strip().translate(_SMART_QUOTES)
    if text == "/ops" or text.startswith("/ops "):
        text = text[4:].strip()
    if not text:
        return OpsCommand("help")
    name, _, rest = text.partition(" ")
    name = name.lower()
    if name not in SUBCOMMANDS:
        return OpsUsage(_unknown(name))
    rest = rest.strip()
    run_id: str | None = None
    if name in RUN_SCOPED:
        first, _, remainder = rest.partition(" ")
        if _is_run_id(first, run_prefix):
            run_id, rest = first.upper(), remainder.strip()
    return _parse_arguments(name, run_id, rest)


def _is_run_id(word: str, prefix: str | None) -> bool:
    if not _RUN_ID.fullmatch(word):
        return False
    return prefix is None or word.rsplit("-", 1)[0].upper() in (prefix.upper(), REHEARSAL_PREFIX)


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    return f"Unknown subcommand `{name}`.{hint} Subcommands: {', '.join(SUBCOMMANDS)}."


def _syntax(name: str) -> OpsUsage:
    return OpsUsage(f"Usage: /ops {SUBCOMMANDS[name][0]}")


def _parse_arguments(name: str, run_id: str | None, rest: str) -> OpsCommand | OpsUsage:
    if name in _BARE:
        return OpsCommand(name, run_id=run_id) if not rest else _syntax(name)
    if name == "verify":
        if not _REFERENCE.fullmatch(rest):
            return _syntax(name)
        return OpsCommand(name, target=rest)
    if name == "use":
        if not _RUN_ID.fullmatch(rest):
            return _syntax(name)
        return OpsCommand(name, run_id=rest.upper(), target=rest.upper())
    if name in ("resolve", "note"):
        if name == "note" and not rest:
            return _syntax(name)
        if name == "resolve":
            words = rest.split(" ")
            confirmed = "--yes" in (words[0], words[-1])
            if confirmed:
                words.remove("--yes")
            return OpsCommand(
                name, run_id=run_id, text=" ".join(words).strip(), confirmed=confirmed
            )
        return OpsCommand(name, run_id=run_id, text=rest)
    if name == "timeline":
        fmt = rest.lower() or "md"
        if fmt not in TIMELINE_FORMATS:
            return OpsUsage(f"Timeline formats: {', '.join(TIMELINE_FORMATS)} (got `{rest}`)")
        return OpsCommand(name, run_id=run_id, text=fmt)
    if name == "input":
        pairs = _pairs(name, rest)
        if isinstance(pairs, OpsUsage):
            return pairs
        return OpsCommand(name, run_id=run_id, inputs=pairs) if pairs else _syntax(name)
    if name == "start":
        return _with_pairs(name, run_id, rest, _RUNBOOK_ID)
    if name == "run":
        return _with_pairs(name, run_id, rest, _STEP)
    if name == "skip":
        step, _, reason = rest.partition(" ")
        if not _STEP.fullmatch(step):
            return _syntax(name)
        return OpsCommand(name, run_id=run_id, target=step, text=reason.strip())
    return _done(run_id, rest)


def _with_pairs(
    name: str, run_id: str | None, rest: str, target: re.Pattern[str]
) -> OpsCommand | OpsUsage:
    first, _, remainder = rest.partition(" ")
    if not target.fullmatch(first):
        return _syntax(name)
    pairs = _pairs(name, remainder)
    if isinstance(pairs, OpsUsage):
        return pairs
    return OpsCommand(name, run_id=run_id, target=first, inputs=pairs)


def _pairs(name: str, text: str) -> dict[str, str] | OpsUsage:
    """Read ``name=value`` pairs; values may be quoted to hold spaces."""
    try:
        words = shlex.split(text)
    except ValueError:
        return OpsUsage(f"Unbalanced quotes in `{text}`; quote a value that has spaces")
    pairs: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        key = key.strip().lower()
        if not sep or not _INPUT_NAME.fullmatch(key):
            return OpsUsage(f"`{word}` is not name=value. Usage: /ops {SUBCOMMANDS[name][0]}")
        pairs[key] = value
    return pairs


def _done(run_id: str | None, rest: str) -> OpsCommand | OpsUsage:
    step, _, numbers = rest.partition(" ")
    if not _STEP.fullmatch(step):
        return _syntax("done")
    items: list[int] = []
    for word in numbers.replace(",", " ").split():
        item = number(word)
        if item is None:
            shown = word if len(word) <= 20 else word[:20] + "…"
            return OpsUsage(
                f"`{shown}` is not an item number (1, 2, ...). Usage: /ops {SUBCOMMANDS['done'][0]}"
            )
        items.append(item)
    return OpsCommand("done", run_id=run_id, target=step, items=tuple(dict.fromkeys(items)))
