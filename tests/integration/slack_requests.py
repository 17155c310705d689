"""What Slack sends a bot, built and signed exactly as Slack builds and signs it.

``SlackSender`` posts Events API callbacks, interactivity payloads (button clicks, menu picks,
modal submissions) and slash commands to a bot in HTTP mode, each signed with the signing
secret (``X-Slack-Signature: v0=HMAC-SHA256("v0:{timestamp}:{body}")``), and records how long
the bot took to answer. The payload builders are plain functions, so a test of a Socket Mode
bot can send the same payloads through ``FakeSlack.socket_send``::

    async with FakeSlack() as slack, SlackSender(bot_url, SECRET, fake=slack) as sender:
        ... the bot posts a message with buttons ...
        response = await sender.click(slack, "U0ALICE", ts, text="Acknowledge")
        assert response.status_code == 200
        assert sender.last.seconds < 3  # Slack wants an answer within 3 seconds
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack
from urllib.parse import urlencode

import httpx
from fake_slack import APP_ID, TEAM_DOMAIN, TEAM_ID, FakeSlack, channel_name, new_id

Signing = Literal["valid", "missing", "wrong", "stale"]
STALE_SECONDS = 10 * 60  # Slack's SDKs refuse requests older than five minutes
VERIFICATION_TOKEN = "fake-verification-token"  # the deprecated token Slack still sends


@dataclass(frozen=True)
class Delivery:
    """One request sent to the bot: what kind, where, the body as sent (a dict), the status
    the bot answered and how many seconds it took to answer."""

    kind: str
    path: str
    body: Any
    status: int
    seconds: float


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def new_trigger_id() -> str:
    """A trigger_id shaped like Slack's (``1234567890.1234567890.abcdef...``)."""
    return f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def new_action_ts() -> str:
    """An ``action_ts`` for a click happening now (seconds and microseconds)."""
    return f"{time.time():.6f}"


def user_object(user: str) -> dict[str, str]:
    """The ``user`` of an interaction payload."""
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID}


def event_callback(
    event: Mapping[str, Any],
    *,
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
) -> dict[str, Any]:
    """The Events API envelope (``type: event_callback``) of ``event``; also the payload of a
    Socket Mode ``events_api`` envelope."""
    now = int(time.time())
    body = dict(event)
    body.setdefault("event_ts", f"{time.time():.6f}")
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": body,
        "type": "event_callback",
        "event_id": event_id or new_id("Ev", 10),
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": "U0BOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": secrets.token_hex(16),
    }


class ActionContext(TypedDict, total=False):
    """What else a ``block_actions`` payload may say about where the action happened."""

    thread_ts: str | None  # the thread the message is in
    message: Mapping[str, Any] | None  # the message as Slack holds it
    trigger_id: str | None  # made up when not given
    response_url: str | None


class CommandOptions(TypedDict, total=False):
    """The optional fields of a slash command."""

    command: str  # "/ops" when not given
    trigger_id: str | None  # made up when not given
    response_url: str | None


def block_actions_payload(
    user: str,
    actions: list[dict[str, Any]],
    *,
    channel: str,
    message_ts: str,
    **context: Unpack[ActionContext],
) -> dict[str, Any]:
    """A ``block_actions`` payload for actions on a message, as Slack sends it."""
    thread_ts, message = context.get("thread_ts"), context.get("message")
    trigger_id, response_url = context.get("trigger_id"), context.get("response_url")
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
    shown = {k: v for k, v in (message or {}).items() if k != "channel"}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": user_object(user),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel_name(channel)},
        "message": shown or {"type": "message", "ts": message_ts, "text": ""},
        "state": {"values": {}},
        "actions": actions,
    }
    if response_url:
        payload["response_url"] = response_url
    return payload


