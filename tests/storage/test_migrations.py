"""Upgrading stores of every older schema version, and the settings race, on the real engine."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pytest

from gateway.model.labels import series_hash, validate_labels
from gateway.model.matchers import Matcher
from gateway.storage.clickhouse import ClickHouse, SchemaError, migrate, schema_version
from gateway.storage.migrations import upgrade_schema
from gateway.storage.sample_reader import SelectLimits, select_series
from gateway.storage.schema import SCHEMA_VERSION, Layout, render_schema
from gateway.storage.store_settings import check_fixed_settings, read_settings, record_setting
from gateway.storage.writer import NewSeries, TenantSamples, WriteBatch, write_batch

# Tables a later schema version replaced, and by what.
REPLACED_TABLES = {"active_series": "series_activity"}


def fresh_layout(shards: int = 2, retention_days: int = 0) -> Layout:
    return Layout(f"migrate_{uuid.uuid4().hex[:10]}", shards, retention_days=retention_days)


def write_some(store: ClickHouse, layout: Layout, tenant: str) -> dict[int, list[float]]:
    """A few series with samples from the last hour; returns {series id: values}."""
    now = int(time.time() * 1000) // 1000 * 1000
    written: dict[int, list[float]] = {}
    series, samples = [], []
    for instance in range(5):
        labels = validate_labels(
            [(b"__name__", b"up"), (b"instance", b"%d" % instance), (b"job", b"old")]
        )
        sid = series_hash(labels)
        ts = now - 3_600_000 + np.arange(4, dtype=np.int64) * 60_000
        values = np.arange(4.0) + instance
        series.append(NewSeries(tenant, sid, labels, int(ts[0]), int(ts[-1])))
        samples.append(TenantSamples(tenant, np.full(4, sid, np.uint64), ts, values))
        written[sid] = list(values)
    store.run_sync(lambda c: write_batch(c, layout, WriteBatch(samples, series, [])))
    return written


def read_back(store: ClickHouse, layout: Layout, tenant: str) -> dict[int, list[float]]:
    now = int(time.time() * 1000)
    found = store.run_sync(
        lambda c: select_series(
            c, layout, tenant, [Matcher.of("job", "=", "old")], now - 7_200_000, now,
            SelectLimits(),
        )
    )
    return {series_hash(s.labels): [float(v) for v in s.values] for s in found}


def create_at_version(store: ClickHouse, layout: Layout, version: int) -> None:
    """A store as a gateway of schema `version` left it (its settings row written the old way)."""
    store.run_sync(lambda c: upgrade_schema(c, layout, target=version))
    assert store.run_sync(lambda c: schema_version(c, layout)) == version
    if version < 3:  # before v3 the settings table had (name, value) only
        store.run_sync(
            lambda c: c.command(
                f"INSERT INTO {layout.settings_table} (name, value) "
                f"VALUES ('sample_shards', '{layout.sample_shards}')"
            )
        )


def row_counts(store: ClickHouse, layout: Layout) -> dict[str, int]:
    rows = store.run_sync(
        lambda c: c.query(
            "SELECT name, total_rows FROM system.tables WHERE database = {db:String}",
            parameters={"db": layout.database},
        ).result_rows
    )
    return {name: int(count or 0) for name, count in rows}


@pytest.mark.parametrize("old_version", range(1, SCHEMA_VERSION))
def test_a_store_of_an_older_version_is_upgraded_without_losing_data(
    session_store: ClickHouse, old_version: int
) -> None:
    layout = fresh_layout(retention_days=30)
    create_at_version(session_store, layout, old_version)
    written = write_some(session_store, layout, "team-a")
    before = row_counts(session_store, layout)

    assert session_store.run_sync(lambda c: migrate(c, layout)) == old_version

    assert session_store.run_sync(lambda c: schema_version(c, layout)) == SCHEMA_VERSION
    assert read_back(session_store, layout, "team-a") == written
    after = row_counts(session_store, layout)
    # No table dropped, but for v2's activity table, which v4 replaced (its rows copied over:
    # tests/limits cover that copy).
    assert set(before) - set(after) <= set(REPLACED_TABLES)
    assert all(REPLACED_TABLES[gone] in after for gone in set(before) - set(after))
    for table, count in before.items():
        if table not in ("settings", "schema_migrations", *REPLACED_TABLES):
            assert after[table] == count, table
    # The store written before the upgrade keeps its fixed settings.
    settings = session_store.run_sync(lambda c: read_settings(c, layout))
    assert settings["sample_shards"].first == "2"
    with pytest.raises(SchemaError, match="sample_shards is 3 in the configuration but 2"):
        session_store.run_sync(lambda c: migrate(c, Layout(layout.database, 3, 30)))
    # And keeps working: new data next to the old.
    write_some(session_store, layout, "team-b")
    assert read_back(session_store, layout, "team-a") == written


def test_the_current_version_is_what_an_upgraded_store_has(session_store: ClickHouse) -> None:
    upgraded, fresh = fresh_layout(), fresh_layout()
    create_at_version(session_store, upgraded, SCHEMA_VERSION - 1)
    session_store.run_sync(lambda c: migrate(c, upgraded))
    session_store.run_sync(lambda c: migrate(c, fresh))

    assert shapes(session_store, upgraded) == shapes(session_store, fresh)


def shapes(store: ClickHouse, layout: Layout) -> dict[str, tuple[str, list[tuple[str, ...]]]]:
    """Every table of the store: its engine (with keys, TTL, settings) and its columns."""

    def query(client: object) -> dict[str, tuple[str, list[tuple[str, ...]]]]:
        engines = client.query(  # type: ignore[attr-defined]
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            parameters={"db": layout.database},
        ).result_rows
        columns = client.query(  # type: ignore[attr-defined]
            "SELECT table, name, type, default_expression FROM system.columns "
            "WHERE database = {db:String} ORDER BY table, position",
            parameters={"db": layout.database},
        ).result_rows
        return {
            name: (engine, [tuple(c[1:]) for c in columns if c[0] == name])
            for name, engine in engines
        }

    return store.run_sync(query)


def test_the_schema_script_builds_what_migrate_builds_and_can_run_again(
    session_store: ClickHouse,
) -> None:
    # `metrics-gateway schema` prints this script (e.g. for nodes added to a cluster).
    scripted, migrated = fresh_layout(retention_days=30), fresh_layout(retention_days=30)
    script = render_schema(scripted)
    lines = [line for line in script.splitlines() if not line.startswith("--")]
    statements = [s.strip() for s in "\n".join(lines).split(";\n") if s.strip()]
    for _ in range(2):
        for statement in statements:
            session_store.run_sync(lambda c, s=statement: c.command(s.rstrip(";")))
    session_store.run_sync(lambda c: migrate(c, migrated))
    assert shapes(session_store, scripted) == shapes(session_store, migrated)


def test_the_first_written_shard_count_wins_whatever_its_text(session_store: ClickHouse) -> None:
    # "10" sorts before "2" as text: a value-ordered pick would take the one written second.
    layout = fresh_layout(shards=10)
    session_store.run_sync(lambda c: migrate(c, layout))
    session_store.run_sync(
        lambda c: record_setting(c, layout, "sample_shards", "2", "a-gateway-written-later")
    )
    session_store.run_sync(lambda c: migrate(c, layout))  # 10 is still the store's value
    with pytest.raises(SchemaError, match="sample_shards is 2 in the configuration but 10"):
        session_store.run_sync(lambda c: migrate(c, Layout(layout.database, 2)))


async def test_two_gateways_creating_a_store_at_once_agree_on_one_shard_count(
    session_store: ClickHouse,
) -> None:
    for _ in range(3):
        database = f"race_{uuid.uuid4().hex[:10]}"
        ten, two = Layout(database, 10), Layout(database, 2)
        session_store.run_sync(lambda c, layout=ten: upgrade_schema(c, layout))
        results = await asyncio.gather(
            session_store.run(lambda c, t=ten: check_fixed_settings(c, t, "gateway-ten")),
            session_store.run(lambda c, t=two: check_fixed_settings(c, t, "gateway-two")),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(refused) == 1, results
        (error,) = refused
        assert isinstance(error, SchemaError), error
        winner = session_store.run_sync(lambda c, layout=ten: read_settings(c, layout))
        value = winner["sample_shards"].first
        loser = "2" if value == "10" else "10"
        assert f"storage.sample_shards to {value}" in str(error) or (
            f"is {loser} in the configuration but {value}" in str(error)
        )
        # The winner's value is the store's from now on, for every gateway.
        won = Layout(database, int(value))
        session_store.run_sync(lambda c, w=won: migrate(c, w))
