"""Several worker processes on one port: a supervisor that starts, restarts and stops them.

Each worker is a whole gateway (its own event loop, storage pool and batcher) that binds the
listen address with SO_REUSEPORT, so the kernel spreads connections over the workers. Only a
ClickHouse server can be shared by processes; the embedded store allows one (config refuses it).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from gateway.config import Config, listen_address

log = logging.getLogger(__name__)

# A worker that dies this soon after starting, this many times in a row, is not restarted again:
# something it needs at start-up is wrong and a restart loop would hide it. (Start-up takes
# seconds: imports, the storage probe; a minute leaves room for a loaded machine.)
QUICK_EXIT_SECONDS = 60.0
MAX_QUICK_EXITS = 5
_MAX_BACKOFF_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """Which worker a process is, and where the workers find each other's metrics."""

    index: int
    count: int
    run_dir: str
    log_level: str = "INFO"

    def socket_path(self, index: int) -> str:
        """Unix socket on which worker `index` serves its own metrics to the other workers."""
        return os.path.join(self.run_dir, f"worker-{index}.sock")


@dataclass(slots=True)
class _Slot:
    process: BaseProcess | None = None
    started: float = 0.0
    quick_exits: int = 0
    restart_at: float = 0.0


def supervise(config: Config, log_level: str = "INFO") -> int:
    """Run `server.workers` workers until SIGTERM/SIGINT; restart a worker that dies."""
    count = config.server.workers
    problem = _cannot_share_port(*listen_address(config))
    if problem:
        log.error("cannot listen on %s: %s", config.server.listen, problem)
        return 1
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    run_dir = tempfile.mkdtemp(prefix="metrics-gateway-")
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    slots = [_Slot() for _ in range(count)]
    exit_code = 0
    try:
        while not stopping:
            now = time.monotonic()
            for index, slot in enumerate(slots):
                if slot.process is None and now >= slot.restart_at:
                    identity = WorkerIdentity(index, count, run_dir, log_level)
                    slot.process = context.Process(
                        target=run_worker, args=(config, identity), name=f"worker-{index}"
                    )
                    slot.process.start()
                    slot.started = now
                    log.info("worker %d started (pid %s)", index, slot.process.pid)
            running = [slot.process.sentinel for slot in slots if slot.process is not None]
            wait(running, timeout=0.5)
            for index, slot in enumerate(slots):
                if slot.process is None or slot.process.is_alive() or stopping:
                    continue
                if not _reap(index, slot):
                    exit_code = 1
                    stopping.append(0)
                    break
    finally:
        _stop(slots, config.server.shutdown_grace_seconds + 5.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(run_dir, ignore_errors=True)
    return exit_code


def _cannot_share_port(host: str, port: int) -> str:
    """Why workers could not bind (host, port) with SO_REUSEPORT, or "" when they can.

    Checked before starting workers, so a taken port fails at once instead of after restarts.
    """
    if port == 0:
        return "port 0 would give every worker a different port"
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            probe.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def _reap(index: int, slot: _Slot) -> bool:
    """Schedule the restart of a dead worker; False when it keeps dying at start-up."""
    assert slot.process is not None
    now = time.monotonic()
    quick = now - slot.started < QUICK_EXIT_SECONDS
    slot.quick_exits = slot.quick_exits + 1 if quick else 0
    log.warning(
        "worker %d (pid %s) exited with code %s", index, slot.process.pid, slot.process.exitcode
    )
    slot.process = None
    if slot.quick_exits >= MAX_QUICK_EXITS:
        log.error(
            "worker %d exited %d times right after starting; stopping", index, MAX_QUICK_EXITS
        )
        return False
    slot.restart_at = now + min(_MAX_BACKOFF_SECONDS, 0.5 * 2**slot.quick_exits)
    return True


def _stop(slots: list[_Slot], timeout_seconds: float) -> None:
    """SIGTERM every worker (they drain and flush), SIGKILL those still alive at the deadline."""
    processes = [slot.process for slot in slots if slot.process is not None]
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + timeout_seconds
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("worker pid %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()


def run_worker(config: Config, identity: WorkerIdentity) -> None:
    """A worker process' entry point (runs in the spawned child)."""
    from gateway.cli import serve

    # Out of the terminal's process group: Ctrl-C reaches only the supervisor, which then stops
    # each worker once (a second signal would cut a worker's graceful shutdown short).
    os.setpgid(0, 0)
    _exit_with_parent()
    logging.basicConfig(
        level=identity.log_level,
        format=f"%(asctime)s %(levelname)s worker-{identity.index} %(name)s: %(message)s",
    )
    raise SystemExit(serve(config, identity))


def _exit_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the supervisor dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return  # not Linux: an orphaned worker then runs until stopped itself
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the request
        os.kill(os.getpid(), signal.SIGTERM)
