"""What tenants use, as this replica sees it: per-tenant stats and gauges, budget warnings, and
the removal of a departed tenant's per-tenant metric series.

A tenant has **departed** when it has no active series, no limits overrides, and this replica saw
no write of it for the active-series window: then its stats, its warning levels and every series
labelled with it in the gateway's metrics are removed, so /metrics does not grow with every tenant
that ever wrote once.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client.metrics import MetricWrapperBase

from gateway.limits.distinct import DistinctValues
from gateway.limits.overrides import TenantLimits
from gateway.limits.tracker import ActiveSeriesTracker
from gateway.metrics import TOP_METRICS_PER_TENANT, GatewayMetrics

log = logging.getLogger(__name__)
RATE_WINDOW_TICKS = 10
WARN_LEVELS = (100, 80)
TENANT_LABEL = "tenant"
# Labels a histogram or summary adds to its samples, beyond the metric's own labels.
_SAMPLE_LABELS = frozenset({"le", "quantile"})


@dataclass(slots=True)
class TenantStats:
    """What this replica saw of a tenant: stored samples and discards by reason."""

    stored: int = 0
    discarded: Counter[str] = field(default_factory=Counter)
    history: deque[tuple[float, int]] = field(
        default_factory=lambda: deque(maxlen=RATE_WINDOW_TICKS + 1)
    )
    last_write: float = 0.0
    """Clock time of the tenant's latest write request seen here."""

    def samples_per_second(self) -> float:
        if len(self.history) < 2:
            return 0.0
        (start, first), (end, last) = self.history[0], self.history[-1]
        return (last - first) / (end - start) if end > start else 0.0


def remove_tenant_series(metrics: GatewayMetrics, tenant: str) -> int:
    """Remove every series labelled `tenant` from the gateway's metrics; returns how many."""
    removed = 0
    for metric in vars(metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        children = {
            tuple(value for name, value in sample.labels.items() if name not in _SAMPLE_LABELS)
            for family in metric.collect()
            for sample in family.samples
            if sample.labels.get(TENANT_LABEL) == tenant
        }
        for values in children:
            metric.remove(*values)
            removed += 1
    return removed


class TenantUsage:
    """Per-tenant stats, gauges and warnings of one replica."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        registry: TenantLimits,
        tracker: ActiveSeriesTracker,
        label_values: DistinctValues,
        window_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.metrics = metrics
        self.registry = registry
        self.tracker = tracker
        self.label_values = label_values
        self.window_seconds = window_seconds
        self.clock = clock
        self.stats: dict[str, TenantStats] = {}
        self._levels: dict[tuple[str, str], int] = {}
        self._exported: set[str] = set()

    def record(self, tenant: str, stored: int, discarded: Mapping[str, int]) -> None:
        """Count a write request's stored samples and discards."""
        stats = self.stats.get(tenant)
        if stats is None:
            stats = self.stats[tenant] = TenantStats()
        stats.stored += stored
        stats.discarded.update(discarded)
        stats.last_write = self.clock()

    def export(self) -> None:
        """Per-tenant gauges; warnings when a budget's use crosses 80% and 100%; departures."""
        now = self.clock()
        tenants = set(self.tracker.tenants()) | self.registry.tenants_with_overrides()
        m = self.metrics
        for tenant in tenants:
            active = self.tracker.count(tenant)
            limit = self.registry.for_tenant(tenant).max_global_series_per_user
            m.tenant_active_series.labels(tenant).set(active)
            m.tenant_series_limit.labels(tenant).set(limit)
            m.tenant_series_utilisation.labels(tenant).set(active / limit if limit else 0.0)
            top = self.tracker.top_metric_counts(tenant, TOP_METRICS_PER_TENANT)
            m.set_top_metrics(tenant, top)
            self._warn(tenant, "max_global_series_per_user", active, limit)
            self._warn_metrics(tenant)
        for tenant in self._exported - tenants:
            m.tenant_active_series.remove(tenant)
            m.tenant_series_limit.remove(tenant)
            m.tenant_series_utilisation.remove(tenant)
            m.set_top_metrics(tenant, {})
            # Its use fell to nothing: crossing a level again must warn again.
            self._forget_levels(tenant)
        self._exported = tenants
        m.tracker_bytes.set(self.tracker.memory_bytes())
        for tenant, stats in list(self.stats.items()):
            if tenant not in tenants and now - stats.last_write > self.window_seconds:
                self.depart(tenant)
            else:
                stats.history.append((now, stats.stored))

    def depart(self, tenant: str) -> None:
        """Forget a tenant: its stats, warning levels and per-tenant metric series."""
        self.stats.pop(tenant, None)
        self._forget_levels(tenant)
        removed = remove_tenant_series(self.metrics, tenant)
        log.info("tenant %r departed: %d metric series removed", tenant, removed)

    def _forget_levels(self, tenant: str) -> None:
        for key in [key for key in self._levels if key[0] == tenant]:
            del self._levels[key]

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
