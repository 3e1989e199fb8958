"""The `settings` table: facts about a store, one row per write.

Two kinds of facts:
- fixed at creation (`sample_shards`, which decides where samples live): the value written
  first wins. Its row is inserted with an insert deduplication token that is the same for every
  gateway, so when two gateways create a store at once ClickHouse keeps the insert committed
  first and drops the other (atomically: under the table's lock on one node, in Keeper for a
  replicated shard). Both then read the one row back and agree; the other gateway refuses to
  start. No clocks are compared.
- changeable (`retention_days`): the value written last (by the server's clock at insert) is the
  one applied last.

Rows written before schema version 3 carry the zero time and an empty writer, so they read as
the first; should such a store hold two values of a fixed setting (the race this module closes),
the tie is broken by value, the same for every reader.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gateway.storage.base import Client, SchemaError, StorageError
from gateway.storage.schema import Layout

# The order of rows: written first (by the server's clock), then a stable tie-break.
_ORDER = "(written_at, writer, value)"


@dataclass(frozen=True, slots=True)
class StoredSetting:
    first: str
    """The value written first (what a fixed setting is)."""
    last: str
    """The value written last (what a changeable setting was last set to)."""


def new_writer() -> str:
    """An id for the rows one gateway start writes (the tie-break between equal times)."""
    return uuid.uuid4().hex


def read_settings(client: Client, layout: Layout) -> dict[str, StoredSetting]:
    """Every setting of the store with its first and last written value."""
    rows = client.query(
        f"SELECT name, argMin(value, {_ORDER}), argMax(value, {_ORDER}) "
        f"FROM {layout.settings_table} GROUP BY name"
    ).result_rows
    return {name: StoredSetting(first, last) for name, first, last in rows}


def record_setting(
    client: Client, layout: Layout, name: str, value: str, writer: str, *, once: bool = False
) -> None:
    """Append a row `name = value`, stamped with the server's time; with `once`, only the first
    such insert of any gateway is kept (a later one is dropped by insert deduplication)."""
    client.command(
        f"INSERT INTO {layout.settings_table} (name, value, written_at, writer) "
        "SELECT {name:String}, {value:String}, now64(6), {writer:String}",
        parameters={"name": name, "value": value, "writer": writer},
        settings={"insert_deduplicate": 1, "insert_deduplication_token": f"fixed:{name}"}
        if once
        else None,
    )


def check_fixed_settings(client: Client, layout: Layout, writer: str) -> None:
    """Record the fixed settings of a new store; refuse a configuration that differs from them."""
    wanted = {"sample_shards": str(layout.sample_shards)}
    stored = read_settings(client, layout)
    raced = [name for name in wanted if name not in stored]
    if raced:
        for name in raced:
            record_setting(client, layout, name, wanted[name], writer, once=True)
        # Another gateway may have recorded its value first: then ours was dropped.
        stored = read_settings(client, layout)
    for name, value in wanted.items():
        if name not in stored:
            # On a cluster the read may reach a replica the row has not reached yet.
            raise StorageError(
                f"the store's {name} is not readable right after writing it (replication lag?)"
            )
        first = stored[name].first
        if first == value:
            continue
        if name in raced:
            raise SchemaError(
                f"another gateway created this store at the same time with storage.{name} = "
                f"{first}, and the value written first wins; this one has {value}: set "
                f"storage.{name} to {first} (every gateway of a store needs the same value)"
            )
        raise SchemaError(
            f"storage.{name} is {value} in the configuration but {first} in the store; it "
            f"cannot change once data exists (set it back to {first})"
        )
