"""The gateway process dies or is stopped under write load: nothing acknowledged is lost.

Each test runs the real gateway as its own process on its own data directory, writes to it,
stops it (SIGTERM: graceful drain within `server.shutdown_grace_seconds`; SIGKILL: crash),
then starts a new gateway on the same directory and reads every sample back through its API.
Every sample that got a 2xx must be there; requests in flight at SIGTERM must be answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import aiohttp

from tests.api.test_write_errors import rw1, series
from tests.prometheus_process import free_port
from tests.remote.test_read_handler import EQ, query, request_body, samples_result

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


@dataclass
class Load:
    """What the senders did: request numbers per sender that got a 204, and all they sent."""

    acknowledged: dict[int, set[int]] = field(default_factory=dict)
    sent: dict[int, set[int]] = field(default_factory=dict)

    def samples(self, which: dict[int, set[int]]) -> set[tuple[int, int, int]]:
        """(sender, series, timestamp) of every sample of those requests."""
        return {
            (sender, i, T0 + number * 1000)
            for sender, numbers in which.items() for number in numbers
            for i in range(SERIES_PER_REQUEST)
        }


async def load(url: str, stop_after: float) -> Load:
    """Send until the server goes away or `stop_after` s."""
    done = Load()
    deadline = time.monotonic() + stop_after

    async def sender(index: int) -> None:
        acknowledged = done.acknowledged.setdefault(index, set())
        sent = done.sent.setdefault(index, set())
        number = 0
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                number += 1
                sent.add(number)
                try:
                    async with session.post(
                        url + "/api/v1/write",
                        data=body(index, number),
                        headers={"Content-Type": "application/x-protobuf"},
                    ) as response:
                        if response.status == 204:
                            acknowledged.add(number)
                        elif response.status != 503:
                            raise AssertionError(f"unexpected status {response.status}")
                except (aiohttp.ClientError, ConnectionError):
                    return

    await asyncio.gather(*(sender(i) for i in range(SENDERS)))
    return done


async def read_back(url: str) -> set[tuple[int, int, int]]:
    """Every fault_load sample, read through the gateway's remote-read API."""
    status, _, payload = await remote_read_url(
        url, request_body([query(T0 - 1, T0 + 10**9, (EQ, "__name__", "fault_load"))])
    )
    assert status == 200, payload
    [result] = samples_result(payload)
    found = set()
    for labels, samples in result:
        names = dict(labels)
        for timestamp, _ in samples:
            found.add((int(names["sender"]), int(names["i"]), timestamp))
    return found


