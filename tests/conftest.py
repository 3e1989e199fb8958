"""Shared fixtures: a real embedded ClickHouse and a real gateway on a free loopback port.

The embedded engine allows one data directory per process, so the whole test session shares one
directory and every test gets its own database in it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app, server_options
from gateway.config import Config, load
from gateway.storage.clickhouse import ClickHouse

FIXTURES = Path(__file__).parent / "fixtures" / "prometheus-2.42"


@pytest.fixture(scope="session")
def chdb_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return "chdb://" + str(tmp_path_factory.mktemp("clickhouse"))


@pytest.fixture(scope="session")
def session_store(chdb_dsn: str) -> Iterator[ClickHouse]:
    """A storage pool for tests to inspect what the gateway stored."""
    store = ClickHouse(chdb_dsn, threads=2)
    yield store
    store.close()


def make_config(chdb_dsn: str, **overrides: Any) -> Config:
    """A config on the session's engine with a fresh database (dotted keys as overrides)."""
    values: dict[str, Any] = {
        "storage.dsn": chdb_dsn,
        "storage.database": f"test_{uuid.uuid4().hex[:12]}",
        "ingest.batch_max_delay_ms": 20,
    }
    values.update(overrides)
    return load(None, values)


@pytest.fixture
def config(chdb_dsn: str) -> Config:
    return make_config(chdb_dsn)


@dataclass
class RunningGateway:
    app: web.Application
    url: str
    runner: web.AppRunner

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


async def start_gateway(config: Config) -> RunningGateway:
    """Serve `create_app(config)` on a free loopback port."""
    app = create_app(config)
    runner = web.AppRunner(
        app, shutdown_timeout=config.server.shutdown_grace_seconds, **server_options()
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
    port = sockets[0].getsockname()[1]
    return RunningGateway(app, f"http://127.0.0.1:{port}", runner)


@pytest.fixture
async def gateway(config: Config) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(config)
    yield running
    await running.runner.cleanup()
