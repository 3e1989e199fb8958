"""Storage readiness: the schema is migrated at start-up and probed on an interval.

The gateway starts even when storage is down: it answers 503 (not ready, writes refused) and
keeps trying, so a ClickHouse that comes up later is picked up without a restart. In embedded
mode the probe also checks that the data directory can be written and has free space, and a
write that failed because files could not be written makes the gateway not ready at once: a
read-only or full disk shows in `/-/ready` (and writes answer 503) instead of only in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os

from gateway.metrics import GatewayMetrics
from gateway.storage.base import Client
from gateway.storage.clickhouse import (
    ClickHouse,
    StorageError,
    StorageLocked,
    StorageNotWritable,
    migrate,
    schema_version,
)
from gateway.storage.schema import SCHEMA_VERSION, Layout, current_table_names

log = logging.getLogger(__name__)


class Readiness:
    """Knows whether storage is reachable with the current schema."""

    def __init__(
        self, store: ClickHouse, layout: Layout, metrics: GatewayMetrics, min_free_bytes: int = 0
    ) -> None:
        self._store = store
        self._min_free_bytes = min_free_bytes
        self._layout = layout
        self._metrics = metrics
        self._migrated = False
        self.ready = False
        self.problem = "storage not checked yet"

    async def check(self) -> bool:
        """Migrate if not done yet, then probe; updates `ready` and `problem`.

        A locked embedded data directory is not retried: it raises StorageLocked.
        """
        try:
            problem = data_dir_problem(self._store.dsn, self._min_free_bytes)
            if problem is not None:
                raise StorageNotWritable(problem)
            if not self._migrated:
                await self._store.run(lambda client: migrate(client, self._layout))
                self._migrated = True
            version = await self._store.run(lambda client: schema_version(client, self._layout))
            if version != SCHEMA_VERSION:
                raise StorageError(f"schema version {version}, expected {SCHEMA_VERSION}")
            missing = await self._store.run(lambda client: missing_tables(client, self._layout))
            if missing:
                # A table dropped or detached behind the gateway's back: every write would fail.
                raise StorageError(f"tables missing from {self._layout.database}: {missing}")
        except StorageLocked:
            raise
        except StorageError as exc:
            if self.ready or self.problem != str(exc):
                log.warning("storage not ready: %s", exc)
            self._set(False, str(exc))
            return False
        if not self.ready:
            log.info("storage ready (%s, schema version %d)", self._layout.database, SCHEMA_VERSION)
        self._set(True, "")
        return True

    def note_write_failure(self, exc: StorageError) -> None:
        """A write failed: files that cannot be written make the gateway not ready now (the
        probe makes it ready again once the directory is writable)."""
        if isinstance(exc, StorageNotWritable):
            if self.ready or self.problem != str(exc):
                log.warning("storage not ready: %s", exc)
            self._set(False, str(exc))

    async def watch(self, interval_seconds: float) -> None:
        """Probe forever (run as a background task)."""
        while True:
            await asyncio.sleep(interval_seconds if self.ready else min(interval_seconds, 1.0))
            await self.check()

    def _set(self, ready: bool, problem: str) -> None:
        self.ready = ready
        self.problem = problem
        self._metrics.storage_ready.set(1 if ready else 0)


def missing_tables(client: Client, layout: Layout) -> list[str]:
    """Tables of the current schema that the store does not have (sorted)."""
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = {database:String}",
        parameters={"database": layout.database},
    ).result_rows
    return sorted(current_table_names(layout) - {str(row[0]) for row in rows})


def data_dir_problem(dsn: str, min_free_bytes: int) -> str | None:
    """Why an embedded data directory cannot take writes (None when it can, or for a server)."""
    if not dsn.startswith("chdb://"):
        return None
    path = dsn.removeprefix("chdb://")
    existing = path
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)  # the engine creates the missing part
    if not os.access(existing, os.W_OK | os.X_OK):
        return (
            f"the data directory {path} is not writable by uid {os.getuid()} "
            f"({existing} refuses writes: check its owner, mode and mount)"
        )
    try:
        stats = os.statvfs(existing)
    except OSError as exc:
        return f"the data directory {path} cannot be inspected: {exc.strerror}"
    free = stats.f_bavail * stats.f_frsize
    if min_free_bytes and free < min_free_bytes:
        return (
            f"the data directory {path} has {free} bytes free, less than storage.min_free_bytes "
            f"({min_free_bytes}): free some space"
        )
    return None
