"""Renders table descriptions to ClickHouse DDL for one node (embedded or server) or a cluster.

One description per table (and per later change of a table); the mode only changes the rendering:
- one node: `CREATE TABLE db.name (...) ENGINE = <Family>MergeTree ...`;
- cluster: `ON CLUSTER` everywhere, a `db.name_local` table on every node with the
  `Replicated<Family>MergeTree` engine (replicas of a shard share a ZooKeeper/Keeper path), and a
  `db.name` table with the `Distributed` engine over them, sharded by the table's key. Readers and
  writers use `db.name` in both modes, so no other code knows the mode.
- a change (`Alteration`): one `ALTER TABLE` on a node; on a cluster `ON CLUSTER` on the local
  table, and the column changes also on the Distributed table, whose columns must match (a
  Distributed table has no sorting key, TTL or storage settings to change).
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


@dataclass(frozen=True, slots=True)
class Alteration:
    """A change of an existing table, independent of how it is deployed."""

    table: str
    add_columns: tuple[tuple[str, str], ...] = ()
    """(name, type) pairs to add (IF NOT EXISTS, so a second replica migrating is harmless)."""
    table_actions: tuple[str, ...] = ()
    """Actions on the table holding the rows only: MODIFY ORDER BY, MODIFY TTL, REMOVE TTL..."""


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


def alter_table(alteration: Alteration, database: str, cluster: str | None) -> list[str]:
    """The statements that apply `alteration`: one on a node, local (+ Distributed) on a cluster."""
    adds = tuple(f"ADD COLUMN IF NOT EXISTS {name} {kind}" for name, kind in alteration.add_columns)
    actions = (*adds, *alteration.table_actions)
    if not actions:
        raise ValueError(f"alteration of {alteration.table} changes nothing")
    if cluster is None:
        return [_alter(f"{database}.{alteration.table}", "", actions)]
    on_cluster = _on_cluster(cluster)
    statements = [_alter(f"{database}.{alteration.table}{LOCAL_SUFFIX}", on_cluster, actions)]
    if adds:
        # After the local tables: a Distributed column must exist below it to be read.
        statements.append(_alter(f"{database}.{alteration.table}", on_cluster, adds))
    return statements


def _alter(qualified: str, on_cluster: str, actions: tuple[str, ...]) -> str:
    return f"ALTER TABLE {qualified}{on_cluster}\n" + ",\n".join(f"    {a}" for a in actions)


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
