"""The versioned ClickHouse schema ("label-hash tables") and its DDL.

Tables (all keyed by tenant first):
- `series`: one row per (tenant, series id) with metric name and labels; first/last seen are
  min/max aggregates, so re-inserting a series row is idempotent.
- `series_labels`: inverted index (tenant, label name, value) -> series id, for label browsing
  and fast matching at high cardinality.
- `samples_0..N-1`: (tenant, series id, timestamp, value), a series' samples live in shard
  `series_id % N`. ReplacingMergeTree: a body retried after a partial failure converges to one
  row per (series, timestamp); readers de-duplicate adjacent equal timestamps until merges do.
- `metadata`: type/help/unit per metric family; `settings`: facts fixed at creation (shard count).
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1

# xxHash64 over `name 0xFF value 0xFF ...` of the sorted labels: equals gateway.model.labels.
SERIES_HASH_SQL = (
    "xxHash64(arrayStringConcat(arrayMap(p -> concat(p.1, '\\xFF', p.2, '\\xFF'), "
    "arraySort(arrayZip(mapKeys(labels), mapValues(labels))))))"
)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the tables live and how samples are split."""

    database: str
    sample_shards: int
    retention_days: int = 0

    def samples_table(self, shard: int) -> str:
        return f"{self.database}.samples_{shard}"

    @property
    def samples_tables(self) -> list[str]:
        return [self.samples_table(shard) for shard in range(self.sample_shards)]

    @property
    def series_table(self) -> str:
        return f"{self.database}.series"

    @property
    def labels_table(self) -> str:
        return f"{self.database}.series_labels"

    @property
    def metadata_table(self) -> str:
        return f"{self.database}.metadata"

    @property
    def settings_table(self) -> str:
        return f"{self.database}.settings"

    @property
    def migrations_table(self) -> str:
        return f"{self.database}.schema_migrations"


def migrations(layout: Layout) -> dict[int, list[str]]:
    """DDL of each schema version; version N upgrades a store at version N-1."""
    db = layout.database
    ttl = (
        f"\nTTL toDateTime(timestamp) + INTERVAL {layout.retention_days} DAY DELETE"
        if layout.retention_days
        else ""
    )
    samples = [
        f"""CREATE TABLE IF NOT EXISTS {table} (
    tenant LowCardinality(String),
    series_id UInt64,
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    value Float64 CODEC(Gorilla, ZSTD(1))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant, series_id, timestamp){ttl}"""
        for table in layout.samples_tables
    ]
    return {
        1: [
            f"""CREATE TABLE IF NOT EXISTS {db}.series (
    tenant LowCardinality(String),
    metric_name String,
    series_id UInt64,
    labels SimpleAggregateFunction(any, Map(String, String)),
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
) ENGINE = AggregatingMergeTree
ORDER BY (tenant, metric_name, series_id)""",
            f"""CREATE TABLE IF NOT EXISTS {db}.series_labels (
    tenant LowCardinality(String),
    name LowCardinality(String),
    value String,
    series_id UInt64
) ENGINE = ReplacingMergeTree
ORDER BY (tenant, name, value, series_id)""",
            *samples,
            f"""CREATE TABLE IF NOT EXISTS {db}.metadata (
    tenant LowCardinality(String),
    metric_family String,
    type LowCardinality(String),
    help String,
    unit String,
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, metric_family)""",
            f"""CREATE TABLE IF NOT EXISTS {db}.settings (
    name String,
    value String
) ENGINE = ReplacingMergeTree
ORDER BY name""",
        ],
    }


def bootstrap_statements(layout: Layout) -> list[str]:
    """What must exist before migrations can be read."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {layout.database}",
        f"""CREATE TABLE IF NOT EXISTS {layout.migrations_table} (
    version UInt32,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree
ORDER BY version""",
    ]
