-- bootstrap
CREATE DATABASE IF NOT EXISTS metrics ON CLUSTER metrics_cluster;
CREATE TABLE IF NOT EXISTS metrics.schema_migrations_local ON CLUSTER metrics_cluster (
    version UInt32,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY version;
CREATE TABLE IF NOT EXISTS metrics.schema_migrations ON CLUSTER metrics_cluster AS metrics.schema_migrations_local
ENGINE = Distributed(metrics_cluster, metrics, schema_migrations_local, version);

-- schema version 1
CREATE TABLE IF NOT EXISTS metrics.series_local ON CLUSTER metrics_cluster (
    tenant LowCardinality(String),
    metric_name String,
    series_id UInt64,
    labels SimpleAggregateFunction(any, Map(String, String)),
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (tenant, metric_name, series_id);
CREATE TABLE IF NOT EXISTS metrics.series ON CLUSTER metrics_cluster AS metrics.series_local
ENGINE = Distributed(metrics_cluster, metrics, series_local, intHash64(series_id));
CREATE TABLE IF NOT EXISTS metrics.series_labels_local ON CLUSTER metrics_cluster (
    tenant LowCardinality(String),
    name LowCardinality(String),
    value String,
    series_id UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (tenant, name, value, series_id);
CREATE TABLE IF NOT EXISTS metrics.series_labels ON CLUSTER metrics_cluster AS metrics.series_labels_local
ENGINE = Distributed(metrics_cluster, metrics, series_labels_local, intHash64(series_id));
CREATE TABLE IF NOT EXISTS metrics.samples_0_local ON CLUSTER metrics_cluster (
    tenant LowCardinality(String),
    series_id UInt64,
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    value Float64 CODEC(Gorilla, ZSTD(1))
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant, series_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE;
CREATE TABLE IF NOT EXISTS metrics.samples_0 ON CLUSTER metrics_cluster AS metrics.samples_0_local
ENGINE = Distributed(metrics_cluster, metrics, samples_0_local, intHash64(series_id));
CREATE TABLE IF NOT EXISTS metrics.samples_1_local ON CLUSTER metrics_cluster (
    tenant LowCardinality(String),
    series_id UInt64,
    timestamp DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    value Float64 CODEC(Gorilla, ZSTD(1))
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toYYYYMM(timestamp)
ORDER BY (tenant, series_id, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE;
CREATE TABLE IF NOT EXISTS metrics.samples_1 ON CLUSTER metrics_cluster AS metrics.samples_1_local
ENGINE = Distributed(metrics_cluster, metrics, samples_1_local, intHash64(series_id));
CREATE TABLE IF NOT EXISTS metrics.metadata_local ON CLUSTER metrics_cluster (
    tenant LowCardinality(String),
    metric_family String,
    type LowCardinality(String),
    help String,
    unit String,
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', updated_at)
ORDER BY (tenant, metric_family);
CREATE TABLE IF NOT EXISTS metrics.metadata ON CLUSTER metrics_cluster AS metrics.metadata_local
ENGINE = Distributed(metrics_cluster, metrics, metadata_local, cityHash64(tenant, metric_family));
CREATE TABLE IF NOT EXISTS metrics.settings_local ON CLUSTER metrics_cluster (
    name String,
    value String
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY name;
CREATE TABLE IF NOT EXISTS metrics.settings ON CLUSTER metrics_cluster AS metrics.settings_local
ENGINE = Distributed(metrics_cluster, metrics, settings_local, cityHash64(name));

-- schema version 2
CREATE TABLE IF NOT EXISTS metrics.active_series_local ON CLUSTER metrics_cluster (
    tenant LowCardinality(String),
    series_id UInt64,
    metric_name SimpleAggregateFunction(any, String),
    last_seen_minute SimpleAggregateFunction(max, UInt32)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (tenant, series_id);
CREATE TABLE IF NOT EXISTS metrics.active_series ON CLUSTER metrics_cluster AS metrics.active_series_local
ENGINE = Distributed(metrics_cluster, metrics, active_series_local, intHash64(series_id));
CREATE TABLE IF NOT EXISTS metrics.limits_overrides_local ON CLUSTER metrics_cluster (
    tenant String,
    limits String,
    deleted UInt8,
    updated_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', updated_at)
ORDER BY tenant;
CREATE TABLE IF NOT EXISTS metrics.limits_overrides ON CLUSTER metrics_cluster AS metrics.limits_overrides_local
ENGINE = Distributed(metrics_cluster, metrics, limits_overrides_local, cityHash64(tenant));
CREATE TABLE IF NOT EXISTS metrics.limits_audit_local ON CLUSTER metrics_cluster (
    at DateTime64(3, 'UTC'),
    tenant String,
    actor String,
    remote String,
    action LowCardinality(String),
    old String,
    new String
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
ORDER BY (tenant, at);
CREATE TABLE IF NOT EXISTS metrics.limits_audit ON CLUSTER metrics_cluster AS metrics.limits_audit_local
ENGINE = Distributed(metrics_cluster, metrics, limits_audit_local, cityHash64(tenant));

-- schema version 3
ALTER TABLE metrics.settings_local ON CLUSTER metrics_cluster
    ADD COLUMN IF NOT EXISTS written_at DateTime64(6, 'UTC'),
    ADD COLUMN IF NOT EXISTS writer String,
    MODIFY ORDER BY (name, written_at, writer),
    MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE metrics.settings ON CLUSTER metrics_cluster
    ADD COLUMN IF NOT EXISTS written_at DateTime64(6, 'UTC'),
    ADD COLUMN IF NOT EXISTS writer String;

-- schema version 4
CREATE TABLE IF NOT EXISTS metrics.series_activity_local ON CLUSTER metrics_cluster (
    tenant LowCardinality(String),
    series_id UInt64,
    metric_name SimpleAggregateFunction(any, String),
    last_seen_minute SimpleAggregateFunction(max, UInt32),
    keep_until_minute SimpleAggregateFunction(max, UInt32)
) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY intDiv(last_seen_minute, 60)
ORDER BY (tenant, series_id)
TTL toDateTime(toUInt32(keep_until_minute) * 60) DELETE
SETTINGS ttl_only_drop_parts = 1, merge_with_ttl_timeout = 3600;
CREATE TABLE IF NOT EXISTS metrics.series_activity ON CLUSTER metrics_cluster AS metrics.series_activity_local
ENGINE = Distributed(metrics_cluster, metrics, series_activity_local, intHash64(series_id));
INSERT INTO metrics.series_activity (tenant, series_id, metric_name, last_seen_minute, keep_until_minute)
SETTINGS max_partitions_per_insert_block = 0
SELECT tenant, series_id, any(metric_name), max(last_seen_minute) AS minute, minute + 10080
FROM metrics.active_series GROUP BY tenant, series_id
HAVING minute + 10080 >= intDiv(toUInt32(now()), 60);
DROP TABLE IF EXISTS metrics.active_series ON CLUSTER metrics_cluster SYNC;
DROP TABLE IF EXISTS metrics.active_series_local ON CLUSTER metrics_cluster SYNC;

-- schema version 5
ALTER TABLE metrics.samples_0_local ON CLUSTER metrics_cluster
    MODIFY SETTING merge_selector_base = 10;
ALTER TABLE metrics.samples_1_local ON CLUSTER metrics_cluster
    MODIFY SETTING merge_selector_base = 10;

-- at every start, each sample table whose TTL differs from storage.retention_days (30) gets
-- (TTLs as read by: SELECT name, engine_full FROM clusterAllReplicas('metrics_cluster', system.tables) WHERE database = {database:String} AND has({tables:Array(String)}, name))
ALTER TABLE metrics.samples_0_local ON CLUSTER metrics_cluster
    MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE;
ALTER TABLE metrics.samples_1_local ON CLUSTER metrics_cluster
    MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE;
-- or, with storage.retention_days: 0:
-- ALTER TABLE metrics.samples_0_local ON CLUSTER metrics_cluster
--     REMOVE TTL;
-- ALTER TABLE metrics.samples_1_local ON CLUSTER metrics_cluster
--     REMOVE TTL;
