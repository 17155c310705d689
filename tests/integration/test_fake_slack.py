"""The fake Slack and the signed-request sender behave like Slack where the bot depends on it.

The bot's tests fake Slack only through ``fake_slack`` (a Web API and Socket Mode server on
loopback) and ``slack_requests`` (what Slack sends the bot), so these tests drive them with
Slack's own SDK (slack_sdk's AsyncWebClient, its retry handlers, its Socket Mode client and
its signature verifier) and with a Bolt app, the framework the bot's Slack surface is built on.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from block_kit_limits import message_problems, problems, view_problems
from fake_slack import BOT_USER, FakeSlack, slack
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_requests import Signing, SlackSender, match_inputs, signature, view_state
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["slack"]  # the fixture, used by name

CHANNEL = "C0OPS"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def button(text: str, action_id: str, value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }


def actions(*elements: dict[str, Any], block_id: str = "run_actions") -> dict[str, Any]:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def modal(title: str = "Run a step", **extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "step_inputs",
        "private_metadata": json.dumps({"run": "INC-1"}),
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Run"},
        "blocks": [
            {
                "type": "input",
                "block_id": "sku",
                "label": {"type": "plain_text", "text": "Product variant SKU"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why"},
                "element": {
                    "type": "static_select",
                    "action_id": "choice",
                    "options": [
                        {"text": {"type": "plain_text", "text": "Oversold"}, "value": "oversold"},
                        {"text": {"type": "plain_text", "text": "Returned"}, "value": "returned"},
                    ],
                },
            },
        ],
    }
    view.update(extra)
    return view


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def test_auth_test_answers_the_bot_identity(client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert (answer["user_id"], answer["bot_id"], answer["team_id"], answer["user"]) == (
        "U0BOT",
        "B0BOT",
        "T0TEAM",
        "agape-ops",
    )


async def test_a_call_needs_the_bot_token_and_a_known_method(slack: FakeSlack) -> None:
    for token, error in [(None, "not_authed"), ("xoxb-other", "invalid_auth")]:
        with pytest.raises(SlackApiError) as refused:
            await AsyncWebClient(token=token, base_url=slack.api_url).auth_test()
        assert refused.value.response["error"] == error
    async with httpx.AsyncClient() as http:
        as_param = await http.post(slack.api_url + "auth.test", data={"token": "xoxb-test"})
        unknown = await http.post(slack.api_url + "chat.shout", data={"token": "xoxb-test"})
    assert as_param.json()["ok"] is True
    assert unknown.json() == {"ok": False, "error": "unknown_method"}
    assert [c.method for c in slack.calls()] == [
        "auth.test",
        "auth.test",
        "auth.test",
        "chat.shout",
    ]
    assert [c.response.get("error") for c in slack.calls()] == [
        "not_authed",
        "invalid_auth",
        None,
        "unknown_method",
    ]


async def test_messages_are_kept_as_slack_keeps_them(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    blocks = [section("*2 SKUs* below zero"), actions(button("Acknowledge", "ack"))]
    posted = await client.chat_postMessage(channel=CHANNEL, text="Inventory", blocks=blocks)
    parent = posted["ts"]
    assert posted["channel"] == CHANNEL
    assert posted["message"]["user"] == BOT_USER
    # A form body with blocks as a JSON string, as a raw client sends it, is parsed too.
    reply = await client.api_call(
        "chat.postMessage",
        data={"channel": CHANNEL, "thread_ts": parent, "blocks": json.dumps(blocks[:1])},
    )
    assert float(reply["ts"]) > float(parent)
    assert slack.calls("chat.postMessage")[1].params["blocks"][0]["type"] == "section"

    await client.chat_update(channel=CHANNEL, ts=parent, text="Inventory (acknowledged)")
    updated = slack.message(parent)
    assert updated is not None
    assert updated["text"] == "Inventory (acknowledged)"
    assert updated["blocks"][1]["elements"][0]["action_id"] == "ack"  # kept: not given
    assert updated["reply_count"] == 1
    assert updated["blocks"][0]["block_id"]  # Slack names blocks that have no block_id
    assert [m["ts"] for m in slack.messages(thread_ts=parent)] == [reply["ts"]]
    assert [m["ts"] for m in slack.messages(channel=CHANNEL)] == [parent, reply["ts"]]

    link = await client.chat_getPermalink(channel=CHANNEL, message_ts=reply["ts"])
    assert link["permalink"].endswith(f"?thread_ts={parent}&cid={CHANNEL}")
    thread = await client.conversations_replies(channel=CHANNEL, ts=parent)
    assert [m["ts"] for m in thread["messages"]] == [parent, reply["ts"]]
    await client.reactions_add(channel=CHANNEL, timestamp=parent, name="eyes")
    assert slack.message(parent)["reactions"] == [  # type: ignore[index]
        {"name": "eyes", "users": [BOT_USER], "count": 1}
    ]
    ephemeral = await client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="psst")
    assert slack.ephemerals(user="U0ALICE")[0]["message_ts"] == ephemeral["message_ts"]

    await client.chat_delete(channel=CHANNEL, ts=reply["ts"])
    assert slack.messages(thread_ts=parent) == []
    for call in (
        client.chat_update(channel=CHANNEL, ts="1.000001", text="x"),
        client.api_call("chat.postMessage", json={"channel": CHANNEL}),
    ):
        with pytest.raises(SlackApiError) as refused:
            await call
        assert refused.value.response["error"] in ("message_not_found", "no_text")


async def test_views_open_push_update_and_publish(slack: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.views_open(trigger_id="", view=modal())
    assert refused.value.response["error"] == "invalid_arguments"

    opened = (await client.views_open(trigger_id="1.2.abc", view=modal()))["view"]
    assert opened["id"].startswith("V")
    assert opened["hash"]
    assert opened["private_metadata"] == json.dumps({"run": "INC-1"})
    confirm = modal("Confirm", external_id="confirm-1")
    pushed = (await client.views_push(trigger_id="1.2.def", view=confirm))["view"]
    assert pushed["previous_view_id"] == opened["id"]
    assert pushed["root_view_id"] == opened["id"]

    await client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Done"))
    with pytest.raises(SlackApiError) as conflict:
        await client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal())
    assert conflict.value.response["error"] == "hash_conflict"
    await client.views_update(external_id="confirm-1", view=modal("Confirmed"))
    with pytest.raises(SlackApiError) as missing:
        await client.views_update(external_id="missing", view=modal())
    assert missing.value.response["error"] == "not_found"
    assert [v["title"]["text"] for v in slack.views_opened] == ["Done", "Confirmed"]
    assert slack.view() == slack.views_opened[-1]

    home = {"type": "home", "blocks": [section("Open incidents: 1")]}
    published = await client.views_publish(user_id="U0ALICE", view=home)
    assert slack.home_views["U0ALICE"]["id"] == published["view"]["id"]


async def test_files_upload_v2_is_recorded_with_its_content(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    parent = (await client.chat_postMessage(channel=CHANNEL, text="Incident INC-1"))["ts"]
    answer = await client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=parent,
        content="timeline\n02:00 opened\n",
        filename="timeline.txt",
        title="INC-1 timeline",
        initial_comment="The timeline so far",
    )
    assert answer["file"]["title"] == "INC-1 timeline"
    assert [c.method for c in slack.calls()][-2:] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    (upload,) = slack.uploads
    assert upload.completed
    assert upload.content == b"timeline\n02:00 opened\n"
    assert (upload.filename, upload.title, upload.channel_id, upload.thread_ts) == (
        "timeline.txt",
        "INC-1 timeline",
        CHANNEL,
        parent,
    )
    assert upload.initial_comment == "The timeline so far"
    (shared,) = slack.messages(thread_ts=parent)
    assert shared["files"][0]["id"] == upload.file_id


async def test_users_and_conversations_are_described(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.add_user("U0ALICE", real_name="Alice Okafor", tz="Africa/Lagos")
    alice = (await client.users_info(user="U0ALICE"))["user"]
    assert (alice["real_name"], alice["tz"]) == ("Alice Okafor", "Africa/Lagos")
    assert (await client.users_info(user="U0BOB"))["user"]["tz"]
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["id"] == CHANNEL
    with pytest.raises(SlackApiError) as missing:
        await client.conversations_info(channel="nope")
    assert missing.value.response["error"] == "channel_not_found"


async def test_a_429_is_waited_out_by_the_sdk_retry_handler(slack: FakeSlack) -> None:
    slack.rate_limit("chat.postMessage", channel=CHANNEL, retry_after=1)
    client = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    posted = await client.chat_postMessage(channel=CHANNEL, text="after the limit")
    assert posted["ok"]
    first, second = slack.calls("chat.postMessage")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1
    assert slack.rate_limits()[0].retry_after == 1
    assert slack.violations() == []


async def test_a_call_before_retry_after_has_passed_is_a_violation(slack: FakeSlack) -> None:
    slack.rate_limit("chat.postMessage", channel=CHANNEL, retry_after=30)
    headers = {"Authorization": f"Bearer {slack.bot_token}"}
    async with httpx.AsyncClient(base_url=slack.api_url, headers=headers) as http:
        limited = await http.post("chat.postMessage", data={"channel": CHANNEL, "text": "a"})
        other = await http.post("chat.postMessage", data={"channel": "C0ELSE", "text": "b"})
        again = await http.post("chat.postMessage", data={"channel": CHANNEL, "text": "c"})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "30"
    assert limited.json() == {"ok": False, "error": "ratelimited"}
    assert (other.status_code, again.status_code) == (200, 200)
    (violation,) = slack.violations()
    assert (violation.method, violation.channel) == ("chat.postMessage", CHANNEL)
    assert 29 < violation.early_by <= 30


async def test_server_errors_error_answers_and_latency_are_injected(slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", 503)
    client = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)],
    )
    assert (await client.chat_postMessage(channel=CHANNEL, text="x"))["ok"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [503, 200]

    slack.fail_with("chat.postMessage", "channel_not_found", channel="C0GONE")
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C0GONE", text="x")
    assert refused.value.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel="C0GONE", text="x"))["ok"]  # once only

    slack.latency("auth.test", 0.2)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.2


async def test_blocks_over_slack_limits_are_refused(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as too_many:
        await client.chat_postMessage(channel=CHANNEL, text="x", blocks=[section("s")] * 51)
    assert too_many.value.response["error"] == "invalid_blocks"
    assert too_many.value.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]
    long_button = [actions(button("B" * 76, "go"))]
    with pytest.raises(SlackApiError) as too_long:
        await client.chat_postMessage(channel=CHANNEL, text="x", blocks=long_button)
    assert "[json-pointer:/blocks/0/elements/0/text/text]" in str(
        too_long.value.response["response_metadata"]["messages"]
    )
    with pytest.raises(SlackApiError) as bad_view:
        await client.views_open(trigger_id="1.2.abc", view=modal("A title over 24 characters"))
    assert bad_view.value.response["error"] == "invalid_arguments"
    assert [e.method for e in slack.block_errors] == [
        "chat.postMessage",
        "chat.postMessage",
        "views.open",
    ]
    assert slack.block_errors[2].problems == (
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]",
    )
    assert slack.messages() == []
    assert slack.views_opened == []


def plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def menu(*values: str) -> dict[str, Any]:
    options = [{"text": plain("o"), "value": value} for value in values]
    return {"type": "static_select", "action_id": "s", "options": options}


CONFIRM = {
    "title": plain("t"),
    "text": mrkdwn("x" * 301),
    "confirm": plain("y"),
    "deny": plain("n"),
}
INPUT = {"type": "input", "label": plain("l" * 2001), "element": {"type": "plain_text_input"}}
LIMITS = [
    ({"blocks": [{"type": "header", "text": plain("h" * 151)}]}, "/blocks/0/text/text"),
    ({"blocks": [section("s" * 3001)]}, "/blocks/0/text/text"),
    ({"blocks": [{"type": "section", "fields": [mrkdwn("f")] * 11}]}, "/blocks/0/fields"),
    ({"blocks": [actions(*[button("b", f"a{i}") for i in range(26)])]}, "/blocks/0/elements"),
    ({"blocks": [actions(button("b", "a" * 256))]}, "/blocks/0/elements/0/action_id"),
    ({"blocks": [actions(button("b", "a", "v" * 2001))]}, "/blocks/0/elements/0/value"),
    ({"blocks": [actions(button("b", "a"), button("c", "a"))]}, "/blocks/0/elements/1/action_id"),
    ({"blocks": [actions(button("b", "a")), actions(button("b", "c"))]}, "/blocks/1/block_id"),
    ({"blocks": [{"type": "context", "elements": [mrkdwn("c")] * 11}]}, "/blocks/0/elements"),
    ({"text": "t" * 40_001}, "/text"),
    (
        {"blocks": [actions({**button("b", "a"), "confirm": CONFIRM})]},
        "/blocks/0/elements/0/confirm/text/text",
    ),
    ({"blocks": [actions(menu("v" * 151))]}, "/blocks/0/elements/0/options/0/value"),
    ({"blocks": [actions(menu(*["v"] * 101))]}, "/blocks/0/elements/0/options"),
    (modal(private_metadata="m" * 3001), "/private_metadata"),
    (modal(callback_id="c" * 256), "/callback_id"),
    (modal(submit=plain("s" * 25)), "/submit/text"),
    ({**modal(), "blocks": [section("s")] * 101}, "/blocks"),
    ({**modal(), "blocks": [INPUT]}, "/blocks/0/label/text"),
]


@pytest.mark.parametrize(("payload", "pointer"), LIMITS)
def test_each_limit_names_what_breaks_it(payload: dict[str, Any], pointer: str) -> None:
    found = problems(payload)
    assert any(p.endswith(f"[json-pointer:{pointer}]") for p in found), found


def test_a_message_within_the_limits_has_no_problems() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("s" * 3000),
        actions(*[button("b" * 75, f"a{i}", "v" * 2000) for i in range(25)]),
    ] + [section("s")] * 47
    assert message_problems({"text": "t" * 40_000, "blocks": blocks}) == []
    assert view_problems(modal("t" * 24)) == []


async def test_wait_for_gives_up_at_its_deadline_showing_the_last_calls(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="only this")
    waiting = asyncio.create_task(slack.wait_for(lambda s: s.messages(thread_ts="1.1"), 5.0))
    await client.chat_postMessage(channel=CHANNEL, text="and this")
    with pytest.raises(AssertionError) as timed_out:
        await slack.wait_for(lambda s: s.messages(channel="C0NEVER"), timeout=0.2)
    assert 's.messages(channel="C0NEVER")' in str(timed_out.value)
    assert "chat.postMessage" in str(timed_out.value)
    reply = await client.chat_postMessage(channel=CHANNEL, text="r", thread_ts="1.1")
    assert [m["ts"] for m in await waiting] == [reply["ts"]]


def test_in_thread_the_fake_serves_sync_tests() -> None:
    with FakeSlack.in_thread() as fake:
        headers = {"Authorization": f"Bearer {fake.bot_token}"}
        with httpx.Client(base_url=fake.api_url, headers=headers) as http:
            answer = http.post("chat.postMessage", json={"channel": CHANNEL, "text": "hi"})
        assert answer.json()["ok"]
        (message,) = fake.wait_for_sync(lambda s: s.messages(channel=CHANNEL))
        assert message["text"] == "hi"


Received = asyncio.Queue[dict[str, Any]]


async def _socket_client(slack: FakeSlack, received: Received) -> SocketModeClient:
    """A slack_sdk Socket Mode client that records what it gets and acks each request."""
    web_client = AsyncWebClient(base_url=slack.api_url)
    client = SocketModeClient(app_token="xapp-1-A0APP-test", web_client=web_client)

    async def on_message(_: AsyncBaseSocketModeClient, message: dict[str, Any], __: Any) -> None:
        received.put_nowait(message)

    async def on_request(client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        payload = {"text": "on it"} if request.accepts_response_payload else None
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id, payload))

    client.message_listeners.append(on_message)
    client.socket_mode_request_listeners.append(on_request)
    await client.connect()  # type: ignore[no-untyped-call]
    return client


async def _close(client: SocketModeClient) -> None:
    await client.close()  # type: ignore[no-untyped-call]
    tasks = [client.message_processor, client.message_receiver, client.current_session_monitor]
    await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)


async def test_socket_mode_hello_envelope_and_ack(slack: FakeSlack) -> None:
    received: Received = asyncio.Queue()
    client = await _socket_client(slack, received)
    try:
        await slack.wait_for(lambda s: s.socket_connections == 1)
        hello = await asyncio.wait_for(received.get(), 5)
        assert (hello["type"], hello["num_connections"]) == ("hello", 1)
        event = {"type": "app_mention", "text": "<@U0BOT> status", "channel": CHANNEL}
        event_id = await slack.socket_send("events_api", {"type": "event_callback", "event": event})
        ack = await slack.wait_for_ack(event_id)
        assert ack.payload is None
        command = await slack.socket_send("slash_commands", {"command": "/ops", "text": "help"})
        assert (await slack.wait_for_ack(command)).payload == {"text": "on it"}
        shown = await asyncio.wait_for(received.get(), 5)
        assert shown["envelope_id"] == event_id
        assert shown["payload"]["event"] == event
        assert shown["accepts_response_payload"] is False
        assert shown["retry_attempt"] == 0
    finally:
        await _close(client)
    await slack.wait_for(lambda s: s.socket_connections == 0)


async def test_socket_mode_spreads_envelopes_over_connections(slack: FakeSlack) -> None:
    clients = [await _socket_client(slack, asyncio.Queue()) for _ in "ab"]
    try:
        await slack.wait_for(lambda s: s.socket_connections == 2)
        sent = [await slack.socket_send("interactive", {"type": "block_actions"}) for _ in "ab"]
        for envelope_id in sent:
            await slack.wait_for_ack(envelope_id)
        assert [e.connection for e in slack.envelopes] == [0, 1]
    finally:
        for client in clients:
            await _close(client)


async def test_socket_mode_reconnects_when_slack_asks(slack: FakeSlack) -> None:
    client = await _socket_client(slack, asyncio.Queue())
    try:
        await slack.wait_for(lambda s: s.socket_connections == 1)
        await slack.socket_disconnect()
        await slack.wait_for(lambda s: len(s.calls("apps.connections.open")) == 2)
        await slack.wait_for(lambda s: s.socket_connections == 1)
        envelope_id = await slack.socket_send("interactive", {"type": "block_actions"})
        await slack.wait_for_ack(envelope_id)
    finally:
        await _close(client)


async def test_a_fake_on_its_own_thread_serves_a_client_in_the_test_loop() -> None:
    with FakeSlack.in_thread() as fake:
        client = await _socket_client(fake, asyncio.Queue())
        try:
            await fake.wait_for(lambda s: s.socket_connections == 1)
            envelope_id = await fake.socket_send("events_api", {"type": "event_callback"})
            assert (await fake.wait_for_ack(envelope_id)).envelope_id == envelope_id
        finally:
            await _close(client)
        await fake.wait_for(lambda s: s.socket_connections == 0)


async def test_socket_mode_needs_an_app_token(slack: FakeSlack) -> None:
    client = AsyncWebClient(base_url=slack.api_url)
    with pytest.raises(SlackApiError) as refused:
        await client.apps_connections_open(app_token="xoxb-test")
    assert refused.value.response["error"] == "invalid_auth"
    opened = await client.apps_connections_open(app_token="xapp-1-test")
    assert opened["url"].startswith(f"ws://127.0.0.1:{slack.url.rsplit(':', 1)[1]}/socket?")


def test_signatures_verify_with_slack_sdk() -> None:
    sender = SlackSender("http://127.0.0.1:9", SECRET)
    body = b'{"type":"event_callback"}'
    headers = sender.sign(body)
    verifier = SignatureVerifier(SECRET)
    timestamp = headers["X-Slack-Request-Timestamp"]
    assert verifier.is_valid(body, timestamp, headers["X-Slack-Signature"])
    assert not verifier.is_valid(body + b" ", timestamp, headers["X-Slack-Signature"])
    stale = int(time.time()) - 6 * 60
    assert not verifier.is_valid(body, str(stale), signature(SECRET, stale, body))
    asyncio.run(sender.aclose())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def bolt_bot(slack: FakeSlack) -> AsyncIterator[str]:
    """A Bolt app in HTTP mode on loopback, as the bot's Slack surface is built: a slash
    command posts buttons, a click opens a modal and replaces the message through its
    response_url, a submission posts what was entered. Yields its origin."""
    app = AsyncApp(
        client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url),
        signing_secret=SECRET,
    )

    @app.command("/ops")
    async def ops(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.chat_postMessage(
            channel=command["channel_id"],
            text=f"{command['user_id']} asked: {command['text']}",
            blocks=[
                section("Inventory Oversell"),
                actions(button("Correct stock", "run"), menu("sev1", "sev2"), block_id="acts"),
            ],
        )

    @app.action("s")
    async def pick(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        picked = action["selected_option"]["value"]
        user, channel = body["user"]["id"], body["channel"]["id"]
        await app.client.chat_postEphemeral(channel=channel, user=user, text=f"picked {picked}")

    @app.event("app_mention")
    async def mention(event: dict[str, Any], body: dict[str, Any], request: Any) -> None:
        retry = request.headers.get("x-slack-retry-num", ["0"])[0]
        text = f"{body['event_id']} retry {retry}"
        await app.client.chat_postMessage(
            channel=event["channel"], text=text, thread_ts=event["ts"]
        )

    @app.view_closed("step_inputs")
    async def closed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await app.client.chat_postMessage(channel=CHANNEL, text=f"{body['user']['id']} closed")

    @app.action("run")
    async def run(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await app.client.views_open(trigger_id=body["trigger_id"], view=modal())
        await respond(replace_original=True, text=f"{body['user']['id']} pressed Correct stock")

    @app.view("step_inputs")
    async def submitted(ack: AsyncAck, view: dict[str, Any], body: dict[str, Any]) -> None:
        await ack()
        values = view["state"]["values"]
        text = (
            f"{body['user']['id']}: {values['sku']['value']['value']} "
            f"{values['reason']['choice']['selected_option']['value']}"
        )
        await app.client.chat_postMessage(channel=CHANNEL, text=text)

    runner = web.AppRunner(app.web_app(), access_log=None, handle_signals=False)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_bolt_app_takes_commands_clicks_and_submissions_as_from_slack(
    slack: FakeSlack, bolt_bot: str
) -> None:
    async with SlackSender(bolt_bot, SECRET, fake=slack) as sender:
        assert (await sender.command("status", user="U0ALICE", channel=CHANNEL)).status_code == 200
        (message,) = await slack.wait_for(lambda s: s.messages(channel=CHANNEL))
        assert message["text"] == "U0ALICE asked: status"

        clicked = await sender.click(slack, "U0ALICE", message["ts"], text="correct")
        assert clicked.status_code == 200
        view = await slack.wait_for(lambda s: s.view())
        assert view is not None
        replaced = await slack.wait_for(lambda s: s.responses())
        assert replaced[0].body["replace_original"] is True
        assert slack.message(message["ts"]) == {
            **message,
            "text": "U0ALICE pressed Correct stock",
            "edited": slack.message(message["ts"])["edited"],  # type: ignore[index]
        }
        (payload,) = [d.body for d in sender.deliveries if d.kind == "block_actions"]
        assert payload["actions"][0]["block_id"] == "acts"
        assert payload["actions"][0]["value"] == "v"

        submitted = await sender.submit(
            slack, "U0ALICE", view["id"], {"SKU": "TEE-042", "why": "oversold"}
        )
        assert submitted.status_code == 200
        await slack.wait_for(lambda s: len(s.messages(channel=CHANNEL)) == 2)
        assert slack.messages(channel=CHANNEL)[1]["text"] == "U0ALICE: TEE-042 oversold"
        assert all(d.seconds < 3 for d in sender.deliveries)  # Slack's deadline for an ack

        first_ts = payload["actions"][0]["action_ts"]
        await sender.click(slack, "U0ALICE", message["ts"], action_id="run", action_ts=first_ts)
        assert sender.last.body["actions"][0]["action_ts"] == first_ts  # sent again as it was
        await slack.wait_for(lambda s: len(s.views_opened) == 2 and len(s.responses()) == 2)

        signings: tuple[Signing, ...] = ("missing", "wrong", "stale")
        for signing in signings:
            refused = await sender.command(
                "status", user="U0ALICE", channel=CHANNEL, signing=signing
            )
            assert refused.status_code == 401
    assert slack.block_errors == []
    assert slack.violations() == []


async def test_a_bolt_app_takes_events_menus_and_closed_modals_as_from_slack(
    slack: FakeSlack, bolt_bot: str
) -> None:
    async with SlackSender(bolt_bot, SECRET, fake=slack) as sender:
        challenge = await sender.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7")
        assert challenge.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7"}

        asked = slack.post_as_user(CHANNEL, "<@U0BOT> status", user="U0ALICE")
        mention = {"type": "app_mention", "user": "U0ALICE", "text": asked["text"]}
        event = {**mention, "channel": CHANNEL, "ts": asked["ts"]}
        assert (await sender.event(event, event_id="Ev0001")).status_code == 200
        retried = await sender.event(event, event_id="Ev0001", retry_num=1)
        assert retried.status_code == 200
        await slack.wait_for(lambda s: len(s.messages(thread_ts=asked["ts"])) == 2)
        assert sorted(m["text"] for m in slack.messages(thread_ts=asked["ts"])) == [
            "Ev0001 retry 0",
            "Ev0001 retry 1",
        ]

        await sender.command("status", user="U0ALICE", channel=CHANNEL)
        (message,) = await slack.wait_for(
            lambda s: [m for m in s.messages(channel=CHANNEL) if "asked" in m["text"]]
        )
        assert (await sender.select(slack, "U0BOB", message["ts"], "sev2")).status_code == 200
        picked = await slack.wait_for(lambda s: s.ephemerals(user="U0BOB"))
        assert picked[0]["text"] == "picked sev2"
        with pytest.raises(AssertionError, match="0 options match"):
            await sender.select(slack, "U0BOB", message["ts"], "sev9")

        await sender.click(slack, "U0ALICE", message["ts"], action_id="run")
        view = await slack.wait_for(lambda s: s.view())
        assert view is not None
        with pytest.raises(AssertionError, match="0 inputs match"):
            await sender.submit(slack, "U0ALICE", view["id"], {"Quantity": "3"})
        assert (await sender.view_closed("U0ALICE", view)).status_code == 200
        await slack.wait_for(lambda s: s.messages(channel=CHANNEL)[-1]["text"] == "U0ALICE closed")
    kinds = [d.kind for d in sender.deliveries]
    assert kinds[:3] == ["url_verification", "event_callback", "event_callback"]
    assert "view_closed" in kinds


def test_a_submission_carries_every_input_of_the_view_as_slack_shapes_it() -> None:
    state = view_state(modal(), {"reason": {"choice": "Returned"}})
    assert state == {
        "values": {
            "sku": {"value": {"type": "plain_text_input", "value": None}},
            "reason": {
                "choice": {
                    "type": "static_select",
                    "selected_option": {"text": plain("Returned"), "value": "returned"},
                }
            },
        }
    }
    assert match_inputs(modal(), {"sku": "TEE-1", "why": "oversold"}) == {
        "sku": {"value": "TEE-1"},
        "reason": {"choice": "oversold"},
    }
