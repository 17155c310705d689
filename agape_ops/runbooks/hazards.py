"""Commands and URLs a step may not run, checked by the linter and again by the adapters.

A shell step names its program literally (a template there would let whoever gives the input
choose the program) and never hands code as text to an interpreter (``sh -c``, ``python -c``,
``node -e`` ...): an argument list without a shell is only safe while no argument is a program.
An HTTP step's URL is a declared origin (a literal ``https://host`` or a setting such as
``{{ settings.admin_api_url }}``) followed by a path whose templates each fill one
percent-encoded segment (``{{ inputs.id | segment }}``), so no input can point the request at
another host or climb out of its endpoint with ``..``. The adapters ask the same questions of
the rendered call, so a runbook that was never linted is held to the same rules. A postgres
read against a database a person names (``dsn_input``) takes the URL from a secret input the
step asks for, so its password is never stored or shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import unquote

from agape_ops.runbooks.model import Runbook, Step
from agape_ops.runbooks.templating import is_template

#: Shells: any of them with ``-c`` (alone or in a cluster such as ``-lc``) runs its argument.
_SHELLS = re.compile(r"(?:ba|da|z|k|mk|a|fi|c|tc|rba|ya)?sh|busybox")
#: Interpreters, with the flags that make them run code given as an argument.
_INTERPRETERS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = (
    (re.compile(r"python[0-9.]*|pypy[0-9.]*"), frozenset({"-c"})),
    (re.compile(r"node(?:js)?|deno|bun"), frozenset({"-e", "--eval", "-p", "--print"})),
    (re.compile(r"perl[0-9.]*"), frozenset({"-e", "-E"})),
    (re.compile(r"ruby[0-9.]*|lua[0-9.]*|luajit|osascript"), frozenset({"-e"})),
    (re.compile(r"php[0-9.]*"), frozenset({"-r"})),
    (re.compile(r"pwsh|powershell"), frozenset({"-c", "-command", "-encodedcommand", "-e"})),
)

#: Options that take the next argument as their value (``bash -o pipefail -c ...``).
_TAKES_VALUE = frozenset(
    {"-o", "+o", "-O", "+O", "--rcfile", "--init-file", "-W", "-X", "-r", "--require", "-I"}
)

#: Where every admin API ``call`` goes; the linter and the adapter refuse any other path.
ADMIN_PREFIX = "/api/v1/admin/"
#: Where a URL template may start: a setting holding an origin, or a literal origin.
_SETTING_ORIGIN = re.compile(r"\{\{\s*settings\.([a-z_]+)\s*\}\}")
_LITERAL_ORIGIN = re.compile(r"https?://[^/?#{}\s\\]+", re.IGNORECASE)
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_SEGMENT_FILTER = re.compile(r"\|\s*segment\s*$")
#: What may not appear in a path built from inputs, however it is encoded.
_ESCAPES = ("\\", "?", "#", "\x00")


def shell_hazard(command: Sequence[str]) -> tuple[int, str] | None:
    """Return (argument index, why) when a command may not run, or None when it may."""
    if command and is_template(command[0]):
        return 0, (
            f"program {command[0]!r} is a template; a shell step names its program literally, "
            "so no input can choose what runs"
        )
    for i, arg in enumerate(command):
        flags = _eval_flags(arg)
        if flags is None:
            continue
        takes_value = False
        for j in range(i + 1, len(command)):
            option = command[j]
            if takes_value:
                takes_value = False
                continue
            if not option.startswith(("-", "+")):
                break  # the script: what follows is its own arguments
            if option.lower() in flags or (
                "c" in flags and re.fullmatch(r"-[A-Za-z]*c[A-Za-z]*", option)
            ):
                return j, (
                    f"{arg} {option} runs code given as text; run a script file instead "
                    "(an argument list is only safe while no argument is a program)"
                )
            takes_value = option in _TAKES_VALUE
    return None


def _eval_flags(arg: str) -> frozenset[str] | None:
    """Return the flags that make ``arg`` (a program) run code given as text, if it is one."""
    name = arg.rsplit("/", 1)[-1]
    if _SHELLS.fullmatch(name):
        return frozenset({"c", "--command"})
    for pattern, flags in _INTERPRETERS:
        if pattern.fullmatch(name):
            return flags
    return None


def url_origin(template: str, settings: Mapping[str, str | None]) -> tuple[str | None, str]:
    """Split a URL template into (origin, rest); origin None means no declared origin.

    ``settings`` maps the settings a template may read to their values; a setting that is not
    set (or not one of them) gives the origin ``""``, so the caller can say which to set.
    """
    if match := _SETTING_ORIGIN.match(template):
        return (settings.get(match.group(1)) or "").rstrip("/"), template[match.end() :]
    if match := _LITERAL_ORIGIN.match(template):
        return match.group(0).rstrip("/"), template[match.end() :]
    return None, template


def template_hazard(rest: str, *, what: str) -> str | None:
    """Say what is wrong with the part of a URL template after its origin, if anything.

    Each template must fill one path segment through the ``segment`` filter; none may sit in
    the query string or fragment, and the literal path may not climb with ``..``.
    """
    if not rest:
        return None
    if not rest.startswith(("/", "?")):
        return f"{what} must go on with / after its origin"
    path = _TEMPLATE.sub("x", rest).partition("?")[0]
    if (escape := path_escape(path.split("#", 1)[0])) is not None:
        return f"{what} would leave its endpoint: it holds {escape}"
    for match in _TEMPLATE.finditer(rest):
        expression = match.group(1)
        if expression is None:
            return f"{what} may hold only {{{{ ... }}}} expressions, not blocks or comments"
        if "?" in rest[: match.start()] or "#" in rest[: match.start()]:
            return f"{what} takes templates only in its path, not in the query string"
        if not _SEGMENT_FILTER.search(expression):
            return (
                f"{what} inserts {match.group(0)!r} unencoded; write "
                f"`{{{{ {expression.strip()} | segment }}}}` so it fills exactly one path segment"
            )
    return None


def has_query(rest: str) -> bool:
    """Say whether the literal text of a URL template's rest holds a query string or fragment."""
    literal = _TEMPLATE.sub("", rest)
    return "?" in literal or "#" in literal


