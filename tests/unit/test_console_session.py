"""The console session's outermost handler: a failure nobody foresaw is one line, redacted."""

from __future__ import annotations

import asyncio
import io
from types import SimpleNamespace
from typing import cast

from rich.console import Console

from agape_ops.engine.engine import Engine, Listener
from agape_ops.redaction import Redactor
from agape_ops.surfaces.console.repl import Session
from agape_ops.surfaces.console.terminal import Terminal

PASSWORD = "hunter2-store-password"


def broken_engine() -> Engine:
    """An engine whose store's driver fails with an error text that quotes its DSN."""

    def subscribe(listener: Listener) -> None:
        return None

    async def fail(*_: object) -> None:
        raise RuntimeError(f"cannot connect to postgresql://ops:{PASSWORD}@db:5432/ops")

    return cast(Engine, SimpleNamespace(subscribe=subscribe, execute=fail, reap_interrupted=fail))


def test_an_unexpected_error_is_reported_in_one_line_without_any_secret_it_quotes() -> None:
    printed = io.StringIO()
    terminal = Terminal(Console(file=printed, width=200), read_line=input)
    session = Session(
        broken_engine(), terminal, actor="alice", call=asyncio.run, redact=Redactor([PASSWORD]).text
    )

    session.handle("alert NegativeStock on TEE-042")

    shown = printed.getvalue()
    assert "unexpected error (RuntimeError" in shown
    assert "postgresql://ops:[REDACTED]@db:5432/ops" in shown
    assert PASSWORD not in shown
    assert terminal.failed
