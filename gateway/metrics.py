"""The gateway's own metrics, on a registry owned by the app (no library default registry)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000)
# Metric names per tenant in gateway_tenant_metric_active_series: enough for a "top metrics"
# panel, few enough that thousands of tenants stay a small /metrics (the cardinality API has all).
TOP_METRICS_PER_TENANT = 20


class GatewayMetrics:
    """Every metric the gateway exports, `gateway_<subsystem>_<name>_<unit|total>`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received_samples = Counter(
            "gateway_ingest_received_samples", "Samples received in write requests.",
            ["tenant"], registry=r,
        )
        self.stored_samples = Counter(
            "gateway_ingest_stored_samples", "Samples acknowledged after being stored.",
            ["tenant"], registry=r,
        )
        self.received_series = Counter(
            "gateway_ingest_received_series", "Series received in write requests.",
            ["tenant"], registry=r,
        )
        self.new_series = Counter(
            "gateway_ingest_new_series", "Series registered in the series table.",
            ["tenant"], registry=r,
        )
        self.stored_metadata = Counter(
            "gateway_ingest_stored_metadata", "Metadata entries acknowledged after being stored.",
            ["tenant"], registry=r,
        )
        self.received_metadata = Counter(
            "gateway_ingest_received_metadata", "Metadata entries received.",
            ["tenant"], registry=r,
        )
        self.discarded_samples = Counter(
            "gateway_discarded_samples", "Samples refused, by reason.",
            ["tenant", "reason"], registry=r,
        )
        self.rejected_requests = Counter(
            "gateway_rejected_requests", "Requests answered with an error, by reason.",
            ["reason", "status"], registry=r,
        )
        self.request_duration = Histogram(
            "gateway_http_request_duration_seconds", "HTTP request latency.",
            ["handler", "method", "status"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.batch_rows = Histogram(
            "gateway_batch_rows", "Samples per group-commit batch.",
            buckets=_BATCH_BUCKETS, registry=r,
        )
        self.batch_requests = Histogram(
            "gateway_batch_requests", "Write requests per group-commit batch.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r,
        )
        self.flush_duration = Histogram(
            "gateway_batch_flush_duration_seconds",
            "Time to insert one batch into storage, by outcome (stored, failed).",
            ["outcome"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.storage_errors = Counter(
            "gateway_storage_errors", "Storage calls that failed, by operation.",
            ["operation"], registry=r,
        )
        self.inflight_batches = Gauge(
            "gateway_batch_inflight", "Batches being inserted right now.", registry=r,
        )
        self.known_series = Gauge(
            "gateway_ingest_known_series_cached",
            "Series ids cached as stored (their labels are not re-decoded).", registry=r,
        )
        self.series_labels_cached = Gauge(
            "gateway_query_series_labels_cached",
            "Label sets of selected series held in memory (query.series_labels_cache_size).",
            registry=r,
        )
        self.series_labels_lookups = Counter(
            "gateway_query_series_labels_lookups",
            "Series whose labels a selection needed, by where they came from: result=hit "
            "(the in-memory cache) or miss (read from ClickHouse).",
            ["result"], registry=r,
        )
        self.query_duration = Histogram(
            "gateway_query_duration_seconds",
            "PromQL query latency, by endpoint (query, query_range) and HTTP status.",
            ["endpoint", "status"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.query_errors = Counter(
            "gateway_query_errors", "PromQL queries that failed, by endpoint and errorType.",
            ["endpoint", "error_type"], registry=r,
        )
        self.discarded_metadata = Counter(
            "gateway_discarded_metadata", "Metadata entries refused, by reason.",
            ["tenant", "reason"], registry=r,
        )
        self.tenant_active_series = Gauge(
            "gateway_tenant_active_series",
            "Series of the tenant that received a sample within the active-series window.",
            ["tenant"], registry=r,
        )
        self.tenant_series_limit = Gauge(
            "gateway_tenant_series_limit",
            "The tenant's active-series budget (max_global_series_per_user; 0 = unlimited).",
            ["tenant"], registry=r,
        )
        self.tenant_series_utilisation = Gauge(
            "gateway_tenant_series_utilisation_ratio",
            "Active series divided by the tenant's series budget (0 when unlimited).",
            ["tenant"], registry=r,
        )
        self.tenant_metric_active_series = Gauge(
            "gateway_tenant_metric_active_series",
            f"Active series of the tenant's {TOP_METRICS_PER_TENANT} metric names with the most.",
            ["tenant", "metric_name"], registry=r,
        )
        self._top_metrics: dict[str, set[str]] = {}
        self.tracker_bytes = Gauge(
            "gateway_limits_tracker_bytes", "Memory held by the active-series tracker's arrays.",
            registry=r,
        )
        self.storage_ready = Gauge(
            "gateway_storage_ready", "1 when storage is reachable and the schema current.",
            registry=r,
        )

    def set_top_metrics(self, tenant: str, counts: Mapping[str, int]) -> None:
        """Export a tenant's top metric names (`counts`); drop the ones that left the top."""
        gauge = self.tenant_metric_active_series
        for metric in self._top_metrics.get(tenant, set()) - counts.keys():
            gauge.remove(tenant, metric)
        for metric, count in counts.items():
            gauge.labels(tenant, metric).set(count)
        if counts:
            self._top_metrics[tenant] = set(counts)
        else:
            self._top_metrics.pop(tenant, None)
