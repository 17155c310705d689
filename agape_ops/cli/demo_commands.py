"""`agape-ops demo` (the demo world) and `agape-ops run` (what `make run` starts).

``run`` does the main job on any machine: with no backend configured at all it opens the demo
world and says so; with Slack configured it serves Slack; otherwise it opens the console.
"""

from __future__ import annotations

import sys

import click

from agape_ops.cli.startup import CANNOT_START, load_settings, stop
from agape_ops.errors import DemoUnavailable


@click.command("demo")
@click.option("--reset", is_flag=True, help="Lay the world out afresh (rows, queues, runs).")
@click.option(
    "--dry-run", is_flag=True, help="Rehearse in the demo: writes are shown, not executed."
)
def demo(reset: bool, dry_run: bool) -> None:
    """Open the console on a demo world with trouble for every runbook; nothing real is touched.

    Creates a sandbox database on the local PostgreSQL (OPS_DEMO_DATABASE_URL) with the backend's
    schema and rows, BullMQ queues in a spare Redis database (OPS_DEMO_REDIS_URL), and runs
    stand-ins for Paystack, its status page, Prometheus and the admin API on 127.0.0.1. The world
    is kept between sessions; --reset starts it over.
    """
    from agape_ops.demo.sandbox import open_console

    settings = load_settings()
    try:
        code = open_console(settings, reset=reset, dry_run=dry_run)
    except DemoUnavailable as exc:
        stop(exc.message, CANNOT_START)
    sys.exit(code)


@click.command("run")
@click.pass_context
def run(context: click.Context) -> None:
    """Do the main job: serve Slack when it is configured; else the console on the backend, or
    the demo world when no backend is configured either."""
    from agape_ops.cli.run_commands import console
    from agape_ops.cli.serve_commands import serve_command

    settings = load_settings()
    if settings.slack_configured():
        click.echo("Slack is configured: serving it (`agape-ops serve`).")
        context.invoke(serve_command, host="0.0.0.0", port=None)  # noqa: S104 - see serve
        return
    if not settings.backend_configured():
        click.echo(
            "No backend is configured (DATABASE_URL, REDIS_URL, PAYSTACK_SECRET_KEY, "
            "ADMIN_API_URL and PROMETHEUS_URL are empty): opening the demo world. Fill in .env "
            "(see .env.example) to work on the real backend."
        )
        context.invoke(demo, reset=False, dry_run=False)
        return
    context.invoke(console, dry_run=False, actor=None)


COMMANDS: list[click.Command] = [demo, run]
