"""Pick the runbook an alert calls for: a pure, deterministic function with a reason."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from agape_ops.alerts.model import Alert
from agape_ops.runbooks.model import Runbook, Trigger

#: How much each kind of evidence weighs; an exact rule name beats any amount of prose.
ALERTNAME_LABEL = 100
ALERTNAME_IN_TITLE = 90
PER_LABEL = 10
TEXT_MATCH = 20


@dataclass(frozen=True)
class Match:
    """The runbook chosen for an alert, how strongly, and why (in words)."""

    runbook: Runbook
    score: int
    reason: str


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _word(name: str) -> re.Pattern[str]:
    return _regex(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])")


def score_trigger(trigger: Trigger, alert: Alert) -> tuple[int, str] | None:
    """Return (score, reason) when every key of ``trigger`` matches ``alert``, else None."""
    score = 0
    reasons: list[str] = []
    if trigger.alertname:
        if (alert.alertname or "").lower() == trigger.alertname.lower():
            score += ALERTNAME_LABEL
            reasons.append(f"alertname={trigger.alertname}")
        elif _word(trigger.alertname).search(alert.title):
            score += ALERTNAME_IN_TITLE
            reasons.append(f"title names {trigger.alertname}")
        else:
            return None
    for key, expected in sorted(trigger.labels.items()):
        if alert.labels.get(key, "").lower() != expected.lower():
            return None
        score += PER_LABEL
        reasons.append(f"{key}={expected}")
    if trigger.text:
        haystack = f"{alert.title}\n{alert.text}"
        try:
            found = _regex(trigger.text).search(haystack)
        except re.error:
            return None
        if not found:
            return None
        score += TEXT_MATCH
        reasons.append(f"text matches “{found.group(0).strip()[:60]}”")
    return score, ", ".join(reasons)


def match_alert(alert: Alert, runbooks: Iterable[Runbook]) -> Match | None:
    """Return the best runbook for ``alert``, or None when no trigger matches.

    Highest score wins; ties go to the more severe runbook, then to the id in alphabetical
    order, so the same alert always picks the same runbook.
    """
    best: tuple[int, str, str] | None = None
    chosen: Match | None = None
    for runbook in runbooks:
        for trigger in runbook.triggers:
            scored = score_trigger(trigger, alert)
            if scored is None:
                continue
            score, reason = scored
            key = (-score, runbook.severity.value, runbook.id)
            if best is None or key < best:
                best = key
                chosen = Match(runbook=runbook, score=score, reason=reason)
    return chosen
