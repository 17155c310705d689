"""A Slack on loopback for the tests: the Web API, file uploads, response_urls and Socket Mode.

Tests fake Slack only through this server (what the bot calls) and ``slack_requests`` (what
Slack sends the bot, signed as Slack signs it). It is a real aiohttp server on 127.0.0.1 that
answers as Slack's Web API does, records every call, keeps the messages, views and files the
bot made, checks each message and view against Block Kit's hard limits (``block_kit_limits``)
and can be told to answer 429s, 5xx and ``ok: false`` errors.

In the test's event loop::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        ...
        replies = await slack.wait_for(lambda s: s.messages(thread_ts=ts))

On a thread of its own, for sync tests and bots in another process (``SLACK_API_URL``)::

    with FakeSlack.in_thread() as slack:
        ...
        slack.wait_for_sync(lambda s: s.messages(channel="C0OPS"))

Module fixtures ``slack`` (in the test's loop) and ``slack_thread`` are there for test modules
to import by name.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import secrets
import socket
import string
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import pytest
from aiohttp import BodyPartReader, WSCloseCode, WSMsgType, web
from block_kit_limits import message_problems, view_problems

T = TypeVar("T")

BOT_TOKEN = "xoxb-test"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
BOT_NAME = "agape-ops"
TEAM_ID = "T0TEAM"
TEAM_DOMAIN = "agape"
APP_ID = "A0APP"
SLACK_ORIGIN = f"https://{TEAM_DOMAIN}.slack.com"
DEFAULT_TZ = ("Africa/Lagos", "West Africa Standard Time", 3600)
ENVELOPE_TYPES = ("events_api", "interactive", "slash_commands")
RESPONSE_URL_USES = 5  # Slack takes at most five posts to one response_url
MESSAGE_METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral")
VIEW_METHODS = ("views.open", "views.push", "views.update", "views.publish")
JSON_PARAMS = ("blocks", "attachments", "view", "files", "metadata")
_ALNUM = string.ascii_uppercase + string.digits

EnvelopeType = Literal["events_api", "interactive", "slash_commands"]


def new_id(prefix: str, length: int = 10) -> str:
    """Return a Slack-looking id: ``prefix`` then upper-case letters and digits."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def channel_name(channel_id: str) -> str:
    """The name the fake gives a channel it was not told about (``conversations.info``)."""
    return f"channel-{channel_id.lower()}"


def user_record(
    user_id: str, real_name: str | None = None, tz: str | None = None
) -> dict[str, Any]:
    """A user as ``users.info`` answers it (name, real_name, tz, tz_offset, profile)."""
    zone, label, offset = DEFAULT_TZ
    name = user_id.lower()
    real = real_name or f"User {user_id}"
    return {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": name,
        "deleted": False,
        "real_name": real,
        "tz": tz or zone,
        "tz_label": label,
        "tz_offset": offset,
        "is_bot": False,
        "is_admin": False,
        "profile": {"real_name": real, "display_name": name, "team": TEAM_ID},
    }


class SlackError(Exception):
    """Raised by a method's handler: Slack answers ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, *messages: str) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


@dataclass(frozen=True)
class Call:
    """One Web API call: the method, its parsed params, the token, when it arrived
    (``time.monotonic()``), and the HTTP status and JSON body it was answered with."""

    method: str
    params: dict[str, Any]
    token: str | None
    at: float
    status: int
    response: dict[str, Any]
    http_method: str = "POST"
    content_type: str = ""

    @property
    def channel(self) -> str | None:
        """The channel the call is about (``channel`` or ``channel_id``), if any."""
        value = self.params.get("channel", self.params.get("channel_id"))
        return value if isinstance(value, str) else None

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass(frozen=True)
class RateLimited:
    """A 429 the fake answered: to which method and channel, when, and its Retry-After."""

    method: str
    channel: str | None
    at: float
    retry_after: int


@dataclass(frozen=True)
class Violation:
    """A call to a method for a channel that came before the Retry-After of a 429 had passed."""

    method: str
    channel: str | None
    limited_at: float
    retry_after: int
    call_at: float

    @property
    def early_by(self) -> float:
        """How many seconds too soon the call came."""
        return self.limited_at + self.retry_after - self.call_at


@dataclass(frozen=True)
class BlockError:
    """A message or view the fake refused for breaking Block Kit's limits."""

    method: str
    problems: tuple[str, ...]
    params: dict[str, Any]


@dataclass
class Upload:
    """A file the bot uploaded (files.getUploadURLExternal, the upload, completeUploadExternal)."""

    file_id: str
    filename: str
    length: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


@dataclass(frozen=True)
class Envelope:
    """A Socket Mode envelope the fake sent, and to which connection (0 is the first)."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    connection: int
    at: float


@dataclass(frozen=True)
class Ack:
    """A Socket Mode client's acknowledgement of an envelope, with its optional payload."""

    envelope_id: str
    payload: dict[str, Any] | None
    at: float


