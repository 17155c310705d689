"""One handler per command, as in a message bus: the composition root passes the registry in.

A handler takes the engine (its store, adapters, permissions, clock) and its command, and does
its work inside units of work. Most commands need exactly one: ``in_one_unit`` wraps such a
decision (lock the run, claim the key, check, change, record, store the outcome) into a handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from agape_ops.engine.commands import (
    Acknowledge,
    AddNote,
    Escalate,
    MarkItemDone,
    OpenForAlert,
    Outcome,
    ProvideInput,
    Recheck,
    RecordSurface,
    Remind,
    RunStep,
    SetState,
    SkipStep,
    StartRun,
)
from agape_ops.engine.handlers import opening, run_record, stepping, watching
from agape_ops.engine.unit import Unit

if TYPE_CHECKING:  # the engine imports the registry to build its default
    from agape_ops.engine.engine import Engine, Handler


Decision = Callable[["Engine", Unit, Any], Awaitable[Outcome]]


def in_one_unit(decide: Decision) -> Handler:
    """Make a handler that runs ``decide`` inside one unit of work with the command's key."""

    async def handle(engine: Engine, command: Any) -> Outcome:
        async with engine.unit() as unit:
            await unit.claim(command.key, getattr(command, "run_id", None))
            outcome = await decide(engine, unit, command)
            await unit.finish(command.key, outcome)
        outcome.events = unit.events
        return outcome

    return handle


def default_handlers() -> dict[type, Handler]:
    """Return the handler of every command the engine knows."""
    return {
        StartRun: opening.start_run,
        OpenForAlert: opening.open_for_alert,
        RunStep: stepping.run_step,
        Acknowledge: in_one_unit(run_record.acknowledge),
        MarkItemDone: in_one_unit(run_record.mark_item),
        SkipStep: in_one_unit(run_record.skip),
        ProvideInput: in_one_unit(run_record.provide_input),
        SetState: in_one_unit(run_record.set_state),
        AddNote: in_one_unit(run_record.note),
        RecordSurface: in_one_unit(run_record.record_surface),
        Escalate: in_one_unit(watching.escalate),
        Recheck: watching.recheck,
        Remind: in_one_unit(watching.remind),
    }
