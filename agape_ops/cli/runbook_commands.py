"""Commands about the runbooks themselves: lint, schema, runbooks, show."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
