"""Reads series, label names and label values of one tenant from the series table.

Label names and values of *all* a tenant's series (Grafana's metric and label browsers ask for
them without a selector, or with `{__name__!=""}`) come from the inverted index instead of every
series' label map: the index is ordered by (tenant, name, value), so the values of one label
are a contiguous range, and only the series outside the time range have to be looked up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.model.labels import METRIC_NAME, Labels
from gateway.model.matchers import Matcher, MatchOp
from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout
from gateway.storage.sql import LAST_SEEN_SLACK_MS, Params, series_selection_sql


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
    limit_sql = f"LIMIT {params.add(limit, 'UInt64')}" if limit > 0 else ""
    every = _every_series_filter(layout, tenant, selectors, time_range, params)
    if every is not None:
        sql = f"""
            SELECT DISTINCT name FROM {layout.labels_table} WHERE {every}
            ORDER BY name {limit_sql}
        """
        return [str(row[0]) for row in client.query(sql, parameters=params.values).result_rows]
    inner = _series_subquery(layout, tenant, selectors, time_range, params)
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
    every = _every_series_filter(layout, tenant, selectors, time_range, params)
    if every is not None:
        limit_sql = f"LIMIT {params.add(limit, 'UInt64')}" if limit > 0 else ""
        sql = f"""
            SELECT DISTINCT value FROM {layout.labels_table}
            WHERE {every} AND name = {params.add(name, 'String')}
            ORDER BY value {limit_sql}
        """
        return [str(row[0]) for row in client.query(sql, parameters=params.values).result_rows]
    inner = _series_subquery(layout, tenant, selectors, time_range, params)
    limit_sql = f"LIMIT {params.add(limit, 'UInt64')}" if limit > 0 else ""
    sql = f"""
        SELECT DISTINCT found_labels[{params.add(name, 'String')}] AS value FROM ({inner})
        WHERE value != '' ORDER BY value {limit_sql}
    """
    return [str(row[0]) for row in client.query(sql, parameters=params.values).result_rows]


def _selects_every_series(selectors: Sequence[Sequence[Matcher]]) -> bool | None:
    """True: no selector (every series); False: `{__name__!=""}` alone (every named series);
    None: anything narrower."""
    if not selectors:
        return True
    named = all(
        matcher.name == METRIC_NAME
        and (
            (matcher.op is MatchOp.NOT_EQUAL and matcher.value == "")
            or (matcher.op is MatchOp.REGEX and matcher.value in (".+", ".+?"))
        )
        for matchers in selectors
        for matcher in matchers
    )
    return False if named and all(selectors) else None


def _every_series_filter(
    layout: Layout,
    tenant: str,
    selectors: Sequence[Sequence[Matcher]],
    time_range: TimeRange,
    params: Params,
) -> str | None:
    """A WHERE clause over the label index for "every series seen in the range", or None.

    Written as "not one of the series outside the range": when a time range covers most of a
    tenant's series (the usual case) that set is small, where the set of series inside it is
    not.
    """
    every = _selects_every_series(selectors)
    if every is None:
        return None
    tenant_param = params.add(tenant, "String")
    start = params.add(time_range.start_ms - LAST_SEEN_SLACK_MS, "Int64")
    end = params.add(time_range.end_ms, "Int64")
    unnamed = "" if every else " OR any(metric_name) = ''"
    return f"""tenant = {tenant_param} AND series_id NOT IN (
            SELECT series_id FROM {layout.series_table} WHERE tenant = {tenant_param}
            GROUP BY series_id
            HAVING max(last_seen) < fromUnixTimestamp64Milli({start})
                OR min(first_seen) > fromUnixTimestamp64Milli({end}){unnamed})"""
