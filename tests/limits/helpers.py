"""Shared helpers of the limits tests: request bodies, admin calls, metrics."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from gateway._pb.prometheus import remote_pb2 as v1
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import RunningGateway
from tests.prometheus_process import parse_exposition

ADMIN_TOKEN = "admin-token-0123456789abcdef"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
T = 1_700_000_000_000


def one(metric: str, timestamp: int = T, **labels: str) -> v1.TimeSeries:
    pairs = [(b"__name__", metric.encode())]
    pairs += [(name.encode(), value.encode()) for name, value in labels.items()]
    return series(pairs, [(timestamp, 1.0)])


def many(count: int, metric: str = "m", start: int = 0, timestamp: int = T) -> list[v1.TimeSeries]:
    return [one(metric, timestamp, i=str(start + i)) for i in range(count)]


async def write(
    gateway: RunningGateway, items: list[v1.TimeSeries], tenant: str = "a", **headers: str
) -> tuple[int, str, dict[str, str]]:
    return await post(gateway, rw1(*items), **{"X-Scope-OrgID": tenant, **headers})


async def admin(
    gateway: RunningGateway,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body))
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, gateway.url + path, data=data,
            headers=AS_ADMIN if headers is None else headers,
        ) as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def metrics(gateway: RunningGateway) -> dict[str, float]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/metrics") as response,
    ):
        return parse_exposition(await response.text())


def discarded(values: dict[str, float], tenant: str, reason: str) -> float:
    key = f'gateway_discarded_samples_total{{reason="{reason}",tenant="{tenant}"}}'
    return values.get(key, 0.0)
