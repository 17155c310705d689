"""Commands about runs: the terminal console, the list of runs, and a run's timeline export.

Each builds the bot from settings through the composition root. Anything that stops it from
starting (a malformed setting, an unusable store) is one line on stderr and exit status 2;
a run that does not exist is exit status 1; never a traceback.
"""

from __future__ import annotations

import asyncio
import getpass
import io
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click
from pydantic import ValidationError

from agape_ops.errors import AgapeError
from agape_ops.settings import Settings

if TYPE_CHECKING:  # the composition root pulls in every client library: import it on use
    from agape_ops.bootstrap import Container

T = TypeVar("T")

#: Exit statuses: a command that failed, and a bot that could not start.
FAILED = 1
CANNOT_START = 2


def _one_line(message: str) -> str:
    return "; ".join(part.strip() for part in message.splitlines() if part.strip())


def _stop(message: str, code: int) -> NoReturn:
    click.echo(f"agape-ops: {_one_line(message)}", err=True)
    sys.exit(code)


def settings_problem(exc: ValidationError) -> str:
    """Name each malformed setting and what is wrong with it, never its value."""
    wrong = ", ".join(
        f"{'.'.join(str(p) for p in e['loc']).upper()} ({e['msg']})" for e in exc.errors()
    )
    return f"invalid settings: {wrong}"


def one_shot(settings: Settings) -> Settings:
    """Return settings for a command that prints an answer and exits: its log (through the
    redactor, like every log) shows warnings and worse unless LOG_LEVEL is set to another level.
    """
    if settings.log_level.upper() == "INFO":
        return settings.model_copy(update={"log_level": "WARNING"})
    return settings


class _StartFailed(Exception):
    """The container could not be built: the bot cannot start."""


def _load_settings() -> Settings:
    """Return the settings, or stop naming the malformed ones (never their values)."""
    try:
        return Settings()
    except ValidationError as exc:
        _stop(settings_problem(exc), CANNOT_START)


def _with_container(work: Callable[[Container], Awaitable[T]]) -> T:
    """Build the bot, run ``work(container)``, close everything; stop cleanly on errors."""
    from agape_ops.bootstrap import build

    settings = _load_settings()

    async def main() -> T:
        try:
            container = await build(one_shot(settings))
        except AgapeError as exc:
            raise _StartFailed(exc.message) from exc
        try:
            return await work(container)
        finally:
            await container.aclose()

    try:
        return asyncio.run(main())
    except _StartFailed as exc:
        _stop(str(exc), CANNOT_START)
    except AgapeError as exc:
        _stop(exc.message, FAILED)


@click.command("console")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Rehearse: reads run for real; writes are shown (SQL and parameters, method, URL and "
    "body, command line) and not executed; the run is marked a rehearsal.",
)
@click.option(
    "--as",
    "actor",
    metavar="USER",
    default=None,
    help="Act as USER (default: your login name). Writes need USER in OPS_RESPONDERS, "
    "dangerous steps in OPS_APPROVERS.",
)
def console(dry_run: bool, actor: str | None) -> None:
    """Walk runbooks in the terminal with the same engine as Slack; no Slack settings needed.

    Type `alert <text or JSON>` to open a run as an alert in #alerts would, `help` for the
    rest. Reads commands line by line, so a session can be piped in. Exits 1 when a piped
    session had a failing command.
    """
    from agape_ops.bootstrap import build
    from agape_ops.surfaces.console.repl import Session
    from agape_ops.surfaces.console.terminal import Terminal, line_reader, make_console

    person = actor or getpass.getuser()
    settings = _load_settings()
    if isinstance(sys.stdin, io.TextIOWrapper):
        # Bytes that are not UTF-8 (a pasted binary, a wrong locale) read as U+FFFD, so the
        # line is refused like any other odd text instead of ending the session.
        sys.stdin.reconfigure(errors="replace")
    with asyncio.Runner() as runner:
        try:
            container = runner.run(build(settings))
        except AgapeError as exc:
            _stop(exc.message, CANNOT_START)
        # The console reports every call's outcome itself: keep the per-request lines (httpx)
        # and the pool's reconnect warnings (psycopg.pool) from scrolling over the session.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        try:
            session = Session(
                container=container,
                terminal=Terminal(
                    make_console(sys.stdout),
                    line_reader(sys.stdin, sys.stdout),
                    read_secret=line_reader(sys.stdin, sys.stdout, hidden=True),
                ),
                actor=person,
                call=runner.run,
                dry_run=dry_run,
            )
            failed = session.loop()
        finally:
            runner.run(container.aclose())
    sys.exit(FAILED if failed and not sys.stdin.isatty() else 0)


@click.command("runs")
@click.option("--open", "only_open", is_flag=True, help="Only runs not yet resolved.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
def runs(only_open: bool, limit: int) -> None:
    """List runs newest first: id, state, runbook, when opened, by whom, rehearsal or not."""
    from rich.console import Console

    from agape_ops.engine.records import ACTIVE_STATES
    from agape_ops.surfaces.console import render

    states = list(ACTIVE_STATES) if only_open else None

    async def work(container: Container) -> None:
        found = await container.store.list_runs(states=states, limit=limit)
        if not found:
            click.echo("No runs yet.")
            return
        Console(soft_wrap=True, highlight=False).print(render.runs_table(found))

    _with_container(work)


@click.command("timeline")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json"]),
    default="md",
    show_default=True,
    help="Markdown postmortem draft, or the same as JSON.",
)
def timeline(run_id: str, fmt: str) -> None:
    """Print RUN's postmortem export: summary, alert, timeline with who and how long, steps."""

    async def work(container: Container) -> str:
        run = await container.engine.get_run(run_id)
        return await container.timeline_export(run, fmt)

    click.echo(_with_container(work).rstrip("\n"))


COMMANDS: list[click.Command] = [console, runs, timeline]
