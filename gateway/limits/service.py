"""The limits subsystem at run time: state, background sync with storage, gauges and warnings.

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
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
from gateway.metrics import GatewayMetrics
from gateway.storage.clickhouse import ClickHouse, StorageError
from gateway.storage.schema import Layout

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0
EXPIRE_SECONDS = 60.0
RATE_WINDOW_TICKS = 10
WARN_LEVELS = (100, 80)


@dataclass(slots=True)
class TenantStats:
    """What this replica saw of a tenant: stored samples and discards by reason."""

    stored: int = 0
    discarded: Counter[str] = field(default_factory=Counter)
    history: deque[tuple[float, int]] = field(
        default_factory=lambda: deque(maxlen=RATE_WINDOW_TICKS + 1)
    )

    def samples_per_second(self) -> float:
        if len(self.history) < 2:
            return 0.0
        (start, first), (end, last) = self.history[0], self.history[-1]
        return (last - first) / (end - start) if end > start else 0.0


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
        self.stats: dict[str, TenantStats] = {}
        self.loaded = False
        self.on_change: list[Callable[[str, Limits], None]] = []
        self._file_mtime: float | None = None
        self._levels: dict[tuple[str, str], int] = {}
        self._exported: set[str] = set()
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
        """Count a request's stored samples and discards for the admin view."""
        stats = self.stats.get(tenant)
        if stats is None:
            stats = self.stats[tenant] = TenantStats()
        stats.stored += stored
        stats.discarded.update(discarded)

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
        """Per-tenant gauges; warnings when a budget's use crosses 80% and 100%."""
        now = self.clock()
        tenants = set(self.tracker.tenants()) | self.registry.tenants_with_overrides()
        m = self.metrics
        for tenant in tenants:
            active = self.tracker.count(tenant)
            limit = self.registry.for_tenant(tenant).max_global_series_per_user
            m.tenant_active_series.labels(tenant).set(active)
            m.tenant_series_limit.labels(tenant).set(limit)
            m.tenant_series_utilisation.labels(tenant).set(active / limit if limit else 0.0)
            self._warn(tenant, "max_global_series_per_user", active, limit)
            self._warn_metrics(tenant)
        for tenant in self._exported - tenants:
            m.tenant_active_series.remove(tenant)
            m.tenant_series_limit.remove(tenant)
            m.tenant_series_utilisation.remove(tenant)
            # Its use fell to nothing: crossing a level again must warn again.
            for key in [key for key in self._levels if key[0] == tenant]:
                del self._levels[key]
        self._exported = tenants
        m.tracker_bytes.set(self.tracker.memory_bytes())
        for stats in self.stats.values():
            stats.history.append((now, stats.stored))

    def _warn_metrics(self, tenant: str) -> None:
        limits = self.registry.for_tenant(tenant)
        if limits.max_global_series_per_metric or limits.metric_budgets:
            for metric, count in self.tracker.metric_counts(tenant).items():
                setting = (
                    f"metric_budgets.{metric}" if metric in limits.metric_budgets
                    else "max_global_series_per_metric"
                )
                self._warn(tenant, setting, count, limits.metric_limit(metric))
        for name, budget in limits.max_values_per_label.items():
            if budget:  # 0 forbids the label: there is no use to warn about
                used = self.label_values.count(tenant, name)
                self._warn(tenant, f"max_values_per_label.{name}", used, budget, "values")

    def _warn(
        self, tenant: str, budget: str, used: int, limit: int, unit: str = "series"
    ) -> None:
        """Log once when a budget's use crosses 80% or 100% upwards (again after going down)."""
        level = next((p for p in WARN_LEVELS if limit and used * 100 >= limit * p), 0)
        key = (tenant, budget)
        previous = self._levels.get(key, 0)
        if level != previous:
            self._levels[key] = level
            if level > previous:
                log.warning(
                    'tenant "%s" uses %d%% of its budget %s (%d of %d %s)',
                    tenant, used * 100 // limit, budget, used, limit, unit,
                )