async def remote_read_url(url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.post(
        url + "/api/v1/read", data=data,
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"},
    ) as response:
        return response.status, dict(response.headers), await response.read()


@dataclass
class Served:
    """A gateway process of one test, on its own data directory and log."""

    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log: BinaryIO
    log_path: Path


@contextlib.asynccontextmanager
async def served(tmp_path: Path, *flags: str) -> AsyncIterator[Served]:
    """A ready gateway on `tmp_path/data`, killed on the way out if it still runs."""
    port = free_port()
    data_dir, log_path = tmp_path / "data", tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        process = start(data_dir, port, log, *flags)
        try:
            gateway = Served(f"http://127.0.0.1:{port}", process, data_dir, log, log_path)
            await wait_ready(gateway.url, process)
            yield gateway
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


async def restarted_read_back(data_dir: Path, log: BinaryIO) -> set[tuple[int, int, int]]:
    """Start a gateway on the same data directory and read everything back through it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(data_dir, port, log)
    try:
        await wait_ready(url, process)
        return await read_back(url)
    finally:
        process.terminate()
        process.wait(60)


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


@dataclass
class SignalledUnderLoad:
    """What a write load saw when the gateway got a signal, and what a restart found."""

    load: Load
    exit_code: int
    found: set[tuple[int, int, int]]
    data_dir: Path


async def signal_under_load(tmp_path: Path, signum: signal.Signals) -> SignalledUnderLoad:
    """Start a gateway, write to it, send `signum` 3 s in, then read back after a restart."""
    async with served(tmp_path, "--server.shutdown_grace_seconds", "10") as gateway:
        writer = asyncio.ensure_future(load(gateway.url, stop_after=30))
        await asyncio.sleep(3)
        gateway.process.send_signal(signum)
        done = await writer
        code = await asyncio.to_thread(gateway.process.wait, 60)
        if signum is signal.SIGTERM:
            assert code == 0, gateway.log_path.read_text()
        found = await restarted_read_back(gateway.data_dir, gateway.log)
    return SignalledUnderLoad(done, code, found, gateway.data_dir)


async def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """kill -9 under load, restart on the same directory, read back through the API: every
    acknowledged sample is there. Requests in flight at the kill were neither acknowledged nor
    refused: they may or may not be stored, so found may exceed acknowledged, never sent."""
    run = await signal_under_load(tmp_path, signal.SIGKILL)
    done, found = run.load, run.found
    acknowledged, sent = done.samples(done.acknowledged), done.samples(done.sent)
    rows, final = stored_rows(run.data_dir)
    print(f"sigkill: sent {len(sent)}, acknowledged {len(acknowledged)}, found through the API "
          f"{len(found)}, stored rows {rows} (distinct {final})")
    assert acknowledged, "nothing was acknowledged before the kill"
    assert acknowledged <= found, f"lost {len(acknowledged - found)} acknowledged samples"
    assert found <= sent
    assert rows == final == len(found)  # each sample stored once


async def _post(url: str, sender: int, number: int) -> int | None:
    """One write: its status, or None when the connection was cut before an answer."""
    try:
        async with aiohttp.ClientSession() as session, session.post(
            url + "/api/v1/write", data=body(sender, number),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=aiohttp.ClientTimeout(total=60),
        ) as response:
            return response.status
    except (aiohttp.ClientError, ConnectionError):
        return None


async def _in_flight(url: str, senders: range) -> list[asyncio.Task[int | None]]:
    """Writes that are being handled: sent whole, each waiting for its group commit."""
    tasks = [asyncio.ensure_future(_post(url, sender, 1)) for sender in senders]
    # A round trip after them: the server has read them and is in their handlers.
    async with aiohttp.ClientSession() as session, session.get(url + "/-/healthy") as response:
        assert response.status == 200
    await asyncio.sleep(0.5)
    assert not any(task.done() for task in tasks), "the writes finished before the signal"
    return tasks


# Each write waits this long in the batcher before its insert (a slow group commit), so it is
# surely in flight when the signal arrives.
SLOW_COMMIT = ("--ingest.batch_min_delay_ms", "4000", "--ingest.batch_max_delay_ms", "4000")


async def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    async with served(tmp_path, "--server.shutdown_grace_seconds", "20", *SLOW_COMMIT) as gateway:
        pending = await _in_flight(gateway.url, range(100, 104))
        gateway.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        # Draining: new connections are refused while the in-flight ones finish.
        assert await _post(gateway.url, 999, 1) is None
        statuses = [await task for task in pending]
        code = await asyncio.to_thread(gateway.process.wait, 60)
        assert statuses == [204] * 4, (statuses, gateway.log_path.read_text()[-2000:])
        assert code == 0, gateway.log_path.read_text()
        found = await restarted_read_back(gateway.data_dir, gateway.log)
    expected = {(100 + k, i, T0 + 1000) for k in range(4) for i in range(SERIES_PER_REQUEST)}
    print(f"sigterm drain: 4 writes in flight at SIGTERM answered {statuses}; "
          f"{len(expected)} samples acknowledged, {len(found)} found through the API")
    assert found == expected


async def test_sigterm_cuts_what_outlives_the_grace_period(tmp_path: Path) -> None:
    """A write still unfinished when `server.shutdown_grace_seconds` ends is cut without an
    answer (so the sender retries); the gateway does not wait for it. Its rows were already
    in the batcher, which flushes on the way out: such a write may be stored although it was
    never acknowledged, which a retry de-duplicates (ReplacingMergeTree)."""
    async with served(tmp_path, "--server.shutdown_grace_seconds", "1", *SLOW_COMMIT) as gateway:
        [pending] = await _in_flight(gateway.url, range(200, 201))
        gateway.process.send_signal(signal.SIGTERM)
        status = await pending
        code = await asyncio.to_thread(gateway.process.wait, 60)
        assert status is None or status >= 500, status  # never a 2xx
        assert code == 0, gateway.log_path.read_text()
        found = await restarted_read_back(gateway.data_dir, gateway.log)
    assert found <= {(200, i, T0 + 1000) for i in range(SERIES_PER_REQUEST)}
    print(f"sigterm grace 1 s, write needing 4 s: answer {status}, {len(found)} of its "
          f"{SERIES_PER_REQUEST} samples stored by the final flush")


async def test_sigterm_under_load_stores_every_acknowledged_sample(tmp_path: Path) -> None:
    run = await signal_under_load(tmp_path, signal.SIGTERM)
    done, found = run.load, run.found
    acknowledged, sent = done.samples(done.acknowledged), done.samples(done.sent)
    print(f"sigterm: sent {len(sent)}, acknowledged {len(acknowledged)}, found {len(found)}")
    assert acknowledged and acknowledged <= found <= sent
    # Drained, not cut: what was in flight at the signal was answered, so nothing stored was
    # left unacknowledged (a request refused after the signal got a 503 and stored nothing).
    assert found == acknowledged
