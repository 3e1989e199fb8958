-- bootstrap
CREATE DATABASE IF NOT EXISTS metrics;
CREATE TABLE IF NOT EXISTS metrics.schema_migrations (
    version UInt32,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree
ORDER BY version;

-- schema version 1
CREATE TABLE IF NOT EXISTS metrics.series (
    tenant LowCardinality(String),
    metric_name String,
    series_id UInt64,
    labels SimpleAggregateFunction(any, Map(String, String)),
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
) ENGINE = AggregatingMergeTree
ORDER BY (tenant, metric_name, series_id);
CREATE TABLE IF NOT EXISTS metrics.series_labels (
    tenant LowCardinality(String),
    name LowCardinality(String),
    value String,
    series_id UInt64
) ENGINE = ReplacingMergeTree
ORDER BY (tenant, name, value, series_id);
CREATE TABLE IF NOT EXISTS metrics.samples_0 (
    tenant LowCardinality(String),
    series_id UInt64,
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    value Float64 CODEC(Gorilla, ZSTD(1))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant, series_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE;
CREATE TABLE IF NOT EXISTS metrics.samples_1 (
    tenant LowCardinality(String),
    series_id UInt64,
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    value Float64 CODEC(Gorilla, ZSTD(1))
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant, series_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE;
CREATE TABLE IF NOT EXISTS metrics.metadata (
    tenant LowCardinality(String),
    metric_family String,
    type LowCardinality(String),
    help String,
    unit String,
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, metric_family);
CREATE TABLE IF NOT EXISTS metrics.settings (
    name String,
    value String
) ENGINE = ReplacingMergeTree
ORDER BY name;

-- schema version 2
CREATE TABLE IF NOT EXISTS metrics.active_series (
    tenant LowCardinality(String),
    series_id UInt64,
    metric_name SimpleAggregateFunction(any, String),
    last_seen_minute SimpleAggregateFunction(max, UInt32)
) ENGINE = AggregatingMergeTree
ORDER BY (tenant, series_id);
CREATE TABLE IF NOT EXISTS metrics.limits_overrides (
    tenant String,
    limits String,
    deleted UInt8,
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY tenant;
CREATE TABLE IF NOT EXISTS metrics.limits_audit (
    at DateTime64(3, 'UTC'),
    tenant String,
    actor String,
    remote String,
    action LowCardinality(String),
    old String,
    new String
) ENGINE = MergeTree
ORDER BY (tenant, at);

-- schema version 3
ALTER TABLE metrics.settings
    ADD COLUMN IF NOT EXISTS written_at DateTime64(6, 'UTC'),
    ADD COLUMN IF NOT EXISTS writer String,
    MODIFY ORDER BY (name, written_at, writer),
    MODIFY SETTING non_replicated_deduplication_window = 1000;

-- schema version 4
CREATE TABLE IF NOT EXISTS metrics.series_activity (
    tenant LowCardinality(String),
    series_id UInt64,
    metric_name SimpleAggregateFunction(any, String),
    last_seen_minute SimpleAggregateFunction(max, UInt32),
    keep_until_minute SimpleAggregateFunction(max, UInt32)
) ENGINE = AggregatingMergeTree
PARTITION BY intDiv(last_seen_minute, 60)
ORDER BY (tenant, series_id)
TTL toDateTime(toUInt32(keep_until_minute) * 60) DELETE
SETTINGS ttl_only_drop_parts = 1, merge_with_ttl_timeout = 3600;
INSERT INTO metrics.series_activity (tenant, series_id, metric_name, last_seen_minute, keep_until_minute)
SETTINGS max_partitions_per_insert_block = 0
SELECT tenant, series_id, any(metric_name), max(last_seen_minute) AS minute, minute + 10080
FROM metrics.active_series GROUP BY tenant, series_id
HAVING minute + 10080 >= intDiv(toUInt32(now()), 60);
DROP TABLE IF EXISTS metrics.active_series SYNC;

-- schema version 5
ALTER TABLE metrics.samples_0
    MODIFY SETTING merge_selector_base = 10;
ALTER TABLE metrics.samples_1
    MODIFY SETTING merge_selector_base = 10;

-- at every start, each sample table whose TTL differs from storage.retention_days (30) gets
-- (TTLs as read by: SELECT name, engine_full FROM system.tables WHERE database = {database:String} AND has({tables:Array(String)}, name))
ALTER TABLE metrics.samples_0
    MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE;
ALTER TABLE metrics.samples_1
    MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE;
-- or, with storage.retention_days: 0:
-- ALTER TABLE metrics.samples_0
--     REMOVE TTL;
-- ALTER TABLE metrics.samples_1
--     REMOVE TTL;
