"""Turn a parsed `/ops` subcommand on a run into the engine commands it means.

Every surface does this the same way: the console and Slack parse what a person typed with
``ops_command.parse`` and get their commands here. Subcommands that are conversations (``run``
asks for inputs and a confirmation, ``status`` and ``timeline`` only show) stay with the
surface; this module covers those that map straight onto commands.
"""

from __future__ import annotations

from collections.abc import Callable

from agape_ops.engine.commands import (
    Acknowledge,
    AddNote,
    Command,
    MarkItemDone,
    ProvideInput,
    SetState,
    SkipStep,
)
from agape_ops.engine.views import RunView
from agape_ops.errors import InputError
from agape_ops.surfaces.ops_command import OpsCommand

#: Subcommands that move a run along its life, and the state each asks for.
STATE_OF = {"mitigated": "mitigated", "resolve": "resolved", "close": "closed"}
#: Subcommands ``commands_for`` turns into commands.
DIRECT = frozenset({"ack", "note", "input", "skip", "done", *STATE_OF})


def commands_for(
    ops: OpsCommand, view: RunView, actor: str, new_key: Callable[[], str]
) -> list[Command]:
    """Return the commands a run-scoped subcommand sends, in order (each with its own key).

    Raise ``UnknownStep`` or ``InputError`` when the step or items named do not exist.
    """
    run_id = view.run.id
    name = ops.name
    if name == "ack":
        return [Acknowledge(run_id, actor, new_key())]
    if name in STATE_OF:
        state = STATE_OF[name]
        return [SetState(run_id, state, actor, new_key(), note=ops.text, confirmed=ops.confirmed)]
    if name == "note":
        return [AddNote(run_id, ops.text, actor, new_key())]
    if name == "input":
        return [ProvideInput(run_id, k, v, actor, new_key()) for k, v in ops.inputs.items()]
    step = view.step(ops.target or "")
    if name == "skip":
        return [SkipStep(run_id, step.id, actor, new_key(), reason=ops.text)]
    if name == "done":
        if not step.is_checklist:
            raise InputError(f"“{step.title}” is not a checklist; run it with its number")
        numbers = ops.items or tuple(item.number for item in step.items)
        wrong = [n for n in numbers if not 1 <= n <= len(step.items)]
        if wrong:
            raise InputError(f"“{step.title}” has items 1-{len(step.items)}")
        return [MarkItemDone(run_id, step.id, n - 1, actor, new_key()) for n in numbers]
    raise InputError(f"`{name}` is not a command on a run")
