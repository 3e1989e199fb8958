"""Helpers of the security tests: raw HTTP calls that never raise on a status, and counters."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.conftest import RunningGateway
from tests.prometheus_process import parse_exposition

TIMEOUT = aiohttp.ClientTimeout(total=30)


async def call(
    gateway: RunningGateway,
    method: str,
    path: str,
    *,
    params: list[tuple[str, str]] | None = None,
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request: (status, parsed JSON body or bytes)."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.request(
        method, gateway.url + path, params=params or [], data=data, headers=headers or {}
    ) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.read()


async def rejected(gateway: RunningGateway, reason: str, status: int) -> float:
    """The value of gateway_rejected_requests_total{reason, status}."""
    code, body = await call(gateway, "GET", "/metrics")
    assert code == 200
    found = parse_exposition(body.decode())
    return found.get(f'gateway_rejected_requests_total{{reason="{reason}",status="{status}"}}', 0.0)


async def raw(gateway: RunningGateway, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (request line and headers may hold any byte): (status, body).

    aiohttp's client refuses non-latin-1 headers and re-quotes URLs, so hostile bytes go
    through a plain socket. `head` is the request line and headers without the final CRLF.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        length = b"Content-Length: %d\r\n" % len(body) if body else b""
        writer.write(head.rstrip(b"\r\n") + b"\r\n" + length + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), TIMEOUT.total)
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), rest.partition(b"\r\n\r\n")[2]