def _interactive(message: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every interactive element of a message or view with the block_id it sits in."""
    found: list[tuple[str, dict[str, Any]]] = []
    for block in message.get("blocks") or []:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        found.extend((block.get("block_id", ""), e) for e in elements if isinstance(e, dict))
    return found


def _plain(text: Any) -> str:
    return text.get("text", "") if isinstance(text, Mapping) else str(text or "")


def find_element(
    message: Mapping[str, Any],
    kind: str,
    *,
    action_id: str | None = None,
    text: str | None = None,
    value: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Find one element of a kind (``button``, ``static_select``) in a message: by action_id,
    by text (a case-insensitive substring of a button's text or a menu's placeholder) and/or
    by a button's value. Raise AssertionError unless exactly one matches."""
    matches = [
        (block_id, element)
        for block_id, element in _interactive(message)
        if element.get("type") == kind
        and (action_id is None or element.get("action_id") == action_id)
        and (value is None or element.get("value") == value)
        and (
            text is None
            or text.lower() in _plain(element.get("text") or element.get("placeholder")).lower()
        )
    ]
    if len(matches) != 1:
        shown = [(e.get("action_id"), _plain(e.get("text"))) for _, e in _interactive(message)]
        raise AssertionError(
            f"{len(matches)} {kind}s match action_id={action_id!r} text={text!r} "
            f"value={value!r} in message {message.get('ts')}; its elements: {shown}"
        )
    return matches[0]


def find_option(element: Mapping[str, Any], option: str) -> dict[str, Any]:
    """The option of a menu whose value is ``option`` or whose text contains it."""
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    for candidate in options:
        if candidate.get("value") == option:
            return dict(candidate)
    matches = [c for c in options if option.lower() in _plain(c.get("text")).lower()]
    if len(matches) != 1:
        offered = [(c.get("value"), _plain(c.get("text"))) for c in options]
        raise AssertionError(f"{len(matches)} options match {option!r}; offered: {offered}")
    return dict(matches[0])


def view_state(view: Mapping[str, Any], values: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``state.values`` of a submitted view, shaped as Slack sends it: every input block, with
    ``values[block_id][action_id]`` filled in (a plain_text_input's text, a static_select's
    option value or text, or a ready-made state dict) and the others empty."""
    state: dict[str, dict[str, Any]] = {}
    inputs = {
        block.get("block_id"): block
        for block in view.get("blocks") or []
        if block.get("type") == "input"
    }
    for wanted, given in values.items():
        wanted_element = inputs.get(wanted, {}).get("element") or {}
        for wanted_action in given:
            if wanted_element.get("action_id") != wanted_action:
                raise AssertionError(f"the view has no input {wanted}/{wanted_action}")
    for block_id, block in inputs.items():
        element = block.get("element") or {}
        kind, action_id = element.get("type"), str(element.get("action_id"))
        value = values.get(block_id, {}).get(action_id)
        if isinstance(value, Mapping):
            entry = dict(value)
        elif kind == "static_select":
            selected = find_option(element, str(value)) if value is not None else None
            entry = {"type": kind, "selected_option": selected}
        else:
            entry = {"type": kind, "value": value}
        state[block_id] = {action_id: entry}
    return {"values": state}


def view_submission_payload(
    user: str,
    view: Mapping[str, Any],
    values: Mapping[str, Mapping[str, Any]],
    *,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """A ``view_submission`` payload for a modal as the fake holds it, with these values."""
    submitted = {**view, "state": view_state(view, values)}
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": user_object(user),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": submitted,
        "response_urls": [],
        "enterprise": None,
        "is_enterprise_install": False,
    }


def view_closed_payload(user: str, view: Mapping[str, Any]) -> dict[str, Any]:
    """A ``view_closed`` payload (sent when a modal with ``notify_on_close`` is closed)."""
    return {
        "type": "view_closed",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": user_object(user),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "view": dict(view),
        "is_cleared": False,
        "enterprise": None,
        "is_enterprise_install": False,
    }


def command_payload(
    text: str, *, user: str, channel: str, **options: Unpack[CommandOptions]
) -> dict[str, str]:
    """The fields of a slash command, as Slack sends them (no thread_ts: Slack sends none,
    even when the command is typed in a thread)."""
    trigger_id, response_url = options.get("trigger_id"), options.get("response_url")
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel,
        "channel_name": channel_name(channel),
        "user_id": user,
        "user_name": user.lower(),
        "command": options.get("command", "/ops"),
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "trigger_id": trigger_id or new_trigger_id(),
    }
    if response_url:
        fields["response_url"] = response_url
    return fields


def match_inputs(view: Mapping[str, Any], answers: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Turn ``{block_id or label text: value}`` into ``{block_id: {action_id: value}}`` for a
    view: a key matches an input block by its block_id, else by a case-insensitive substring
    of its label (exactly one block must match)."""
    inputs = [block for block in view.get("blocks") or [] if block.get("type") == "input"]
    values: dict[str, dict[str, Any]] = {}
    for key, value in answers.items():
        matches = [block for block in inputs if block.get("block_id") == key] or [
            block for block in inputs if key.lower() in _plain(block.get("label")).lower()
        ]
        if len(matches) != 1:
            labels = [(b.get("block_id"), _plain(b.get("label"))) for b in inputs]
            raise AssertionError(f"{len(matches)} inputs match {key!r}; the view has {labels}")
        block = matches[0]
        values[block["block_id"]] = {block["element"]["action_id"]: value}
    return values


class SlackSender:
    """Sends a bot in HTTP mode what Slack sends it, signed with ``signing_secret``.

    ``base_url`` is the bot's origin; every kind goes to ``path`` (Bolt's ``/slack/events``)
    unless ``commands_path``/``interactivity_path`` say otherwise. With ``fake``, slash
    commands and clicks carry response_urls the fake answers. Every method returns the
    ``httpx.Response`` and appends a ``Delivery`` (with how long the bot took) to
    ``deliveries``; ``signing`` sends it with a missing, wrong or stale signature instead.
    """

    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        *,
        path: str = "/slack/events",
        commands_path: str | None = None,
        interactivity_path: str | None = None,
        fake: FakeSlack | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.signing_secret = signing_secret
        self.path = path
        self.commands_path = commands_path or path
        self.interactivity_path = interactivity_path or path
        self.fake = fake
        self.deliveries: list[Delivery] = []
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def __aenter__(self) -> SlackSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    @property
    def last(self) -> Delivery:
        """The last request sent."""
        return self.deliveries[-1]

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers Slack signs ``body`` with (now, or at ``timestamp``)."""
        at = int(time.time()) if timestamp is None else timestamp
        return {
            "X-Slack-Request-Timestamp": str(at),
            "X-Slack-Signature": signature(self.signing_secret, at, body),
        }

    def _headers(self, body: bytes, signing: Signing) -> dict[str, str]:
        if signing == "valid":
            return self.sign(body)
        if signing == "stale":
            return self.sign(body, int(time.time()) - STALE_SECONDS)
        if signing == "wrong":
            at = int(time.time())
            forged = signature(self.signing_secret + "-not", at, body)
            return {"X-Slack-Request-Timestamp": str(at), "X-Slack-Signature": forged}
        return {"X-Slack-Request-Timestamp": str(int(time.time()))}

    async def send(
        self,
        body: bytes,
        content_type: str,
        *,
        path: str | None = None,
        kind: str = "raw",
        shown: Any = None,
        signing: Signing = "valid",
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST a raw body, signed (or not, per ``signing``), and record the delivery."""
        sent = {"Content-Type": content_type, **self._headers(body, signing), **(headers or {})}
        target = path or self.path
        started = time.perf_counter()
        response = await self._client.post(target, content=body, headers=sent)
        seconds = time.perf_counter() - started
        self.deliveries.append(Delivery(kind, target, shown, response.status_code, seconds))
        return response

    async def _json(self, kind: str, body: dict[str, Any], **options: Any) -> httpx.Response:
        raw = json.dumps(body).encode()
        return await self.send(raw, "application/json", kind=kind, shown=body, **options)

    async def _form(
        self, kind: str, fields: Mapping[str, str], path: str, shown: Any, signing: Signing
    ) -> httpx.Response:
        raw = urlencode(fields).encode()
        content_type = "application/x-www-form-urlencoded"
        return await self.send(
            raw, content_type, path=path, kind=kind, shown=shown, signing=signing
        )

    async def _interaction(self, payload: dict[str, Any], signing: Signing) -> httpx.Response:
        fields = {"payload": json.dumps(payload)}
        return await self._form(payload["type"], fields, self.interactivity_path, payload, signing)

    async def event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        team_id: str = TEAM_ID,
        api_app_id: str = APP_ID,
        signing: Signing = "valid",
    ) -> httpx.Response:
        """POST an Events API ``event_callback`` (``event_id`` made up unless given; a retry
        carries ``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``, e.g. 1 and ``http_timeout``)."""
        body = event_callback(event, event_id=event_id, team_id=team_id, api_app_id=api_app_id)
        headers = {}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        return await self._json("event_callback", body, headers=headers, signing=signing)

    async def url_verification(
        self, challenge: str, *, signing: Signing = "valid"
    ) -> httpx.Response:
        """POST the ``url_verification`` handshake Slack sends when the events URL is set."""
        body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
        return await self._json("url_verification", body, signing=signing)

    async def block_actions(
        self,
        user: str,
        actions: list[dict[str, Any]],
        *,
        channel: str,
        message_ts: str,
        signing: Signing = "valid",
        **context: Unpack[ActionContext],
    ) -> httpx.Response:
        """POST a ``block_actions`` payload (form-encoded ``payload=<json>``); with a fake and
        no response_url, one the fake answers."""
        if context.get("response_url") is None and self.fake is not None:
            url = self.fake.response_url(channel=channel, message_ts=message_ts, user=user)
            context["response_url"] = url
        payload = block_actions_payload(
            user, actions, channel=channel, message_ts=message_ts, **context
        )
        return await self._interaction(payload, signing)

    async def _act(
        self,
        slack: FakeSlack,
        user: str,
        message: dict[str, Any],
        action: dict[str, Any],
        signing: Signing,
    ) -> httpx.Response:
        """Send one action on a message the fake holds, with a response_url for it."""
        channel, ts, thread_ts = message["channel"], message["ts"], message.get("thread_ts")
        return await self.block_actions(
            user,
            [action],
            channel=channel,
            message_ts=ts,
            thread_ts=thread_ts if thread_ts != ts else None,
            message=message,
            response_url=slack.response_url(channel=channel, message_ts=ts, user=user),
            signing=signing,
        )

    def _message(self, slack: FakeSlack, message_ts: str, channel: str | None) -> dict[str, Any]:
        message = slack.message(message_ts)
        if message is None or channel not in (None, message["channel"]):
            raise AssertionError(f"the fake Slack holds no message {message_ts} in {channel}")
        return message

    async def click(
        self,
        slack: FakeSlack,
        user: str,
        message_ts: str,
        *,
        action_id: str | None = None,
        text: str | None = None,
        value: str | None = None,
        channel: str | None = None,
        action_ts: str | None = None,
        signing: Signing = "valid",
    ) -> httpx.Response:
        """Click a button of a message the fake holds, found by action_id, text and/or value,
        as Slack sends the click (its block_id and value; a fresh action_ts unless one is
        given, e.g. an earlier click's to send it again)."""
        message = self._message(slack, message_ts, channel)
        block_id, button = find_element(
            message, "button", action_id=action_id, text=text, value=value
        )
        action = {
            "action_id": button.get("action_id"),
            "block_id": block_id,
            "text": button.get("text"),
            "type": "button",
            "action_ts": action_ts or new_action_ts(),
        }
        for key in ("value", "style"):
            if key in button:
                action[key] = button[key]
        return await self._act(slack, user, message, action, signing)

    async def select(
        self,
        slack: FakeSlack,
        user: str,
        message_ts: str,
        option: str,
        *,
        action_id: str | None = None,
        placeholder: str | None = None,
        channel: str | None = None,
        signing: Signing = "valid",
    ) -> httpx.Response:
        """Pick ``option`` (a value, or a substring of an option's text) in a static_select
        of a message the fake holds, found by action_id and/or placeholder text."""
        message = self._message(slack, message_ts, channel)
        block_id, menu = find_element(
            message, "static_select", action_id=action_id, text=placeholder
        )
        action = {
            "type": "static_select",
            "action_id": menu.get("action_id"),
            "block_id": block_id,
            "selected_option": find_option(menu, option),
            "action_ts": new_action_ts(),
        }
        if "placeholder" in menu:
            action["placeholder"] = menu["placeholder"]
        return await self._act(slack, user, message, action, signing)

    async def view_submission(
        self,
        user: str,
        view: Mapping[str, Any],
        values: Mapping[str, Mapping[str, Any]],
        *,
        trigger_id: str | None = None,
        signing: Signing = "valid",
    ) -> httpx.Response:
        """POST a ``view_submission`` of ``view`` with ``values[block_id][action_id]``."""
        payload = view_submission_payload(user, view, values, trigger_id=trigger_id)
        return await self._interaction(payload, signing)

    async def submit(
        self,
        slack: FakeSlack,
        user: str,
        view_id: str | None,
        answers: Mapping[str, Any],
        *,
        signing: Signing = "valid",
    ) -> httpx.Response:
        """Fill in and submit a modal the fake holds (``view_id``, or None for the one opened
        last); ``answers`` keys are block_ids or label text (see ``match_inputs``)."""
        view = slack.view(view_id)
        if view is None:
            raise AssertionError(f"the fake Slack holds no view {view_id or '(none opened)'}")
        return await self.view_submission(user, view, match_inputs(view, answers), signing=signing)

    async def view_closed(
        self, user: str, view: Mapping[str, Any], *, signing: Signing = "valid"
    ) -> httpx.Response:
        """POST a ``view_closed`` payload for ``view``."""
        return await self._interaction(view_closed_payload(user, view), signing)

    async def command(
        self,
        text: str,
        *,
        user: str,
        channel: str,
        signing: Signing = "valid",
        **options: Unpack[CommandOptions],
    ) -> httpx.Response:
        """POST a slash command (form-encoded, as Slack sends it); with a fake and no
        response_url, one the fake answers."""
        if options.get("response_url") is None and self.fake is not None:
            options["response_url"] = self.fake.response_url(channel=channel, user=user)
        fields = command_payload(text, user=user, channel=channel, **options)
        return await self._form("command", fields, self.commands_path, fields, signing)
