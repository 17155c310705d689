"""The Slack app manifests ask for what the bot uses, and only that: its command, events, scopes.

`slack/manifest.yaml` is the app in Socket Mode, `slack/manifest.http.yaml` the same app with
request URLs. The tables below say which bot scopes each Web API method the bot calls and each
event it receives needs (from Slack's method and event reference); the manifests must ask for
exactly their union. The bot's source is read too: a Web API method, event or command it uses
that the tables or the manifests do not know fails here, before Slack refuses it in production.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from agape_ops.surfaces.ops_command import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[2]
SOCKET = ROOT / "slack" / "manifest.yaml"
HTTP = ROOT / "slack" / "manifest.http.yaml"
SOURCE = sorted((ROOT / "agape_ops").rglob("*.py"))
COMMAND = "/ops"
EVENTS_PATH = "/slack/events"

#: Web API methods the bot calls, with the bot scopes each needs (empty: none).
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),  # bolt at start-up; /healthz asks whether Slack answers
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "chat.getPermalink": frozenset(),
    "views.open": frozenset(),
    "views.update": frozenset(),
    "views.push": frozenset(),
    "views.publish": frozenset(),
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
    "users.info": frozenset({"users:read"}),
    # ALERTS_CHANNEL may be public or private: each kind has its own scope.
    "conversations.info": frozenset({"channels:read", "groups:read"}),
}
#: slack_sdk helpers that call several Web API methods.
SDK_HELPERS: dict[str, tuple[str, ...]] = {
    # since slack_sdk 3.23 it no longer calls files.info (which would need files:read)
    "files.upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
}
#: Events the bot receives, with the bot scopes each needs.
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "message.channels": frozenset({"channels:history"}),  # a public #alerts
    "message.groups": frozenset({"groups:history"}),  # a private #alerts
    "app_home_opened": frozenset(),
}
#: A bolt handler for `message` receives these subscriptions' events.
MESSAGE_EVENTS = frozenset({"message.channels", "message.groups"})
COMMAND_SCOPES = frozenset({"commands"})

# Slack Web API method families (the part before the dot), to tell Slack calls from others.
_FAMILIES = (
    "admin|apps|assistant|auth|bookmarks|bots|calls|canvases|chat|conversations|dialog|dnd|emoji"
    "|files|functions|pins|reactions|reminders|search|team|usergroups|users|views|workflows"
)
# `client.chat_postMessage(`, `app.client.views_open(`, `self._client.users_info(` ...
_CLIENT_CALL = re.compile(rf"client\s*\.\s*({_FAMILIES})_([A-Za-z0-9_]+)\s*\(")
_API_CALL = re.compile(r"(?:api_call|outbox\.call)\(\s*[\"']([a-z]+\.[A-Za-z0-9_.]+)[\"']")
_EVENT_HANDLER = re.compile(r"\.event\(\s*[\"']([a-z_.]+)[\"']")
_MESSAGE_HANDLER = re.compile(r"\.message\(")
_COMMAND_HANDLER = re.compile(r"\.command\(\s*[\"'](/[a-z0-9_-]+)[\"']")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path.name} is not a YAML mapping"
    return document


MANIFESTS = {"socket": load(SOCKET), "http": load(HTTP)}


def bot_scopes(manifest: dict[str, Any]) -> set[str]:
    return set(manifest["oauth_config"]["scopes"]["bot"])


def bot_events(manifest: dict[str, Any]) -> set[str]:
    return set(manifest["settings"]["event_subscriptions"]["bot_events"])


def ops_command(manifest: dict[str, Any]) -> dict[str, Any]:
    commands = [c for c in manifest["features"]["slash_commands"] if c["command"] == COMMAND]
    assert len(commands) == 1, f"{COMMAND} is declared {len(commands)} times"
    return dict(commands[0])


def source_text() -> str:
    return "\n".join(path.read_text() for path in SOURCE)


def methods_called(text: str) -> set[str]:
    """Return the Web API methods the source calls, slack_sdk helpers expanded."""
    named = {f"{family}.{method}" for family, method in _CLIENT_CALL.findall(text)}
    named |= set(_API_CALL.findall(text))
    called: set[str] = set()
    for method in named:
        called.update(SDK_HELPERS.get(method, (method,)))
    return called


def events_handled(text: str) -> set[str]:
    """Return the event subscriptions the source's bolt handlers need."""
    events: set[str] = set()
    for name in _EVENT_HANDLER.findall(text):
        events |= MESSAGE_EVENTS if name == "message" else {name}
    if _MESSAGE_HANDLER.search(text):
        events |= MESSAGE_EVENTS
    return events


def scopes_needed() -> set[str]:
    needed = set(COMMAND_SCOPES)
    for scopes in (*METHOD_SCOPES.values(), *EVENT_SCOPES.values()):
        needed |= scopes
    return needed


@pytest.fixture(params=sorted(MANIFESTS))
def manifest(request: pytest.FixtureRequest) -> dict[str, Any]:
    return MANIFESTS[request.param]


