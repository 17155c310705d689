"""Commands about runs: the terminal console, the list of runs, and a run's timeline export.

Each builds the bot from settings through the composition root. Anything that stops it from
starting (a malformed setting, an unusable store) is one line on stderr and exit status 2;
a run that does not exist is exit status 1; never a traceback.
"""

from __future__ import annotations

import asyncio
import getpass
import io
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import click

from agape_ops.cli.startup import (
    CANNOT_START,
    FAILED,
    load_settings,
    settings_problem,
)
from agape_ops.cli.startup import stop as _stop
from agape_ops.engine.records import ScheduledJob
from agape_ops.errors import AgapeError, UnknownRun
from agape_ops.runbooks.timing import interval_words
from agape_ops.settings import Settings

if TYPE_CHECKING:  # the composition root pulls in every client library: import it on use
    from agape_ops.bootstrap import Container

T = TypeVar("T")

__all__ = ["CANNOT_START", "COMMANDS", "FAILED", "settings_problem"]


class _StartFailed(Exception):
    """The container could not be built: the bot cannot start."""


def _load_settings() -> Settings:
    return load_settings()


def _with_container(work: Callable[[Container], Awaitable[T]]) -> T:
    """Build the bot, run ``work(container)``, close everything; stop cleanly on errors."""
    from agape_ops.bootstrap import build

    settings = _load_settings()

    async def main() -> T:
        try:
            container = await build(settings)
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
        try:
            session = Session(
                engine=container.engine,
                terminal=Terminal(
                    make_console(sys.stdout),
                    line_reader(sys.stdin, sys.stdout),
                    read_secret=line_reader(sys.stdin, sys.stdout, hidden=True),
                ),
                actor=person,
                call=runner.run,
                dry_run=dry_run,
                problems=[str(p) for p in container.catalog.problems],
                redact=container.redactor.text,
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

    from agape_ops.surfaces.console import render

    async def work(container: Container) -> None:
        found = await container.engine.runs(active=only_open, limit=limit)
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
        try:
            return await container.engine.export(run_id, fmt)
        except UnknownRun as exc:
            raise UnknownRun(f"no run {run_id}; `agape-ops runs` lists them") from exc

    click.echo(_with_container(work).rstrip("\n"))


@click.command("jobs")
@click.argument("run_id", metavar="[RUN]", required=False)
def jobs(run_id: str | None) -> None:
    """List scheduled jobs (escalation, re-checks, monitors, reminders), soonest first: of
    RUN, or of every run."""

    async def work(container: Container) -> list[str]:
        if run_id is not None:
            await container.engine.get_run(run_id)  # an unknown run is said, not listed empty
        found = await container.engine.jobs(run_id)
        now = container.engine.clock()
        return [job_line(job, now) for job in found]

    lines = _with_container(work)
    where = f" for {run_id.upper()}" if run_id else ""
    click.echo("\n".join(lines) if lines else f"No scheduled jobs{where}.")


def job_line(job: ScheduledJob, now: datetime) -> str:
    """One job as a line: run, kind, when next (and how soon), what it does."""
    if job.next_at is None:
        when = "paused"
    else:
        gap = interval_words(abs((job.next_at - now).total_seconds()))
        soon = f"overdue by {gap}: is a bot scheduling?" if job.overdue else f"in {gap}"
        when = f"{job.next_at:%Y-%m-%d %H:%M:%S} UTC ({soon})"
    return f"{job.run_id:<10} {job.kind:<14} {when:<38} {job.what}"


COMMANDS: list[click.Command] = [console, runs, timeline, jobs]
