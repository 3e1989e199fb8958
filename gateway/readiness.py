"""Storage readiness: the schema is migrated at start-up and probed on an interval.

The gateway starts even when storage is down: it answers 503 (not ready, writes refused) and
keeps trying, so a ClickHouse that comes up later is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.metrics import GatewayMetrics
from gateway.storage.clickhouse import (
    ClickHouse,
    StorageError,
    StorageLocked,
    migrate,
    schema_version,
)
from gateway.storage.schema import SCHEMA_VERSION, Layout

log = logging.getLogger(__name__)


class Readiness:
    """Knows whether storage is reachable with the current schema."""

    def __init__(self, store: ClickHouse, layout: Layout, metrics: GatewayMetrics) -> None:
        self._store = store
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
            if not self._migrated:
                await self._store.run(lambda client: migrate(client, self._layout))
                self._migrated = True
            version = await self._store.run(lambda client: schema_version(client, self._layout))
            if version != SCHEMA_VERSION:
                raise StorageError(f"schema version {version}, expected {SCHEMA_VERSION}")
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

    async def watch(self, interval_seconds: float) -> None:
        """Probe forever (run as a background task)."""
        while True:
            await asyncio.sleep(interval_seconds if self.ready else min(interval_seconds, 1.0))
            await self.check()

    def _set(self, ready: bool, problem: str) -> None:
        self.ready = ready
        self.problem = problem
        self._metrics.storage_ready.set(1 if ready else 0)
