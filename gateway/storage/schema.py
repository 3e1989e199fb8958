"""The versioned ClickHouse schema ("label-hash tables") and its DDL.

Tables (all keyed by tenant first):
- `series`: one row per (tenant, series id) with metric name and labels; first/last seen are
  min/max aggregates, so re-inserting a series row is idempotent.
- `series_labels`: inverted index (tenant, label name, value) -> series id, for label browsing
  and fast matching at high cardinality.
- `samples_0..N-1`: (tenant, series id, timestamp, value), a series' samples live in shard
  `series_id % N`. ReplacingMergeTree: a body retried after a partial failure converges to one
  row per (series, timestamp); readers de-duplicate adjacent equal timestamps until merges do.
- `metadata`: type/help/unit per metric family; `settings`: facts about the store (the shard
  count fixed at creation, the retention last applied), one row per write.
- (v2) `limits_overrides` / `limits_audit`: per-tenant limits set through the admin API and every
  change to them. (v2 also created `active_series`, replaced in v4.)
- (v3) `settings` keeps every row written (who wrote it, when), so that the first value written
  wins deterministically when two gateways create a store at once.
- (v4) `series_activity`: last-seen minute per series, written by the limits tracker so restarts
  and replicas share active-series counts. Partitioned by hour of the last-seen minute, so reads of
  the active window prune older partitions, and each row carries the minute after which no gateway
  needs it (`keep_until_minute`: last seen + the writer's window + a margin), which a TTL drops
  whole parts by: the table holds about one window of series, however much the series churn.
- (v5) sample tables merge with a wider merge selector base (less rewriting under ingest).

Each table is described once (`gateway.storage.ddl.Table`), each later change once
(`gateway.storage.ddl.Alteration`), and both are rendered for the deployment: one node (embedded
or server) or a cluster (replicated local tables + Distributed tables). A new schema version adds
an entry to `tables(layout)` (new tables) or `alterations(layout)` (changes of tables). A released
version's entries never change: stores at every older version are upgraded by replaying the
versions they lack (the golden DDL files show any edit).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gateway.config import StorageConfig
from gateway.storage.ddl import (
    LOCAL_SUFFIX,
    Alteration,
    Table,
    alter_table,
    create_database,
    create_table,
    drop_table,
)

SCHEMA_VERSION = 5

# xxHash64 over `name 0xFF value 0xFF ...` of the sorted labels: equals gateway.model.labels.
SERIES_HASH_SQL = (
    "xxHash64(arrayStringConcat(arrayMap(p -> concat(p.1, '\\xFF', p.2, '\\xFF'), "
    "arraySort(arrayZip(mapKeys(labels), mapValues(labels))))))"
)

# Cluster sharding key of every table keyed by series: the same key keeps a series' row, its
# label-index rows and its samples on one shard (so `IN` subqueries can stay local). Hashed again
# because sample table i holds only ids with `id % sample_shards == i`: a plain `series_id`
# modulo a shard count sharing a factor with sample_shards would leave shards empty.
SERIES_SHARD_KEY = "intHash64(series_id)"

_MS = "DateTime64(3, 'UTC')"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the tables live, how samples are split, and whether they span a cluster."""

    database: str
    sample_shards: int
    retention_days: int = 0
    cluster: str | None = None

    @classmethod
    def for_config(cls, storage: StorageConfig) -> Layout:
        """The layout a validated storage configuration describes."""
        return cls(
            database=storage.database,
            sample_shards=storage.sample_shards,
            retention_days=storage.retention_days,
            cluster=storage.cluster or None,
        )

    def table(self, name: str) -> str:
        """The table readers and writers use (the Distributed one on a cluster)."""
        return f"{self.database}.{name}"

    def local_table(self, name: str) -> str:
        """The table holding this node's rows (the same as `table` on one node)."""
        return f"{self.database}.{name}{LOCAL_SUFFIX if self.cluster else ''}"

    def samples_table(self, shard: int) -> str:
        return self.table(f"samples_{shard}")

    def local_name(self, name: str) -> str:
        """Unqualified name of the table holding this node's rows (as in system.tables)."""
        return f"{name}{LOCAL_SUFFIX if self.cluster else ''}"

    @property
    def samples_tables(self) -> list[str]:
        return [self.samples_table(shard) for shard in range(self.sample_shards)]

    @property
    def series_table(self) -> str:
        return self.table("series")

    @property
    def labels_table(self) -> str:
        return self.table("series_labels")

    @property
    def metadata_table(self) -> str:
        return self.table("metadata")

    @property
    def settings_table(self) -> str:
        return self.table("settings")

    @property
    def migrations_table(self) -> str:
        return self.table("schema_migrations")


