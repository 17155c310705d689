"""Name "the same incident": a short digest that the firing and resolved messages share.

An alert is identified by its rule (the ``alertname`` label, or the alert word of a
``[FIRING:n] <alertname> ...`` title) and the labels that tell its instances apart. When those
labels are missing (Alertmanager's default template carries label values only, in the title),
the title itself stands in, stripped of its status prefix and count, so ``[FIRING:1] X``,
``[FIRING:2] X`` and ``[RESOLVED] X`` agree while ``X (api-1)`` and ``X (api-2)`` do not.
"""

from __future__ import annotations

import hashlib
import re

from agape_ops.alerts.model import Alert
from agape_ops.alerts.prose import BRACKET, strip_status

#: Labels that tell two incidents of one rule apart. The first four are the ones every Agape
#: alert carries; ``project``, ``issue`` and ``monitor`` are Sentry's and UptimeRobot's.
IDENTITY_LABELS = ("service", "severity", "env", "instance", "project", "issue", "monitor")

#: Hex digits kept of the SHA-256 digest: 64 bits, short enough to show, long enough not to clash.
LENGTH = 16


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _alert_word(title: str) -> str:
    match = BRACKET.match(title)
    words = match.group("rest").split() if match else []
    return words[0] if words else ""


def identity(alert: Alert) -> tuple[str, ...]:
    """Return the normalised parts the fingerprint digests (rule, identity labels, title)."""
    name = _norm(alert.labels.get("alertname") or _alert_word(alert.title))
    labels = tuple(
        f"{key}={_norm(alert.labels[key])}" for key in IDENTITY_LABELS if alert.labels.get(key)
    )
    if name and labels:
        return (name, *labels)
    headline = alert.title or alert.text.strip().partition("\n")[0]
    return (name, *labels, _norm(strip_status(headline)))


def fingerprint(alert: Alert) -> str:
    """Return a stable short hex digest naming the incident ``alert`` belongs to."""
    key = "\x1f".join(identity(alert))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:LENGTH]
