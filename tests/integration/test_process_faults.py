"""The gateway process dies or is stopped under write load: nothing acknowledged is lost.

Each test runs the real gateway as its own process on its own data directory, writes from
several concurrent senders, stops it (SIGTERM: graceful drain; SIGKILL: crash), and then counts
the rows on disk from a fresh process. Every sample that got a 2xx must be there.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import aiohttp
import pytest

from tests.api.test_write_errors import rw1, series
from tests.prometheus_process import free_port

SENDERS = 6
SERIES_PER_REQUEST = 200
T0 = 1_700_000_000_000


def start(
    data_dir: Path, port: int, log: BinaryIO, *extra: str, prefix: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """The gateway as its own process (`prefix` runs it through e.g. setpriv as another user)."""
    return subprocess.Popen(
        [
            *prefix,
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--storage",
            f"chdb://{data_dir}",
            "--log-level",
            "warning",
            *extra,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


async def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the gateway exited during start-up"
            try:
                async with session.get(url + "/-/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("gateway did not become ready")


def body(sender: int, number: int) -> bytes:
    """A request whose samples are unique: (series of this sender, timestamp = request number)."""
    items = [
        series(
            [(b"__name__", b"fault_load"), (b"sender", b"%d" % sender), (b"i", b"%d" % i)],
            [(T0 + number * 1000, float(number))],
        )
        for i in range(SERIES_PER_REQUEST)
    ]
    return rw1(*items)


async def load(url: str, stop_after: float) -> tuple[int, int]:
    """Send until the server goes away or `stop_after` s: (acknowledged, attempted) samples."""
    acknowledged = attempted = 0
    deadline = time.monotonic() + stop_after

    async def sender(index: int) -> None:
        nonlocal acknowledged, attempted
        number = 0
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                number += 1
                attempted += SERIES_PER_REQUEST
                try:
                    async with session.post(
                        url + "/api/v1/write",
                        data=body(index, number),
                        headers={"Content-Type": "application/x-protobuf"},
                    ) as response:
                        if response.status == 204:
                            acknowledged += SERIES_PER_REQUEST
                        elif response.status != 503:
                            raise AssertionError(f"unexpected status {response.status}")
                except (aiohttp.ClientError, ConnectionError):
                    return

    await asyncio.gather(*(sender(i) for i in range(SENDERS)))
    return acknowledged, attempted


def stored_rows(data_dir: Path) -> tuple[int, int]:
    """(rows, distinct (series, timestamp)) of the samples tables, read by a fresh process."""
    script = (
        "import clickhouse_connect, sys\n"
        f"c = clickhouse_connect.get_client(dsn='chdb://{data_dir}')\n"
        'tables = [r[0] for r in c.query("SELECT name FROM system.tables WHERE database = '
        "'metrics' AND name LIKE 'samples_%'\").result_rows]\n"
        "rows = sum(c.command(f'SELECT count() FROM metrics.{t}') for t in tables)\n"
        "final = sum(c.command(f'SELECT count() FROM metrics.{t} FINAL') for t in tables)\n"
        "print(rows, final)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    rows, final = out.stdout.split()
    return int(rows), int(final)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_every_acknowledged_sample_survives(tmp_path: Path, how: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        process = start(data_dir, port, log, "--server.shutdown_grace_seconds", "10")
        try:
            await wait_ready(url, process)
            writer = asyncio.ensure_future(load(url, stop_after=30))
            await asyncio.sleep(3)
            process.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
            acknowledged, attempted = await writer
            code = await asyncio.to_thread(process.wait, 30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if how == "sigterm":
        assert code == 0, log_path.read_text()
    assert acknowledged > 0
    rows, final = stored_rows(data_dir)
    print(f"{how}: acknowledged {acknowledged}, attempted {attempted}, stored {final}")
    # Every acknowledged sample is stored; a request cut off mid-flight may be stored too.
    assert acknowledged <= final <= attempted
    assert rows == final  # each request's rows are unique, so nothing is stored twice
