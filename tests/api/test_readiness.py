"""`/-/ready`: storage reachable, the schema's tables all there, active series loaded."""

from __future__ import annotations

import aiohttp

from gateway.app_keys import LAYOUT, LIMITS, READINESS
from gateway.storage.clickhouse import ClickHouse
from tests.conftest import RunningGateway


async def ready(gateway: RunningGateway) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/-/ready") as response,
    ):
        return response.status, await response.text()


async def test_a_missing_table_makes_the_gateway_not_ready(
    gateway: RunningGateway, session_store: ClickHouse
) -> None:
    assert await ready(gateway) == (200, "Gateway is Ready.\n")
    table = gateway.app[LAYOUT].samples_tables[-1]
    await session_store.run(lambda client: client.command(f"DETACH TABLE {table}"))
    try:
        assert not await gateway.app[READINESS].check()
        status, text = await ready(gateway)
        assert status == 503 and table.split(".")[1] in text, text
    finally:
        await session_store.run(lambda client: client.command(f"ATTACH TABLE {table}"))
    assert await gateway.app[READINESS].check()
    assert (await ready(gateway))[0] == 200


async def test_not_ready_until_active_series_are_loaded(gateway: RunningGateway) -> None:
    limits = gateway.app[LIMITS]
    assert limits.settings.enabled and limits.loaded
    limits.loaded = False  # as between storage coming up and the tracker's rebuild
    try:
        assert await ready(gateway) == (
            503, "Gateway is not ready: active series not loaded yet\n"
        )
    finally:
        limits.loaded = True
