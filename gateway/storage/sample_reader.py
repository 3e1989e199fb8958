"""Reads matching series with their samples in a time range, columnar (numpy end to end)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from gateway.errors import Errors, GatewayError
from gateway.model.labels import Labels
from gateway.model.matchers import Matcher
from gateway.model.series import SeriesData
from gateway.storage.clickhouse import ClickHouse, Client
from gateway.storage.labels_cache import SeriesLabelsCache
from gateway.storage.schema import Layout
from gateway.storage.sql import Params, series_selection_sql

# A selection's labels as two list columns, which Arrow hands over without a Python dict per row.
_LABEL_COLUMNS = "mapKeys(found_labels) AS names, mapValues(found_labels) AS label_values"


@dataclass(frozen=True, slots=True)
class SelectLimits:
    """Per-query caps (0 = unlimited); the settings are named in the error."""

    max_series: int = 0
    max_samples: int = 0
    series_setting: str = "max_fetched_series_per_query"
    samples_setting: str = "max_samples"


def select_series(
    client: Client,
    layout: Layout,
    tenant: str,
    matchers: Sequence[Matcher],
    start_ms: int,
    end_ms: int,
    limits: SelectLimits = SelectLimits(),
    with_samples: bool = True,
    labels_cache: SeriesLabelsCache | None = None,
) -> list[SeriesData]:
    """Series matching all matchers with their samples in [start_ms, end_ms], sorted by labels.

    Without samples: the series seen in the range (as `/api/v1/series` finds them), each with
    no samples, for a reader that wants the series only. With a labels cache, ClickHouse sends
    the matching ids and only the labels the cache lacks.
    """
    params = Params()
    selection = series_selection_sql(
        layout.series_table, layout.labels_table, tenant, [matchers], start_ms, end_ms, params
    )
    limit_sql = f"LIMIT {limits.max_series + 1}" if limits.max_series else ""
    if labels_cache is None or not labels_cache.max_series:
        # One query for ids and labels (without a cache, a second round trip only costs).
        table = client.query_arrow(
            f"SELECT series_id, {_LABEL_COLUMNS} FROM ({selection}) {limit_sql}",
            parameters=params.values,
        )
        _check_series_limit(table.num_rows, limits)
        labels_of = _labels_by_id(table)
    else:
        ids = client.query_arrow(
            f"SELECT series_id FROM ({selection}) {limit_sql}", parameters=params.values
        ).column("series_id").to_numpy().tolist()
        _check_series_limit(len(ids), limits)
        labels_of, missing = labels_cache.lookup(tenant, ids)
        if missing:
            table = client.query_arrow(
                f"SELECT series_id, {_LABEL_COLUMNS} FROM ({selection}) "
                f"WHERE series_id IN {params.add_ids(missing)}",
                parameters=params.values,
            )
            fetched = _labels_by_id(table)
            labels_cache.remember(tenant, fetched)
            labels_of.update(fetched)
    if not labels_of:
        return []
    if not with_samples:
        no_time, no_value = np.empty(0, np.int64), np.empty(0, np.float64)
        return sorted(
            (SeriesData(labels, no_time, no_value) for labels in labels_of.values()),
            key=lambda one: one.labels,
        )
    series_ids, timestamps, values = _samples(
        client, layout, tenant, sorted(labels_of), start_ms, end_ms, limits
    )
    if len(series_ids) == 0:
        return []  # series known, but none has samples in the range
    starts = np.flatnonzero(np.r_[True, series_ids[1:] != series_ids[:-1]])
    bounds = np.r_[starts, len(series_ids)].tolist()
    result = [
        SeriesData(labels_of[sid], timestamps[first:last], values[first:last])
        for sid, first, last in zip(
            series_ids[starts].tolist(), bounds[:-1], bounds[1:], strict=True
        )
    ]
    result.sort(key=lambda one: one.labels)
    return result


def _check_series_limit(count: int, limits: SelectLimits) -> None:
    if limits.max_series and count > limits.max_series:
        raise GatewayError(
            Errors.QUERY_TOO_MANY_SERIES, limit=limits.max_series, setting=limits.series_setting
        )


def _labels_by_id(table: pa.Table) -> dict[int, Labels]:
    """Sorted labels by series id, from columns of label names and values (read as Arrow
    lists: building Python dicts of ClickHouse Maps row by row cost a third of a selection)."""
    ids = table.column("series_id").to_numpy().tolist()
    name_lists = table.column("names").combine_chunks()
    offsets = name_lists.offsets.to_numpy().tolist()
    names = _shared_strings(name_lists)
    values = _shared_strings(table.column("label_values").combine_chunks())
    return {
        sid: tuple(sorted(zip(names[a:b], values[a:b], strict=True)))
        for sid, a, b in zip(ids, offsets[:-1], offsets[1:], strict=True)
    }


def _shared_strings(lists: pa.ListArray) -> list[str]:
    """The strings of a list column, one Python object per distinct string (label names and
    most values repeat across series: shared, they cost memory once, in the labels cache too)."""
    encoded = lists.flatten().dictionary_encode()
    distinct = encoded.dictionary.to_pylist()
    return list(map(distinct.__getitem__, encoded.indices.to_numpy().tolist()))


def _samples(
    client: Client,
    layout: Layout,
    tenant: str,
    ids: list[int],
    start_ms: int,
    end_ms: int,
    limits: SelectLimits,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    params = Params()
    tenant_param = params.add(tenant, "String")
    start = params.add(start_ms, "Int64")
    end = params.add(end_ms, "Int64")
    id_array = np.array(ids, dtype=np.uint64)
    shard_of = id_array % np.uint64(layout.sample_shards)
    by_shard = [(shard, id_array[shard_of == shard]) for shard in range(layout.sample_shards)]
    parts = [
        f"""SELECT series_id, toUnixTimestamp64Milli(timestamp) AS t, value
        FROM {layout.samples_table(shard)}
        WHERE tenant = {tenant_param} AND series_id IN {params.add_ids(shard_ids.tolist())}
          AND timestamp >= fromUnixTimestamp64Milli({start})
          AND timestamp <= fromUnixTimestamp64Milli({end})"""
        for shard, shard_ids in by_shard
        if len(shard_ids)
    ]
    limit_sql = f"LIMIT {limits.max_samples + 1}" if limits.max_samples else ""
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY series_id, t {limit_sql}"
    table = client.query_arrow(sql, parameters=params.values)
    series_ids = table.column("series_id").to_numpy()
    timestamps = table.column("t").to_numpy()
    values = table.column("value").to_numpy()
    if limits.max_samples and len(series_ids) > limits.max_samples:
        raise GatewayError(
            Errors.QUERY_TOO_MANY_SAMPLES, limit=limits.max_samples, setting=limits.samples_setting
        )
    # Rows written twice (a retried body) are identical until ReplacingMergeTree merges them.
    keep = np.r_[(series_ids[1:] != series_ids[:-1]) | (timestamps[1:] != timestamps[:-1]), True]
    if not keep.all():
        series_ids, timestamps, values = series_ids[keep], timestamps[keep], values[keep]
    return series_ids, timestamps, values


class ClickHouseSeriesSource:
    """The PromQL engine's and remote-read's view of one tenant's data in ClickHouse."""

    def __init__(
        self,
        store: ClickHouse,
        layout: Layout,
        tenant: str,
        limits: SelectLimits,
        labels_cache: SeriesLabelsCache | None = None,
    ) -> None:
        self._store = store
        self._layout = layout
        self._tenant = tenant
        self._limits = limits
        self._labels_cache = labels_cache

    async def select(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        """Series matching all matchers with samples in [start_ms, end_ms]."""
        return await self._store.run(
            lambda client: select_series(
                client, self._layout, self._tenant, matchers, start_ms, end_ms, self._limits,
                labels_cache=self._labels_cache,
            )
        )
