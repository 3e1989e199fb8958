"""`storage.retention_days` follows the configuration on an existing store, on the real engine."""

from __future__ import annotations

import logging
import time
import uuid

import numpy as np
import pytest

from gateway.model.labels import series_hash, validate_labels
from gateway.storage.clickhouse import ClickHouse, migrate
from gateway.storage.retention import apply_retention, ttl_days
from gateway.storage.schema import Layout
from gateway.storage.store_settings import read_settings
from gateway.storage.writer import TenantSamples, WriteBatch, write_batch

DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("engine_full", "days"),
    [
        ("ReplacingMergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (tenant, series_id, "
         "timestamp) TTL toDateTime(timestamp) + toIntervalDay(30) SETTINGS index_granularity = "
         "8192", 30),
        ("ReplacingMergeTree ORDER BY x TTL toDateTime(timestamp) + INTERVAL 7 DAY DELETE", 7),
        ("ReplacingMergeTree ORDER BY (tenant, series_id, timestamp) SETTINGS a = 1", 0),
        ("ReplacingMergeTree ORDER BY x", 0),
        ("MergeTree ORDER BY x TTL toDateTime(timestamp) + toIntervalHour(1) SETTINGS a = 1", None),
    ],
)
def test_the_retention_a_table_has_is_read_from_its_engine(
    engine_full: str, days: int | None
) -> None:
    assert ttl_days(engine_full) == days


def create_statements(store: ClickHouse, layout: Layout) -> dict[str, str]:
    """SHOW CREATE TABLE of every sample table."""
    return {
        table: store.run_sync(lambda c, t=table: str(c.command(f"SHOW CREATE TABLE {t}")))
        for table in layout.samples_tables
    }


def retention_record(store: ClickHouse, layout: Layout) -> str:
    return store.run_sync(lambda c: read_settings(c, layout))["retention_days"].last


def write_aged_samples(store: ClickHouse, layout: Layout) -> None:
    """One sample 10 days old and one 1 day old in every sample table."""
    now = int(time.time() * 1000)
    parts = []
    for shard in range(layout.sample_shards):
        instance = 0
        while True:  # a series whose samples land in `shard`
            labels = validate_labels([(b"__name__", b"up"), (b"i", b"%d-%d" % (shard, instance))])
            if series_hash(labels) % layout.sample_shards == shard:
                break
            instance += 1
        ids = np.full(2, series_hash(labels), np.uint64)
        stamps = np.array([now - 10 * DAY_MS, now - DAY_MS], np.int64)
        parts.append(TenantSamples("t", ids, stamps, np.array([1.0, 2.0])))
    store.run_sync(lambda c: write_batch(c, layout, WriteBatch(parts, [], [])))


def sample_ages_after_merge(store: ClickHouse, layout: Layout) -> list[list[int]]:
    """Per sample table, the samples' ages in days once a merge has applied the TTL."""
    now = int(time.time() * 1000)
    ages = []
    for table in layout.samples_tables:
        store.run_sync(lambda c, t=table: c.command(f"OPTIMIZE TABLE {t} FINAL"))
        rows = store.run_sync(
            lambda c, t=table: c.query(
                f"SELECT toUnixTimestamp64Milli(timestamp) FROM {t} ORDER BY timestamp"
            ).result_rows
        )
        ages.append([round((now - row[0]) / DAY_MS) for row in rows])
    return ages


def test_retention_set_changed_and_removed_on_an_existing_store(
    session_store: ClickHouse, caplog: pytest.LogCaptureFixture
) -> None:
    database = f"retention_{uuid.uuid4().hex[:10]}"
    caplog.set_level(logging.INFO, logger="gateway.storage.retention")

    kept_30 = Layout(database, 2, retention_days=30)
    session_store.run_sync(lambda c: migrate(c, kept_30))
    for statement in create_statements(session_store, kept_30).values():
        assert "TTL toDateTime(timestamp) + toIntervalDay(30)" in statement
    assert retention_record(session_store, kept_30) == "30"
    assert not caplog.records  # created with it: nothing to change
    write_aged_samples(session_store, kept_30)
    assert sample_ages_after_merge(session_store, kept_30) == [[10, 1], [10, 1]]

    kept_7 = Layout(database, 2, retention_days=7)
    session_store.run_sync(lambda c: migrate(c, kept_7))
    for statement in create_statements(session_store, kept_7).values():
        assert "TTL toDateTime(timestamp) + toIntervalDay(7)" in statement
        assert "toIntervalDay(30)" not in statement
    assert retention_record(session_store, kept_7) == "7"
    (message,) = [r.getMessage() for r in caplog.records]
    assert "samples_0, samples_1 had 30 days, now 7 days" in message
    # Samples written before the change are deleted by it too.
    assert sample_ages_after_merge(session_store, kept_7) == [[1], [1]]

    caplog.clear()
    forever = Layout(database, 2, retention_days=0)
    session_store.run_sync(lambda c: migrate(c, forever))
    for statement in create_statements(session_store, forever).values():
        assert "TTL" not in statement
    assert retention_record(session_store, forever) == "0"
    (message,) = [r.getMessage() for r in caplog.records]
    assert "had 7 days, now no TTL (samples are kept forever)" in message

    caplog.clear()
    rows_before = session_store.run_sync(
        lambda c: c.command(f"SELECT count() FROM {forever.settings_table}")
    )
    session_store.run_sync(lambda c: migrate(c, forever))  # unchanged: no ALTER, no new record
    assert not caplog.records
    assert session_store.run_sync(
        lambda c: c.command(f"SELECT count() FROM {forever.settings_table}")
    ) == rows_before


def test_only_tables_that_differ_are_altered(session_store: ClickHouse) -> None:
    layout = Layout(f"retention_{uuid.uuid4().hex[:10]}", 3, retention_days=30)
    session_store.run_sync(lambda c: migrate(c, layout))
    session_store.run_sync(
        lambda c: c.command(
            f"ALTER TABLE {layout.samples_table(1)} "
            "MODIFY TTL toDateTime(timestamp) + toIntervalHour(1)"
        )
    )
    session_store.run_sync(
        lambda c: c.command(f"ALTER TABLE {layout.samples_table(2)} REMOVE TTL")
    )
    changed = session_store.run_sync(lambda c: apply_retention(c, layout, "test"))
    assert changed == [1, 2]
    for statement in create_statements(session_store, layout).values():
        assert "TTL toDateTime(timestamp) + toIntervalDay(30)" in statement
    assert session_store.run_sync(lambda c: apply_retention(c, layout, "test")) == []


def test_a_store_without_a_retention_record_gets_one(session_store: ClickHouse) -> None:
    # Stores created before retention was recorded: their TTL is read, not assumed.
    layout = Layout(f"retention_{uuid.uuid4().hex[:10]}", 1, retention_days=14)
    session_store.run_sync(lambda c: migrate(c, layout))
    session_store.run_sync(
        lambda c: c.command(
            f"ALTER TABLE {layout.settings_table} DELETE WHERE name = 'retention_days'",
            settings={"mutations_sync": 1},
        )
    )
    assert session_store.run_sync(lambda c: apply_retention(c, layout, "test")) == []
    assert retention_record(session_store, layout) == "14"
