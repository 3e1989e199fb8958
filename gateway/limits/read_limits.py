"""Per-query read limits of one tenant: its own, else the endpoint's configured setting.

`max_fetched_series_per_query` (Mimir's name) and `max_fetched_samples_per_query` apply to the
query API and to remote-read alike; a tenant without them gets each endpoint's setting. Errors
name the limit that applied: the tenant's (with the tenant) or the endpoint's setting.
"""

from __future__ import annotations

from gateway.config import QueryConfig, RemoteReadConfig
from gateway.limits.model import Limits
from gateway.storage.sample_reader import SelectLimits


def _pick(own: int | None, fallback: int, setting: str, name: str, tenant: str) -> tuple[int, str]:
    if own is None:
        return fallback, setting
    return own, f'{name} of tenant "{tenant}"'


def read_limits(
    limits: Limits, tenant: str, series: tuple[int, str], samples: tuple[int, str]
) -> SelectLimits:
    """SelectLimits from the tenant's limits, else the (value, setting name) fallbacks."""
    max_series, series_setting = _pick(
        limits.max_fetched_series_per_query, *series, "max_fetched_series_per_query", tenant
    )
    max_samples, samples_setting = _pick(
        limits.max_fetched_samples_per_query, *samples, "max_fetched_samples_per_query", tenant
    )
    return SelectLimits(max_series, max_samples, series_setting, samples_setting)


def query_limits(limits: Limits, tenant: str, config: QueryConfig) -> SelectLimits:
    """Fetch limits of a PromQL query (each selector is one fetch)."""
    return read_limits(
        limits, tenant,
        (config.max_fetched_series_per_query, "query.max_fetched_series_per_query"),
        (config.max_samples, "query.max_samples"),
    )


def remote_read_limits(limits: Limits, tenant: str, config: RemoteReadConfig) -> SelectLimits:
    """Limits of one remote-read query."""
    return read_limits(
        limits, tenant,
        (config.max_series_per_query, "remote_read.max_series_per_query"),
        (config.max_samples_per_query, "remote_read.max_samples_per_query"),
    )
