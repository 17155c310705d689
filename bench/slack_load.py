"""The Slack bench's load client: a few connections, each sending signed requests one after the
other and timing each until its answer has been read.

``bench.slack_bench`` runs it in a process of its own, so its work shares neither a CPU slice
nor the GIL with the fake Slack, and keeps it lean (prepared bytes on a keep-alive connection,
the answer's head parsed by hand) so the server is what is measured:
``python -m bench.slack_load SPEC`` reads a JSON spec ``{"port", "path", "secret", "warmup",
"clients": [[[content_type, body], ...], ...]}`` (one list of requests per client, the first
``warmup`` of each not timed) and prints ``{"samples": [ms, ...], "seconds", "cpu_seconds"}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def signed(port: int, path: str, secret: str, content_type: str, body: bytes) -> bytes:
    """One whole HTTP/1.1 request, signed as Slack signs it, ready to write."""
    at = str(int(time.time()))
    base = b"v0:" + at.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Slack-Request-Timestamp: {at}\r\n"
        f"X-Slack-Signature: v0={digest}\r\n"
        "\r\n"
    )
    return head.encode() + body


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one response: its status and body (the server sends Content-Length)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding":
            raise RuntimeError(f"a chunked answer ({value.strip()}): expected Content-Length")
    return status, await reader.readexactly(length)


async def client(port: int, requests: list[bytes], warmup: int, go: asyncio.Event) -> list[float]:
    """Send ``requests`` one after the other on one connection; return the timed ones' ms."""
    reader, writer = await asyncio.open_connection(HOST, port)
    samples: list[float] = []
    try:
        await go.wait()
        for number, raw in enumerate(requests):
            started = time.perf_counter()
            writer.write(raw)
            status, body = await answer(reader)
            took = (time.perf_counter() - started) * 1000
            if status != 200:
                raise RuntimeError(f"answered {status}: {body[:200]!r}")
            if number >= warmup:
                samples.append(took)
    finally:
        writer.close()
        await writer.wait_closed()
    return samples


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    port, path, secret = int(spec["port"]), str(spec["path"]), str(spec["secret"])
    prepared = [
        [signed(port, path, secret, kind, body.encode()) for kind, body in requests]
        for requests in spec["clients"]
    ]
    go = asyncio.Event()
    tasks = [asyncio.create_task(client(port, r, int(spec["warmup"]), go)) for r in prepared]
    await asyncio.sleep(0.05)  # every client connected before the first request
    started, cpu = time.perf_counter(), time.process_time()
    go.set()
    results = await asyncio.gather(*tasks)
    return {
        "samples": [ms for samples in results for ms in samples],
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
    }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
