"""Fingerprints name the incident: stable across status and counts, distinct across labels."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from agape_ops.alerts.fingerprint import fingerprint, identity
from agape_ops.alerts.model import Alert, AlertStatus
from agape_ops.alerts.normalise import from_json, from_slack_event, from_text

FIXTURES = Path(__file__).parent.parent / "fixtures" / "alerts"


def fixture(name: str) -> Alert:
    alert = from_json(json.loads((FIXTURES / f"{name}.json").read_text()))
    assert alert is not None
    return alert


def am(title: str) -> Alert:
    message = {
        "type": "message",
        "subtype": "bot_message",
        "username": "Alertmanager",
        "bot_id": "B0AM",
        "text": "",
        "attachments": [{"title": title}],
        "ts": "1.1",
    }
    alert = from_slack_event(message)
    assert alert is not None
    return alert


def labelled(**labels: str) -> Alert:
    return Alert(source="grafana", title="[FIRING:1] HighErrorRate", labels=labels)


def test_fingerprint_is_short_hex_and_deterministic() -> None:
    alert = fixture("alertmanager_firing")
    first = fingerprint(alert)
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert fingerprint(alert) == first
    assert fingerprint(fixture("alertmanager_firing")) == first


def test_fingerprint_value_is_pinned_so_stored_fingerprints_stay_valid() -> None:
    alert = am("[FIRING:1] HighErrorRate agape-backend (prod api-1 critical)")
    assert identity(alert) == ("higherrorrate", "higherrorrate agape-backend (prod api-1 critical)")
    assert fingerprint(alert) == "341795105f5200ee"


def test_firing_and_resolved_of_one_alertmanager_group_share_a_fingerprint() -> None:
    firing, resolved = fixture("alertmanager_firing"), fixture("alertmanager_resolved")
    assert firing.status is not resolved.status
    assert fingerprint(firing) == fingerprint(resolved)


def test_firing_counts_do_not_change_the_fingerprint() -> None:
    one = am("[FIRING:1] HighErrorRate agape-backend (prod api-1 critical)")
    two = am("[FIRING:2] HighErrorRate agape-backend (prod api-1 critical)")
    spaced = am("[RESOLVED]  highErrorRate   agape-backend (Prod api-1 critical)")
    assert fingerprint(one) == fingerprint(two) == fingerprint(spaced)


def test_alertmanager_alerts_with_different_label_values_differ() -> None:
    api1 = am("[FIRING:1] HighErrorRate agape-backend (prod api-1 critical)")
    api2 = am("[FIRING:1] HighErrorRate agape-backend (prod api-2 critical)")
    other_rule = am("[FIRING:1] PostgresDown agape-backend (prod api-1 critical)")
    assert len({fingerprint(api1), fingerprint(api2), fingerprint(other_rule)}) == 3


def test_labelled_alerts_are_identified_by_alertname_and_identity_labels() -> None:
    base = {"alertname": "HighErrorRate", "service": "agape-backend", "env": "prod"}
    api1 = labelled(**base, instance="api-1", severity="critical")
    api2 = labelled(**base, instance="api-2", severity="critical")
    warning = labelled(**base, instance="api-1", severity="warning")
    assert len({fingerprint(api1), fingerprint(api2), fingerprint(warning)}) == 3
    retitled = api1.model_copy(
        update={"title": "[RESOLVED] anything", "text": "changed", "status": AlertStatus.RESOLVED}
    )
    extra = api1.model_copy(update={"labels": {**api1.labels, "grafana_folder": "Payments"}})
    assert fingerprint(retitled) == fingerprint(api1) == fingerprint(extra)


def test_grafana_firing_and_resolved_share_a_fingerprint() -> None:
    firing = fixture("grafana_firing")
    resolved = firing.model_copy(
        update={"title": "[RESOLVED] HighRequestLatency", "status": AlertStatus.RESOLVED}
    )
    assert fingerprint(firing) == fingerprint(resolved)
    moved = firing.model_copy(update={"labels": {**firing.labels, "service": "cart-api"}})
    assert fingerprint(moved) != fingerprint(firing)


def test_datadog_triggered_and_recovered_share_a_fingerprint() -> None:
    envelope: dict[str, Any] = json.loads((FIXTURES / "datadog_monitor.json").read_text())
    recovered = copy.deepcopy(envelope)
    recovered["event"]["attachments"][0]["title"] = "Recovered: High error rate on checkout-api"
    back = from_json(recovered)
    assert back is not None
    assert back.status is AlertStatus.RESOLVED
    assert fingerprint(back) == fingerprint(fixture("datadog_monitor"))


def test_uptimerobot_down_and_up_share_a_fingerprint() -> None:
    down = fixture("uptimerobot_down")
    up = from_text("Monitor is UP: checkout.example.com")
    up = up.model_copy(update={"labels": dict(down.labels), "source": "uptimerobot"})
    assert up.status is AlertStatus.RESOLVED
    assert fingerprint(up) == fingerprint(down)


def test_sentry_issue_and_its_resolution_edit_share_a_fingerprint() -> None:
    envelope: dict[str, Any] = json.loads((FIXTURES / "sentry_issue.json").read_text())
    original = envelope["event"]
    edited = copy.deepcopy(original)
    edited["blocks"][4]["elements"][0]["text"] = "State: *Resolved*"
    change = {"type": "message", "subtype": "message_changed", "message": edited}
    resolved = from_slack_event(change | {"previous_message": original, "channel": "C1"})
    assert resolved is not None
    assert resolved.status is AlertStatus.RESOLVED
    assert fingerprint(resolved) == fingerprint(fixture("sentry_issue"))


def test_typed_alerts_match_on_normalised_title() -> None:
    assert fingerprint(from_text("Checkout  is DOWN")) == fingerprint(from_text("checkout is down"))
    assert fingerprint(from_text("Firing: checkout is down")) == fingerprint(
        from_text("Resolved: checkout is down")
    )
    assert fingerprint(from_text("checkout is down")) != fingerprint(from_text("cart is down"))


def test_untitled_alert_is_identified_by_its_first_text_line() -> None:
    one = Alert(text="queue backlog on email\nmore detail")
    two = Alert(text="queue backlog on email\nother detail")
    assert fingerprint(one) == fingerprint(two)
    assert fingerprint(one) != fingerprint(Alert(text="stock below zero"))