@dataclass(frozen=True)
class ResponsePost:
    """What the bot posted to a ``response_url`` the fake minted, and how it was answered."""

    url: str
    body: dict[str, Any]
    at: float
    status: int


@dataclass
class _Fault:
    method: str
    channel: str | None
    remaining: int
    status: int = 200
    error: str = ""
    retry_after: int = 0


@dataclass
class _ResponseTarget:
    channel: str | None
    message_ts: str | None
    user: str | None
    uses: int = 0


@dataclass
class _Socket:
    number: int
    ws: web.WebSocketResponse


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)
    home: dict[str, str] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    faults: list[_Fault] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)
    rate_limited: list[RateLimited] = field(default_factory=list)
    block_errors: list[BlockError] = field(default_factory=list)
    responses: dict[str, _ResponseTarget] = field(default_factory=dict)
    response_posts: list[ResponsePost] = field(default_factory=list)
    sockets: list[_Socket] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)


def _fill_ids(blocks: Any) -> Any:
    """Give blocks and interactive elements the ids Slack gives them when they have none."""
    if not isinstance(blocks, list):
        return blocks
    filled = copy.deepcopy(blocks)
    for block in filled:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", new_id("", 5))
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        for element in elements:
            if isinstance(element, dict) and element.get("type") not in ("image", None):
                element.setdefault("action_id", new_id("", 5))
    return filled


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with suppress(ValueError):  # not JSON after all: keep the string
                params[key] = json.loads(value)
    return params


