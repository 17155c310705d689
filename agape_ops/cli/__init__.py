"""The `agape-ops` command: one group, its subcommands defined by job in the modules beside."""

from __future__ import annotations

import click


def _remember_verbose(context: click.Context, verbose: bool) -> None:
    context.obj = {"verbose": verbose}


def build() -> click.Group:
    """Assemble the command group from the subcommand modules."""
    from agape_ops.cli import (
        adapter_commands,
        demo_commands,
        run_commands,
        runbook_commands,
        serve_commands,
    )

    group = click.Group(
        "agape-ops",
        help="ChatOps incident response for the Agape backend: runbooks as guided workflows. "
        "New here? `agape-ops demo` opens a seeded world to try every runbook in.",
        callback=click.pass_context(_remember_verbose),
        params=[
            click.Option(
                ["--verbose", "-v"],
                is_flag=True,
                help="Log at DEBUG level, with tracebacks (over OPS_LOG_LEVEL).",
            )
        ],
    )
    group = click.version_option(
        package_name="agape-ops", prog_name="agape-ops", message="%(prog)s %(version)s"
    )(group)
    for module in (
        runbook_commands,
        adapter_commands,
        run_commands,
        serve_commands,
        demo_commands,
    ):
        for command in module.COMMANDS:
            group.add_command(command)
    return group


def main() -> None:
    """Run the command line (the `agape-ops` console script)."""
    build()(prog_name="agape-ops")