SERIES = Table(
    name="series",
    columns=(
        ("tenant", "LowCardinality(String)"),
        ("metric_name", "String"),
        ("series_id", "UInt64"),
        ("labels", "SimpleAggregateFunction(any, Map(String, String))"),
        ("first_seen", f"SimpleAggregateFunction(min, {_MS})"),
        ("last_seen", f"SimpleAggregateFunction(max, {_MS})"),
    ),
    engine="AggregatingMergeTree",
    order_by="(tenant, metric_name, series_id)",
    shard_by=SERIES_SHARD_KEY,
)
SERIES_LABELS = Table(
    name="series_labels",
    columns=(
        ("tenant", "LowCardinality(String)"),
        ("name", "LowCardinality(String)"),
        ("value", "String"),
        ("series_id", "UInt64"),
    ),
    engine="ReplacingMergeTree",
    order_by="(tenant, name, value, series_id)",
    shard_by=SERIES_SHARD_KEY,
)
METADATA = Table(
    name="metadata",
    columns=(
        ("tenant", "LowCardinality(String)"),
        ("metric_family", "String"),
        ("type", "LowCardinality(String)"),
        ("help", "String"),
        ("unit", "String"),
        ("updated_at", _MS),
    ),
    engine="ReplacingMergeTree",
    engine_args=("updated_at",),
    order_by="(tenant, metric_family)",
    shard_by="cityHash64(tenant, metric_family)",
)
SETTINGS = Table(
    name="settings",
    columns=(("name", "String"), ("value", "String")),
    engine="ReplacingMergeTree",
    order_by="name",
    shard_by="cityHash64(name)",
)
# Schema version 2's activity table (dropped by version 4, which replaces it by SERIES_ACTIVITY).
ACTIVE_SERIES = Table(
    name="active_series",
    columns=(
        ("tenant", "LowCardinality(String)"),
        ("series_id", "UInt64"),
        ("metric_name", "SimpleAggregateFunction(any, String)"),
        ("last_seen_minute", "SimpleAggregateFunction(max, UInt32)"),
    ),
    engine="AggregatingMergeTree",
    order_by="(tenant, series_id)",
    shard_by=SERIES_SHARD_KEY,
)
SERIES_ACTIVITY = Table(
    name="series_activity",
    columns=(
        ("tenant", "LowCardinality(String)"),
        ("series_id", "UInt64"),
        ("metric_name", "SimpleAggregateFunction(any, String)"),
        ("last_seen_minute", "SimpleAggregateFunction(max, UInt32)"),
        ("keep_until_minute", "SimpleAggregateFunction(max, UInt32)"),
    ),
    engine="AggregatingMergeTree",
    # Rows of one series merge within an hour's partition only; readers take max() anyway.
    partition_by="intDiv(last_seen_minute, 60)",
    order_by="(tenant, series_id)",
    ttl="toDateTime(toUInt32(keep_until_minute) * 60) DELETE",
    settings=("ttl_only_drop_parts = 1", "merge_with_ttl_timeout = 3600"),
    shard_by=SERIES_SHARD_KEY,
)
# Rows of the v2 table younger than this are copied into `series_activity` by the v4 migration
# (the writers' windows are not known to the migration; a week covers any sensible window).
_V2_ACTIVITY_KEEP_MINUTES = 7 * 24 * 60
LIMITS_OVERRIDES = Table(
    name="limits_overrides",
    columns=(
        ("tenant", "String"),
        ("limits", "String"),
        ("deleted", "UInt8"),
        ("updated_at", _MS),
    ),
    engine="ReplacingMergeTree",
    engine_args=("updated_at",),
    order_by="tenant",
    shard_by="cityHash64(tenant)",
)
LIMITS_AUDIT = Table(
    name="limits_audit",
    columns=(
        ("at", _MS),
        ("tenant", "String"),
        ("actor", "String"),
        ("remote", "String"),
        ("action", "LowCardinality(String)"),
        ("old", "String"),
        ("new", "String"),
    ),
    engine="MergeTree",
    order_by="(tenant, at)",
    shard_by="cityHash64(tenant)",
)
MIGRATIONS = Table(
    name="schema_migrations",
    columns=(("version", "UInt32"), ("applied_at", f"{_MS} DEFAULT now64(3)")),
    engine="MergeTree",
    order_by="version",
    shard_by="version",
)


