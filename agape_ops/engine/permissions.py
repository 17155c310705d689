"""Who may do what: anyone reads, responders write, approvers do dangerous things."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agape_ops.runbooks.model import Risk, Step


@dataclass(frozen=True)
class Permissions:
    """Responders and approvers by Slack user id (or console user name).

    Approvers may do everything responders may. With nobody configured, nobody may change
    anything: a refusal is safer than an unguarded button.
    """

    responders: frozenset[str] = frozenset()
    approvers: frozenset[str] = frozenset()

    @classmethod
    def of(cls, responders: Iterable[str], approvers: Iterable[str]) -> Permissions:
        return cls(frozenset(responders), frozenset(approvers))

    def may_run(self, actor: str, step: Step) -> bool:
        """Say whether the actor may run a step: a shell step needs a responder whatever risk
        it declares, since a command line can do anything its program can."""
        if step.risk is Risk.READ and step.shell is None:
            return True
        if step.risk is Risk.WRITE:
            return actor in self.responders or actor in self.approvers
        return actor in self.approvers

    def may_respond(self, actor: str) -> bool:
        """Say whether the actor may change a run's state (resolve, close)."""
        return actor in self.responders or actor in self.approvers

    def responder_names(self) -> str:
        """Name who may respond (responders and approvers), or say nobody is configured."""
        names = self.responders | self.approvers
        return ", ".join(sorted(names)) if names else "nobody is configured"

    def refusal(self, step: Step) -> str:
        """Say why a step was refused and who may run it."""
        if step.risk is Risk.DANGEROUS:
            who, names = "an approver", self.approvers
        else:
            who, names = "a responder", self.responders | self.approvers
        listed = ", ".join(sorted(names)) if names else "nobody is configured"
        return f"“{step.button or step.title}” requires {who} ({listed})"


def approval_subject(step: Step, shown_inputs: Mapping[str, str]) -> str:
    """Return what a two-person approval approves: the step with these input values.

    Two approvals count together only when they approved the same values. Inputs come as
    shown (secret ones masked), so a secret value is not bound and never reaches the store.
    """
    if not shown_inputs:
        return step.id
    values = json.dumps(dict(shown_inputs), sort_keys=True)
    return f"{step.id}@{hashlib.sha256(values.encode()).hexdigest()[:16]}"
