"""Slow storage: reads answer a clean 503 within `query.timeout` instead of hanging; slow
inserts delay the 204 but nothing is lost, and nothing is acknowledged before it is stored.

Slowness is injected at the app's storage boundary: every clickhouse-connect client the
gateway's pool creates is wrapped so that chosen methods sleep (in the pool thread, as a slow
server would keep it busy) before calling the real embedded engine. Nothing else is faked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from gateway.storage.clickhouse import ClickHouse
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import RunningGateway, make_config, start_gateway
from tests.remote.test_read_handler import RE, query, remote_read, request_body
from tests.security.helpers import call

T = 1_700_000_000_000
READS = ("query", "query_np", "query_arrow", "command", "raw_query")
INSERTS = ("insert", "insert_arrow", "raw_insert")
TIMEOUT_SECONDS = 2
STALL_SECONDS = 6.0  # well past the timeout: an answer before it proves the timeout worked


class Delays:
    """Seconds each client method sleeps first; changed by the test while the gateway runs."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.finished_inserts = 0


class SlowClient:
    """A real client whose chosen methods are delayed."""

    def __init__(self, real: Any, delays: Delays) -> None:
        self._real = real
        self._delays = delays

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._real, name)
        if not callable(target):
            return target

        def delayed(*args: Any, **kwargs: Any) -> Any:
            pause = self._delays.seconds.get(name, 0.0)
            if pause:
                time.sleep(pause)
            result = target(*args, **kwargs)
            if name in INSERTS:
                self._delays.finished_inserts += 1
            return result

        return delayed


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> Iterator[Delays]:
    found = Delays()
    connect = ClickHouse._connect

    def slow_connect(self: ClickHouse) -> Any:
        return SlowClient(connect(self), found)

    monkeypatch.setattr(ClickHouse, "_connect", slow_connect)
    yield found
    found.seconds.clear()  # let abandoned calls finish quickly


@pytest.fixture
async def gateway(chdb_dsn: str, delays: Delays) -> AsyncIterator[RunningGateway]:
    config = make_config(
        chdb_dsn, **{"query.timeout": f"{TIMEOUT_SECONDS}s", "storage.threads": 16}
    )
    running = await start_gateway(config)
    status, text, _ = await post(
        running, rw1(series([(b"__name__", b"slow"), (b"a", b"1")], [(T, 1.0)]))
    )
    assert status == 204, text
    yield running
    delays.seconds.clear()
    await running.runner.cleanup()


READ_CALLS: list[tuple[str, list[tuple[str, str]]]] = [
    ("/api/v1/series", [("match[]", "slow")]),
    ("/api/v1/labels", []),
    ("/api/v1/label/a/values", []),
    ("/api/v1/metadata", []),
    ("/api/v1/query", [("query", "slow"), ("time", str(T / 1000))]),
    ("/api/v1/query_range", [("query", "slow"), ("start", str(T / 1000)),
                             ("end", str(T / 1000 + 60)), ("step", "15")]),
    ("/api/v1/cardinality/label_names", [("count_method", "inmemory")]),
    ("/api/v1/status/tsdb", [("count_method", "inmemory")]),
]


async def test_slow_reads_answer_503_within_the_timeout(
    gateway: RunningGateway, delays: Delays
) -> None:
    delays.seconds.update({name: STALL_SECONDS for name in READS})
    for path, params in READ_CALLS:
        # The bound is the stall itself: an answer before it can only come from the timeout.
        status, body = await asyncio.wait_for(
            call(gateway, "GET", path, params=params), STALL_SECONDS - 1
        )
        assert status == 503, (path, status, body)
        assert isinstance(body, dict) and body["status"] == "error", (path, body)
        assert "timed out" in body["error"] or "query.timeout" in body["error"], body
    status, _, payload = await asyncio.wait_for(
        remote_read(gateway, request_body([query(0, T + 1, (RE, "__name__", "slow"))])),
        STALL_SECONDS - 1,
    )
    assert status == 503 and b"query.timeout" in payload, (status, payload)
    status, _ = await call(gateway, "GET", "/-/healthy")
    assert status == 200
    # Storage fast again: the same reads answer with the data.
    delays.seconds.clear()
    await asyncio.sleep(STALL_SECONDS)  # the abandoned calls drain from the pool
    status, body = await call(gateway, "GET", "/api/v1/series", params=[("match[]", "slow")])
    assert (status, body["data"]) == (200, [{"__name__": "slow", "a": "1"}])


async def test_slow_inserts_delay_the_answer_but_lose_nothing(
    gateway: RunningGateway, delays: Delays
) -> None:
    delays.seconds.update({name: 1.0 for name in INSERTS})
    writers = 12

    async def writer(number: int) -> None:
        body = rw1(series([(b"__name__", b"slow_write"), (b"n", b"%d" % number)],
                          [(T + number, float(number))]))
        status, text, _ = await post(gateway, body)
        assert status == 204, text
        # Acknowledged only once stored: the sample is readable the moment the 204 arrives.
        status, found = await call(
            gateway, "GET", "/api/v1/series",
            params=[("match[]", f'slow_write{{n="{number}"}}')],
        )
        assert (status, len(found["data"])) == (200, 1), (number, found)

    inserts_before = delays.finished_inserts
    await asyncio.gather(*(writer(i) for i in range(writers)))
    assert delays.finished_inserts > inserts_before  # the delayed path was really taken
    status, body = await call(
        gateway, "GET", "/api/v1/query",
        params=[("query", "count(slow_write)"), ("time", str(T / 1000 + 60))],
    )
    assert status == 200 and body["data"]["result"][0]["value"][1] == str(writers), body
