"""ClickHouse I/O of the limits subsystem (runs on storage threads): activity, overrides, audit."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from gateway.limits.model import BadLimits, overrides_json, parse_overrides
from gateway.limits.overrides import Overrides
from gateway.limits.tracker import Activity
from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout

log = logging.getLogger(__name__)
_MS = pa.timestamp("ms", tz="UTC")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change of a tenant's limits."""

    at_ms: int
    tenant: str
    actor: str
    remote: str
    action: str
    old: dict[str, Any]
    new: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.at_ms / 1000, "tenant": self.tenant, "actor": self.actor,
            "remote": self.remote, "action": self.action, "old": self.old, "new": self.new,
        }


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
) -> list[tuple[str, str, str]]:
    """(tenant, label name, value) of budgeted label names among active series."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    rows = client.query(
        f"""SELECT tenant, name, value FROM {layout.labels_table}
        WHERE name IN {{names:Array(String)}} AND (tenant, series_id) IN (
            SELECT tenant, series_id FROM {layout.table(ACTIVITY_TABLE)}
            WHERE last_seen_minute >= {{cutoff:UInt32}})
        GROUP BY tenant, name, value""",
        parameters={"names": wanted, "cutoff": max(0, cutoff_minute)},
    ).result_rows
    return [(str(t), str(n), str(v)) for t, n, v in rows]


def read_metadata_families(client: Client, layout: Layout) -> list[tuple[str, str, str]]:
    """(tenant, "", family) of every metric family with metadata."""
    rows = client.query(
        f"SELECT tenant, metric_family FROM {layout.metadata_table} GROUP BY tenant, metric_family"
    ).result_rows
    return [(str(tenant), "", str(family)) for tenant, family in rows]


def read_overrides(client: Client, layout: Layout) -> Overrides:
    """The admin API's overrides of every tenant (the latest row per tenant wins)."""
    rows = client.query(
        f"""SELECT tenant, argMax(limits, updated_at), argMax(deleted, updated_at)
        FROM {layout.table("limits_overrides")} GROUP BY tenant"""
    ).result_rows
    result: Overrides = {}
    for tenant, text, deleted in rows:
        if deleted:
            continue
        try:
            result[str(tenant)] = parse_overrides(json.loads(text))
        except (ValueError, BadLimits) as exc:
            log.error("ignoring stored limits of tenant %r: %s", tenant, exc)
    return result


def write_override(
    client: Client, layout: Layout, overrides: dict[str, Any] | None, entry: AuditEntry
) -> None:
    """Store a tenant's new overrides (None deletes them) and its audit entry."""
    text = json.dumps(overrides_json(overrides or {}), sort_keys=True)
    client.insert_arrow(
        layout.table("limits_overrides"),
        pa.table(
            {
                "tenant": pa.array([entry.tenant], pa.string()),
                "limits": pa.array([text], pa.string()),
                "deleted": pa.array([0 if overrides else 1], pa.uint8()),
                "updated_at": pa.array([entry.at_ms], pa.int64()).cast(_MS),
            }
        ),
    )
    client.insert_arrow(
        layout.table("limits_audit"),
        pa.table(
            {
                "at": pa.array([entry.at_ms], pa.int64()).cast(_MS),
                "tenant": pa.array([entry.tenant], pa.string()),
                "actor": pa.array([entry.actor], pa.string()),
                "remote": pa.array([entry.remote], pa.string()),
                "action": pa.array([entry.action], pa.string()),
                "old": pa.array([json.dumps(entry.old, sort_keys=True)], pa.string()),
                "new": pa.array([json.dumps(entry.new, sort_keys=True)], pa.string()),
            }
        ),
    )


def read_audit(
    client: Client, layout: Layout, tenant: str | None, limit: int
) -> list[AuditEntry]:
    """Audit entries, newest first."""
    where = "WHERE tenant = {tenant:String}" if tenant else ""
    rows = client.query(
        f"""SELECT toUnixTimestamp64Milli(at), tenant, actor, remote, action, old, new
        FROM {layout.table("limits_audit")} {where} ORDER BY at DESC LIMIT {{limit:UInt64}}""",
        parameters={"tenant": tenant or "", "limit": limit},
    ).result_rows
    return [
        AuditEntry(int(at), str(t), str(actor), str(remote), str(action), json.loads(old),
                   json.loads(new))
        for at, t, actor, remote, action, old, new in rows
    ]


def now_ms() -> int:
    return int(time.time() * 1000)
