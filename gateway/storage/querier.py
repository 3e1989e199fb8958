"""Reads series, label names and label values of one tenant from the series table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.model.labels import Labels
from gateway.model.matchers import Matcher
from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout
from gateway.storage.sql import Params, series_selection_sql


@dataclass(frozen=True, slots=True)
class TimeRange:
    start_ms: int
    end_ms: int


def _series_subquery(
    layout: Layout,
    tenant: str,
    selectors: Sequence[Sequence[Matcher]],
    time_range: TimeRange,
    params: Params,
) -> str:
    return series_selection_sql(
        layout.series_table, layout.labels_table, tenant, selectors,
        time_range.start_ms, time_range.end_ms, params,
    )


def find_series(
    client: Client,
    layout: Layout,
    tenant: str,
    selectors: Sequence[Sequence[Matcher]],
    time_range: TimeRange,
    limit: int,
) -> list[Labels]:
    """Label sets of matching series, sorted by labels."""
    params = Params()
    inner = _series_subquery(layout, tenant, selectors, time_range, params)
    limit_sql = f"LIMIT {params.add(limit, 'UInt64')}" if limit > 0 else ""
    sql = f"""
        SELECT arraySort(arrayZip(mapKeys(found_labels), mapValues(found_labels))) AS pairs
        FROM ({inner}) ORDER BY pairs {limit_sql}
    """
    rows = client.query(sql, parameters=params.values).result_rows
    return [tuple((str(name), str(value)) for name, value in row[0]) for row in rows]


def label_names(
    client: Client,
    layout: Layout,
    tenant: str,
    selectors: Sequence[Sequence[Matcher]],
    time_range: TimeRange,
    limit: int,
) -> list[str]:
    """Sorted distinct label names of matching series."""
    params = Params()
    inner = _series_subquery(layout, tenant, selectors, time_range, params)
    limit_sql = f"LIMIT {params.add(limit, 'UInt64')}" if limit > 0 else ""
    sql = f"""
        SELECT DISTINCT arrayJoin(mapKeys(found_labels)) AS name FROM ({inner})
        ORDER BY name {limit_sql}
    """
    return [str(row[0]) for row in client.query(sql, parameters=params.values).result_rows]


def label_values(
    client: Client,
    layout: Layout,
    tenant: str,
    name: str,
    selectors: Sequence[Sequence[Matcher]],
    time_range: TimeRange,
    limit: int,
) -> list[str]:
    """Sorted distinct non-empty values of one label among matching series."""
    params = Params()
    inner = _series_subquery(layout, tenant, selectors, time_range, params)
    limit_sql = f"LIMIT {params.add(limit, 'UInt64')}" if limit > 0 else ""
    sql = f"""
        SELECT DISTINCT found_labels[{params.add(name, 'String')}] AS value FROM ({inner})
        WHERE value != '' ORDER BY value {limit_sql}
    """
    return [str(row[0]) for row in client.query(sql, parameters=params.values).result_rows]
