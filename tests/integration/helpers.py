"""Helpers shared by the integration tests: a gateway context, bounded polling, HTTP calls."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from gateway.config import Config
from tests.conftest import RunningGateway, start_gateway
from tests.prometheus_process import parse_exposition

T = TypeVar("T")


@contextlib.asynccontextmanager
async def running_gateway(config: Config) -> AsyncIterator[RunningGateway]:
    """The real app on a free loopback port for the duration of the block."""
    running = await start_gateway(config)
    try:
        yield running
    finally:
        await running.runner.cleanup()


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> T:
    """Call `probe` until `done(result)`, at most `timeout` seconds; fail with the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {result!r}")
        await asyncio.sleep(interval)


def basic_auth(username: str, password: str) -> dict[str, str]:
    """The Authorization header of HTTP basic auth."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET `url`: (status, parsed JSON or text)."""
    async with aiohttp.ClientSession() as session, session.get(
        url, headers=headers or {}, timeout=aiohttp.ClientTimeout(total=10)
    ) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def gateway_metrics(gateway: RunningGateway) -> dict[str, float]:
    status, text = await get(gateway.url + "/metrics")
    assert status == 200, text
    return parse_exposition(text)
