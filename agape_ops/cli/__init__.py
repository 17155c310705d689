"""The `agape-ops` command: one group, its subcommands defined by job in the modules beside."""

from __future__ import annotations

import click


def build() -> click.Group:
    """Assemble the command group from the subcommand modules."""
    from agape_ops.cli import adapter_commands, run_commands, runbook_commands

    group = click.Group(
        "agape-ops",
        help="ChatOps incident response for the Agape backend: runbooks as guided workflows.",
    )
    for module in (runbook_commands, adapter_commands, run_commands):
        for command in module.COMMANDS:
            group.add_command(command)
    return group


def main() -> None:
    """Run the command line (the `agape-ops` console script)."""
    build()(prog_name="agape-ops")
