"""`agape-ops check`: probe every configured system; the first thing to run after deploying."""

from __future__ import annotations

import asyncio
import sys

import click

from agape_ops.cli.startup import CANNOT_START, load_settings
from agape_ops.errors import AgapeError
from agape_ops.settings import Settings


async def _probe_all(
    settings: Settings,
) -> tuple[list[tuple[str, bool, bool, str, int | None]], str | None]:
    from agape_ops.bootstrap import build

    container = await build(settings)
    try:
        probes = await asyncio.gather(*(a.probe() for a in container.adapters.values()))
        rows = [(p.name, p.configured, p.ok, p.detail, p.latency_ms) for p in probes]
        version = await container.store.schema_version()
        rows.append(("store", True, True, f"{container.store.place} (schema v{version})", None))
        folder = settings.runbooks_dir.absolute()
        summary = f"{len(container.catalog)} runbooks loaded from {folder}"
        if container.catalog.problems:
            summary += f", {len(container.catalog.problems)} problems (run `agape-ops lint`)"
        return rows, summary
    finally:
        await container.aclose()


@click.command("check")
def check() -> None:
    """Probe every adapter (PostgreSQL, Redis, Paystack, admin API, Prometheus...) and the store."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    settings = load_settings()
    try:
        rows, summary = asyncio.run(_probe_all(settings))
    except AgapeError as exc:
        click.echo(f"agape-ops check: {exc.message}", err=True)
        sys.exit(CANNOT_START)
    table = Table("system", "status", "detail", "latency")
    failing = 0
    for name, configured, ok, detail, latency in rows:
        if not configured:
            status = "not configured"
        elif ok:
            status = "ok"
        else:
            status, failing = "FAILING", failing + 1
        # Details quote servers and paths ("[bold]" in a directory name): never read as markup.
        shown = f"{latency} ms" if latency is not None else ""
        table.add_row(Text(name), Text(status), Text(detail), Text(shown))
    console = Console(soft_wrap=True)
    console.print(table)
    if summary:
        console.print(Text(summary))
    sys.exit(1 if failing else 0)


COMMANDS: list[click.Command] = [check]
