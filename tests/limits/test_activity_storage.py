"""The `series_activity` table stays about one window big and its reads skip older partitions.

Real embedded ClickHouse: the TTL, the partition pruning and the v2 -> v3 migration are the
engine's behaviour, so they are checked on the engine (with OPTIMIZE ... FINAL to run the merges a
server would run in the background).
"""

from __future__ import annotations

import time
import uuid

import numpy as np

from gateway.limits import store as limits_store
from gateway.limits.service import LimitsService
from gateway.limits.tracker import Activity
from gateway.metrics import GatewayMetrics
from gateway.storage.clickhouse import ClickHouse, Client, migrate
from gateway.storage.schema import Layout, bootstrap_statements, migrations
from tests.conftest import make_config

NOW_MINUTE = int(time.time() // 60)


def fresh_layout() -> Layout:
    return Layout(database=f"activity_{uuid.uuid4().hex[:10]}", sample_shards=1)


def activity(tenant: str, ids: list[int], minute: int) -> Activity:
    count = len(ids)
    return Activity(
        tenant, np.array(ids, np.uint64), np.full(count, minute, np.uint32),
        np.zeros(count, np.uint32), ["m"],
    )


def stored(client: Client, layout: Layout) -> dict[int, int]:
    rows = client.query(
        f"SELECT series_id, max(last_seen_minute) FROM {layout.table('series_activity')} "
        "GROUP BY series_id"
    ).result_rows
    return {int(sid): int(minute) for sid, minute in rows}


def test_rows_older_than_the_window_are_dropped_by_the_ttl(session_store: ClickHouse) -> None:
    layout = fresh_layout()

    def run(client: Client) -> dict[int, int]:
        migrate(client, layout)
        window = 60
        # Seen 5 h ago: kept until 5 h ago + window + margin = 3 h ago, so expired.
        limits_store.write_activity(
            client, layout, [activity("a", [1, 2], NOW_MINUTE - 300)], window
        )
        # Seen 30 min ago in a 1 h window: still active.
        limits_store.write_activity(
            client, layout, [activity("a", [3], NOW_MINUTE - 30)], window
        )
        # Seen 5 h ago but kept by a replica with a 1-day window.
        limits_store.write_activity(
            client, layout, [activity("b", [4], NOW_MINUTE - 300)], 24 * 60
        )
        client.command(f"OPTIMIZE TABLE {layout.table('series_activity')} FINAL")
        return stored(client, layout)

    assert session_store.run_sync(run) == {3: NOW_MINUTE - 30, 4: NOW_MINUTE - 300}


def test_reading_the_window_skips_older_partitions(session_store: ClickHouse) -> None:
    layout = fresh_layout()

    def run(client: Client) -> tuple[list[Activity], str]:
        migrate(client, layout)
        for hours_ago in (30, 20, 10, 0):  # four hourly partitions, kept by a 2-day window
            limits_store.write_activity(
                client, layout, [activity("a", [100 + hours_ago], NOW_MINUTE - 60 * hours_ago)],
                2 * 24 * 60,
            )
        found = limits_store.read_activity(client, layout, NOW_MINUTE - 60)
        plan = client.query(
            f"EXPLAIN indexes = 1 SELECT series_id FROM {layout.table('series_activity')} "
            f"WHERE last_seen_minute >= {NOW_MINUTE - 60}"
        ).result_rows
        return found, "\n".join(str(row[0]) for row in plan)

    found, plan = session_store.run_sync(run)
    assert [a.series_ids.tolist() for a in found] == [[100]]
    # The partition key's min-max index leaves one part of four to read.
    assert "Parts: 1 | Granules: 1" in plan and "Parts: 1/4" in plan, plan


async def test_the_v4_migration_carries_recent_v2_activity_over(
    chdb_dsn: str, session_store: ClickHouse
) -> None:
    config = make_config(chdb_dsn)
    layout = Layout.for_config(config.storage)

    def at_version_2(client: Client) -> None:
        for statement in bootstrap_statements(layout):
            client.command(statement)
        for version, statements in migrations(layout).items():
            if version > 2:
                break
            for statement in statements:
                client.command(statement)
            client.command(f"INSERT INTO {layout.migrations_table} (version) VALUES ({version})")
        client.command(
            f"INSERT INTO {layout.table('active_series')} VALUES "
            f"('a', 1, 'm', {NOW_MINUTE - 5}), ('a', 1, 'm', {NOW_MINUTE - 90}), "
            f"('a', 2, 'up', {NOW_MINUTE - 30}), ('a', 3, 'm', {NOW_MINUTE - 60 * 24 * 30})"
        )

    session_store.run_sync(at_version_2)
    assert session_store.run_sync(lambda client: migrate(client, layout)) == 2
    assert session_store.run_sync(lambda client: stored(client, layout)) == {
        1: NOW_MINUTE - 5, 2: NOW_MINUTE - 30,
    }
    tables = session_store.run_sync(
        lambda client: client.query(
            "SELECT name FROM system.tables WHERE database = {db:String}",
            parameters={"db": layout.database},
        ).result_rows
    )
    assert ("active_series",) not in tables
    # The active series survive the upgrade: a restarted gateway counts them.
    service = LimitsService(config, GatewayMetrics(), session_store, layout)
    await service.load()
    assert service.tracker.count("a") == 2
    assert service.tracker.metric_counts("a") == {"m": 1, "up": 1}
