"""Helpers of the security tests: raw HTTP calls that never raise on a status, and counters."""

from __future__ import annotations

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
