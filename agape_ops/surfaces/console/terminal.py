"""The console's side of the terminal: print, prompt, validate what is typed, count failures.

Reading is a plain ``read_line(prompt)`` callable: ``input()`` (with readline when present) on a
terminal, line-by-line reads from a pipe otherwise, so a session can be scripted.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console, RenderableType

from agape_ops.engine.records import Event
from agape_ops.engine.views import InputField
from agape_ops.errors import InputError
from agape_ops.surfaces.console import render

ReadLine = Callable[[str], str]


class Cancelled(Exception):
    """The person left a prompt empty or declined a confirmation: nothing changes."""


@dataclass
class Terminal:
    """Where the session prints and asks; remembers whether any command failed."""

    console: Console
    read_line: ReadLine
    failed: bool = False
    events: int = 0
    #: Reads a secret input without showing it (``read_line`` when not given).
    read_secret: ReadLine | None = None

    def show(self, *renderables: RenderableType) -> None:
        """Print renderables (tables, lines) one after another."""
        self.console.print(*renderables)

    def fail(self, message: str, *, refusal: bool = False) -> None:
        """Report something that did not work, as one red line."""
        self.failed = True
        self.show(render.refusal_line(message) if refusal else render.error_line(message))

    async def on_event(self, event: Event) -> None:
        """Print each timeline event as the engine appends it."""
        self.events += 1
        self.show(render.event_line(event))

    def ask(self, prompt: str, *, empty_ok: bool = False, secret: bool = False) -> str:
        """Return the typed answer; an empty one (unless allowed), Ctrl-C or Ctrl-D cancel."""
        read = self.read_secret if secret and self.read_secret else self.read_line
        try:
            answer = read(prompt)
        except (EOFError, KeyboardInterrupt):
            self.console.print()
            raise Cancelled from None
        if not answer.strip() and not empty_ok:
            raise Cancelled
        return answer

    def ask_inputs(self, fields: Sequence[InputField]) -> dict[str, str]:
        """Prompt for each input with its description and example until it validates.

        A value the run already knows is offered in brackets (Enter takes it), never used
        without asking; a secret is never offered.
        """
        values: dict[str, str] = {}
        for field in fields:
            name = field.name
            example = f" (for example {field.example})" if field.example else ""
            known = field.prefilled if not field.secret else None
            how = f"Enter keeps {known}" if known else "empty cancels"
            self.show(render.note_line(f"{name}: {field.label}{example}; {how}"))
            prompt = f"{name} [{known}]> " if known else f"{name}> "
            while True:
                answer = self.ask(prompt, secret=field.secret, empty_ok=bool(known))
                try:
                    values[name] = field.validate(answer if answer.strip() else known or "")
                    break
                except InputError as exc:
                    self.show(render.error_line(exc.message))
        return values


def make_console(stream: TextIO) -> Console:
    """Return a rich console on ``stream``: colours on a terminal, plain text into a pipe."""
    terminal = stream.isatty()
    return Console(file=stream, force_terminal=None if terminal else False, highlight=False)


def line_reader(stdin: TextIO, stdout: TextIO, *, hidden: bool = False) -> ReadLine:
    """Return how the session reads a line: ``input()`` on a terminal, plain reads from a pipe.

    From a pipe the typed line is echoed after its prompt, so a scripted session's output
    reads as a transcript. ``hidden`` reads a secret: never echoed (``getpass`` on a terminal).
    """
    if stdin.isatty():
        if hidden:
            return getpass.getpass
        with contextlib.suppress(ImportError):  # platforms without GNU readline
            import readline  # noqa: F401, PLC0415 - importing it gives input() line editing and history
        return input

    def read(prompt: str) -> str:
        stdout.write(prompt)
        stdout.flush()
        line = stdin.readline()
        if not line:
            raise EOFError
        line = line.rstrip("\r\n")
        stdout.write(("(hidden)" if hidden else line) + "\n")
        stdout.flush()
        return line

    return read
