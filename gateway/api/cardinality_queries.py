"""Cardinality statistics of one tenant, computed in ClickHouse (runs on storage threads).

Every statistic counts the tenant's stored series or, with `active_only`, only those in the
`series_activity` table within the window; an optional selector narrows them through the inverted
index. Each endpoint's statistics come from one grouped pass over `series_labels` (`FINAL`, so a
series indexed twice before a merge is counted once). No user string is pasted into SQL.
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
# headStats of an empty Prometheus head (what Prometheus 2.42 and 3.x answer without series).
EMPTY_MIN_TIME = 2**63 - 1
EMPTY_MAX_TIME = -(2**63)


@dataclass(frozen=True, slots=True)
class Scope:
    """Which series of a tenant a statistic counts."""

    tenant: str
    matchers: Sequence[Matcher]
    active_only: bool
    cutoff_minute: int


@dataclass(frozen=True, slots=True)
class NameStats:
    """One label name among the scope's series."""

    name: str
    values: int
    """Distinct values."""
    series: int
    """Series with the label."""
    value_bytes: int
    """Length of its distinct values, summed."""
    top: list[tuple[str, int]]
    """(value, series) of the values with most series, most first (ties by value)."""


def _filter(layout: Layout, scope: Scope, params: Params) -> str:
    """`tenant = ... AND series_id IN ...` selecting the scope's series."""
    tenant = params.add(scope.tenant, "String")
    clauses = [f"tenant = {tenant}"]
    if scope.active_only:
        clauses.append(
            f"series_id IN (SELECT series_id FROM {layout.table(ACTIVITY_TABLE)} "
            f"WHERE tenant = {tenant} "
            f"AND last_seen_minute >= {params.add(scope.cutoff_minute, 'UInt32')})"
        )
    if scope.matchers:
        selection = series_selection_sql(
            layout.series_table, layout.labels_table, scope.tenant, [scope.matchers],
            *_ALL_TIME, params,
        )
        clauses.append(f"series_id IN (SELECT series_id FROM ({selection}))")
    return " AND ".join(clauses)


def series_stats(client: Client, layout: Layout, scope: Scope) -> tuple[int, int, int]:
    """(series, earliest, latest sample time in ms) of the scope, from the series index.

    The index records each series' first and last sample time as of the writes that (re)indexed
    it, so `latest` can lag behind the newest samples; an empty scope answers Prometheus' values
    for an empty head.
    """
    params = Params()
    where = _filter(layout, scope, params)
    count, first, last = client.query(
        f"""SELECT count(), toUnixTimestamp64Milli(min(first_seen)),
            toUnixTimestamp64Milli(max(last_seen))
        FROM {layout.series_table} FINAL WHERE {where}""",
        parameters=params.values,
    ).result_rows[0]
    if not count:
        return 0, EMPTY_MIN_TIME, EMPTY_MAX_TIME
    return int(count), int(first), int(last)


def label_names(client: Client, layout: Layout, scope: Scope) -> list[tuple[str, int]]:
    """(label name, distinct values) per label name, most values first."""
    params = Params()
    where = _filter(layout, scope, params)
    sql = f"""SELECT name, count() AS values FROM (
            SELECT DISTINCT name, value FROM {layout.labels_table} WHERE {where})
        GROUP BY name ORDER BY values DESC, name"""
    rows = client.query(sql, parameters=params.values).result_rows
    return [(str(name), int(values)) for name, values in rows]


def name_stats(
    client: Client, layout: Layout, scope: Scope, top: int, names: Sequence[str] | None = None
) -> dict[str, NameStats]:
    """Per label name (all, or `names`): values, series, value bytes and the `top` values."""
    params = Params()
    where = _filter(layout, scope, params)
    if names is not None:
        where += f" AND name IN {params.add(sorted(set(names)), 'Array(String)')}"
    # groupArraySorted keeps the smallest tuples: (-series, value) = most series first.
    keep = params.add(max(1, top), "UInt64")
    sql = f"""SELECT name, count(), sum(series), sum(length(value)),
            groupArraySorted({keep})((-toInt64(series), value))
        FROM (SELECT name, value, count() AS series FROM {layout.labels_table} FINAL
              WHERE {where} GROUP BY name, value)
        GROUP BY name"""
    result = {}
    for name, values, series, value_bytes, best in client.query(
        sql, parameters=params.values
    ).result_rows:
        result[str(name)] = NameStats(
            str(name), int(values), int(series), int(value_bytes),
            [(str(value), -int(negated)) for negated, value in best][:top],
        )
    return result


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
    series, min_time, max_time = series_stats(client, layout, scope)
    stats = name_stats(client, layout, scope, limit)

    def ranked(key: Any) -> list[dict[str, Any]]:
        ordered = sorted(stats.values(), key=lambda s: (-key(s), s.name))[:limit]
        return [{"name": s.name, "value": int(key(s))} for s in ordered]

    # The overall top pairs are among the top pairs of each label name.
    pairs = sorted(
        ((f"{s.name}={value}", count) for s in stats.values() for value, count in s.top),
        key=lambda pair: (-pair[1], pair[0]),
    )[:limit]
    metric = stats.get("__name__")
    return {
        "headStats": {
            "numSeries": series,
            "numLabelPairs": sum(s.values for s in stats.values()),
            # The gateway keeps samples in ClickHouse, not in chunks: a Prometheus head holds at
            # least one (open) chunk per series, so that is what is reported.
            "chunkCount": series,
            "minTime": min_time,
            "maxTime": max_time,
        },
        "seriesCountByMetricName": [
            {"name": value, "value": count} for value, count in (metric.top if metric else [])
        ],
        "labelValueCountByLabelName": ranked(lambda s: s.values),
        "memoryInBytesByLabelName": ranked(lambda s: s.value_bytes),
        "seriesCountByLabelValuePair": [{"name": name, "value": count} for name, count in pairs],
    }
