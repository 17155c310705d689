"""The console session's outermost handler: a failure nobody foresaw is one line, redacted."""

from __future__ import annotations

import asyncio
import io
from types import SimpleNamespace
from typing import cast

from rich.console import Console

from agape_ops.bootstrap import Container
from agape_ops.engine.timeline import Listener
from agape_ops.redaction import Redactor
from agape_ops.surfaces.console.repl import Session
from agape_ops.surfaces.console.terminal import Terminal

PASSWORD = "hunter2-store-password"


class BrokenStore:
    """A store whose driver fails with an error text that quotes its DSN."""

    async def find_open_run(self, fingerprint: str) -> None:
        raise RuntimeError(f"cannot connect to postgresql://ops:{PASSWORD}@db:5432/ops")


def broken_container() -> Container:
    def subscribe(listener: Listener) -> None:
        return None

    parts = SimpleNamespace(
        engine=SimpleNamespace(subscribe=subscribe),
        store=BrokenStore(),
        redactor=Redactor([PASSWORD]),
    )
    return cast(Container, parts)


def test_an_unexpected_error_is_reported_in_one_line_without_any_secret_it_quotes() -> None:
    printed = io.StringIO()
    terminal = Terminal(Console(file=printed, width=200), read_line=input)
    session = Session(broken_container(), terminal, actor="alice", call=asyncio.run)

    session.handle("alert NegativeStock on TEE-042")

    shown = printed.getvalue()
    assert "unexpected error (RuntimeError" in shown
    assert "postgresql://ops:[REDACTED]@db:5432/ops" in shown
    assert PASSWORD not in shown
    assert terminal.failed
