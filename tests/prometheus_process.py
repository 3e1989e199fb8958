"""A real Prometheus server for integration tests, on a free loopback port.

`PrometheusProcess` writes a generated configuration and a fresh TSDB into a directory, starts
the `prometheus` binary, waits for `/-/ready`, and stops it (SIGTERM, then SIGKILL) afterwards.
Its log goes to a file; when the body of `async with` fails, the log is printed so pytest shows
it with the failure. Tests are skipped when `prometheus` is not installed (`make prometheus`).

Prometheus 2.42 accepts `headers:` under `remote_write` but never sends them, so it cannot send
`X-Scope-OrgID`; it does send `authorization: {credentials: ...}` (bearer) and `basic_auth`.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest
import yaml

READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0

# Short intervals so data flows within a second or two and retries come quickly.
FAST_QUEUE = {
    "batch_send_deadline": "1s",
    "min_backoff": "100ms",
    "max_backoff": "1s",
}


def prometheus_binary() -> str:
    """Path of the `prometheus` binary; skips the calling test when it is not installed."""
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip("the prometheus binary is not on PATH (`make prometheus` installs it)")
    return path


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def remote_write(
    url: str,
    name: str,
    *,
    bearer_token: str = "",
    basic_auth: tuple[str, str] | None = None,
    **queue_config: Any,
) -> dict[str, Any]:
    """One `remote_write` entry with fast queue settings and the given credentials."""
    entry: dict[str, Any] = {
        "url": url,
        "name": name,
        "queue_config": {**FAST_QUEUE, **queue_config},
        "metadata_config": {"send": True, "send_interval": "1s"},
    }
    if bearer_token:
        entry["authorization"] = {"type": "Bearer", "credentials": bearer_token}
    if basic_auth is not None:
        entry["basic_auth"] = {"username": basic_auth[0], "password": basic_auth[1]}
    return entry


def self_scrape_config(
    address: str, remote_writes: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """Prometheus scraping itself every second, remote-writing to `remote_writes`."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": [address]}]},
        ],
        "remote_write": list(remote_writes),
    }


ConfigSource = dict[str, Any] | Callable[[str], dict[str, Any]]


class PrometheusProcess:
    """`async with PrometheusProcess(tmp_path, config) as prom:` runs a real Prometheus.

    `config` is the configuration as a mapping, or a function of the server's own
    `127.0.0.1:PORT` address (to let it scrape itself) returning one.
    """

    def __init__(
        self,
        directory: Path,
        config: ConfigSource,
        extra_flags: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.config = config(self.address) if callable(config) else config
        self.extra_flags = list(extra_flags)
        self.config_path = directory / "prometheus.yml"
        self.tsdb_path = directory / "tsdb"
        self.log_path = directory / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the binary and wait until it answers `/-/ready`."""
        binary = prometheus_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        command = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.tsdb_path}",
            f"--web.listen-address={self.address}",
            "--log.level=debug",
            *self.extra_flags,
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        await self._wait_ready()

    async def stop(self) -> None:
        """SIGTERM, wait a bounded time, then SIGKILL."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            if not await self._wait_exit(STOP_TIMEOUT_SECONDS):
                process.kill()
                await self._wait_exit(STOP_TIMEOUT_SECONDS)
        process.wait(timeout=1)  # reaps it; it has exited by now

    async def __aenter__(self) -> PrometheusProcess:
        try:
            await self.start()
        except BaseException:
            started = self._process is not None
            await self.stop()
            if started:
                self.print_log()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
        if exc_type is not None:
            self.print_log()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def print_log(self, last_lines: int = 200) -> None:
        lines = self.log_text().splitlines()[-last_lines:]
        print(f"----- prometheus log ({self.log_path}, last {len(lines)} lines) -----")
        print("\n".join(lines))

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last = "no answer"
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(
                        f"prometheus exited with {self._process and self._process.returncode} "
                        "before it was ready"
                    )
                try:
                    async with session.get(
                        self.url + "/-/ready", timeout=aiohttp.ClientTimeout(total=2)
                    ) as response:
                        if response.status == 200:
                            return
                        last = f"HTTP {response.status}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    last = type(exc).__name__
                await asyncio.sleep(0.1)
        raise TimeoutError(f"prometheus not ready after {READY_TIMEOUT_SECONDS}s ({last})")

    async def _wait_exit(self, seconds: float) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + seconds
        while self._process.poll() is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # -- its HTTP API ------------------------------------------------------------------------

    async def api(self, path: str, **params: str) -> Any:
        """`GET /api/v1/<path>` and its `data`; raises on an error envelope."""
        async with aiohttp.ClientSession() as session, session.get(
            f"{self.url}/api/v1/{path}", params=params, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            body = await response.json()
        if body.get("status") != "success":
            raise AssertionError(f"prometheus /api/v1/{path} {params}: {body}")
        return body["data"]

    async def raw_samples(
        self, selector: str, end_ms: int, range_ms: int
    ) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        """Raw samples in `(end - range, end]` per series: {sorted labels: [(ms, value)]}."""
        data = await self.api(
            "query", query=f"{selector}[{range_ms}ms]", time=f"{end_ms / 1000:.3f}"
        )
        assert data["resultType"] == "matrix", data["resultType"]
        return {
            tuple(sorted(item["metric"].items())): [
                (round(float(ts) * 1000), float(value)) for ts, value in item["values"]
            ]
            for item in data["result"]
        }

    async def metrics(self) -> dict[str, float]:
        """Its own `/metrics` as {'name{labels}': value}."""
        async with aiohttp.ClientSession() as session, session.get(
            self.url + "/metrics", timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            text = await response.text()
        return parse_exposition(text)


def parse_exposition(text: str) -> dict[str, float]:
    """Prometheus text exposition as {'name{labels}': value} (comments skipped)."""
    result: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        close = line.rfind("}")
        if close >= 0:
            key, rest = line[: close + 1], line[close + 1 :].split()
        else:
            key, *rest = line.split()
        result[key] = float(rest[0])  # float() reads NaN, +Inf and -Inf too
    return result


def metric_sum(metrics: dict[str, float], name: str, **labels: str) -> float:
    """Sum of every series of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in metrics.items():
        metric, _, rest = key.partition("{")
        if metric != name:
            continue
        if all(f',{label}="{wanted}"' in "," + rest for label, wanted in labels.items()):
            total += value
    return total
