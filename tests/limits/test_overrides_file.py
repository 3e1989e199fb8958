"""The YAML overrides file: loaded at start, re-read when it changes, below the admin API."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import make_config, start_gateway
from tests.integration.helpers import wait_for
from tests.limits.helpers import ADMIN_TOKEN, admin, many, write


async def test_file_overrides_apply_and_reload(chdb_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "overrides.yml"
    path.write_text("overrides:\n  a:\n    max_global_series_per_user: 2\n")
    config = make_config(
        chdb_dsn,
        **{
            "admin.token": ADMIN_TOKEN,
            "limits.overrides_file": str(path),
            "limits.reload_interval_seconds": 0.2,
        },
    )
    running = await start_gateway(config)
    try:
        assert (await write(running, many(2)))[0] == 204
        assert (await write(running, many(1, start=2)))[0] == 400
        path.write_text("overrides:\n  a:\n    max_global_series_per_user: 3\n")
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

        async def limit() -> int:
            _, body = await admin(running, "GET", "/api/v1/admin/tenants/a/limits")
            return int(body["data"]["limits"]["max_global_series_per_user"])

        await wait_for(limit, lambda value: value == 3, timeout=10, what="the file reload")
        assert (await write(running, many(1, start=2)))[0] == 204
        # The admin API wins over the file; the file's value comes back after DELETE.
        path_limits = "/api/v1/admin/tenants/a/limits"
        status, body = await admin(running, "PUT", path_limits, {"max_global_series_per_user": 1})
        assert body["data"]["file_overrides"] == {"max_global_series_per_user": 3}
        assert body["data"]["limits"]["max_global_series_per_user"] == 1
        status, body = await admin(running, "DELETE", path_limits)
        assert status == 200 and body["data"]["limits"]["max_global_series_per_user"] == 3
    finally:
        await running.runner.cleanup()
