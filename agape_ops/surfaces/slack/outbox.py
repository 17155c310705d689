"""Every Slack Web API call the bot makes, paced per channel and patient with rate limits.

Calls to one channel go out one at a time, in order (a thread reads in the order things
happened), and ``chat.postMessage`` is paced to Slack's guidance of about one message a second
per channel, with a small burst. A 429 is honoured by slack_sdk's rate-limit retry handler,
which waits ``Retry-After`` before calling again; since a channel's calls are serialised, nothing
else goes to that channel meanwhile. Server errors and dropped connections are retried a few
times; a call still rate limited after that waits and goes again, so every message is delivered
in the end. What failed is counted and logged, never raised into the listener that asked.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

#: Messages a channel may get at once before pacing starts, and then one per this many seconds.
BURST = 6
PACE_S = 1.0
#: How many times slack_sdk retries a 429 in place before the outbox waits and tries again.
RATE_LIMIT_RETRIES = 5
#: Errors that mean the bot cannot act in Slack at all: its health is down.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
#: How long a call keeps trying in all before it is given up (and logged).
GIVE_UP_S = 600.0


def retry_after_s(headers: Mapping[str, Any]) -> float:
    """Read a 429's ``Retry-After`` (seconds), whether the header value is text or a list."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            text = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(0.0, float(str(text).strip()))
            except ValueError:
                return 1.0
    return 1.0


class RetryAfter(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's rate-limit retry, waiting the whole ``Retry-After``.

    The built-in handler reads only the header's first character when the client is
    aiohttp-based (the header is a string there, not a list): ``Retry-After: 30`` waited 3 s,
    and the next call came 27 s too early.
    """

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error or RuntimeError("a rate-limit retry without a response")
        state.next_attempt_requested = True
        await asyncio.sleep(retry_after_s(response.headers))
        state.increment_current_attempt()


def web_client(token: str, base_url: str, *, timeout_s: float = 10.0) -> AsyncWebClient:
    """The one Slack Web API client: every call to ``base_url``, with bounded retries."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=int(max(1, timeout_s)),
        retry_handlers=[
            RetryAfter(max_retry_count=RATE_LIMIT_RETRIES),
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


@dataclass
class _Channel:
    """One channel's queue: one call at a time, urgent ones (a new run's card, an answer to
    the person who clicked) ahead of the rest, each kind in arrival order."""

    busy: bool = False
    waiting: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)
    tokens: float = BURST
    refilled: float = field(default_factory=time.monotonic)

    async def acquire(self, urgent: bool, order: int) -> None:
        if not self.busy and not self.waiting:
            self.busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (0 if urgent else 1, order, turn)
        heapq.heappush(self.waiting, entry)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the turn while being cancelled: pass it on
            else:
                self.waiting.remove(entry)
                heapq.heapify(self.waiting)
            raise

    def release(self) -> None:
        while self.waiting:
            _, _, turn = heapq.heappop(self.waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self.busy = False


class SlackHealth:
    """What the bot last heard from Slack: its health without calling Slack to find out."""

    def __init__(self) -> None:
        self.ok: bool | None = None
        self.detail = "no call made yet"
        self.at: float | None = None

    def saw(self, ok: bool, detail: str) -> None:
        self.ok, self.detail, self.at = ok, detail, time.monotonic()


Counter = Callable[[str, str], None]


class Outbox:
    """Send Web API calls; serialise and pace them per channel."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        on_error: Counter | None = None,
        pace_s: float = PACE_S,
        burst: int = BURST,
        health: SlackHealth | None = None,
    ) -> None:
        self.client = client
        self.pace_s = pace_s
        self.burst = burst
        self.health = health or SlackHealth()
        self._channels: dict[str, _Channel] = {}
        self._order = itertools.count()
        self._on_error = on_error or (lambda method, error: None)

    def _channel(self, channel: str) -> _Channel:
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel(tokens=self.burst)
        return state

    async def _pace(self, state: _Channel) -> None:
        now = time.monotonic()
        state.tokens = min(self.burst, state.tokens + (now - state.refilled) / self.pace_s)
        state.refilled = now
        if state.tokens < 1:
            await asyncio.sleep((1 - state.tokens) * self.pace_s)
            state.tokens, state.refilled = 1, time.monotonic()
        state.tokens -= 1

    async def call(
        self, method: str, channel: str | None = None, *, urgent: bool = False, **params: Any
    ) -> dict[str, Any]:
        """Make one Web API call (to ``channel``'s queue when it has one); return its data.
        ``urgent`` calls go ahead of the channel's other waiting calls.

        Raise ``SlackApiError`` when Slack refuses it for a reason retrying cannot fix.
        """
        payload = {k: v for k, v in params.items() if v is not None}
        if channel is not None:
            payload.setdefault("channel", channel)
        return await self._queued(
            method, channel, lambda: self.client.api_call(method, json=payload), urgent=urgent
        )

    async def upload(
        self,
        channel: str,
        *,
        thread_ts: str | None,
        filename: str,
        title: str,
        content: str,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Attach a file in a channel's thread (files_upload_v2: three calls, one queue)."""

        async def send() -> Any:
            return await self.client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                filename=filename,
                title=title,
                content=content,
                initial_comment=comment,
            )

        return await self._queued("files.upload", channel, send)

    async def _queued(
        self,
        method: str,
        channel: str | None,
        send: Callable[[], Awaitable[Any]],
        *,
        urgent: bool = False,
    ) -> dict[str, Any]:
        if channel is None:
            return await self._send(method, send)
        state = self._channel(channel)
        await state.acquire(urgent, next(self._order))
        try:
            if method == "chat.postMessage":
                await self._pace(state)
            return await self._send(method, send)
        finally:
            state.release()

    async def _send(self, method: str, send: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
        deadline = time.monotonic() + GIVE_UP_S
        while True:
            try:
                response = await send()
            except SlackApiError as exc:
                error = str(exc.response.get("error", "error"))
                self._on_error(method, error)
                if exc.response.status_code == 429 and time.monotonic() < deadline:
                    wait = retry_after_s(exc.response.headers)
                    log.warning("slack %s rate limited: waiting %.0f s", method, wait)
                    await asyncio.sleep(wait)
                    continue
                answered = exc.response.status_code < 500 and error not in AUTH_ERRORS
                self.health.saw(answered, f"{method}: {error}")
                raise
            except (TimeoutError, OSError) as exc:
                self._on_error(method, type(exc).__name__)
                self.health.saw(False, f"{method}: {type(exc).__name__}")
                raise
            self.health.saw(True, f"{method}: ok")
            data: dict[str, Any] = dict(response.data) if hasattr(response, "data") else {}
            return data
