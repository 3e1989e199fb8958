"""The limits subsystem at run time: state and background sync with storage (gauges, warnings
and departures: `gateway.limits.usage`).

One instance per gateway process (a replica). On start it loads overrides and active series from
storage; then, on intervals, it reloads overrides (admin API changes reach every replica within
`reload_interval_seconds`), persists its series' last-seen minutes (`sync_interval_seconds`) and
merges every replica's series back from storage (`reconcile_interval_seconds`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from gateway.config import Config
from gateway.limits import override_store
from gateway.limits import store as limits_store
from gateway.limits.admission import Admission
from gateway.limits.distinct import DistinctValues
from gateway.limits.model import BadLimits, Limits
from gateway.limits.override_store import StoredOverrides
from gateway.limits.overrides import TenantLimits, load_overrides_file
from gateway.limits.rate import RateLimiter
from gateway.limits.tracker import ActiveSeriesTracker, Activity
from gateway.limits.usage import TenantUsage
from gateway.metrics import GatewayMetrics
from gateway.storage.clickhouse import ClickHouse, StorageError
from gateway.storage.schema import Layout

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0
EXPIRE_SECONDS = 60.0


class LimitsService:
    """Limits, active series and rate limiting of every tenant, kept in step with storage."""

    def __init__(
        self,
        config: Config,
        metrics: GatewayMetrics,
        store: ClickHouse,
        layout: Layout,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = config.limits
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.layout = layout
        self.clock = clock
        self.registry = TenantLimits(settings.defaults)
        self.tracker = ActiveSeriesTracker(settings.active_series_window_seconds, clock)
        self.label_values = DistinctValues()
        self.metadata_families = DistinctValues()
        self.rate = RateLimiter(share=config.server.workers)
        self.usage = TenantUsage(
            metrics, self.registry, self.tracker, self.label_values,
            settings.active_series_window_seconds, clock,
        )
        self.stats = self.usage.stats
        self.loaded = False
        self.on_change: list[Callable[[str, Limits], None]] = []
        self._file_mtime: float | None = None
        self._last: dict[str, float] = {}
        self._new_series_writes: dict[str, asyncio.Future[None]] = {}
        self._versions: dict[str, int] = {}

    @property
    def persist_resolution_minutes(self) -> int:
        """How stale a persisted last-seen minute may get (1/12 of the window, >= 1 minute)."""
        return max(1, self.tracker.window_minutes // 12)

    def limits_for(self, tenant: str) -> Limits:
        return self.registry.for_tenant(tenant)

    def admission(self, tenant: str) -> Admission:
        return Admission(
            tenant, self.registry.for_tenant(tenant), self.tracker, self.label_values,
            self.metadata_families,
        )

    def record(self, tenant: str, stored: int, discarded: Mapping[str, int]) -> None:
        """Count a write request's stored samples and discards for the admin view."""
        self.usage.record(tenant, stored, discarded)

    # -- storage ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read overrides, the overrides file and every replica's active series."""
        self.reload_file()
        await self.reload_overrides()
        await self.reconcile()
        self.loaded = True
        self.export()
        log.info(
            "limits loaded: %d tenants, %d active series",
            len(self.tracker.tenants()),
            sum(self.tracker.count(t) for t in self.tracker.tenants()),
        )

    async def reload_overrides(self) -> None:
        """Re-read every tenant's admin overrides; local changes newer than the read are kept."""
        self.apply_stored_overrides(await self.fetch_overrides())

    async def fetch_overrides(self) -> dict[str, StoredOverrides]:
        layout = self.layout
        return await self.store.run(lambda client: override_store.read_overrides(client, layout))

    def apply_stored_overrides(self, stored: dict[str, StoredOverrides]) -> None:
        """Take stored overrides whose version is at least the one this replica applied.

        A reload whose storage read began before a change through this replica may finish
        after it: the change's version is newer than anything that read saw, so it stays.
        """
        admin = {
            tenant: overrides for tenant in self._versions
            if (overrides := self.registry.admin_overrides(tenant))
        }
        for tenant, row in stored.items():
            if row.version < self._versions.get(tenant, -1):
                continue
            self._versions[tenant] = row.version
            if row.overrides:
                admin[tenant] = row.overrides
            else:
                admin.pop(tenant, None)
        self._changed(self.registry.set_admin(admin))

    def admin_version(self, tenant: str) -> int:
        """Version (ms) of the tenant's admin overrides this replica applied; -1 if none."""
        return self._versions.get(tenant, -1)

    def reload_file(self) -> None:
        """Re-read the overrides file when its modification time changed."""
        path = self.settings.overrides_file
        if not path:
            return
        try:
            mtime = os.stat(path).st_mtime
        except OSError as exc:
            if self._file_mtime is not None or not self.loaded:
                log.error("limits overrides file %s: %s", path, exc.strerror)
            self._file_mtime = None
            return
        if mtime == self._file_mtime:
            return
        self._file_mtime = mtime
        try:
            overrides = load_overrides_file(path)
        except BadLimits as exc:
            log.error("keeping the previous limits overrides: %s", exc)
            return
        self._changed(self.registry.set_file(overrides))
        log.info("limits overrides file %s loaded (%d tenants)", path, len(overrides))

    def set_admin_overrides(self, tenant: str, overrides: dict[str, Any], version: int) -> None:
        """Apply an admin API change stored at `version` at once, unless a newer one is applied
        (other replicas pick it up on their next reload)."""
        if version < self._versions.get(tenant, -1):
            return
        self._versions[tenant] = version
        before = self.registry.for_tenant(tenant)
        self.registry.set_admin_tenant(tenant, overrides)
        if self.registry.for_tenant(tenant) != before:
            self._changed({tenant})

    def _changed(self, tenants: set[str]) -> None:
        for tenant in tenants:
            limits = self.registry.for_tenant(tenant)
            for callback in self.on_change:
                callback(tenant, limits)

    async def sync(self) -> None:
        """Persist last-seen minutes that moved on since the last sync."""
        await self._persist(self.tracker.unpersisted(self.persist_resolution_minutes))

    async def persist_new_series(self, tenant: str) -> None:
        """Persist the tenant's series this replica admitted that storage has no row of yet.

        Readers of the activity table (the cardinality explorer) call it to see this replica's
        own writes. It writes nothing in the steady state (no new series), and otherwise only the
        rows the next sync would write anyway; concurrent callers share one write. A storage
        failure is logged: the reader then sees counts up to one sync interval old.
        """
        pending = self._new_series_writes.get(tenant)
        if pending is None:
            rows = self.tracker.unpersisted(0, tenant=tenant, new_only=True)
            if not rows:
                return
            pending = asyncio.ensure_future(self._persist(rows))
            self._new_series_writes[tenant] = pending
            pending.add_done_callback(lambda done: self._written(tenant, done))
        try:
            await asyncio.shield(pending)
        except StorageError as exc:
            log.warning("limits: cannot persist new series of tenant %r: %s", tenant, exc)

    def _written(self, tenant: str, done: asyncio.Future[None]) -> None:
        self._new_series_writes.pop(tenant, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: every caller may have gone away

    async def _persist(self, rows: list[Activity]) -> None:
        if rows:
            layout, window = self.layout, self.tracker.window_minutes
            await self.store.run(
                lambda client: limits_store.write_activity(client, layout, rows, window)
            )
            self.tracker.mark_persisted(rows)

    async def reconcile(self) -> None:
        """Persist ours, then fold in every replica's active series and label values."""
        await self.sync()
        cutoff = self.tracker.minute() - self.tracker.window_minutes
        layout = self.layout
        activity = await self.store.run(
            lambda client: limits_store.read_activity(client, layout, cutoff)
        )
        for rows in activity:
            self.tracker.merge(
                rows.tenant, rows.series_ids, rows.minutes, rows.metric_codes, rows.metric_names
            )
        names = {
            name
            for tenant in self.registry.tenants_with_overrides() | set(self.tracker.tenants())
            for name in self.registry.for_tenant(tenant).max_values_per_label
        } | set(self.registry.defaults.max_values_per_label)
        self.label_values.begin_reload()
        self.metadata_families.begin_reload()
        try:
            values = await self.store.run(
                lambda client: limits_store.read_label_values(client, layout, names, cutoff)
            )
            families = await self.store.run(
                lambda client: limits_store.read_metadata_families(client, layout)
            )
        except BaseException:
            self.label_values.abort_reload()
            self.metadata_families.abort_reload()
            raise
        self.label_values.finish_reload(values)
        self.metadata_families.finish_reload(families)

    # -- background ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Forever: load until loaded, then reload, sync, reconcile, expire, export gauges."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self.tick()
            except StorageError as exc:
                log.warning("limits: storage call failed, retrying: %s", exc)

    async def tick(self) -> None:
        """One round of the background work whose interval has come."""
        if not self.loaded:
            await self.load()
        settings = self.settings
        if self._due("reload", settings.reload_interval_seconds):
            self.reload_file()
            await self.reload_overrides()
        if self._due("reconcile", settings.reconcile_interval_seconds):
            await self.reconcile()
        elif self._due("sync", settings.sync_interval_seconds):
            await self.sync()
        if self._due("expire", EXPIRE_SECONDS):
            self.tracker.expire()
        self.export()

    def _due(self, what: str, interval: float) -> bool:
        now = time.monotonic()
        if now - self._last.setdefault(what, now) >= interval:
            self._last[what] = now
            return True
        return False

    async def close(self) -> None:
        """Persist what is not persisted yet (a restart then starts from it)."""
        if self.loaded:
            try:
                await self.sync()
            except StorageError as exc:
                log.warning("limits: final sync failed: %s", exc)

    # -- gauges and warnings ------------------------------------------------------------------

    def export(self) -> None:
        """Per-tenant gauges, budget warnings and departures (see `gateway.limits.usage`)."""
        self.usage.export()
