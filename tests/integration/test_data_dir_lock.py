"""A second gateway on a data directory that another process holds exits with one clear line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.storage.clickhouse import ClickHouse
from tests.prometheus_process import free_port

EXIT_TIMEOUT_SECONDS = 30.0


def test_serve_on_a_data_directory_in_use_exits_with_one_line(
    chdb_dsn: str, session_store: ClickHouse, tmp_path: Path
) -> None:
    # This test process opens the embedded engine on the directory and keeps it open.
    assert session_store.run_sync(lambda client: client.command("SELECT 1")) == 1
    command = [
        sys.executable, "-m", "gateway", "serve",
        "--listen", f"127.0.0.1:{free_port()}",
        "--storage", chdb_dsn,
    ]
    started = time.monotonic()
    with subprocess.Popen(
        command, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            shown = "\n".join(stderr.splitlines()[:5])
            pytest.fail(
                f"the gateway was still running after {EXIT_TIMEOUT_SECONDS}s; "
                f"stderr began:\n{shown}"
            )
    took = time.monotonic() - started
    print(f"exit {process.returncode} after {took:.1f}s\nstdout: {stdout!r}\nstderr: {stderr!r}")
    assert process.returncode != 0
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert chdb_dsn.removeprefix("chdb://") in lines[0]
    assert "in use by another process" in lines[0]
    assert stdout == ""
