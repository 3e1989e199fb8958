"""A new user's first minutes, for real: clone, `make run`, the README's Prometheus snippet, curl.

1. `git clone` this repository (its committed HEAD) into a temporary directory.
2. `make run` in the clone, as the README says. The only difference from a new machine: the
   clone's `.venv` is a link to the virtualenv these tests run in (already installed), and
   make is told not to redo the installation step (`-o .venv/.installed`), so no package is
   downloaded; `PYTHONPATH` makes that virtualenv import the clone's code, which is checked.
   With no flags, so the gateway serves 127.0.0.1:9201 and keeps its data in the clone's
   ./data/clickhouse; only when 9201 is taken on this machine is another port passed the
   documented way (`make run ARGS="--listen 127.0.0.1:PORT"`).
3. The README's `remote_write`/`remote_read` YAML block, parsed out of the clone's README.md
   (so this test fails when the README changes in a way that no longer works), goes into a real
   Prometheus 2.42 config with a job scraping Prometheus itself.
4. The README's three `curl` commands, run as HTTP requests, must show `up` arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.prometheus_process import PrometheusProcess, free_port, prometheus_binary

ROOT = Path(__file__).parent.parent
DEFAULT_PORT = 9201
ARRIVAL_TIMEOUT_SECONDS = 90.0
START_TIMEOUT_SECONDS = 60.0


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def readme_prometheus_snippet(readme: str) -> dict[str, Any]:
    """The README's YAML block that configures Prometheus' remote write and read."""
    for block in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL):
        parsed = yaml.safe_load(block)
        if isinstance(parsed, dict) and {"remote_write", "remote_read"} <= set(parsed):
            return parsed
    raise AssertionError("README.md has no yaml block with remote_write and remote_read")


def readme_curl_urls(readme: str) -> list[str]:
    """The URLs of the README's "check what arrived" curl commands."""
    (block,) = [
        block
        for block in re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)
        if "api/v1/series?match[]=up" in block
    ]
    urls = re.findall(r"curl -s '([^']+)'", block)
    assert len(urls) == 3 and len(block.strip().splitlines()) == 3, block
    return urls


def on_port(text: str, port: int) -> str:
    return text.replace(f"127.0.0.1:{DEFAULT_PORT}", f"127.0.0.1:{port}")


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class MakeRun:
    """`make run` in a clone, in its own process group (make and the gateway under it)."""

    def __init__(self, clone: Path, port: int) -> None:
        self.clone = clone
        self.port = port
        self.log = clone.parent / "make-run.log"
        self.command = ["make", "-o", ".venv/.installed", "run"]
        if port != DEFAULT_PORT:
            self.command.append(f"ARGS=--listen 127.0.0.1:{port}")
        self.env = {**os.environ, "PYTHONPATH": str(clone)}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.command, cwd=self.clone, env=self.env, stdin=subprocess.DEVNULL,
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def stop(self) -> int | None:
        """SIGTERM to the gateway, as Ctrl-C would stop it; make then exits with its status.
        Anything left of the process group after 30 s is killed."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            for child in children(process.pid):
                os.kill(child, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # nothing should be left; make sure
        return process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("git and make are needed")
    venv = Path(sys.executable).parent.parent
    if not (venv / "bin" / "metrics-gateway").exists():
        pytest.skip(f"{venv} has no metrics-gateway console script installed")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    target = tmp_path / "metrics-gateway"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=120)
    subprocess.run(["git", "-C", str(target), "checkout", "--quiet", "--detach", head], check=True)
    (target / ".venv").symlink_to(venv)
    return target


@pytest.fixture
def make_run(clone: Path) -> Iterator[MakeRun]:
    port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()
    run = MakeRun(clone, port)
    imported = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import gateway; print(gateway.__file__)"],
        cwd=clone, env=run.env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert Path(imported).is_relative_to(clone), f"the clone's code is not what runs: {imported}"
    run.start()
    try:
        yield run
    finally:
        code = run.stop()
        print(f"----- make run (exit {code}) -----\n{run.output()[-4000:]}")


async def wait_ready(run: MakeRun) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    async with aiohttp.ClientSession() as session:
        while True:
            assert run.process is not None
            if run.process.poll() is not None:
                raise AssertionError(f"make run exited with {run.process.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{run.port}/-/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the gateway of make run never became ready")
            await asyncio.sleep(0.25)


def arrived(answers: list[Any]) -> bool:
    """Whether the three answers show Prometheus' own `up` series (job "prometheus", value 1)."""
    series, job_values, query = answers
    return (
        any(s.get("__name__") == "up" and s.get("job") == "prometheus" for s in series)
        and "prometheus" in job_values
        and any(
            item["metric"].get("job") == "prometheus" and item["value"][1] == "1"
            for item in query["result"]
        )
    )


async def test_fresh_clone_make_run_and_the_readme_snippet(
    make_run: MakeRun, tmp_path: Path
) -> None:
    prometheus_binary()  # skips without Prometheus
    readme = (make_run.clone / "README.md").read_text()
    snippet = yaml.safe_load(on_port(yaml.safe_dump(readme_prometheus_snippet(readme)),
                                     make_run.port))
    urls = [on_port(url, make_run.port) for url in readme_curl_urls(readme)]
    await wait_ready(make_run)

    def config(address: str) -> dict[str, Any]:
        return {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {"job_name": "prometheus", "static_configs": [{"targets": [address]}]}
            ],
            **snippet,
        }

    answers: list[Any] = []
    async with PrometheusProcess(tmp_path / "prometheus", config), aiohttp.ClientSession() as http:
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_SECONDS
        while True:
            answers = []
            for url in urls:
                async with http.get(url) as response:
                    body = await response.json()
                assert response.status == 200 and body["status"] == "success", (url, body)
                answers.append(body["data"])
            if arrived(answers):
                break
            assert time.monotonic() < deadline, f"`up` did not arrive: {answers}"
            await asyncio.sleep(1)
    # Where `make run` keeps its data: the clone's ./data/clickhouse.
    data = make_run.clone / "data" / "clickhouse"
    assert data.is_dir() and any(data.iterdir())
    assert make_run.stop() == 0, make_run.output()[-4000:]
    assert f"listening on 127.0.0.1:{make_run.port}" in make_run.output()
