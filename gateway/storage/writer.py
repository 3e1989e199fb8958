"""Writes a group-commit batch to ClickHouse (runs on a storage thread)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from gateway.model.labels import Labels, metric_name
from gateway.remote.write_codec import Metadata
from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout

_MS = pa.timestamp("ms", tz="UTC")


@dataclass(frozen=True, slots=True)
class NewSeries:
    """A series to (re-)register in the series table and label index."""

    tenant: str
    series_id: int
    labels: Labels
    first_seen_ms: int
    last_seen_ms: int
    index_labels: bool = True
    """False when the label index lists the series already (a refreshed time span)."""


@dataclass(frozen=True, slots=True)
class TenantSamples:
    """Samples of one request: parallel arrays, one row per sample."""

    tenant: str
    series_ids: npt.NDArray[np.uint64]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.series_ids)


@dataclass(frozen=True, slots=True)
class WriteBatch:
    samples: Sequence[TenantSamples]
    series: Sequence[NewSeries]
    metadata: Sequence[tuple[str, Metadata]]

    @property
    def sample_count(self) -> int:
        return sum(len(part) for part in self.samples)


def write_batch(client: Client, layout: Layout, batch: WriteBatch) -> None:
    """Insert a batch: series and metadata first, so readers never see orphan samples."""
    if batch.series:
        client.insert_arrow(layout.series_table, _series_table(batch.series))
        if any(one.index_labels for one in batch.series):
            client.insert_arrow(layout.labels_table, _label_index_table(batch.series))
    if batch.metadata:
        client.insert_arrow(layout.metadata_table, _metadata_table(batch.metadata))
    if batch.samples:
        for shard, table in enumerate(_samples_tables(batch.samples, layout.sample_shards)):
            if table is not None:
                client.insert_arrow(layout.samples_table(shard), table)


def _samples_tables(
    parts: Sequence[TenantSamples], shards: int
) -> list[pa.Table | None]:
    tenants = sorted({part.tenant for part in parts})
    tenant_index = {tenant: index for index, tenant in enumerate(tenants)}
    lengths = np.fromiter((len(part) for part in parts), dtype=np.int64, count=len(parts))
    codes = np.repeat(
        np.fromiter((tenant_index[part.tenant] for part in parts), np.int32, len(parts)), lengths
    )
    series_ids = np.concatenate([part.series_ids for part in parts])
    timestamps = np.concatenate([part.timestamps for part in parts])
    values = np.concatenate([part.values for part in parts])
    dictionary = pa.array(tenants, pa.string())
    shard_of = series_ids % np.uint64(shards)
    tables: list[pa.Table | None] = []
    for shard in range(shards):
        rows = shard_of == shard
        if not rows.any():
            tables.append(None)
            continue
        tables.append(
            pa.table(
                {
                    "tenant": pa.DictionaryArray.from_arrays(codes[rows], dictionary),
                    "series_id": pa.array(series_ids[rows], pa.uint64()),
                    "timestamp": pa.array(timestamps[rows], pa.int64()).cast(_MS),
                    "value": pa.array(values[rows], pa.float64()),
                }
            )
        )
    return tables


def _series_table(series: Sequence[NewSeries]) -> pa.Table:
    return pa.table(
        {
            "tenant": pa.array([s.tenant for s in series], pa.string()),
            "metric_name": pa.array([metric_name(s.labels) for s in series], pa.string()),
            "series_id": pa.array([s.series_id for s in series], pa.uint64()),
            "labels": pa.array([list(s.labels) for s in series], pa.map_(pa.string(), pa.string())),
            "first_seen": pa.array([s.first_seen_ms for s in series], pa.int64()).cast(_MS),
            "last_seen": pa.array([s.last_seen_ms for s in series], pa.int64()).cast(_MS),
        }
    )


def _label_index_table(series: Sequence[NewSeries]) -> pa.Table:
    tenants: list[str] = []
    names: list[str] = []
    values: list[str] = []
    ids: list[int] = []
    for one in series:
        if not one.index_labels:
            continue
        for name, value in one.labels:
            tenants.append(one.tenant)
            names.append(name)
            values.append(value)
            ids.append(one.series_id)
    return pa.table(
        {
            "tenant": pa.array(tenants, pa.string()),
            "name": pa.array(names, pa.string()),
            "value": pa.array(values, pa.string()),
            "series_id": pa.array(ids, pa.uint64()),
        }
    )


def _metadata_table(metadata: Sequence[tuple[str, Metadata]]) -> pa.Table:
    now = int(time.time() * 1000)
    return pa.table(
        {
            "tenant": pa.array([tenant for tenant, _ in metadata], pa.string()),
            "metric_family": pa.array([m.metric_family for _, m in metadata], pa.string()),
            "type": pa.array([m.type for _, m in metadata], pa.string()),
            "help": pa.array([m.help for _, m in metadata], pa.string()),
            "unit": pa.array([m.unit for _, m in metadata], pa.string()),
            "updated_at": pa.array([now] * len(metadata), pa.int64()).cast(_MS),
        }
    )
