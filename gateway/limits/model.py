"""The `Limits` model: every per-tenant limit (0 = unlimited), and strict parsing of overrides.

Names are Grafana Mimir's where Mimir has the limit, so users recognise them; label budgets
(`max_values_per_label`) and metric budgets (`metric_budgets`) are ours.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.model.labels import METRIC_NAME


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit of one tenant; 0 (or empty) means unlimited, None (null) not set."""

    max_global_series_per_user: int = 0
    """Active series the tenant may have (new series beyond it are refused, 400)."""
    max_global_series_per_metric: int = 0
    """Active series one metric name may have (400 beyond it)."""
    max_label_names_per_series: int = 0
    """Labels (including __name__) one series may have."""
    max_label_name_length: int = 0
    """Characters a label name may have."""
    max_label_value_length: int = 0
    """Characters a label value may have."""
    ingestion_rate: float = 0.0
    """Samples per second the tenant may write (token bucket; 429 beyond it)."""
    ingestion_burst_size: int = 0
    """Samples the token bucket holds; 0 = one second of ingestion_rate."""
    max_samples_per_request: int = 0
    """Samples one write request may carry (the whole request is refused, 400)."""
    max_metadata_per_user: int = 0
    """Metric families with metadata the tenant may have."""
    drop_labels: tuple[str, ...] = ()
    """Label names removed from every series at ingest (before hashing and every check)."""
    max_values_per_label: dict[str, int] = field(default_factory=dict)
    """Distinct values a label name may have among the tenant's active series; 0 forbids it."""
    metric_budgets: dict[str, int] = field(default_factory=dict)
    """Active series per metric name, replacing max_global_series_per_metric for that name;
    0 = that metric is unlimited (a metric not named gets max_global_series_per_metric)."""
    max_fetched_series_per_query: int | None = None
    """Series one query may fetch (PromQL selector, remote-read query; 422 above); null = the
    endpoint's setting (query.max_fetched_series_per_query, remote_read.max_series_per_query)."""
    max_fetched_samples_per_query: int | None = None
    """Samples one query may fetch (422 above); null = the endpoint's setting (query.max_samples,
    remote_read.max_samples_per_query)."""

    def metric_limit(self, metric: str) -> int:
        """The series budget of one metric name (its own budget, else the global one; 0 =
        unlimited, the Limits convention: unlike a label budget, 0 does not forbid)."""
        return self.metric_budgets.get(metric, self.max_global_series_per_metric)

    @property
    def burst(self) -> float:
        """Capacity of the ingestion token bucket."""
        if self.ingestion_burst_size:
            return float(self.ingestion_burst_size)
        return self.ingestion_rate

    def to_json(self) -> dict[str, Any]:
        """The limits as a JSON object keyed by limit name."""
        return {
            item.name: _jsonable(getattr(self, item.name)) for item in dataclasses.fields(self)
        }


LIMIT_NAMES: tuple[str, ...] = tuple(item.name for item in dataclasses.fields(Limits))


class BadLimits(ValueError):
    """A limits object is invalid; the message names the key."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(sorted(value.items()))
    return value


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadLimits(f"{key}: expected a non-negative integer, got {value!r}")
    if value < 0:
        raise BadLimits(f"{key}: must be >= 0, got {value}")
    return value


def _rate(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadLimits(f"{key}: expected a non-negative number, got {value!r}")
    if value < 0:
        raise BadLimits(f"{key}: must be >= 0, got {value}")
    return float(value)


def _label_name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BadLimits(f"{key}: expected a non-empty label name, got {value!r}")
    return value


def _names(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise BadLimits(f"{key}: expected a list of label names, got {value!r}")
    names = tuple(_label_name(f"{key}[{i}]", item) for i, item in enumerate(value))
    if METRIC_NAME in names:
        raise BadLimits(f"{key}: {METRIC_NAME} cannot be dropped")
    return tuple(sorted(set(names)))


def _budgets(key: str, value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise BadLimits(f"{key}: expected an object of name: count, got {value!r}")
    return {
        _label_name(f"{key} key", name): _count(f"{key}.{name}", count)
        for name, count in value.items()
    }


def _optional_count(key: str, value: Any) -> int | None:
    return None if value is None else _count(key, value)


OPTIONAL_LIMITS = frozenset({"max_fetched_series_per_query", "max_fetched_samples_per_query"})
"""Limits whose default is null: the endpoint's own setting applies."""

_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "max_fetched_series_per_query": _optional_count,
    "max_fetched_samples_per_query": _optional_count,
    "ingestion_rate": _rate,
    "drop_labels": _names,
    "max_values_per_label": _budgets,
    "metric_budgets": _budgets,
}


def parse_overrides(data: Any) -> dict[str, Any]:
    """Validate a (partial) limits object keyed by limit name; returns it normalised."""
    if not isinstance(data, Mapping):
        raise BadLimits(f"expected a JSON object keyed by limit name, got {type(data).__name__}")
    result: dict[str, Any] = {}
    for key, value in data.items():
        if key not in LIMIT_NAMES:
            raise BadLimits(f"{key}: unknown limit (known: {', '.join(LIMIT_NAMES)})")
        parser = _PARSERS.get(key)
        result[key] = parser(key, value) if parser else _count(key, value)
    return result


def apply(base: Limits, *overrides: Mapping[str, Any]) -> Limits:
    """`base` with validated overrides applied in order (later ones win)."""
    merged: dict[str, Any] = {}
    for one in overrides:
        merged.update(one)
    return dataclasses.replace(base, **merged) if merged else base


def validate(limits: Limits) -> None:
    """Raise BadLimits naming the first invalid field of a whole Limits value."""
    parse_overrides(limits.to_json())


def overrides_json(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Validated overrides as JSON-ready values."""
    return {key: _jsonable(value) for key, value in sorted(overrides.items())}
