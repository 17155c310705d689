"""HTTP plumbing shared by the HTTP-facing adapters: send, retry reads, decode JSON, report.

Every httpx failure is converted here into an ``AdapterError`` whose message names the system
and host, so the Paystack, admin API and plain HTTP adapters say the same thing the same way.
Only GETs are retried (429 honouring ``Retry-After``, 5xx, timeouts), with capped exponential
backoff; ``sleep`` is injectable so tests drive a fake clock. A call has one deadline for all
of it (connecting, sending, reading, retries and the waits between them), which its error
names when it passes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from agape_ops.errors import (
    AdapterResponseError,
    AdapterTimeout,
    AdapterUnavailable,
    InputError,
)

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

#: Answers worth asking again for an idempotent read.
RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
BASE_DELAY_S = 0.5
MAX_DELAY_S = 10.0
EXCERPT_CHARS = 200

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def open_http_client(timeout_s: float) -> httpx.AsyncClient:
    """Build the one HTTP client the composition root hands to every HTTP-facing adapter."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        headers={"User-Agent": "agape-ops", "Accept": "application/json"},
    )


def safe_url(url: str | httpx.URL) -> str:
    """Return the URL with any password in its userinfo replaced, fit to show a person."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if parts.password is None:
        return text
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:[REDACTED]@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def host_of(url: str | httpx.URL) -> str:
    """Return ``host`` or ``host:port`` of a URL, for messages."""
    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError:
        return str(url)
    host = parts.hostname or str(url)
    return f"{host}:{port}" if port is not None else host


def shorten(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Return ``text`` on one line, cut to ``limit`` characters with the cut stated."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}… ({len(flat) - limit} more characters)"


def excerpt(response: httpx.Response, limit: int = EXCERPT_CHARS) -> str:
    """Return a short account of a body: an HTML page's title, or the text shortened."""
    text = response.text
    if _looks_like_html(response):
        match = _TITLE.search(text)
        title = " ".join(match.group(1).split()) if match else ""
        return f"an HTML page{f' titled {title!r}' if title else ''}"
    return shorten(text, limit) if text.strip() else "an empty body"


def _looks_like_html(response: httpx.Response) -> bool:
    if "html" in response.headers.get("content-type", "").lower():
        return True
    start = response.text.lstrip()[:15].lower()
    return start.startswith(("<!doctype", "<html"))


def decode_json(response: httpx.Response, *, system: str, adapter: str) -> Any:
    """Return the JSON body, or raise AdapterResponseError for an HTML page or a malformed body."""
    what = f"{system} answered HTTP {response.status_code} to {_target(response)}"
    if _looks_like_html(response):
        raise AdapterResponseError(
            f"{what} with {excerpt(response)} instead of JSON; a proxy or gateway may be "
            "answering in its place",
            adapter=adapter,
            status_code=response.status_code,
        )
    try:
        return response.json()
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the parser
        raise AdapterResponseError(
            f"{what} with a body that is not JSON: {excerpt(response)}",
            adapter=adapter,
            status_code=response.status_code,
        ) from exc


def decode_object(response: httpx.Response, *, system: str, adapter: str) -> dict[str, Any]:
    """Return the JSON body, which must be an object."""
    body = decode_json(response, system=system, adapter=adapter)
    if not isinstance(body, dict):
        raise shape_error(response, system=system, adapter=adapter, detail="not a JSON object")
    return body


def shape_error(
    response: httpx.Response, *, system: str, adapter: str, detail: str
) -> AdapterResponseError:
    """Build the error for an answer that is JSON but not the documented shape."""
    return AdapterResponseError(
        f"{system} answered HTTP {response.status_code} to {_target(response)} with an "
        f"unexpected shape ({detail}): {excerpt(response)}",
        adapter=adapter,
        status_code=response.status_code,
    )


def unexpected_status(
    response: httpx.Response, *, system: str, adapter: str
) -> AdapterResponseError:
    """Build the error for a status the caller has no meaning for, with the body shortened."""
    return AdapterResponseError(
        f"{system} answered HTTP {response.status_code} to {_target(response)}: "
        f"{excerpt(response)}",
        adapter=adapter,
        status_code=response.status_code,
    )


def _target(response: httpx.Response) -> str:
    try:
        request = response.request
    except RuntimeError:  # a response built by hand has no request
        return "the request"
    return f"{request.method} {request.url.path}"


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    system: str,
    adapter: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | int] | None = None,
    json: Any = None,
    timeout_s: float | None = None,
) -> httpx.Response:
    """Make one request; convert transport failures into AdapterUnavailable or AdapterTimeout.

    The whole exchange (connecting, sending, reading every byte of the answer) has one deadline,
    ``timeout_s`` or the client's own timeout: httpx's timeouts bound each read, so a server
    answering a byte at a time would otherwise hold the step for ever.
    """
    timeout: httpx.Timeout | float = timeout_s if timeout_s is not None else client.timeout
    seconds = deadline_of(client, timeout_s)
    host = host_of(url)
    who = host if system == host else f"{system} ({host})"
    try:
        async with asyncio.timeout(seconds):
            return await client.request(
                method, url, headers=headers, params=params, json=json, timeout=timeout
            )
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise AdapterTimeout(_late(who, method, url, seconds), adapter=adapter) from exc
    except httpx.UnsupportedProtocol as exc:
        raise InputError(
            f"cannot call {safe_url(url)}: only http:// and https:// URLs are supported"
        ) from exc
    except httpx.ConnectError as exc:
        raise AdapterUnavailable(
            f"cannot reach {who}: {_connect_reason(exc)}", adapter=adapter
        ) from exc
    except httpx.TransportError as exc:
        raise AdapterUnavailable(
            f"the connection to {who} failed: {shorten(str(exc) or type(exc).__name__)}",
            adapter=adapter,
        ) from exc
    except httpx.RequestError as exc:
        raise AdapterResponseError(
            f"{who} sent an answer that could not be read: "
            f"{shorten(str(exc) or type(exc).__name__)}",
            adapter=adapter,
        ) from exc
    except httpx.InvalidURL as exc:
        raise InputError(f"cannot call {safe_url(url)}: {exc}") from exc


