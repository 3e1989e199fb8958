"""Per-tenant read limits (max_fetched_series_per_query, max_fetched_samples_per_query) on the
query API and on remote-read: one tenant limited, another not; the endpoint settings as default."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.conftest import RunningGateway, make_config, start_gateway
from tests.limits.helpers import ADMIN_TOKEN, admin
from tests.remote.test_read_handler import (
    COUNT,
    EQ,
    STEP,
    T0,
    load,
    query,
    remote_read,
    request_body,
    samples_result,
)

AT = str((T0 + COUNT * STEP) / 1000)  # an instant query time inside the loaded data
UP = [query(T0, T0 + COUNT * STEP, (EQ, "__name__", "up"))]  # 6 series x 45 samples


async def start(chdb_dsn: str, **settings: Any) -> RunningGateway:
    running = await start_gateway(make_config(chdb_dsn, **{"admin.token": ADMIN_TOKEN, **settings}))
    for tenant in ("a", "b"):
        await load(running, **{"X-Scope-OrgID": tenant})
    return running


@pytest.fixture
async def gateway_ab(chdb_dsn: str):  # type: ignore[no-untyped-def]
    running = await start(chdb_dsn)
    yield running
    await running.runner.cleanup()


async def instant(gateway: RunningGateway, tenant: str, text: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            gateway.url + "/api/v1/query", params={"query": text, "time": AT},
            headers={"X-Scope-OrgID": tenant},
        ) as response,
    ):
        return response.status, await response.json()


async def read(gateway: RunningGateway, tenant: str, accepted: list[int]) -> tuple[int, bytes]:
    status, _, payload = await remote_read(
        gateway, request_body(UP, accepted), **{"X-Scope-OrgID": tenant}
    )
    return status, payload


async def limit(gateway: RunningGateway, tenant: str, **limits: int) -> None:
    status, body = await admin(gateway, "PATCH", f"/api/v1/admin/tenants/{tenant}/limits", limits)
    assert status == 200, body


async def test_series_limit_of_one_tenant(gateway_ab: RunningGateway) -> None:
    await limit(gateway_ab, "a", max_fetched_series_per_query=5)
    status, body = await instant(gateway_ab, "a", "up")
    assert (status, body["errorType"]) == (422, "execution"), body
    assert (
        'limit: 5 series, max_fetched_series_per_query of tenant "a"' in body["error"]
    ), body["error"]
    status, body = await instant(gateway_ab, "a", 'up{job="node"}')  # 2 series: fits
    assert status == 200 and len(body["data"]["result"]) == 2
    status, body = await instant(gateway_ab, "b", "up")
    assert status == 200 and len(body["data"]["result"]) == 6, body
    for accepted in ([0], [1]):  # SAMPLES and STREAMED_XOR_CHUNKS
        status, payload = await read(gateway_ab, "a", accepted)
        assert status == 422, payload
        assert b'max_fetched_series_per_query of tenant "a"' in payload
        status, payload = await read(gateway_ab, "b", accepted)
        assert status == 200, payload
    assert len(samples_result((await read(gateway_ab, "b", [0]))[1])[0]) == 6


async def test_samples_limit_of_one_tenant(gateway_ab: RunningGateway) -> None:
    await limit(gateway_ab, "a", max_fetched_samples_per_query=100)  # 6 x 45 = 270 needed
    status, body = await instant(gateway_ab, "a", "count_over_time(up[20m])")
    assert (status, body["errorType"]) == (422, "execution"), body
    assert 'max_fetched_samples_per_query of tenant "a"' in body["error"]
    status, body = await instant(gateway_ab, "b", "count_over_time(up[20m])")
    assert status == 200, body
    status, payload = await read(gateway_ab, "a", [0])
    assert status == 422
    assert b'limit: 100 samples, max_fetched_samples_per_query of tenant "a"' in payload
    assert (await read(gateway_ab, "b", [0]))[0] == 200


async def test_tenant_limits_replace_the_endpoint_settings_both_ways(chdb_dsn: str) -> None:
    running = await start(
        chdb_dsn, **{"remote_read.max_series_per_query": 3, "query.max_fetched_series_per_query": 3}
    )
    try:
        # Without an override the endpoint's setting applies, named as such.
        status, payload = await read(running, "a", [0])
        assert status == 422 and b"remote_read.max_series_per_query" in payload
        status, body = await instant(running, "a", "up")
        assert status == 422 and "query.max_fetched_series_per_query" in body["error"]
        # A tenant's own limit may be higher than the setting, or 0 (unlimited).
        await limit(running, "a", max_fetched_series_per_query=6)
        await limit(running, "b", max_fetched_series_per_query=0)
        for tenant in ("a", "b"):
            assert (await read(running, tenant, [0]))[0] == 200
            assert (await instant(running, tenant, "up"))[0] == 200
        # Removing the override (null) restores the setting.
        status, body = await admin(
            running, "PATCH", "/api/v1/admin/tenants/a/limits",
            {"max_fetched_series_per_query": None},
        )
        assert body["data"]["limits"]["max_fetched_series_per_query"] is None
        assert (await read(running, "a", [0]))[0] == 422
    finally:
        await running.runner.cleanup()


async def test_defaults_for_every_tenant_come_from_the_limits_config(chdb_dsn: str) -> None:
    running = await start(chdb_dsn, **{"limits.defaults.max_fetched_series_per_query": 2})
    try:
        for tenant in ("a", "b"):
            status, payload = await read(running, tenant, [0])
            assert status == 422
            assert f'max_fetched_series_per_query of tenant "{tenant}"'.encode() in payload
    finally:
        await running.runner.cleanup()
