"""Cardinality statistics of one tenant, computed in ClickHouse (runs on storage threads).

Every statistic counts the tenant's active series (those in the `active_series` table within the
window) or, with `active_only=False`, every stored series; an optional selector narrows them
through the inverted index. No user string is pasted into SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.api.envelope import MAX_TIME_MS, MIN_TIME_MS
from gateway.limits.store import ACTIVITY_TABLE
from gateway.model.matchers import Matcher
from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout
from gateway.storage.sql import Params, series_selection_sql

_ALL_TIME = (MIN_TIME_MS, MAX_TIME_MS)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which series of a tenant a statistic counts."""

    tenant: str
    matchers: Sequence[Matcher]
    active_only: bool
    cutoff_minute: int


def _filter(layout: Layout, scope: Scope, params: Params) -> str:
    """`tenant = ... AND series_id IN ...` selecting the scope's series."""
    tenant = params.add(scope.tenant, "String")
    clauses = [f"tenant = {tenant}"]
    if scope.active_only:
        clauses.append(
            f"series_id IN (SELECT series_id FROM {layout.table(ACTIVITY_TABLE)} "
            f"WHERE tenant = {tenant} GROUP BY series_id "
            f"HAVING max(last_seen_minute) >= {params.add(scope.cutoff_minute, 'UInt32')})"
        )
    if scope.matchers:
        selection = series_selection_sql(
            layout.series_table, layout.labels_table, scope.tenant, [scope.matchers],
            *_ALL_TIME, params,
        )
        clauses.append(f"series_id IN (SELECT series_id FROM ({selection}))")
    return " AND ".join(clauses)


def series_count(client: Client, layout: Layout, scope: Scope) -> int:
    params = Params()
    where = _filter(layout, scope, params)
    sql = f"SELECT uniqExact(series_id) FROM {layout.labels_table} WHERE {where}"
    return int(client.query(sql, parameters=params.values).result_rows[0][0])


def label_names(
    client: Client, layout: Layout, scope: Scope
) -> list[tuple[str, int, int]]:
    """(label name, distinct values, series) per label name, most values first."""
    params = Params()
    where = _filter(layout, scope, params)
    sql = f"""SELECT name, uniqExact(value) AS values, uniqExact(series_id) AS series
        FROM {layout.labels_table} WHERE {where}
        GROUP BY name ORDER BY values DESC, name"""
    rows = client.query(sql, parameters=params.values).result_rows
    return [(str(name), int(values), int(series)) for name, values, series in rows]


def label_values(
    client: Client, layout: Layout, scope: Scope, names: Sequence[str], limit: int
) -> tuple[dict[str, tuple[int, int]], dict[str, list[tuple[str, int]]]]:
    """Per label name: (distinct values, series), and the `limit` values with most series."""
    params = Params()
    where = _filter(layout, scope, params)
    wanted = params.add(list(names), "Array(String)")
    inner = f"""SELECT name, value, uniqExact(series_id) AS series FROM {layout.labels_table}
        WHERE {where} AND name IN {wanted} GROUP BY name, value"""
    totals_sql = f"SELECT name, count(), sum(series) FROM ({inner}) GROUP BY name"
    top_sql = (
        f"SELECT name, value, series FROM ({inner}) "
        f"ORDER BY name, series DESC, value LIMIT {params.add(limit, 'UInt64')} BY name"
    )
    totals = {
        str(name): (int(count), int(series))
        for name, count, series in client.query(totals_sql, parameters=params.values).result_rows
    }
    top: dict[str, list[tuple[str, int]]] = {}
    for name, value, series in client.query(top_sql, parameters=params.values).result_rows:
        top.setdefault(str(name), []).append((str(value), int(series)))
    return totals, top


def active_series(
    client: Client, layout: Layout, scope: Scope, limit: int
) -> list[dict[str, str]]:
    """Label sets of the scope's series, sorted."""
    params = Params()
    where = _filter(layout, scope, params)
    limit_sql = f"LIMIT {params.add(limit, 'UInt64')}" if limit else ""
    sql = f"""SELECT arraySort(arrayZip(mapKeys(l), mapValues(l))) AS pairs FROM (
        SELECT series_id, any(labels) AS l FROM {layout.series_table} WHERE {where}
        GROUP BY series_id) ORDER BY pairs {limit_sql}"""
    rows = client.query(sql, parameters=params.values).result_rows
    return [{str(name): str(value) for name, value in row[0]} for row in rows]


def tsdb_status(client: Client, layout: Layout, scope: Scope, limit: int) -> dict[str, Any]:
    """Prometheus' `/api/v1/status/tsdb` statistics of the scope's series."""
    params = Params()
    where = _filter(layout, scope, params)
    top = params.add(limit, "UInt64")
    labels = layout.labels_table

    def pairs(sql: str) -> list[dict[str, Any]]:
        rows = client.query(sql, parameters=params.values).result_rows
        return [{"name": str(name), "value": int(value)} for name, value in rows]

    by_metric = pairs(
        f"""SELECT value, uniqExact(series_id) AS c FROM {labels}
        WHERE {where} AND name = '__name__' GROUP BY value ORDER BY c DESC, value LIMIT {top}"""
    )
    values_by_name = pairs(
        f"""SELECT name, uniqExact(value) AS c FROM {labels} WHERE {where}
        GROUP BY name ORDER BY c DESC, name LIMIT {top}"""
    )
    bytes_by_name = pairs(
        f"""SELECT name, sum(length(value)) AS c FROM (
            SELECT DISTINCT name, value FROM {labels} WHERE {where})
        GROUP BY name ORDER BY c DESC, name LIMIT {top}"""
    )
    by_pair = pairs(
        f"""SELECT concat(name, '=', value) AS pair, count() AS c FROM (
            SELECT DISTINCT name, value, series_id FROM {labels} WHERE {where})
        GROUP BY name, value ORDER BY c DESC, pair LIMIT {top}"""
    )
    series, label_pairs = client.query(
        f"SELECT uniqExact(series_id), uniqExact(name, value) FROM {labels} WHERE {where}",
        parameters=params.values,
    ).result_rows[0]
    return {
        "headStats": {
            "numSeries": int(series),
            "numLabelPairs": int(label_pairs),
            "chunkCount": 0,
            "minTime": 0,
            "maxTime": 0,
        },
        "seriesCountByMetricName": by_metric,
        "labelValueCountByLabelName": values_by_name,
        "memoryInBytesByLabelName": bytes_by_name,
        "seriesCountByLabelValuePair": by_pair,
    }
