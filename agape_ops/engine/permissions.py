"""Who may do what: anyone reads, responders write, approvers do dangerous things."""

from __future__ import annotations

from collections.abc import Iterable
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
        if step.risk is Risk.READ:
            return True
        if step.risk is Risk.WRITE:
            return actor in self.responders or actor in self.approvers
        return actor in self.approvers

    def may_respond(self, actor: str) -> bool:
        """Say whether the actor may change a run's state (resolve, close)."""
        return actor in self.responders or actor in self.approvers

    def refusal(self, step: Step) -> str:
        """Say why a step was refused and who may run it."""
        if step.risk is Risk.DANGEROUS:
            who, names = "an approver", self.approvers
        else:
            who, names = "a responder", self.responders | self.approvers
        listed = ", ".join(sorted(names)) if names else "nobody is configured"
        return f"“{step.button or step.title}” requires {who} ({listed})"