def path_escape(path: str) -> str | None:
    """Say how a path would leave its endpoint, however often it is percent-encoded.

    A ``.`` or ``..`` segment, ``?``, ``#``, a backslash, NUL or an encoded ``/`` all would; a plain
    path gives None.
    """
    text = path
    for _ in range(4):  # %252e%252e is %2e%2e is ..: look through every layer
        if any(segment in (".", "..") for segment in text.split("/")):
            return "a '.' or '..' segment"
        for character in _ESCAPES:
            if character in text:
                return f"{character!r}" if text is path else f"an encoded {character!r}"
        decoded = unquote(text)
        if decoded == text:
            return None
        if decoded.count("/") != text.count("/"):
            return "an encoded '/'"
        text = decoded
    return "percent-encoding nested too deep"


def dsn_input_hazard(runbook: Runbook, step: Step) -> str | None:
    """Say what is wrong with a postgres step's ``dsn_input``, or None when it is sound."""
    name = step.postgres.dsn_input if step.postgres is not None else None
    if name is None:
        return None
    spec = runbook.inputs.get(name)
    if step.changes_things:
        return "`dsn_input` is for reads only: a write goes to the configured DATABASE_URL"
    if spec is None or not spec.secret:
        return f"`dsn_input: {name}` needs `{name}` declared under `inputs:` with `secret: true`"
    if name not in step.inputs:
        return f"`dsn_input: {name}` needs `{name}` in the step's `inputs:`, so it is asked"
    return None
