"""Renders table descriptions to ClickHouse DDL for one node (embedded or server) or a cluster.

One description per table; the mode only changes the rendering:
- one node: `CREATE TABLE db.name (...) ENGINE = <Family>MergeTree ...`;
- cluster: `ON CLUSTER` everywhere, a `db.name_local` table on every node with the
  `Replicated<Family>MergeTree` engine (replicas of a shard share a ZooKeeper/Keeper path), and a
  `db.name` table with the `Distributed` engine over them, sharded by the table's key. Readers and
  writers use `db.name` in both modes, so no other code knows the mode.
"""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_SUFFIX = "_local"
# ClickHouse expands the macros: {shard}/{replica} from each node's <macros>, the others itself.
REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
REPLICA_NAME = "{replica}"


@dataclass(frozen=True, slots=True)
class Table:
    """A table of the schema, independent of how it is deployed."""

    name: str
    columns: tuple[tuple[str, str], ...]
    """(name, type with DEFAULT/CODEC) pairs."""
    engine: str
    """A MergeTree family engine on one node, e.g. `ReplacingMergeTree`."""
    order_by: str
    engine_args: tuple[str, ...] = ()
    partition_by: str = ""
    ttl: str = ""
    settings: tuple[str, ...] = ()
    """MergeTree settings, each `name = value`."""
    shard_by: str = "rand()"
    """Sharding key of the Distributed table (cluster mode)."""


def create_database(database: str, cluster: str | None) -> str:
    """CREATE DATABASE, on every node of the cluster when there is one."""
    return f"CREATE DATABASE IF NOT EXISTS {database}{_on_cluster(cluster)}"


def create_table(table: Table, database: str, cluster: str | None) -> list[str]:
    """The statements that create `table`: one on a node, local + Distributed on a cluster."""
    if cluster is None:
        return [_merge_tree(table, f"{database}.{table.name}", "", table.engine, table.engine_args)]
    local = f"{table.name}{LOCAL_SUFFIX}"
    replicated_args = (f"'{REPLICA_PATH}'", f"'{REPLICA_NAME}'", *table.engine_args)
    return [
        _merge_tree(
            table, f"{database}.{local}", _on_cluster(cluster), f"Replicated{table.engine}",
            replicated_args,
        ),
        f"CREATE TABLE IF NOT EXISTS {database}.{table.name}{_on_cluster(cluster)} "
        f"AS {database}.{local}\n"
        f"ENGINE = Distributed({cluster}, {database}, {local}, {table.shard_by})",
    ]


def drop_table(name: str, database: str, cluster: str | None) -> list[str]:
    """The statements that drop a table `create_table` made (both tables on a cluster)."""
    if cluster is None:
        return [f"DROP TABLE IF EXISTS {database}.{name} SYNC"]
    return [
        f"DROP TABLE IF EXISTS {database}.{name}{_on_cluster(cluster)} SYNC",
        f"DROP TABLE IF EXISTS {database}.{name}{LOCAL_SUFFIX}{_on_cluster(cluster)} SYNC",
    ]


def _merge_tree(
    table: Table, qualified: str, on_cluster: str, engine: str, args: tuple[str, ...]
) -> str:
    columns = ",\n".join(f"    {name} {kind}" for name, kind in table.columns)
    lines = [
        f"CREATE TABLE IF NOT EXISTS {qualified}{on_cluster} (\n{columns}\n)"
        f" ENGINE = {engine}{'(' + ', '.join(args) + ')' if args else ''}"
    ]
    if table.partition_by:
        lines.append(f"PARTITION BY {table.partition_by}")
    lines.append(f"ORDER BY {table.order_by}")
    if table.ttl:
        lines.append(f"TTL {table.ttl}")
    if table.settings:
        lines.append(f"SETTINGS {', '.join(table.settings)}")
    return "\n".join(lines)


def _on_cluster(cluster: str | None) -> str:
    return f" ON CLUSTER {cluster}" if cluster else ""
