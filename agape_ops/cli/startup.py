"""What every command does first: read the settings (or say which are wrong) and the log level.

A malformed setting stops a command with one line naming the variable, what is wrong and an
example, never its value (a DSN holds a password). ``--verbose`` on the command group raises the
log level to DEBUG for that command, over ``OPS_LOG_LEVEL``.
"""

from __future__ import annotations

import gc
import sys
from typing import NoReturn

import click
from pydantic import ValidationError

from agape_ops.settings import Settings, setting_name

#: Exit statuses: a command that failed, and a bot that could not start.
FAILED = 1
CANNOT_START = 2


def one_line(message: str) -> str:
    """Join a message's lines with semicolons, for a one-line report on stderr."""
    return "; ".join(part.strip() for part in message.splitlines() if part.strip())


def stop(message: str, code: int) -> NoReturn:
    """Print ``agape-ops: message`` on stderr and exit with ``code``."""
    click.echo(f"agape-ops: {one_line(message)}", err=True)
    sys.exit(code)


def settings_problem(exc: ValidationError) -> str:
    """Name each malformed setting and what is wrong with it, never its value."""
    wrong = []
    for error in exc.errors():
        name = setting_name(error["loc"])
        message = str(error["msg"])
        if message.startswith("Value error, "):
            wrong.append(f"{name} {message.removeprefix('Value error, ')}")
        else:
            wrong.append(f"{name} ({message})")
    return f"invalid settings: {'; '.join(wrong)}"


def verbose_requested() -> bool:
    """Say whether the command line asked for ``--verbose``."""
    context = click.get_current_context(silent=True)
    if context is None:
        return False
    root = context.find_root()
    return bool(isinstance(root.obj, dict) and root.obj.get("verbose"))


def load_settings() -> Settings:
    """Return the settings, or stop naming the malformed ones (never their values)."""
    try:
        settings = Settings()
    except ValidationError as exc:
        stop(settings_problem(exc), CANNOT_START)
    if verbose_requested():
        return settings.model_copy(update={"ops_log_level": "DEBUG"})
    return settings


def settle_heap() -> None:
    """Put what start-up made out of the garbage collector's sight, once serving begins.

    Modules, runbooks, and the SQLAlchemy, pydantic and Slack machinery are some 200,000 objects
    that live as long as the process. A full collection scanned them all, stopping the event loop
    for about 100 ms (seen as the slowest 1 % of click acknowledgements under load); frozen, a
    collection scans only what serving made since.
    """
    gc.collect()
    gc.freeze()