async def _read_params(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Parse a Web API request as slack_sdk sends it: query params, then a form or JSON body;
    the token from ``Authorization: Bearer`` or the ``token`` param."""
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str | bytes | bytearray):
                    params[key] = value
                else:  # an uploaded file
                    params[key] = value.file.read()
    token = params.pop("token", None)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token = auth.removeprefix("Bearer ").strip()
    return _json_params(params), token if isinstance(token, str) and token else None


def _required(params: dict[str, Any], key: str, error: str = "invalid_arguments") -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        if error == "invalid_arguments":
            raise SlackError(error, f"[ERROR] missing required field: {key} [json-pointer:/{key}]")
        raise SlackError(error)
    return value


class FakeSlack:
    """A Slack Web API (and Socket Mode) server on 127.0.0.1 that records what the bot does.

    Start it with ``async with FakeSlack()`` or ``with FakeSlack.in_thread()``; point the bot's
    ``SLACK_API_URL`` (slack_sdk's ``base_url``) at ``api_url``. Everything it records is read
    through methods that copy, so a test may read while the bot is calling (from any thread).
    """

    def __init__(self, *, bot_token: str = BOT_TOKEN) -> None:
        self.bot_token = bot_token
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self._state = _State()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._started = time.monotonic()
        self._last_ts = 0
        self._socket_count = 0
        self._round_robin = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.delete": self._chat_delete,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.replies": self._conversations_replies,
            "reactions.add": self._reactions_add,
            "apps.connections.open": self._apps_connections_open,
        }

    # -- running ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's origin, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL for slack_sdk (``SLACK_API_URL``): ``http://127.0.0.1:PORT/api/``."""
        return f"{self.url}/api/"

    async def start(self) -> None:
        """Bind a free port on 127.0.0.1 and start answering (in the running event loop)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{response_id}", self._response)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._started = time.monotonic()

    async def stop(self) -> None:
        """Close the Socket Mode connections and the server."""
        with self._lock:
            sockets = [s.ws for s in self._state.sockets]
        for ws in sockets:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def in_thread(cls, *, bot_token: str = BOT_TOKEN) -> Iterator[FakeSlack]:
        """Run a fake on an event loop of its own in a background thread (for sync tests and
        for bots in another process); stop it and join the thread on exit."""
        slack = cls(bot_token=bot_token)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-slack", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(slack.start(), loop).result(timeout=10)
            yield slack
        finally:
            try:
                asyncio.run_coroutine_threadsafe(slack.stop(), loop).result(timeout=10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=10)
                loop.close()

    def _server_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the fake Slack is not started")
        return self._loop

    async def _on_server_loop(self, coro: Awaitable[T]) -> T:
        """Await ``coro`` on the server's loop, from that loop or from another thread's."""
        loop = self._server_loop()
        if asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_wrap(coro), loop))

    def _run_sync(self, coro: Awaitable[T], timeout: float) -> T:
        if self._thread == threading.get_ident():
            raise RuntimeError("the fake runs on this thread's loop: await the async method")
        return asyncio.run_coroutine_threadsafe(_wrap(coro), self._server_loop()).result(timeout)

    # -- directory -------------------------------------------------------------------------

    def add_user(
        self, user_id: str, *, real_name: str | None = None, tz: str | None = None
    ) -> None:
        """Make ``users.info`` answer this user with this name and time zone."""
        with self._lock:
            self.users[user_id] = user_record(user_id, real_name, tz)

    def add_channel(self, channel_id: str, name: str) -> None:
        """Make ``conversations.info`` answer this channel with this name."""
        with self._lock:
            self.channels[channel_id] = self._channel_record(channel_id, name)

    def post_as_user(
        self, channel: str, text: str, *, user: str = "U0HUMAN", thread_ts: str | None = None
    ) -> dict[str, Any]:
        """Put a message from a person in the fake's history (as if typed in Slack) and return
        it, so threads and ``conversations.replies`` hold what a real channel would."""
        with self._lock:
            message = {"type": "message", "user": user, "text": text, "team": TEAM_ID}
            stored = self._store_message(channel, message, thread_ts)
            self._notify()
            return stored

    # -- faults ----------------------------------------------------------------------------

    def rate_limit(
        self, method: str, channel: str | None = None, *, times: int = 1, retry_after: int = 1
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (for ``channel``, or any) with HTTP 429,
        ``Retry-After: retry_after`` (whole seconds, as Slack sends it) and ``ratelimited``."""
        self._add_fault(_Fault(method, channel, times, 429, "ratelimited", retry_after))

    def fail(
        self, method: str, status: int = 500, *, times: int = 1, channel: str | None = None
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an HTTP 5xx."""
        error = "service_unavailable" if status == 503 else "fatal_error"
        self._add_fault(_Fault(method, channel, times, status, error))

    def fail_with(
        self,
        method: str,
        error: str = "channel_not_found",
        *,
        times: int = 1,
        channel: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with ``{"ok": false, "error": error}``."""
        self._add_fault(_Fault(method, channel, times, 200, error))

    def latency(self, method: str, seconds: float) -> None:
        """Wait ``seconds`` before answering each call of ``method`` (``"*"``: every method)."""
        with self._lock:
            self._state.latency[method] = seconds

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._state.faults.append(fault)

    def _take_fault(self, method: str, channel: str | None) -> _Fault | None:
        for fault in self._state.faults:
            if fault.method == method and fault.channel in (None, channel) and fault.remaining:
                fault.remaining -= 1
                return fault
        return None

    def rate_limits(self) -> list[RateLimited]:
        """The 429s answered so far, in order."""
        with self._lock:
            return list(self._state.rate_limited)

    def violations(self) -> list[Violation]:
        """Every call to a method for a channel that arrived after a 429 to that method for
        that channel and before its Retry-After had passed (the bot must wait it out)."""
        with self._lock:
            limits = list(self._state.rate_limited)
            calls = self.calls()
        found = []
        for limit in limits:
            for call in calls:
                if (call.method, call.channel) != (limit.method, limit.channel):
                    continue
                if limit.at < call.at < limit.at + limit.retry_after:
                    found.append(
                        Violation(limit.method, limit.channel, limit.at, limit.retry_after, call.at)
                    )
        return found

    @property
    def block_errors(self) -> list[BlockError]:
        """The messages and views refused for breaking Block Kit's limits."""
        with self._lock:
            return list(self._state.block_errors)

    # -- what was recorded -----------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every Web API call in the order they arrived (optionally only one method's)."""
        with self._lock:
            calls = sorted(self._state.calls, key=lambda call: call.at)
        return [call for call in calls if method is None or call.method == method]

    def messages(self, channel: str | None = None, thread_ts: str | None = None) -> list[Any]:
        """The messages as they stand now (updates applied, deleted ones gone), oldest first,
        each as Slack shows it plus a ``channel`` key. With ``thread_ts``: that thread's
        replies only (not its parent)."""
        with self._lock:
            found = [
                {**copy.deepcopy(message), "channel": where}
                for where, message in self._state.messages.values()
                if channel in (None, where)
                and (
                    thread_ts is None
                    or (message.get("thread_ts") == thread_ts and message["ts"] != thread_ts)
                )
            ]
        return sorted(found, key=lambda message: _ts_key(message["ts"]))

    def message(self, ts: str) -> dict[str, Any] | None:
        """The message with this ts as it stands now (with a ``channel`` key), or None."""
        with self._lock:
            stored = self._state.messages.get(ts)
            if stored is None:
                return None
            return {**copy.deepcopy(stored[1]), "channel": stored[0]}

    def deleted(self) -> list[dict[str, Any]]:
        """The messages deleted with ``chat.delete`` or a response_url, as they were."""
        with self._lock:
            return copy.deepcopy(self._state.deleted)

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Any]:
        """Ephemeral messages (chat.postEphemeral, ephemeral response_url posts), in order:
        dicts with channel, user, text, blocks, attachments, thread_ts and message_ts."""
        with self._lock:
            return [
                copy.deepcopy(e)
                for e in self._state.ephemerals
                if channel in (None, e["channel"]) and user in (None, e["user"])
            ]

    @property
    def views_opened(self) -> list[dict[str, Any]]:
        """The modals opened (views.open, views.push) in order, each as it stands now."""
        with self._lock:
            return [copy.deepcopy(self._state.views[view_id]) for view_id in self._state.opened]

    def view(self, view_id: str | None = None) -> dict[str, Any] | None:
        """A view by id as it stands now; without an id, the modal opened last."""
        with self._lock:
            if view_id is None:
                view_id = self._state.opened[-1] if self._state.opened else None
            view = self._state.views.get(view_id or "")
            return copy.deepcopy(view) if view is not None else None

    @property
    def home_views(self) -> dict[str, dict[str, Any]]:
        """The Home tab published for each user (views.publish), by user id."""
        with self._lock:
            return {
                user: copy.deepcopy(self._state.views[view_id])
                for user, view_id in self._state.home.items()
            }

    @property
    def uploads(self) -> list[Upload]:
        """The files the bot uploaded, in order (``completed`` once completeUploadExternal
        shared them)."""
        with self._lock:
            return [copy.copy(upload) for upload in self._state.uploads.values()]

    # -- waiting ---------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake every waiter (called with the lock held, after each change)."""
        self._changed.notify_all()
        for loop, event in list(self._waiters):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that waiter's loop is closed
                self._waiters.discard((loop, event))

    async def wait_for(
        self,
        predicate: Callable[[FakeSlack], T],
        timeout: float = 5.0,  # noqa: ASYNC109 - the deadline is part of what a test asserts
        *,
        what: str = "",
    ) -> T:
        """Wait until ``predicate(self)`` is truthy and return its value. It is evaluated now
        and after each change the fake records (a call, an upload, a response_url post, a
        socket connecting or closing, an ack), so it should read the fake's state. On timeout
        raise AssertionError naming what was awaited and showing the recent calls."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        event = asyncio.Event()
        waiter = (loop, event)
        with self._lock:
            self._waiters.add(waiter)
        try:
            while True:
                event.clear()
                result = predicate(self)
                if result:
                    return result
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise AssertionError(self._timeout_report(predicate, timeout, what))
                with suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def wait_for_sync(
        self, predicate: Callable[[FakeSlack], T], timeout: float = 5.0, *, what: str = ""
    ) -> T:
        """``wait_for`` for sync tests (the fake must run ``in_thread``)."""
        if self._thread == threading.get_ident():
            raise RuntimeError("the fake runs on this thread's loop: await wait_for instead")
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate(self)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(self._timeout_report(predicate, timeout, what))
                self._changed.wait(remaining)

    def _timeout_report(self, predicate: Callable[..., Any], timeout: float, what: str) -> str:
        if not what:
            try:
                what = inspect.getsource(predicate).strip()
            except (OSError, TypeError):
                what = repr(predicate)
        lines = [f"fake Slack: timed out after {timeout}s waiting for: {what}"]
        lines.append("last calls (seconds since start, method, params -> status, answer):")
        for call in self.calls()[-15:]:
            params = json.dumps(call.params, default=repr)[:300]
            answer = call.response.get("error") or "ok"
            lines.append(
                f"  {call.at - self._started:8.3f} {call.method} {params} -> {call.status} {answer}"
            )
        with self._lock:
            lines.append(
                f"socket connections: {len(self._state.sockets)}, envelopes sent: "
                f"{len(self._state.envelopes)}, acks: {len(self._state.acks)}, "
                f"block errors: {len(self._state.block_errors)}"
            )
        return "\n".join(lines)

    # -- the Web API -----------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        method = request.match_info["method"]
        params, token = await _read_params(request)
        with self._lock:
            delay = self._state.latency.get(method, self._state.latency.get("*", 0.0))
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            status, body, headers = self._answer(method, params, token, at)
            self._state.calls.append(
                Call(method, params, token, at, status, body, request.method, request.content_type)
            )
            self._notify()
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None, at: float
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        handler = self._handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        if error := self._auth_error(method, token):
            return 200, {"ok": False, "error": error}, {}
        value = params.get("channel", params.get("channel_id"))
        channel = value if isinstance(value, str) else None
        fault = self._take_fault(method, channel)
        if fault is not None:
            body = {"ok": False, "error": fault.error}
            if fault.status == 429:
                self._state.rate_limited.append(RateLimited(method, channel, at, fault.retry_after))
                return 429, body, {"Retry-After": str(fault.retry_after)}
            return fault.status, body, {}
        try:
            self._check_blocks(method, params)
            return 200, {"ok": True, **handler(params)}, {}
        except SlackError as refused:
            return 200, refused.body(), {}

    def _auth_error(self, method: str, token: str | None) -> str | None:
        if not token:
            return "not_authed"
        if method == "apps.connections.open":
            return None if token.startswith("xapp-") else "invalid_auth"
        if token.startswith("xapp-"):
            return "not_allowed_token_type"
        return None if token == self.bot_token else "invalid_auth"

    def _check_blocks(self, method: str, params: dict[str, Any]) -> None:
        if method in MESSAGE_METHODS:
            problems = message_problems(params)
            error = "invalid_blocks"
            if problems and all(p.endswith("[json-pointer:/text]") for p in problems):
                error = "msg_too_long"
        elif method in VIEW_METHODS and "view" in params:
            problems = view_problems(params["view"], at="/view")
            error = "invalid_arguments"
        else:
            return
        if problems:
            self._state.block_errors.append(BlockError(method, tuple(problems), params))
            raise SlackError(error, *problems)

    def _next_ts(self) -> str:
        micros = max(time.time_ns() // 1000, self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _bot_message(self, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": params.get("text") or "",
        }
        if params.get("blocks"):
            message["blocks"] = _fill_ids(params["blocks"])
        if params.get("attachments"):
            message["attachments"] = copy.deepcopy(params["attachments"])
        if params.get("metadata"):
            message["metadata"] = copy.deepcopy(params["metadata"])
        return message

    def _store_message(
        self, channel: str, message: dict[str, Any], thread_ts: str | None
    ) -> dict[str, Any]:
        """Give a message a ts, thread it as Slack does, keep it; return a copy."""
        message["ts"] = self._next_ts()
        parent = self._state.messages.get(thread_ts or "")
        if thread_ts and parent is not None and parent[0] == channel:
            root_ts = parent[1].get("thread_ts", thread_ts)  # a reply's thread: its parent's
            root = self._state.messages.get(root_ts, parent)[1]
            message["thread_ts"] = root_ts
            message["parent_user_id"] = root.get("user")
            root["thread_ts"] = root_ts
            root["reply_count"] = root.get("reply_count", 0) + 1
            root["latest_reply"] = message["ts"]
            users = root.setdefault("reply_users", [])
            if message.get("user") not in users:
                users.append(message.get("user"))
            root["reply_users_count"] = len(users)
        elif thread_ts:
            message["thread_ts"] = thread_ts
        self._state.messages[message["ts"]] = (channel, message)
        return copy.deepcopy(message)

    def _stored(self, channel: str, ts: str) -> dict[str, Any]:
        stored = self._state.messages.get(ts)
        if stored is None or stored[0] != channel:
            raise SlackError("message_not_found")
        return stored[1]

    def _remove_message(self, channel: str, ts: str) -> None:
        message = self._stored(channel, ts)
        del self._state.messages[ts]
        self._state.deleted.append({**message, "channel": channel})
        root_ts = message.get("thread_ts")
        if root_ts and root_ts != ts and root_ts in self._state.messages:
            root = self._state.messages[root_ts][1]
            root["reply_count"] = max(0, root.get("reply_count", 1) - 1)

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{SLACK_ORIGIN}/",
            "team": "Agape",
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        if not any(params.get(key) for key in ("text", "blocks", "attachments")):
            raise SlackError("no_text")
        message = self._store_message(channel, self._bot_message(params), params.get("thread_ts"))
        return {"channel": channel, "ts": message["ts"], "message": message}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        ts = _required(params, "ts", "message_not_found")
        message = self._stored(channel, ts)
        self._apply_update(message, params)
        return {
            "channel": channel,
            "ts": ts,
            "text": message["text"],
            "message": copy.deepcopy(message),
        }

    def _apply_update(self, message: dict[str, Any], params: dict[str, Any]) -> None:
        """Update a message as chat.update does: blocks and attachments not given are kept;
        an empty list removes them."""
        if "text" in params:
            message["text"] = params.get("text") or ""
        for key in ("blocks", "attachments"):
            if key in params:
                if params[key]:
                    message[key] = _fill_ids(params[key])
                else:
                    message.pop(key, None)
        message["edited"] = {"user": BOT_USER, "ts": self._next_ts()}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        user = _required(params, "user", "user_not_in_channel")
        if not any(params.get(key) for key in ("text", "blocks", "attachments")):
            raise SlackError("no_text")
        message_ts = self._next_ts()
        self._state.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": params.get("text") or "",
                "blocks": _fill_ids(params.get("blocks") or []),
                "attachments": copy.deepcopy(params.get("attachments") or []),
                "thread_ts": params.get("thread_ts"),
                "message_ts": message_ts,
            }
        )
        return {"message_ts": message_ts}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        ts = _required(params, "message_ts", "message_not_found")
        message = self._stored(channel, ts)
        link = f"{SLACK_ORIGIN}/archives/{channel}/p{ts.replace('.', '')}"
        root = message.get("thread_ts")
        if root and root != ts:
            link += f"?thread_ts={root}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        ts = _required(params, "ts", "message_not_found")
        self._remove_message(channel, ts)
        return {"channel": channel, "ts": ts}

    def _new_view(self, params: dict[str, Any], **ids: str) -> dict[str, Any]:
        given = params.get("view")
        if not isinstance(given, dict):
            raise SlackError(
                "invalid_arguments", "[ERROR] must be a view object [json-pointer:/view]"
            )
        view_id = ids.get("id") or new_id("V")
        view: dict[str, Any] = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": given["type"],
            "blocks": _fill_ids(given.get("blocks") or []),
            "private_metadata": given.get("private_metadata", ""),
            "callback_id": given.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(given.get("clear_on_close", False)),
            "notify_on_close": bool(given.get("notify_on_close", False)),
            "root_view_id": ids.get("root_view_id", view_id),
            "previous_view_id": ids.get("previous_view_id"),
            "app_id": APP_ID,
            "external_id": given.get("external_id", ids.get("external_id", "")),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }
        for key in ("title", "submit", "close"):
            if key in given:
                view[key] = copy.deepcopy(given[key])
        self._state.views[view_id] = view
        return copy.deepcopy(view)

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        _required(params, "trigger_id")
        view = self._new_view(params)
        self._state.opened.append(view["id"])
        return {"view": view}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        _required(params, "trigger_id")
        previous = self._state.opened[-1] if self._state.opened else None
        root = self._state.views[previous]["root_view_id"] if previous else ""
        view = self._new_view(params, root_view_id=root, previous_view_id=previous or "")
        self._state.opened.append(view["id"])
        return {"view": view}

    def _existing_view(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = params.get("view_id"), params.get("external_id")
        if not view_id and not external_id:
            raise SlackError("invalid_arguments", "[ERROR] view_id or external_id is required")
        for view in self._state.views.values():
            if view["id"] == view_id or (external_id and view["external_id"] == external_id):
                if params.get("hash") and params["hash"] != view["hash"]:
                    raise SlackError("hash_conflict")
                return view
        raise SlackError("not_found")

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        old = self._existing_view(params)
        ids = {key: old[key] for key in ("id", "root_view_id", "previous_view_id", "external_id")}
        return {"view": self._new_view(params, **{k: v for k, v in ids.items() if v})}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = _required(params, "user_id")
        ids: dict[str, str] = {}
        if user in self._state.home:
            old = self._state.views[self._state.home[user]]
            if params.get("hash") and params["hash"] != old["hash"]:
                raise SlackError("hash_conflict")
            ids["id"] = old["id"]
        view = self._new_view(params, **ids)
        self._state.home[user] = view["id"]
        return {"view": view}

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = _required(params, "filename")
        length = params.get("length")
        if length is None or not str(length).isdigit():
            raise SlackError("invalid_arguments", "[ERROR] missing required field: length")
        file_id = new_id("F")
        self._state.uploads[file_id] = Upload(
            file_id,
            filename,
            int(length),
            alt_txt=params.get("alt_txt"),
            snippet_type=params.get("snippet_type"),
        )
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments", "[ERROR] missing required field: files")
        uploads = []
        for item in files:
            upload = self._state.uploads.get(item.get("id", "") if isinstance(item, dict) else "")
            if upload is None or upload.content is None:
                raise SlackError("file_not_found")
            uploads.append((upload, item.get("title") or upload.filename))
        channel = params.get("channel_id") or (params.get("channels") or "").split(",")[0]
        shared = []
        for upload, title in uploads:
            upload.title = title
            upload.channel_id = channel or None
            upload.thread_ts = params.get("thread_ts")
            upload.initial_comment = params.get("initial_comment")
            upload.completed = True
            shared.append(
                {
                    "id": upload.file_id,
                    "name": upload.filename,
                    "title": title,
                    "size": len(upload.content or b""),
                    "permalink": f"{SLACK_ORIGIN}/files/{BOT_USER}/{upload.file_id}",
                }
            )
        if channel:
            message = self._bot_message({"text": params.get("initial_comment") or ""})
            message["files"] = copy.deepcopy(shared)
            message["upload"] = True
            self._store_message(channel, message, params.get("thread_ts"))
        return {"files": shared}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = _required(params, "user", "user_not_found")
        if user in self.users:
            return {"user": copy.deepcopy(self.users[user])}
        if user[:1] not in ("U", "W") or not user.isalnum() or not user.isupper():
            raise SlackError("user_not_found")
        return {"user": user_record(user)}

    def _channel_record(self, channel_id: str, name: str) -> dict[str, Any]:
        return {
            "id": channel_id,
            "name": name,
            "is_channel": channel_id.startswith("C"),
            "is_group": channel_id.startswith("G"),
            "is_im": channel_id.startswith("D"),
            "is_private": not channel_id.startswith("C"),
            "is_archived": False,
            "is_member": True,
            "context_team_id": TEAM_ID,
            "created": 1_700_000_000,
        }

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        if channel in self.channels:
            return {"channel": copy.deepcopy(self.channels[channel])}
        if channel[:1] not in ("C", "G", "D") or not channel.isalnum():
            raise SlackError("channel_not_found")
        return {"channel": self._channel_record(channel, channel_name(channel))}

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        ts = _required(params, "ts", "thread_not_found")
        stored = self._state.messages.get(ts)
        if stored is None or stored[0] != channel:
            raise SlackError("thread_not_found")
        root_ts = stored[1].get("thread_ts", ts)
        thread = [
            copy.deepcopy(message)
            for where, message in self._state.messages.values()
            if where == channel
            and (message["ts"] == root_ts or message.get("thread_ts") == root_ts)
        ]
        thread.sort(key=lambda message: _ts_key(message["ts"]))
        return {"messages": thread, "has_more": False, "response_metadata": {"next_cursor": ""}}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _required(params, "channel", "channel_not_found")
        ts = _required(params, "timestamp", "message_not_found")
        name = _required(params, "name", "invalid_name")
        message = self._stored(channel, ts)
        reactions = message.setdefault("reactions", [])
        for reaction in reactions:
            if reaction["name"] == name:
                if BOT_USER in reaction["users"]:
                    raise SlackError("already_reacted")
                reaction["users"].append(BOT_USER)
                reaction["count"] += 1
                return {}
        reactions.append({"name": name, "users": [BOT_USER], "count": 1})
        return {}

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = uuid.uuid4()
        return {"url": f"ws://127.0.0.1:{self._port}/socket?ticket={ticket}&app_id={APP_ID}"}

    # -- file uploads and response_urls ----------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL of files.getUploadURLExternal: raw bytes or a multipart form."""
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            content = await part.read() if isinstance(part, BodyPartReader) else b""
        else:
            content = await request.read()
        with self._lock:
            upload = self._state.uploads.get(request.match_info["file_id"])
            if upload is None:
                return web.Response(status=404, text="file not found")
            upload.content = bytes(content)
            self._notify()
        return web.Response(text=f"OK - {len(content)}")

    def response_url(
        self, *, channel: str | None = None, message_ts: str | None = None, user: str | None = None
    ) -> str:
        """Mint a response_url (as Slack puts in interactions and slash commands). Posts to it
        are recorded; ``replace_original``/``delete_original`` act on ``message_ts``, an
        ``in_channel`` response posts to ``channel``, anything else is an ephemeral to
        ``user``. Like Slack's, it takes five posts."""
        response_id = uuid.uuid4().hex
        with self._lock:
            self._state.responses[response_id] = _ResponseTarget(channel, message_ts, user)
        return f"{self.url}/response/{response_id}"

    def responses(self, url: str | None = None) -> list[ResponsePost]:
        """What was posted to response_urls (optionally to one), in order."""
        with self._lock:
            return [p for p in self._state.response_posts if url in (None, p.url)]

    async def _response(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        try:
            body = await request.json()
        except ValueError:
            body = None
        with self._lock:
            status, answer = self._respond(request.match_info["response_id"], body)
            if isinstance(body, dict):
                self._state.response_posts.append(ResponsePost(str(request.url), body, at, status))
            self._notify()
        return web.json_response(answer, status=status)

    def _respond(self, response_id: str, body: Any) -> tuple[int, dict[str, Any]]:
        target = self._state.responses.get(response_id)
        if target is None or target.uses >= RESPONSE_URL_USES:
            return 404, {"ok": False, "error": "expired_url"}
        if not isinstance(body, dict):
            return 400, {"ok": False, "error": "invalid_payload"}
        problems = message_problems(body)
        if problems:
            self._state.block_errors.append(BlockError("response_url", tuple(problems), body))
            return 400, SlackError("invalid_blocks", *problems).body()
        target.uses += 1
        try:
            if body.get("delete_original") and target.channel and target.message_ts:
                self._remove_message(target.channel, target.message_ts)
            elif body.get("replace_original") and target.channel and target.message_ts:
                self._apply_update(self._stored(target.channel, target.message_ts), body)
            elif body.get("response_type") == "in_channel" and target.channel:
                message = self._bot_message(body)
                self._store_message(target.channel, message, body.get("thread_ts"))
            else:
                self._state.ephemerals.append(
                    {
                        "channel": target.channel,
                        "user": target.user,
                        "text": body.get("text") or "",
                        "blocks": _fill_ids(body.get("blocks") or []),
                        "attachments": copy.deepcopy(body.get("attachments") or []),
                        "thread_ts": body.get("thread_ts"),
                        "message_ts": self._next_ts(),
                    }
                )
        except SlackError as refused:
            return 404, refused.body()
        return 200, {"ok": True}

    # -- Socket Mode -----------------------------------------------------------------------

    @property
    def socket_connections(self) -> int:
        """How many Socket Mode clients are connected now."""
        with self._lock:
            return len(self._state.sockets)

    @property
    def envelopes(self) -> list[Envelope]:
        """The Socket Mode envelopes sent so far, in order."""
        with self._lock:
            return list(self._state.envelopes)

    def acks(self) -> list[Ack]:
        """The acknowledgements Socket Mode clients sent, in order."""
        with self._lock:
            return list(self._state.acks)

    def ack(self, envelope_id: str) -> Ack | None:
        """The first acknowledgement of this envelope, if any."""
        with self._lock:
            return next((a for a in self._state.acks if a.envelope_id == envelope_id), None)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            self._socket_count += 1
            connection = _Socket(self._socket_count - 1, ws)
            self._state.sockets.append(connection)
            count = len(self._state.sockets)
        hello = {
            "type": "hello",
            "num_connections": count,
            "debug_info": {
                "host": "fake-slack",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": APP_ID},
        }
        try:
            await ws.send_json(hello)
            with self._lock:
                self._notify()
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._record_ack(message.data)
        finally:
            with self._lock:
                self._state.sockets.remove(connection)
                self._notify()
        return ws

    def _record_ack(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            return
        if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
            payload = message.get("payload")
            with self._lock:
                self._state.acks.append(
                    Ack(
                        message["envelope_id"],
                        payload if isinstance(payload, dict) else None,
                        time.monotonic(),
                    )
                )
                self._notify()

    async def socket_send(
        self,
        envelope_type: EnvelopeType,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Send an envelope to a connected Socket Mode client (round-robin across connections,
        as Slack spreads them) and return its envelope id. ``accepts_response_payload``
        defaults to what Slack sends: true for interactive and slash_commands."""
        if envelope_type not in ENVELOPE_TYPES:
            raise ValueError(f"envelope type must be one of {ENVELOPE_TYPES}")
        accepts = (
            envelope_type != "events_api"
            if accepts_response_payload is None
            else accepts_response_payload
        )
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        return await self._on_server_loop(self._send_envelope(envelope))

    def socket_send_sync(
        self, envelope_type: EnvelopeType, payload: dict[str, Any], **options: Any
    ) -> str:
        """``socket_send`` for sync tests (the fake must run ``in_thread``)."""
        return self._run_sync(self.socket_send(envelope_type, payload, **options), 10)

    async def _send_envelope(self, envelope: dict[str, Any]) -> str:
        with self._lock:
            if not self._state.sockets:
                raise AssertionError("no Socket Mode client is connected to the fake Slack")
            connection = self._state.sockets[self._round_robin % len(self._state.sockets)]
            self._round_robin += 1
        await connection.ws.send_json(envelope)
        with self._lock:
            self._state.envelopes.append(
                Envelope(
                    envelope["envelope_id"],
                    envelope["type"],
                    envelope["payload"],
                    envelope["accepts_response_payload"],
                    connection.number,
                    time.monotonic(),
                )
            )
            self._notify()
        return str(envelope["envelope_id"])

    async def wait_for_ack(
        self,
        envelope_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - the deadline is part of what a test asserts
    ) -> Ack:
        """Wait for a client's acknowledgement of the envelope and return it."""
        ack = await self.wait_for(
            lambda slack: slack.ack(envelope_id), timeout, what=f"an ack of {envelope_id}"
        )
        assert ack is not None
        return ack

    def wait_for_ack_sync(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """``wait_for_ack`` for sync tests (the fake must run ``in_thread``)."""
        ack = self.wait_for_sync(
            lambda slack: slack.ack(envelope_id), timeout, what=f"an ack of {envelope_id}"
        )
        assert ack is not None
        return ack

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell every client to reconnect (``{"type": "disconnect"}``) and close them, as
        Slack does when it refreshes connections."""
        await self._on_server_loop(self._disconnect_all(reason))

    async def _disconnect_all(self, reason: str) -> None:
        with self._lock:
            sockets = [s.ws for s in self._state.sockets]
        for ws in sockets:
            message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}}
            await ws.send_json(message)
            await ws.close(code=WSCloseCode.GOING_AWAY)


async def _wrap(awaitable: Awaitable[T]) -> T:
    return await awaitable


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """A fake Slack in the test's event loop."""
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def slack_thread() -> Iterator[FakeSlack]:
    """A fake Slack on a thread of its own (for sync tests and bots in another process)."""
    with FakeSlack.in_thread() as fake:
        yield fake
