"""ClickHouse I/O of the limits subsystem (runs on storage threads): series activity, budgeted
label values and metadata families. Overrides and their audit log: `override_store`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

from gateway.limits.tracker import Activity
from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout

log = logging.getLogger(__name__)
_MS = pa.timestamp("ms", tz="UTC")


ACTIVITY_TABLE = "series_activity"
# Rows outlive the writer's window by this much before the table's TTL drops them: room for
# clocks of gateways and ClickHouse that disagree, and for a window raised at a restart.
KEEP_MARGIN_MINUTES = 60


def write_activity(
    client: Client, layout: Layout, rows: Sequence[Activity], window_minutes: int
) -> None:
    """Insert last-seen minutes of series (one insert for every tenant), kept one window."""
    if not rows:
        return
    tenants = [activity.tenant for activity in rows]
    lengths = [len(activity.series_ids) for activity in rows]
    tenant_codes = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
    names = pa.chunked_array(
        [pa.array(a.metric_names, pa.string()).take(pa.array(a.metric_codes)) for a in rows],
        pa.string(),
    ).combine_chunks()
    minutes = np.concatenate([a.minutes for a in rows]).astype(np.uint32, copy=False)
    table = pa.table(
        {
            "tenant": pa.DictionaryArray.from_arrays(tenant_codes, pa.array(tenants, pa.string())),
            "series_id": pa.array(np.concatenate([a.series_ids for a in rows]), pa.uint64()),
            "metric_name": names,
            "last_seen_minute": pa.array(minutes, pa.uint32()),
            "keep_until_minute": pa.array(
                minutes + np.uint32(window_minutes + KEEP_MARGIN_MINUTES), pa.uint32()
            ),
        }
    )
    client.insert_arrow(layout.table(ACTIVITY_TABLE), table)


def read_activity(client: Client, layout: Layout, cutoff_minute: int) -> list[Activity]:
    """Every tenant's series seen at or after `cutoff_minute`, sorted by id per tenant."""
    # Filtering rows before grouping gives the same answer as filtering the series' max (a series
    # is active when any of its rows is recent) and lets the partitions before the cutoff be
    # skipped unread.
    table = client.query_arrow(
        f"""SELECT tenant, series_id, max(last_seen_minute) AS minute, any(metric_name) AS metric
        FROM {layout.table(ACTIVITY_TABLE)} WHERE last_seen_minute >= {{cutoff:UInt32}}
        GROUP BY tenant, series_id ORDER BY tenant, series_id""",
        parameters={"cutoff": max(0, cutoff_minute)},
    )
    if table.num_rows == 0:
        return []
    tenant = _dictionary(table.column("tenant"))
    metric = _dictionary(table.column("metric"))
    tenant_codes = tenant.indices.to_numpy(zero_copy_only=False)
    ids = table.column("series_id").to_numpy().astype(np.uint64, copy=False)
    minutes = table.column("minute").to_numpy().astype(np.uint32, copy=False)
    codes = metric.indices.to_numpy(zero_copy_only=False).astype(np.uint32)
    names = metric.dictionary.to_pylist()
    starts = np.flatnonzero(np.diff(tenant_codes, prepend=-1))
    ends = np.append(starts[1:], len(tenant_codes))
    tenant_names = tenant.dictionary.to_pylist()
    return [
        Activity(
            tenant_names[int(tenant_codes[start])], ids[start:end], minutes[start:end],
            codes[start:end], names,
        )
        for start, end in zip(starts, ends, strict=True)
    ]


def _dictionary(column: pa.ChunkedArray) -> pa.DictionaryArray:
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        # Chunks may have had different dictionaries; re-encode once from plain values.
        array = array.cast(pa.string())
    return array.dictionary_encode()


def read_label_values(
    client: Client, layout: Layout, names: Iterable[str], cutoff_minute: int
) -> list[tuple[str, str, list[str]]]:
    """(tenant, label name, its distinct values) of budgeted label names among active series."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    # One row per (tenant, name), its values as an Arrow list: building the Python strings from
    # Arrow costs a fraction of row-by-row results (budgeted labels can have 10^5 values).
    table = client.query_arrow(
        f"""SELECT tenant, name, groupUniqArray(value) AS values FROM {layout.labels_table}
        WHERE name IN {{names:Array(String)}} AND (tenant, series_id) IN (
            SELECT tenant, series_id FROM {layout.table(ACTIVITY_TABLE)}
            WHERE last_seen_minute >= {{cutoff:UInt32}})
        GROUP BY tenant, name""",
        parameters={"names": wanted, "cutoff": max(0, cutoff_minute)},
    )
    return _groups(table)


def read_metadata_families(client: Client, layout: Layout) -> list[tuple[str, str, list[str]]]:
    """(tenant, "", its metric families with metadata) of every tenant."""
    table = client.query_arrow(
        f"""SELECT tenant, '' AS name, groupUniqArray(metric_family) AS values
        FROM {layout.metadata_table} GROUP BY tenant"""
    )
    return _groups(table)


def _groups(table: pa.Table) -> list[tuple[str, str, list[str]]]:
    """Rows of (tenant, name, values: list of strings) as Python values."""
    tenants, names = table.column("tenant").to_pylist(), table.column("name").to_pylist()
    values = table.column("values").combine_chunks()
    return [
        (tenant, name, values[index].values.to_pylist())
        for index, (tenant, name) in enumerate(zip(tenants, names, strict=True))
    ]
