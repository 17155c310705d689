"""Slack message events, typed text and JSON become Alerts; non-alerts become None."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from agape_ops.alerts.limits import MAX_DEPTH, structure_problem
from agape_ops.alerts.model import Alert, AlertStatus
from agape_ops.alerts.normalise import from_json, from_slack_event, from_text
from agape_ops.alerts.prose import plain
from agape_ops.runbooks.model import Trigger
from agape_ops.runbooks.triggers import score_trigger

FIXTURES = Path(__file__).parent.parent / "fixtures" / "alerts"
OWN_BOT, OWN_USER = "B07INCIDBOT", "U07INCIDBOT"


def envelope(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = envelope(name)["event"]
    return data


def parsed(message: dict[str, Any]) -> Alert:
    alert = from_slack_event(message, own_bot_id=OWN_BOT, own_user_id=OWN_USER)
    assert alert is not None
    return alert


def bot_message(title: str, *, username: str = "Alertmanager", **attachment: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "bot_message",
        "text": "",
        "username": username,
        "bot_id": "B0OTHER",
        "attachments": [{"title": title, "text": "", **attachment}],
        "ts": "1722600000.000100",
        "channel": "C07ALERTS01",
    }


def person(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "user": "U0PERSON",
        "text": text,
        "ts": "1722600100.000100",
        "channel": "C07ALERTS01",
        **extra,
    }


# --- the captured integrations ----------------------------------------------------------------


def test_alertmanager_firing_takes_alertname_from_the_first_title_word() -> None:
    alert = parsed(event("alertmanager_firing"))
    assert alert.source == "alertmanager"
    assert alert.title == (
        "[FIRING:2] KubePodCrashLooping payments (prod-eu-1 api kube-state-metrics critical)"
    )
    assert alert.status is AlertStatus.FIRING
    assert alert.labels == {"alertname": "KubePodCrashLooping"}
    assert alert.link == "http://alertmanager.monitoring.svc:9093/#/alerts?receiver=slack-incidents"
    assert (alert.channel, alert.ts) == ("C07ALERTS01", "1722500000.000100")


def test_alertmanager_resolved_title_gives_resolved_status() -> None:
    alert = parsed(event("alertmanager_resolved"))
    assert alert.status is AlertStatus.RESOLVED
    assert alert.alertname == "KubePodCrashLooping"
    assert alert.ts == "1722501800.000200"


def test_alertmanager_green_colour_alone_means_resolved() -> None:
    alert = parsed(bot_message("KubePodCrashLooping payments", color="2eb886"))
    assert alert.status is AlertStatus.RESOLVED
    assert parsed(bot_message("KubePodCrashLooping", color="a30200")).status is AlertStatus.FIRING


def test_agape_rule_alert_carries_its_alertname_for_trigger_matching() -> None:
    alert = parsed(bot_message("[FIRING:1] HighErrorRate agape-backend (prod api-1 critical)"))
    assert alert.source == "alertmanager"
    assert alert.labels == {"alertname": "HighErrorRate"}
    assert "api-1" in alert.title
    scored = score_trigger(Trigger(alertname="HighErrorRate"), alert)
    assert scored is not None
    assert scored[1] == "alertname=HighErrorRate"


def test_grafana_reads_labels_values_and_annotations_from_the_text() -> None:
    alert = parsed(event("grafana_firing"))
    assert alert.source == "grafana"
    assert alert.title == "[FIRING:1] HighRequestLatency Payments (prod checkout-api critical)"
    assert alert.status is AlertStatus.FIRING
    assert alert.labels == {
        "alertname": "HighRequestLatency",
        "env": "prod",
        "grafana_folder": "Payments",
        "service": "checkout-api",
        "severity": "critical",
    }
    assert alert.values == {"A": 2.734, "C": 1.0}
    assert "p95 latency above 2s for 5m on checkout-api" in alert.text
    assert not alert.text.startswith("**Firing**")
    assert alert.link == "https://grafana.example.com/alerting/grafana/ddq2x8b1z3ke8c/view?orgId=1"


def test_grafana_resolved_and_legacy_value_format() -> None:
    message = event("grafana_firing")
    att = message["attachments"][0]
    att["title"] = att["title"].replace("[FIRING:1]", "[RESOLVED]")
    att["text"] = (
        att["text"]
        .replace("**Firing**", "**Resolved**")
        .replace(
            "Value: A=2.734, C=1",
            "Value: [ var='A' labels={service=checkout-api} value=0.5 ], "
            "[ var='C' labels={} value=0 ]",
        )
    )
    alert = parsed(message)
    assert alert.status is AlertStatus.RESOLVED
    assert alert.values == {"A": 0.5, "C": 0.0}


def test_grafana_group_of_two_takes_the_first_alerts_labels() -> None:
    body = (
        "**Firing**\n\nValue: A=9\nLabels:\n - alertname = HighErrorRate\n - instance = api-1\n"
        "Annotations:\n - summary = first\n - ratio = 0.25\n\n"
        "Value: A=4\nLabels:\n - alertname = HighErrorRate\n - instance = api-2\n"
    )
    alert = parsed(bot_message("[FIRING:2] HighErrorRate", username="Grafana", text=body))
    assert alert.labels == {"alertname": "HighErrorRate", "instance": "api-1"}
    assert alert.values == {"A": 9.0, "ratio": 0.25}


def test_datadog_triggered_fires_with_error_rate_ratio_and_scope_labels() -> None:
    alert = parsed(event("datadog_monitor"))
    assert alert.source == "datadog"
    assert alert.title == "Triggered: High error rate on checkout-api"
    assert alert.status is AlertStatus.FIRING
    assert alert.values["error_rate"] == 0.072
    assert alert.values["threshold"] == 0.05
    assert alert.labels == {"service": "checkout-api"}
    assert alert.text.startswith("Error rate for checkout-api is 7.2%")
    assert "@slack-acme-alerts" not in alert.text
    assert alert.link is not None
    assert alert.link.startswith("https://app.datadoghq.com/monitors/123456789")


@pytest.mark.parametrize(
    ("prefix", "status"),
    [
        ("Recovered", AlertStatus.RESOLVED),
        ("Re-Triggered", AlertStatus.FIRING),
        ("Warn", AlertStatus.FIRING),
        ("No data", AlertStatus.FIRING),
    ],
)
def test_datadog_title_prefix_sets_status(prefix: str, status: AlertStatus) -> None:
    message = event("datadog_monitor")
    message["attachments"][0]["title"] = f"{prefix}: High error rate on checkout-api"
    alert = parsed(message)
    assert alert.source == "datadog"
    assert alert.status is status


def test_datadog_scope_in_title_becomes_labels() -> None:
    title = "Triggered on {service:checkout-api,env:prod}: Latency high"
    alert = parsed(bot_message(title, username="Datadog"))
    assert alert.labels == {"service": "checkout-api", "env": "prod"}
    assert "error_rate" not in alert.values


def test_sentry_reads_title_tags_and_project_from_blocks() -> None:
    alert = parsed(event("sentry_issue"))
    assert alert.source == "sentry"
    assert alert.title == "ZeroDivisionError"
    assert alert.status is AlertStatus.FIRING
    assert alert.labels == {
        "environment": "production",
        "level": "error",
        "project": "payments-api",
        "rule": "Prod error spike",
        "issue": "PAYMENTS-API-3F",
    }
    assert "billing.tax in compute_tax" in alert.text
    assert "division by zero" in alert.text
    assert "`" not in alert.text
    assert alert.link is not None
    assert alert.link.startswith("https://acme.sentry.io/issues/4509812345/")


def sentry_resolution() -> dict[str, Any]:
    original = event("sentry_issue")
    edited = copy.deepcopy(original)
    context = edited["blocks"][4]["elements"][0]
    context["text"] = "State: *Resolved*   First Seen: *9 minutes ago*"
    edited["blocks"][5]["elements"][0]["action_id"] = "unresolved"
    edited["edited"] = {"user": "U0PERSON", "ts": "1722500900.000000"}
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "message": edited,
        "previous_message": original,
        "channel": "C07ALERTS01",
        "ts": "1722500900.000900",
    }


def test_sentry_resolution_edit_is_resolved_and_keeps_the_original_ts() -> None:
    alert = parsed(sentry_resolution())
    assert alert.source == "sentry"
    assert alert.status is AlertStatus.RESOLVED
    assert alert.title == "ZeroDivisionError"
    assert (alert.channel, alert.ts) == ("C07ALERTS01", "1722500245.000400")


def test_uptimerobot_down_names_the_monitor_and_status_code() -> None:
    alert = parsed(event("uptimerobot_down"))
    assert alert.source == "uptimerobot"
    assert alert.title == "Monitor is DOWN: checkout.example.com"
    assert alert.status is AlertStatus.FIRING
    assert alert.labels == {
        "monitor": "checkout.example.com",
        "url": "https://checkout.example.com/healthz",
    }
    assert alert.values == {"status_code": 503}
    assert "Reason: HTTP 503 - Service Unavailable" in alert.text


def test_uptimerobot_up_is_resolved() -> None:
    message = event("uptimerobot_down")
    message["text"] = (
        "Monitor is UP: checkout.example.com ( https://checkout.example.com/healthz ) "
        "- It was down for 0 hours, 5 minutes and 2 seconds."
    )
    alert = parsed(message)
    assert alert.status is AlertStatus.RESOLVED
    assert alert.labels["monitor"] == "checkout.example.com"
    assert "status_code" not in alert.values


def test_uptimerobot_monitor_names_keep_their_hyphens() -> None:
    with_url = parsed(
        bot_message("", username="UptimeRobot")
        | {
            "text": "Monitor is DOWN: agape-backend ( https://api.agapelooks.com/healthz ) "
            "- Reason: HTTP 503",
            "attachments": [],
        }
    )
    assert with_url.title == "Monitor is DOWN: agape-backend"
    assert with_url.labels == {
        "monitor": "agape-backend",
        "url": "https://api.agapelooks.com/healthz",
    }
    assert with_url.values == {"status_code": 503}
    without_url = parsed(
        bot_message("", username="UptimeRobot")
        | {"text": "Monitor is DOWN: agape-admin - Reason: Connection Timeout", "attachments": []}
    )
    assert without_url.labels == {"monitor": "agape-admin"}
    assert without_url.text == "Reason: Connection Timeout"


def test_every_fixture_parses_to_its_source() -> None:
    sources = {path.stem: parsed(event(path.stem)).source for path in FIXTURES.glob("*.json")}
    assert sources == {
        "alertmanager_firing": "alertmanager",
        "alertmanager_resolved": "alertmanager",
        "datadog_monitor": "datadog",
        "grafana_firing": "grafana",
        "sentry_issue": "sentry",
        "uptimerobot_down": "uptimerobot",
    }


# --- what is not an alert ---------------------------------------------------------------------


def test_own_posts_are_ignored_by_bot_id_user_id_or_profile() -> None:
    by_bot = bot_message("[FIRING:1] HighErrorRate") | {"bot_id": OWN_BOT}
    by_user = person("Started runbook high-error-rate", user=OWN_USER)
    by_profile = event("grafana_firing") | {"bot_profile": {"id": OWN_BOT, "name": "agape-ops"}}
    for message in (by_bot, by_user, by_profile):
        assert from_slack_event(message, own_bot_id=OWN_BOT, own_user_id=OWN_USER) is None
    assert from_slack_event(by_bot) is not None


def test_thread_replies_are_ignored_but_a_thread_parent_is_read() -> None:
    reply = person("HighErrorRate again", thread_ts="1722600000.000100")
    assert from_slack_event(reply) is None
    parent = person("HighErrorRate again", thread_ts="1722600100.000100")
    assert parsed(parent).title == "HighErrorRate again"


@pytest.mark.parametrize(
    "subtype", ["message_deleted", "channel_join", "channel_leave", "channel_topic", "tombstone"]
)
def test_housekeeping_subtypes_are_ignored(subtype: str) -> None:
    assert from_slack_event(person("<@U0PERSON> has joined the channel", subtype=subtype)) is None


def test_messages_without_text_anywhere_are_ignored() -> None:
    assert from_slack_event(person("")) is None
    assert from_slack_event(person("   ")) is None
    empty = bot_message("") | {"blocks": [{"type": "divider"}]}
    assert from_slack_event(empty) is None
    assert from_slack_event({"type": "reaction_added", "text": "HighErrorRate"}) is None


def test_edit_that_changes_nothing_visible_is_ignored() -> None:
    original = event("alertmanager_firing")
    grown = original | {"reply_count": 3, "latest_reply": "1722500100.000000"}
    change = {"type": "message", "subtype": "message_changed", "message": grown}
    assert from_slack_event(change | {"previous_message": original}) is None
    assert from_slack_event(change) is not None
    assert from_slack_event({"type": "message", "subtype": "message_changed"}) is None


def test_edit_that_leaves_the_alert_firing_is_ignored_but_a_change_of_status_is_read() -> None:
    typed = person("Seeing lots of 5xx on checkout <https://grafana.example.com/d/x>")
    preview = {"title": "Checkout - Grafana", "from_url": "https://grafana.example.com/d/x"}
    unfurled = typed | {"attachments": [preview]}
    change = {"type": "message", "subtype": "message_changed", "channel": "C07ALERTS01"}
    assert from_slack_event(change | {"message": unfurled, "previous_message": typed}) is None
    resolved = sentry_resolution()
    assert parsed(resolved).status is AlertStatus.RESOLVED
    reopened = resolved | {"message": resolved["previous_message"]}
    reopened["previous_message"] = resolved["message"]
    assert parsed(reopened).status is AlertStatus.FIRING


def test_edit_of_own_message_or_of_a_thread_reply_is_ignored() -> None:
    own = {"type": "message", "subtype": "message_changed", "message": person("x", user=OWN_USER)}
    assert from_slack_event(own, own_user_id=OWN_USER) is None
    reply = person("now 9%", thread_ts="1722600000.000100")
    edit = {"type": "message", "subtype": "message_changed", "message": reply}
    assert from_slack_event(edit) is None


# --- people and plain text ----------------------------------------------------------------------


def test_person_message_title_is_first_line_and_key_value_tokens_are_labels() -> None:
    alert = parsed(
        person("Checkout is throwing 500s\nalertname=HighErrorRate service=api, 5xx rate is 3.4%")
    )
    assert alert.source == "text"
    assert alert.title == "Checkout is throwing 500s"
    assert alert.text == "alertname=HighErrorRate service=api, 5xx rate is 3.4%"
    assert alert.labels == {"alertname": "HighErrorRate", "service": "api"}
    assert alert.values == {"error_rate": 0.034}
    assert alert.status is AlertStatus.FIRING


def test_person_rich_text_is_read_when_text_is_empty_and_not_doubled_otherwise() -> None:
    blocks = [
        {
            "type": "rich_text",
            "elements": [
                {
                    "type": "rich_text_section",
                    "elements": [
                        {"type": "text", "text": "Payments failing ", "style": {"bold": True}},
                        {"type": "user", "user_id": "U0ONCALL"},
                        {"type": "link", "url": "https://status.paystack.com"},
                    ],
                },
                {
                    "type": "rich_text_list",
                    "elements": [
                        {"type": "rich_text_section", "elements": [{"type": "text", "text": "a"}]}
                    ],
                },
            ],
        }
    ]
    alert = parsed(person("", blocks=blocks))
    assert alert.title == "Payments failing @U0ONCALLhttps://status.paystack.com"
    assert alert.text == "- a"
    doubled = parsed(person("Payments failing", blocks=blocks))
    assert (doubled.title, doubled.text) == ("Payments failing", "")


def test_person_pasting_an_alertmanager_title_gets_alertname_and_status() -> None:
    alert = parsed(person("[RESOLVED] PostgresDown agape-backend (prod db-1 critical)"))
    assert alert.source == "text"
    assert alert.labels == {"alertname": "PostgresDown"}
    assert alert.status is AlertStatus.RESOLVED


def test_unknown_bot_is_read_by_the_shape_of_its_title() -> None:
    shaped = parsed(bot_message("[FIRING:1] EmailQueueBacklog", username="relay"))
    assert shaped.source == "alertmanager"
    assert shaped.alertname == "EmailQueueBacklog"
    prose = parsed(bot_message("Queue is backing up service=queue-workers", username="My Relay"))
    assert prose.source == "my-relay"
    assert prose.labels == {"service": "queue-workers"}


def test_attachment_fields_and_pretext_reach_the_text() -> None:
    message = bot_message(
        "NegativeStock",
        username="Custom",
        pretext="Inventory",
        fields=[{"title": "SKU", "value": "TSHIRT-M", "short": True}],
    )
    alert = parsed(message)
    assert alert.title == "NegativeStock"
    assert alert.text == "Inventory\nSKU: TSHIRT-M"


def test_section_and_context_blocks_are_read_for_app_messages() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "PaymentGatewayOutage"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Webhook failure rate* is high"},
            "fields": [{"type": "mrkdwn", "text": "*env*\nprod"}],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "<https://g.example|Grafana>"}],
        },
    ]
    message = {"type": "message", "bot_id": "B0APP", "text": "", "blocks": blocks, "ts": "1.2"}
    alert = parsed(message)
    assert alert.title == "PaymentGatewayOutage"
    assert alert.text == "Webhook failure rate is high\nenv\nprod\nGrafana"


@pytest.mark.parametrize(
    ("mrkdwn", "text"),
    [
        ("see <https://grafana.example/d/1|the dashboard>", "see the dashboard"),
        ("see <https://grafana.example/d/1>", "see https://grafana.example/d/1"),
        (
            "ping <@U123> and <@U9|bob> in <#C1|alerts> <!here>",
            "ping @U123 and @bob in #alerts @here",
        ),
        ("*bold* and _italic_ and ~gone~", "bold and italic and gone"),
        ("error_rate_total stays, 2*3*4 stays", "error_rate_total stays, 2*3*4 stays"),
        ("a &amp; b &lt;c&gt;", "a & b <c>"),
        ("```division by zero``` in `compute_tax`", "division by zero in compute_tax"),
    ],
)
def test_mrkdwn_becomes_plain_text(mrkdwn: str, text: str) -> None:
    assert plain(mrkdwn) == text


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("error rate 7%", 0.07),
        ("5xx rate is 3.4%", 0.034),
        ("error_rate=0.034", 0.034),
        ("Error rate for api-1 is 7.2% (threshold 2%)", 0.072),
        ("HTTP 5xx error rate of 12.5 percent", 0.125),
        ("error rate is 7", 0.07),
        ("error rate 0.5%", 0.005),
    ],
)
def test_error_rate_is_read_as_a_ratio(text: str, rate: float) -> None:
    assert from_text(text).values["error_rate"] == rate


@pytest.mark.parametrize(
    "text",
    ["error rate over the last 10m is high", "error rate normal. disk 95%", "HighErrorRate 7%"],
)
def test_error_rate_is_not_guessed_from_unrelated_figures(text: str) -> None:
    assert "error_rate" not in from_text(text).values


def test_from_text_reads_quoted_tokens_and_skips_urls() -> None:
    alert = from_text('db slow instance="db 1" severity=critical see https://x.example/?a=b')
    assert alert.labels == {"instance": "db 1", "severity": "critical"}
    assert alert.values == {}
    assert (alert.source, alert.channel, alert.ts) == ("text", None, None)


def test_from_text_numeric_tokens_are_also_values() -> None:
    alert = from_text("EmailQueueBacklog pending=240 ratio=12.5%")
    assert alert.labels == {"pending": "240", "ratio": "12.5%"}
    assert alert.values == {"pending": 240, "ratio": 0.125}


def test_from_text_status_words() -> None:
    assert from_text("Resolved: payments back").status is AlertStatus.RESOLVED
    assert from_text("Recovered: High error rate").status is AlertStatus.RESOLVED
    assert from_text("payments are failing").status is AlertStatus.FIRING


# --- odd and hostile payloads -----------------------------------------------------------------


@pytest.mark.parametrize("subtype", [{"name": "bot_message"}, ["bot_message"], 7])
def test_a_subtype_that_is_not_a_string_is_not_an_alert(subtype: Any) -> None:
    assert from_slack_event(person("HighErrorRate on api", subtype=subtype)) is None


def test_rich_text_nested_deeper_than_the_stack_is_turned_away_without_crashing() -> None:
    element: dict[str, Any] = {"type": "text", "text": "lost in the depths"}
    for _ in range(600):
        element = {"type": "rich_text_section", "elements": [element]}
    message = bot_message("[FIRING:1] HighErrorRate", username="Prometheus") | {
        "blocks": [{"type": "rich_text", "elements": [element]}]
    }
    assert from_slack_event(message, own_bot_id=OWN_BOT, own_user_id=OWN_USER) is None
    assert structure_problem(message) == f"the alert nests deeper than {MAX_DEPTH} levels"
    near = {"type": "rich_text_section", "elements": [{"type": "text", "text": "near the top"}]}
    shallow = message | {"blocks": [{"type": "rich_text", "elements": [near]}]}
    assert "near the top" in parsed(shallow).text


@pytest.mark.parametrize(
    "message",
    [
        bot_message("", username="UptimeRobot")
        | {"text": "Monitor is DOWN: api" + " " * 1500 + "!", "attachments": []},
        bot_message("", username="Grafana")
        | {"text": "[FIRING:1] X\nValue: " + "var='A' " * 10_000, "attachments": []},
        bot_message("", username="Datadog")
        | {"text": "Triggered: " + "on {" * 20_000, "attachments": []},
        bot_message("", username="Sentry")
        | {
            "attachments": [],
            "blocks": [
                {"type": "section", "text": {"text": "<https://sentry.io/i/1|Issue>"}},
                {"type": "section", "text": {"text": "_" * 40_000}},
            ],
        },
        person("Reason." * 10_000),
    ],
    ids=["uptimerobot-spaces", "grafana-values", "datadog-scopes", "sentry-tags", "dotted-words"],
)
def test_a_huge_message_is_read_in_linear_time(message: dict[str, Any]) -> None:
    """A message carries tens of thousands of characters; no pattern may backtrack over them."""
    started = time.perf_counter()
    assert from_slack_event(message) is not None
    assert time.perf_counter() - started < 1.0


# --- JSON -------------------------------------------------------------------------------------


def test_from_json_accepts_an_envelope_and_a_bare_event() -> None:
    whole = from_json(envelope("grafana_firing"))
    bare = from_json(event("grafana_firing"))
    assert whole is not None
    assert whole == bare
    assert whole.labels["service"] == "checkout-api"


def test_from_json_parses_a_json_string() -> None:
    alert = from_json((FIXTURES / "datadog_monitor.json").read_text())
    assert alert is not None
    assert alert.values["error_rate"] == 0.072


def alertmanager_payload(status: str = "firing") -> dict[str, Any]:
    labels = {
        "alertname": "HighErrorRate",
        "service": "agape-backend",
        "env": "prod",
        "instance": "api-1",
        "severity": "critical",
    }
    return {
        "version": "4",
        "status": status,
        "receiver": "slack",
        "groupLabels": {"alertname": "HighErrorRate", "service": "agape-backend"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "5xx rate is 3.4%", "description": "api-1 is failing"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "5xx rate is 3.4%", "value": "0.034"},
                "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
            }
        ],
    }


def test_from_json_reads_an_alertmanager_webhook_payload() -> None:
    alert = from_json(alertmanager_payload())
    assert alert is not None
    assert alert.source == "alertmanager"
    assert alert.title == "[FIRING:1] HighErrorRate agape-backend (prod api-1 critical)"
    assert alert.labels["instance"] == "api-1"
    assert alert.alertname == "HighErrorRate"
    assert alert.text == "5xx rate is 3.4%\napi-1 is failing"
    assert alert.values == {"value": 0.034, "error_rate": 0.034}
    assert alert.status is AlertStatus.FIRING
    assert alert.link == "http://prometheus:9090/graph?g0.expr=x"
    resolved = from_json(alertmanager_payload("resolved"))
    assert resolved is not None
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.title.startswith("[RESOLVED] HighErrorRate")


def test_from_json_reads_grafana_webhook_values() -> None:
    payload = alertmanager_payload() | {"title": "[FIRING:1] HighErrorRate", "orgId": 1}
    payload["alerts"][0]["values"] = {"B": 0.034}
    alert = from_json(payload)
    assert alert is not None
    assert (alert.source, alert.title) == ("grafana", "[FIRING:1] HighErrorRate")
    assert alert.values["B"] == 0.034


def test_from_json_accepts_an_alert_shaped_object() -> None:
    alert = from_json(
        {
            "title": "HighErrorRate on api",
            "text": "error rate 7%",
            "labels": {"service": "api", "port": 8080},
            "status": "RESOLVED",
            "note": "ignored",
        }
    )
    assert alert is not None
    assert alert.labels == {"service": "api", "port": "8080"}
    assert alert.values == {"error_rate": 0.07}
    assert alert.status is AlertStatus.RESOLVED
    titled = from_json({"title": "[RESOLVED] HighErrorRate"})
    assert titled is not None
    assert titled.status is AlertStatus.RESOLVED


@pytest.mark.parametrize(
    "obj",
    [
        [],
        "not json {",
        42,
        {"foo": 1},
        {"type": "url_verification", "challenge": "x"},
        {"type": "event_callback", "event": "nope"},
        {"title": "x", "values": [1, 2]},
        {"title": "x", "status": "exploded"},
        "[" * 100_000 + "]" * 100_000,
        {"type": "message", "subtype": ["bot_message"], "text": "HighErrorRate"},
    ],
)
def test_from_json_returns_none_for_what_it_cannot_read(obj: Any) -> None:
    assert from_json(obj) is None