def retention_ttl(days: int) -> str:
    """The TTL expression of sample tables keeping `days` days ("" keeps samples forever)."""
    return f"toDateTime(timestamp) + INTERVAL {days} DAY DELETE" if days else ""


# Sample tables take every sample written, in many small parts (one per group-commit insert), and
# merging them back together is most of the engine's work under steady ingest. A wider merge
# selector base merges more parts at once, so each row is rewritten fewer times: measured on the
# ingest benchmark, the merge threads' CPU per sample halved for a few more parts per partition.
SAMPLE_MERGE_SETTINGS = ("merge_selector_base = 10",)


def samples_table(layout: Layout, shard: int) -> Table:
    """Sample table `shard`: the samples of series with `series_id % sample_shards == shard`."""
    ttl = retention_ttl(layout.retention_days)
    return Table(
        name=f"samples_{shard}",
        columns=(
            ("tenant", "LowCardinality(String)"),
            ("series_id", "UInt64"),
            ("timestamp", f"{_MS} CODEC(DoubleDelta, ZSTD(1))"),
            ("value", "Float64 CODEC(Gorilla, ZSTD(1))"),
        ),
        engine="ReplacingMergeTree",
        partition_by="toYYYYMM(timestamp)",
        order_by="(tenant, series_id, timestamp)",
        ttl=ttl,
        shard_by=SERIES_SHARD_KEY,
    )


def current_table_names(layout: Layout) -> set[str]:
    """Names of the tables readers and writers use at the current schema version."""
    dropped = {ACTIVE_SERIES.name}  # replaced by a later version
    created = {table.name for group in tables(layout).values() for table in group}
    return (created | {MIGRATIONS.name}) - dropped


def tables(layout: Layout) -> dict[int, tuple[Table, ...]]:
    """The tables each schema version creates."""
    samples = tuple(samples_table(layout, shard) for shard in range(layout.sample_shards))
    return {
        1: (SERIES, SERIES_LABELS, *samples, METADATA, SETTINGS),
        2: (ACTIVE_SERIES, LIMITS_OVERRIDES, LIMITS_AUDIT),
        4: (SERIES_ACTIVITY,),
    }


# v3: `settings` was created ordered by name alone, so ReplacingMergeTree kept one row per name
# (the last inserted). Ordered by (name, written_at, writer), every row written stays (a history
# of retention changes). Rows written before v3 read as written at the epoch by writer '' (the
# columns' zero values), i.e. first: they were. A fixed setting is inserted once, by insert
# deduplication, which a table on one node does only with a deduplication window (replicated
# tables have one by default).
SETTINGS_WRITE_HISTORY = Alteration(
    table="settings",
    add_columns=(("written_at", "DateTime64(6, 'UTC')"), ("writer", "String")),
    table_actions=(
        "MODIFY ORDER BY (name, written_at, writer)",
        "MODIFY SETTING non_replicated_deduplication_window = 1000",
    ),
)


def alterations(layout: Layout) -> dict[int, tuple[Alteration, ...]]:
    """The changes of existing tables each schema version makes."""
    return {
        3: (SETTINGS_WRITE_HISTORY,),
        # v5: the sample tables' merge settings (created by v1, whose entries stay as released).
        5: tuple(
            Alteration(
                table=f"samples_{shard}",
                table_actions=tuple(f"MODIFY SETTING {one}" for one in SAMPLE_MERGE_SETTINGS),
            )
            for shard in range(layout.sample_shards)
        ),
    }


