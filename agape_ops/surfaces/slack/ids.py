"""The names of the bot's buttons, menus and modals, and the small values they carry.

A button's value says which run and step it acts on and what its presser saw (how many times
the step had run), never a secret and never more than Slack keeps (2,000 characters). Values
come back from Slack in a payload anyone could forge: ``decode`` reads them defensively and the
engine checks every command they become.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from agape_ops.errors import InputError

#: Every interactive element the bot builds has an action id starting with this.
PREFIX = "ops."

STEP = "ops.step"  # run a step (value: run, step, attempts seen)
ROW = "ops.row"  # a follow-up on one row of a result (value: run, step, inputs, attempts)
CHECKLIST = "ops.checklist"  # open a checklist's items to tick them
ACK = "ops.ack"
MITIGATED = "ops.mitigated"
RESOLVE = "ops.resolve"
CLOSE = "ops.close"
EXPORT = "ops.export"
START = "ops.start"  # the runbook menu offered under an alert no runbook matches
#: The menu's block id: this, then the alert's fingerprint.
START_BLOCK = "start."
_FINGERPRINT = re.compile(r"[0-9a-f]{8,64}")

#: Modals' callback ids.
STEP_FORM = "ops.step_form"
CHECKLIST_FORM = "ops.checklist_form"

#: The action id of the one element inside each input block of a modal.
VALUE = "value"

MAX_VALUE = 2000


def action_id(kind: str, value: str) -> str:
    """Return a button's action id: its kind and a digest of its value, since Slack wants
    action ids unique within a block (``ops.step:3f2a...``)."""
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"{kind}:{digest}"


def fingerprint_of(block_id: object) -> str | None:
    """Return the alert fingerprint a runbook menu's block id carries, or None."""
    if not isinstance(block_id, str) or not block_id.startswith(START_BLOCK):
        return None
    found = block_id[len(START_BLOCK) :]
    return found if _FINGERPRINT.fullmatch(found) else None


def kind_of(action: str) -> str:
    """Return the kind of a button from its action id (``ops.step``)."""
    return action.split(":", 1)[0]


@dataclass(frozen=True)
class Target:
    """What a button or modal acts on."""

    run_id: str
    step_id: str | None = None
    seen: int | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    channel: str | None = None
    thread_ts: str | None = None

    def encode(self) -> str:
        data: dict[str, Any] = {"r": self.run_id}
        if self.step_id is not None:
            data["s"] = self.step_id
        if self.seen is not None:
            data["n"] = self.seen
        if self.inputs:
            data["i"] = self.inputs
        if self.channel:
            data["c"] = self.channel
        if self.thread_ts:
            data["t"] = self.thread_ts
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if len(text) > MAX_VALUE:
            raise InputError("this row's values are too long for a Slack button")
        return text


def decode(text: object) -> Target:
    """Read a button's value or a modal's metadata; raise InputError on anything else."""
    try:
        data = json.loads(text) if isinstance(text, str) and len(text) <= 3000 else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("r"), str):
        raise InputError("this button is not one the bot made; use the run's card")
    step = data.get("s")
    seen = data.get("n")
    inputs = data.get("i") or {}
    if not isinstance(inputs, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()
    ):
        raise InputError("this button's values are not readable; use the run's card")
    return Target(
        run_id=data["r"],
        step_id=step if isinstance(step, str) else None,
        seen=seen if isinstance(seen, int) and not isinstance(seen, bool) else None,
        inputs=dict(inputs),
        channel=data["c"] if isinstance(data.get("c"), str) else None,
        thread_ts=data["t"] if isinstance(data.get("t"), str) else None,
    )
