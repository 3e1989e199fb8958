"""Several worker processes on one port, run for real as `metrics-gateway serve --workers N`.

No ClickHouse server can run here, so the workers point at a server DSN nobody listens on: they
start, answer /-/ready with 503, and serve /metrics; that is enough to see the supervisor, the
shared port and the merged metrics work.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.worker_metrics import WORKER_HEADER
from gateway.workers import MAX_QUICK_EXITS, QUICK_EXIT_SECONDS, _reap, _Slot

UNREACHABLE_DSN = "http://gateway:secret@127.0.0.1:9/metrics"  # discard port: refused


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str) -> tuple[int, dict[str, str], str]:
    """One request on a new connection (so the kernel may pick another worker)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def worker_of(headers: dict[str, str]) -> tuple[int, int]:
    """(worker index, pid) from the header every worker adds."""
    index, _, pid = headers[WORKER_HEADER].partition("; pid=")
    return int(index), int(pid)


@dataclass
class Supervisor:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def workers_seen(self, requests: int = 40, tolerate_resets: bool = False) -> dict[int, int]:
        seen: dict[int, int] = {}
        for _ in range(requests):
            try:
                _, headers, _ = get(self.port, "/-/healthy")
            except ConnectionError:
                # A killed worker's queued connections are reset (SIGTERM would drain them).
                if not tolerate_resets:
                    raise
                continue
            index, pid = worker_of(headers)
            seen[index] = pid
        return seen


def start_supervisor(tmp_path: Path, workers: int) -> Supervisor:
    port = free_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "gateway", "serve", "--workers", str(workers),
                "--storage", UNREACHABLE_DSN, "--listen", f"127.0.0.1:{port}",
                "--server.shutdown_grace_seconds", "1",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    # Started when every worker is listening: until then connections reach only some.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        if log.read_text().count("gateway: listening on") >= workers:
            return Supervisor(process, port, log)
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the workers did not start: {log.read_text()}")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Supervisor]:
    supervisor = start_supervisor(tmp_path, 2)
    yield supervisor
    if supervisor.process.poll() is None:
        supervisor.process.kill()
        supervisor.process.wait()


def test_embedded_store_refuses_several_workers(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "gateway", "serve", "--workers", "2",
            "--storage", f"chdb://{tmp_path}/data",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "server.workers is 2" in result.stderr and "chdb://" in result.stderr


def test_workers_share_the_port_and_report_not_ready(two_workers: Supervisor) -> None:
    seen = two_workers.workers_seen()
    assert set(seen) == {0, 1}, "SO_REUSEPORT should spread 40 connections over both workers"
    assert len(set(seen.values())) == 2 and two_workers.process.pid not in seen.values()
    for _ in range(6):
        status, _, text = get(two_workers.port, "/-/ready")
        assert status == 503 and "cannot connect to http://gateway:***@127.0.0.1:9" in text


def test_any_worker_answers_metrics_of_every_worker(two_workers: Supervisor) -> None:
    answered_by = set()
    for _ in range(10):
        status, headers, text = get(two_workers.port, "/metrics")
        assert status == 200
        answered_by.add(worker_of(headers)[0])
        assert 'gateway_storage_ready{worker="0"} 0.0' in text
        assert 'gateway_storage_ready{worker="1"} 0.0' in text
        assert text.count("# TYPE gateway_storage_ready gauge") == 1
    assert answered_by == {0, 1}


def test_a_dead_worker_is_restarted_and_all_stop_on_sigterm(two_workers: Supervisor) -> None:
    before = two_workers.workers_seen()
    os.kill(before[1], signal.SIGKILL)
    deadline = time.monotonic() + 60
    after = before
    while time.monotonic() < deadline:
        after = two_workers.workers_seen(10, tolerate_resets=True)
        if after.get(1, before[1]) != before[1]:
            break
        time.sleep(0.5)
    assert after.get(1, before[1]) != before[1], two_workers.log.read_text()
    assert after[0] == before[0]
    assert "worker 1 (pid" in two_workers.log.read_text()

    two_workers.process.send_signal(signal.SIGTERM)
    assert two_workers.process.wait(timeout=60) == 0
    assert not any(running(pid) for pid in after.values())


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie awaiting its reaper has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_workers_exit_when_the_supervisor_is_killed(two_workers: Supervisor) -> None:
    workers = two_workers.workers_seen()
    two_workers.process.kill()
    two_workers.process.wait()
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in workers.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(running(pid) for pid in workers.values())


def test_a_port_the_workers_cannot_share_fails_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:  # held without SO_REUSEPORT: the workers could not bind
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable, "-m", "gateway", "serve", "--workers", "2",
                "--storage", UNREACHABLE_DSN, "--listen", f"127.0.0.1:{port}",
            ],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "worker 0 started" not in result.stderr


def test_a_worker_dying_at_start_up_is_restarted_with_backoff_then_given_up() -> None:
    context = multiprocessing.get_context("spawn")
    slot = _Slot()
    delays = []
    for attempt in range(1, MAX_QUICK_EXITS + 1):
        slot.process = context.Process(target=sys.exit, args=(3,))
        slot.process.start()
        slot.process.join()
        slot.started = time.monotonic()
        restarted = _reap(0, slot)
        assert slot.process is None and slot.quick_exits == attempt
        if attempt < MAX_QUICK_EXITS:
            assert restarted
            delays.append(round(slot.restart_at - time.monotonic()))
        else:
            assert not restarted
    assert delays == [1, 2, 4, 8]
    # A worker that ran for a while before dying starts the count again.
    slot.process = context.Process(target=sys.exit, args=(0,))
    slot.process.start()
    slot.process.join()
    slot.started = time.monotonic() - QUICK_EXIT_SECONDS - 1
    assert _reap(0, slot) and slot.quick_exits == 0
