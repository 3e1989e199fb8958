"""A data directory that cannot be written: read-only at start-up, made read-only while
writing, and a full disk. The gateway says so in one line, in `/-/ready` and in the 503 of
every write, and takes writes again (without a restart) once the directory is fixed.

Tests run as root, and root writes through any file mode, so the gateway runs as `nobody`
(setpriv) on a directory chmod'ed read-only; the full disk is a small tmpfs (mounting needs
root with CAP_SYS_ADMIN; the test is skipped, saying so, where mount is refused). Every
acknowledged sample is read back through the gateway's API afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.api.test_write_errors import rw1, series
from tests.integration.test_process_faults import start, wait_ready
from tests.prometheus_process import free_port

NOBODY = 65534
AS_NOBODY = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
T = 1_700_000_000_000
TIMEOUT = aiohttp.ClientTimeout(total=30)
RECOVERY_SECONDS = 60


def _nobody_can_run_the_gateway() -> str | None:
    """Why the gateway cannot run as nobody here (None when it can)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return "needs root and setpriv to run the gateway as another user"
    probe = subprocess.run(
        [*AS_NOBODY, sys.executable, "-c", "import gateway.app"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )
    if probe.returncode != 0:
        return f"user nobody cannot import the gateway from this checkout: {probe.stderr[-300:]}"
    return None


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory under /tmp that nobody can reach (pytest's tmp_path is root-only, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="gateway-datadir-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    _chmod_tree(path, add=stat.S_IWUSR)
    shutil.rmtree(path, ignore_errors=True)


def _chmod_tree(root: Path, *, add: int = 0, remove: int = 0) -> None:
    for directory, names, files in os.walk(root):
        for one in [directory, *(os.path.join(directory, name) for name in files)]:
            mode = os.lstat(one).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(one, (stat.S_IMODE(mode) | add) & ~remove)
        del names  # os.walk recurses into them


async def write(url: str, number: int) -> tuple[int, str]:
    body = rw1(series([(b"__name__", b"dir_fault"), (b"n", b"%d" % number)], [(T, 1.0)]))
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.post(
        url + "/api/v1/write", data=body, headers={"Content-Type": "application/x-protobuf"}
    ) as response:
        return response.status, await response.text()


async def write_retrying(url: str, number: int) -> tuple[int, str]:
    """As a sender does: retry on 503 (right after recovery the active series may still be
    loading: `limits-not-loaded`), for at most RECOVERY_SECONDS."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        status, text = await write(url, number)
        if status != 503 or time.monotonic() > deadline:
            return status, text
        await asyncio.sleep(0.5)


async def ready(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(
        url + "/-/ready"
    ) as response:
        return response.status, await response.text()


async def stored_numbers(url: str) -> list[str]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(
        url + "/api/v1/label/n/values", params={"match[]": "dir_fault"}
    ) as response:
        assert response.status == 200
        return sorted((await response.json())["data"])


async def wait_until(url: str, process: subprocess.Popen[bytes], want: int) -> tuple[int, str]:
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        assert process.poll() is None, "the gateway exited"
        try:
            status, text = await ready(url)
            if status == want:
                return status, text
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, f"/-/ready never answered {want}"
        await asyncio.sleep(0.3)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_read_only_data_dir_at_start_up(scratch: Path) -> None:
    """Not ready with a one-line reason, then ready and writing once the directory is fixed:
    this is also the storage-unavailable-at-start-up recovery (Readiness.watch)."""
    if (why := _nobody_can_run_the_gateway()) is not None:
        pytest.skip(why)
    parent = scratch / "readonly"
    parent.mkdir(mode=0o555)
    data = parent / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = scratch / "gateway.log"
    with log_path.open("wb") as log:
        process = start(data, port, log, "--log-level", "info", prefix=AS_NOBODY,
                        env={"HOME": str(scratch)})
        try:
            status, text = await wait_until(url, process, 503)
            assert f"the data directory {data} is not writable by uid {NOBODY}" in text, text
            assert text.count("\n") == 1, text  # one line
            status, text = await write(url, 1)
            assert status == 503 and "not writable" in text, (status, text)
            parent.chmod(0o777)
            await wait_until(url, process, 200)
            status, text = await write_retrying(url, 2)
            assert status == 204, text
            assert await stored_numbers(url) == ["2"]
        finally:
            _stop(process)
    lines = [line for line in log_path.read_text().splitlines() if "not writable" in line]
    assert len(lines) == 1, lines  # said once, not on every probe


async def test_data_dir_made_read_only_while_writing(scratch: Path) -> None:
    if (why := _nobody_can_run_the_gateway()) is not None:
        pytest.skip(why)
    os.chown(scratch, NOBODY, NOBODY)
    data = scratch / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (scratch / "gateway.log").open("wb") as log:
        process = start(data, port, log, prefix=AS_NOBODY, env={"HOME": str(scratch)})
        try:
            await wait_ready(url, process)
            assert (await write_retrying(url, 1))[0] == 204
            _chmod_tree(data, remove=stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
            status, text = await write(url, 2)
            assert status == 503, text
            assert "not writable" in text and str(data) in text, text
            status, text = await ready(url)
            assert status == 503 and "not writable" in text, text
            _chmod_tree(data, add=stat.S_IWUSR)
            await wait_until(url, process, 200)
            status, text = await write_retrying(url, 2)  # the sender's retry
            assert status == 204, text
            assert await stored_numbers(url) == ["1", "2"]
        finally:
            _stop(process)


@pytest.fixture
def small_disk(scratch: Path) -> Iterator[Path]:
    mount = scratch / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_full_disk(small_disk: Path) -> None:
    data = small_disk / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    filler = small_disk / "filler"
    with (small_disk.parent / "gateway.log").open("wb") as log:
        process = start(data, port, log)
        try:
            await wait_ready(url, process)
            assert (await write_retrying(url, 1))[0] == 204
            with filler.open("wb") as out:
                try:
                    while True:
                        out.write(b"\0" * (1 << 20))
                        out.flush()
                except OSError:
                    pass  # ENOSPC: the disk is full
            status, text = await write(url, 2)
            assert status == 503, text
            assert "free" in text or "space" in text, text
            status, text = await wait_until(url, process, 503)
            assert "storage.min_free_bytes" in text or "space" in text, text
            filler.unlink()
            await wait_until(url, process, 200)
            status, text = await write_retrying(url, 2)
            assert status == 204, text
            assert await stored_numbers(url) == ["1", "2"]
        finally:
            _stop(process)
