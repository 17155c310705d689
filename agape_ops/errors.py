"""Every error agape-ops raises on purpose.

Each carries a message a person on call can act on, and context as attributes. Vendor errors
are converted at the boundary (``raise AdapterError(...) from exc``)::

    AgapeError
    ├── ConfigError                 a setting is missing or malformed
    │   └── DemoUnavailable         the demo world cannot be laid out (a server is not running)
    ├── RunbookError                a runbook file cannot be loaded
    │   └── RunbookValidationError  ... with one Problem per finding (file:line:col)
    ├── TemplateError               a template or condition failed to render or evaluate
    ├── InputError                  a value given for an input fails its validation
    ├── AdapterError                an external system call failed (adapter, step_id)
    │   ├── AdapterNotConfigured    the setting the adapter needs is not set
    │   ├── AdapterUnavailable      connection refused, DNS failure, unreachable
    │   ├── AdapterTimeout          no answer within the configured time
    │   ├── AdapterAuthError        credentials rejected (never printed)
    │   ├── AdapterResponseError    an answer that is an error or not the documented shape
    │   ├── NotFound                the thing asked for does not exist
    │   ├── UnsafeOperation         refused before it ran (read step that writes, max_rows)
    │   └── ShellDisabled           shell steps are off (OPS_ALLOW_SHELL is not true)
    ├── EngineError                 a command the engine cannot carry out
    │   ├── UnknownRun / UnknownStep / UnknownRunbook
    │   ├── InvalidTransition       e.g. a command on a closed run
    │   ├── PermissionDenied        says who may do it
    │   ├── StepBusy                the step is running already
    │   └── LockHeld                another run holds the step's lock
    └── StoreError                  the bot's own store is unreachable or unwritable
        └── Conflict                a concurrent writer got there first; try the command again
"""

from __future__ import annotations


class AgapeError(Exception):
    """Root of every error agape-ops raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(AgapeError):
    """A setting is missing or malformed."""


class DemoUnavailable(ConfigError):
    """The demo world cannot be laid out: a local server is not running, or the place is taken."""


class RunbookError(AgapeError):
    """A runbook file cannot be loaded."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class RunbookValidationError(RunbookError):
    """A runbook was read but does not validate; ``problems`` holds each finding."""

    def __init__(self, problems: list[Problem], *, path: str | None = None) -> None:
        super().__init__("\n".join(str(p) for p in problems), path=path)
        self.problems = problems


class Problem:
    """One finding about a runbook, located by file, line and column (1-based)."""

    __slots__ = ("column", "line", "message", "path")

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class TemplateError(AgapeError):
    """A template or a condition failed to render or evaluate."""


class InputError(AgapeError):
    """A value given for an input fails its validation."""

    def __init__(self, message: str, *, input_name: str | None = None) -> None:
        super().__init__(message)
        self.input_name = input_name


class AdapterError(AgapeError):
    """An external system call failed."""

    def __init__(
        self, message: str, *, adapter: str | None = None, step_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.adapter = adapter
        self.step_id = step_id


class AdapterNotConfigured(AdapterError):
    """The setting an adapter needs is not set."""


class AdapterUnavailable(AdapterError):
    """The system cannot be reached: connection refused, DNS failure, network down."""


class AdapterTimeout(AdapterError):
    """The system did not answer within the configured time."""


class AdapterAuthError(AdapterError):
    """The credentials were rejected; the message never contains them."""


class AdapterResponseError(AdapterError):
    """The system answered with an error or with something other than the documented shape."""

    def __init__(
        self,
        message: str,
        *,
        adapter: str | None = None,
        step_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, adapter=adapter, step_id=step_id)
        self.status_code = status_code


class NotFound(AdapterError):
    """The thing asked for does not exist (a reference, a webhook id)."""


class UnsafeOperation(AdapterError):
    """The call was refused before it ran: a read that writes, too many rows to change."""


class ShellDisabled(AdapterError):
    """Shell steps are disabled (``OPS_ALLOW_SHELL`` is not true)."""


class EngineError(AgapeError):
    """A command the engine cannot carry out."""


class UnknownRunbook(EngineError):
    """No runbook has that id."""


class UnknownRun(EngineError):
    """No run has that id."""


class UnknownStep(EngineError):
    """The runbook has no step with that id."""


class InvalidTransition(EngineError):
    """The command does not apply to the run in its current state."""


class PermissionDenied(EngineError):
    """The actor may not do this; the message says who may."""


class StepBusy(EngineError):
    """The step is already running."""


class LockHeld(EngineError):
    """Another run holds the lock the step declares."""


class StoreError(AgapeError):
    """The bot's own store is unreachable or unwritable."""


class Conflict(StoreError):
    """A concurrent writer got there first (e.g. opened the run for an alert): try again."""