def test_manifests_are_version_2_of_the_agape_ops_app(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"]["major_version"] == 2
    assert manifest["display_information"]["name"] == "agape-ops"
    assert len(manifest["display_information"]["description"]) <= 140
    assert manifest["features"]["bot_user"] == {"display_name": "agape-ops", "always_online": True}
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_ops_command_is_declared_unescaped_with_every_subcommand(manifest: dict[str, Any]) -> None:
    command = ops_command(manifest)
    assert command["should_escape"] is False
    assert command["description"]
    hint_words = set(re.findall(r"[a-z]+", command["usage_hint"]))
    assert set(SUBCOMMANDS) <= hint_words, set(SUBCOMMANDS) - hint_words
    assert len(command["usage_hint"]) <= 1000


def test_every_event_the_bot_listens_to_is_subscribed_and_nothing_else(
    manifest: dict[str, Any],
) -> None:
    # An event nobody handles is answered 404 by bolt; Slack counts that as a failed delivery.
    assert bot_events(manifest) == set(EVENT_SCOPES)
    assert "user_events" not in manifest["settings"]["event_subscriptions"]


@pytest.mark.parametrize("method", sorted(METHOD_SCOPES))
def test_scopes_of_each_web_api_method_are_granted(method: str) -> None:
    for name, manifest in MANIFESTS.items():
        missing = METHOD_SCOPES[method] - bot_scopes(manifest)
        assert not missing, f"{name} manifest: {method} needs {sorted(missing)}"


@pytest.mark.parametrize("event", sorted(EVENT_SCOPES))
def test_scopes_of_each_event_are_granted(event: str) -> None:
    for name, manifest in MANIFESTS.items():
        missing = EVENT_SCOPES[event] - bot_scopes(manifest)
        assert not missing, f"{name} manifest: {event} needs {sorted(missing)}"


def test_bot_asks_for_no_scope_it_does_not_use(manifest: dict[str, Any]) -> None:
    assert bot_scopes(manifest) == scopes_needed()
    assert "user" not in manifest["oauth_config"]["scopes"], "the bot acts as itself only"


def test_socket_manifest_uses_socket_mode_and_no_request_url() -> None:
    socket = MANIFESTS["socket"]
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket["settings"]["event_subscriptions"]
    assert "request_url" not in socket["settings"]["interactivity"]
    assert "url" not in ops_command(socket)


def test_http_manifest_sends_events_clicks_and_the_command_to_slack_events() -> None:
    http = MANIFESTS["http"]
    assert http["settings"]["socket_mode_enabled"] is False
    urls = [
        http["settings"]["event_subscriptions"]["request_url"],
        http["settings"]["interactivity"]["request_url"],
        ops_command(http)["url"],
    ]
    for url in urls:
        assert url.startswith("https://"), url
        assert url.endswith(EVENTS_PATH), url
    assert len(set(urls)) == 1, "one URL serves events, interactivity and the command"


def without_transport(manifest: dict[str, Any]) -> dict[str, Any]:
    """Return the manifest without what differs between Socket Mode and HTTP."""
    copy = yaml.safe_load(yaml.safe_dump(manifest))
    settings = copy["settings"]
    del settings["socket_mode_enabled"]
    settings["event_subscriptions"].pop("request_url", None)
    settings["interactivity"].pop("request_url", None)
    for command in copy["features"]["slash_commands"]:
        command.pop("url", None)
    return dict(copy)


def test_http_manifest_is_the_socket_manifest_with_request_urls() -> None:
    assert without_transport(MANIFESTS["http"]) == without_transport(MANIFESTS["socket"])


def test_every_web_api_method_the_source_calls_is_in_the_table() -> None:
    unknown = methods_called(source_text()) - set(METHOD_SCOPES)
    assert not unknown, (
        f"the bot calls {sorted(unknown)}: add each to METHOD_SCOPES with the bot scopes Slack's "
        "method reference lists, and those scopes to both manifests"
    )


def test_every_event_and_command_the_source_handles_is_subscribed() -> None:
    text = source_text()
    assert events_handled(text) <= set(EVENT_SCOPES)
    declared = {c["command"] for c in MANIFESTS["socket"]["features"]["slash_commands"]}
    assert set(_COMMAND_HANDLER.findall(text)) <= declared


def test_the_source_scanners_read_bolt_and_slack_sdk_calls() -> None:
    sample = """
        await client.chat_postMessage(channel=c, text=t)
        await self._client.files_upload_v2(channel=c, content=body)
        await app.client.api_call("views.publish", json=view)
        @app.event("app_home_opened")
        @app.event("message")
        @app.command("/ops")
    """
    assert methods_called(sample) == {
        "chat.postMessage",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
        "views.publish",
    }
    assert events_handled(sample) == {"app_home_opened", *MESSAGE_EVENTS}
    assert _COMMAND_HANDLER.findall(sample) == ["/ops"]