def deadline_of(client: httpx.AsyncClient, timeout_s: float | None) -> float | None:
    """Return the seconds a whole call may take: ``timeout_s``, else the client's longest."""
    if timeout_s is not None:
        return timeout_s
    parts = client.timeout
    given = [t for t in (parts.connect, parts.read, parts.write, parts.pool) if t is not None]
    return max(given) if given else None


def _connect_reason(exc: httpx.ConnectError) -> str:
    """Say why a connection failed, from the OS error under httpx's (and anyio's) wrapping."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "DNS lookup failed (no such host)"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if any(
        word in lowered
        for word in (
            "name or service not known",
            "nodename nor servname",
            "getaddrinfo",
            "name resolution",
        )
    ):
        return "DNS lookup failed (no such host)"
    if "unreachable" in lowered:
        return "network unreachable"
    if "ssl" in lowered or "certificate" in lowered:
        return f"TLS handshake failed ({shorten(text, 120)})"
    return shorten(text, 120) if text else "connection failed"


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delta-seconds form), if any."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def backoff_delay(
    attempt: int,
    response: httpx.Response | None,
    *,
    base_s: float = BASE_DELAY_S,
    cap_s: float = MAX_DELAY_S,
) -> float:
    """Return how long to wait before retry ``attempt`` (1-based), honouring ``Retry-After``."""
    if response is not None:
        asked = parse_retry_after(response.headers.get("retry-after"))
        if asked is not None:
            return min(asked, cap_s)
    return float(min(base_s * 2 ** (attempt - 1), cap_s))


async def get_with_retry(
    client: httpx.AsyncClient,
    url: str,
    *,
    system: str,
    adapter: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | int] | None = None,
    timeout_s: float | None = None,
    max_retries: int = 3,
    sleep: Sleep = asyncio.sleep,
    retry_statuses: Collection[int] = RETRY_STATUSES,
) -> httpx.Response:
    """GET, retrying transient answers at most ``max_retries`` times; return the final answer.

    Every attempt and every wait between them fit in one deadline, ``timeout_s`` or the
    client's timeout, so a slow server cannot multiply it by the number of attempts.
    A transient status still answered after the last retry is raised as AdapterResponseError;
    a timeout after the last retry as AdapterTimeout. Every other answer is returned for the
    caller to interpret.
    """
    seconds = deadline_of(client, timeout_s)
    who = f"{system} ({host_of(url)})" if system != host_of(url) else system
    late = _late(who, "GET", url, seconds, retried=max_retries > 0)
    async with _deadline(seconds, late, adapter=adapter):
        attempts = max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = await send(
                    client,
                    "GET",
                    url,
                    system=system,
                    adapter=adapter,
                    headers=headers,
                    params=params,
                    timeout_s=timeout_s,
                )
            except AdapterTimeout as exc:
                if attempt == attempts:
                    raise AdapterTimeout(
                        f"{exc.message} ({attempts} attempts)", adapter=adapter
                    ) from exc
                delay = backoff_delay(attempt, None)
                reason = "no answer"
            else:
                if response.status_code not in retry_statuses:
                    return response
                if attempt == attempts:
                    raise AdapterResponseError(
                        f"{system} still answered HTTP {response.status_code} to GET "
                        f"{response.request.url.path} after {attempts} attempts: "
                        f"{excerpt(response)}",
                        adapter=adapter,
                        status_code=response.status_code,
                    )
                delay = backoff_delay(attempt, response)
                reason = f"HTTP {response.status_code}"
            logger.warning(
                "%s GET %s: %s; retrying in %.1f s (retry %d of %d)",
                system,
                urlsplit(url).path,
                reason,
                delay,
                attempt,
                max_retries,
            )
            await sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises on its last attempt")


@asynccontextmanager
async def _deadline(seconds: float | None, late: str, *, adapter: str) -> AsyncIterator[None]:
    """Give up on the block after ``seconds``, raising AdapterTimeout with ``late``."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise AdapterTimeout(late, adapter=adapter) from exc


def _late(who: str, method: str, url: str, seconds: float | None, *, retried: bool = False) -> str:
    """Say that a call's deadline passed: who, what, and how long it had."""
    text = f"{who} did not answer {method} {urlsplit(url).path or '/'}"
    if seconds is not None:
        text += f" within the {seconds:g} s deadline"
        text += " (connecting, sending, reading and retries)" if retried else ""
    return text