def _data_moves(layout: Layout) -> dict[int, list[str]]:
    """Statements of a version beyond creating and altering tables (copies, drops)."""
    keep = _V2_ACTIVITY_KEEP_MINUTES
    return {
        4: [
            # Carry the v2 table's recent rows over (a restart must not reset budgets), then
            # drop it: it only held activity derived from writes, and grew without bound.
            f"INSERT INTO {layout.table('series_activity')} "
            "(tenant, series_id, metric_name, last_seen_minute, keep_until_minute)\n"
            "SETTINGS max_partitions_per_insert_block = 0\n"
            "SELECT tenant, series_id, any(metric_name), max(last_seen_minute) AS minute, "
            f"minute + {keep}\nFROM {layout.table('active_series')} GROUP BY tenant, series_id\n"
            f"HAVING minute + {keep} >= intDiv(toUInt32(now()), 60)",
            *drop_table(ACTIVE_SERIES.name, layout.database, layout.cluster),
        ],
    }


def migrations(layout: Layout) -> dict[int, list[str]]:
    """DDL of each schema version; version N upgrades a store at version N-1."""
    result: dict[int, list[str]] = {}
    for version, created in tables(layout).items():
        result[version] = [
            statement
            for table in created
            for statement in create_table(table, layout.database, layout.cluster)
        ]
    for version, changes in alterations(layout).items():
        result.setdefault(version, []).extend(
            statement
            for change in changes
            for statement in alter_table(change, layout.database, layout.cluster)
        )
    for version, statements in _data_moves(layout).items():
        result.setdefault(version, []).extend(statements)
    return dict(sorted(result.items()))


def retention_statements(layout: Layout, shard: int) -> list[str]:
    """DDL giving sample table `shard` the layout's retention (run when its TTL differs)."""
    ttl = retention_ttl(layout.retention_days)
    change = Alteration(
        table=f"samples_{shard}", table_actions=(f"MODIFY TTL {ttl}" if ttl else "REMOVE TTL",)
    )
    return alter_table(change, layout.database, layout.cluster)


def sample_ttls_query(layout: Layout) -> str:
    """SQL listing (table, engine_full) of the sample tables on every node that holds them.

    Parameters: `database` (String) and `tables` (Array(String), `Layout.local_name`s).
    """
    source = "system.tables"
    if layout.cluster:
        source = f"clusterAllReplicas('{layout.cluster}', system.tables)"
    return (
        f"SELECT name, engine_full FROM {source} "
        "WHERE database = {database:String} AND has({tables:Array(String)}, name)"
    )


def bootstrap_statements(layout: Layout) -> list[str]:
    """What must exist before migrations can be read."""
    return [
        create_database(layout.database, layout.cluster),
        *create_table(MIGRATIONS, layout.database, layout.cluster),
    ]


def render_schema(layout: Layout) -> str:
    """Every statement the gateway runs on an empty store, as one SQL script (each statement is
    idempotent, so the script may also run on a store that has the schema, e.g. to create the
    tables on nodes added to a cluster)."""
    parts = ["-- bootstrap", *(f"{s};" for s in bootstrap_statements(layout))]
    for version, statements in migrations(layout).items():
        parts.append(f"\n-- schema version {version}")
        parts.extend(f"{s};" for s in statements)
    parts.append(
        "\n-- at every start, each sample table whose TTL differs from storage.retention_days "
        f"({layout.retention_days}) gets\n-- (TTLs as read by: {sample_ttls_query(layout)})"
    )
    for shard in range(layout.sample_shards):
        parts.extend(f"{s};" for s in retention_statements(layout, shard))
    if layout.retention_days:
        # Shown, not run: a script that removed the TTL it just set would be no use to pipe.
        forever = dataclasses.replace(layout, retention_days=0)
        parts.append("-- or, with storage.retention_days: 0:")
        for shard in range(layout.sample_shards):
            parts.extend(
                "-- " + f"{s};".replace("\n", "\n-- ") for s in retention_statements(forever, shard)
            )
    return "\n".join(parts) + "\n"
