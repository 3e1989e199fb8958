"""Faults the integration suite does not cover: storage down at start-up, reads on broken storage.

A read-only or full data directory: tests/security/test_data_dir_faults.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

from gateway.app_keys import LAYOUT
from gateway.storage.clickhouse import ClickHouse
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import RunningGateway, make_config, start_gateway
from tests.remote.test_read_handler import RE, query, remote_read, request_body
from tests.security.helpers import call

T = 1_700_000_000_000
PROMPT_SECONDS = 10.0


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def storage_down(chdb_dsn: str) -> AsyncIterator[RunningGateway]:
    dsn = f"http://default:pw-never-logged@127.0.0.1:{closed_port()}/metrics"
    config = make_config(chdb_dsn, **{"storage.dsn": dsn})
    started = time.monotonic()
    running = await asyncio.wait_for(start_gateway(config), PROMPT_SECONDS)
    assert time.monotonic() - started < PROMPT_SECONDS
    yield running
    await asyncio.wait_for(running.runner.cleanup(), PROMPT_SECONDS)


async def timed(coro: object) -> tuple[float, object]:
    started = time.monotonic()
    result = await asyncio.wait_for(coro, PROMPT_SECONDS)  # type: ignore[arg-type]
    return time.monotonic() - started, result


async def test_storage_unavailable_at_start_up(
    storage_down: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    _, (status, body) = await timed(call(storage_down, "GET", "/-/ready"))
    assert status == 503, body
    _, (status, body) = await timed(call(storage_down, "GET", "/-/healthy"))
    assert status == 200, body
    _, (status, text, _) = await timed(
        post(storage_down, rw1(series([(b"__name__", b"x")], [(T, 1.0)])))
    )
    assert status == 503, text
    for path, params in (
        ("/api/v1/labels", []),
        ("/api/v1/series", [("match[]", "x")]),
        ("/api/v1/label/__name__/values", []),
    ):
        _, (status, body) = await timed(call(storage_down, "GET", path, params=params))
        assert status == 503 and body["status"] == "error", (path, body)
    _, (status, _, payload) = await timed(
        remote_read(storage_down, request_body([query(0, T, (RE, "__name__", ".+"))]))
    )
    assert status == 503, payload
    assert "pw-never-logged" not in caplog.text


@pytest.fixture
async def broken_reads(
    chdb_dsn: str, session_store: ClickHouse
) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(make_config(chdb_dsn))
    status, text, _ = await post(
        running, rw1(series([(b"__name__", b"kept"), (b"a", b"1")], [(T, 1.0)]))
    )
    assert status == 204, text
    table = running.app[LAYOUT].series_table
    await session_store.run(lambda client: client.command(f"DETACH TABLE {table}"))
    try:
        yield running
    finally:
        await session_store.run(lambda client: client.command(f"ATTACH TABLE {table}"))
        await running.runner.cleanup()


async def test_reads_on_failing_storage_answer_a_clean_5xx(broken_reads: RunningGateway) -> None:
    routes = {resource.canonical for resource in broken_reads.app.router.resources()}
    checks: list[tuple[str, str, list[tuple[str, str]]]] = [
        ("GET", "/api/v1/series", [("match[]", "kept")]),
        ("GET", "/api/v1/labels", []),
        ("GET", "/api/v1/label/a/values", []),
        ("POST", "/api/v1/series", [("match[]", "kept")]),
    ]
    if "/api/v1/query" in routes:
        checks.append(("GET", "/api/v1/query", [("query", "kept"), ("time", str(T / 1000))]))
    if "/api/v1/query_range" in routes:
        checks.append(("GET", "/api/v1/query_range", [
            ("query", "kept"), ("start", str(T / 1000)), ("end", str(T / 1000 + 60)),
            ("step", "15"),
        ]))
    for method, path, params in checks:
        _, (status, body) = await timed(
            call(broken_reads, method, path, params=params if method == "GET" else None,
                 data=dict(params) if method == "POST" else None)
        )
        assert 500 <= status < 600, (path, status, body)
        assert isinstance(body, dict) and body["status"] == "error" and body["error"], body
        assert "Traceback" not in body["error"]
    _, (status, _, payload) = await timed(
        remote_read(broken_reads, request_body([query(0, T + 1, (RE, "__name__", "kept"))]))
    )
    assert 500 <= status < 600 and b"Traceback" not in payload, (status, payload)
    # Writes of new series need the series table too: refused with a retryable 503.
    _, (status, text, _) = await timed(
        post(broken_reads, rw1(series([(b"__name__", b"fresh")], [(T, 1.0)])))
    )
    assert status == 503, text
    _, (status, body) = await timed(call(broken_reads, "GET", "/-/healthy"))
    assert status == 200


async def test_reads_recover_after_storage_returns(
    chdb_dsn: str, session_store: ClickHouse
) -> None:
    running = await start_gateway(make_config(chdb_dsn))
    try:
        status, text, _ = await post(running, rw1(series([(b"__name__", b"back")], [(T, 1.0)])))
        assert status == 204, text
        table = running.app[LAYOUT].series_table
        await session_store.run(lambda client: client.command(f"DETACH TABLE {table}"))
        status, _ = await call(running, "GET", "/api/v1/series", params=[("match[]", "back")])
        assert status >= 500
        await session_store.run(lambda client: client.command(f"ATTACH TABLE {table}"))
        status, body = await call(running, "GET", "/api/v1/series", params=[("match[]", "back")])
        assert (status, body["data"]) == (200, [{"__name__": "back"}])
    finally:
        await running.runner.cleanup()
