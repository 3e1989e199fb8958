"""Schema creation, versioning and the Python/ClickHouse hash agreement, on the real engine."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model.labels import Labels, series_hash, validate_labels
from gateway.storage.clickhouse import ClickHouse, SchemaError, migrate, schema_version
from gateway.storage.schema import SCHEMA_VERSION, SERIES_HASH_SQL, Layout
from gateway.storage.writer import NewSeries, WriteBatch, write_batch


def fresh_layout(shards: int = 2) -> Layout:
    return Layout(database=f"schema_{uuid.uuid4().hex[:10]}", sample_shards=shards)


def test_migrate_creates_every_table_and_is_idempotent(session_store: ClickHouse) -> None:
    layout = fresh_layout()
    assert session_store.run_sync(lambda c: migrate(c, layout)) == 0
    assert session_store.run_sync(lambda c: migrate(c, layout)) == SCHEMA_VERSION
    tables = session_store.run_sync(
        lambda c: {
            row[0]
            for row in c.query(
                "SELECT name FROM system.tables WHERE database = {db:String}",
                parameters={"db": layout.database},
            ).result_rows
        }
    )
    assert tables == {
        "schema_migrations",
        "series",
        "series_labels",
        "samples_0",
        "samples_1",
        "metadata",
        "settings",
        "series_activity",
        "limits_overrides",
        "limits_audit",
    }
    assert session_store.run_sync(lambda c: schema_version(c, layout)) == SCHEMA_VERSION


def test_shard_count_cannot_change_once_created(session_store: ClickHouse) -> None:
    layout = fresh_layout(2)
    session_store.run_sync(lambda c: migrate(c, layout))
    changed = Layout(database=layout.database, sample_shards=3)
    with pytest.raises(Exception, match="sample_shards is 3 in the configuration but 2"):
        session_store.run_sync(lambda c: migrate(c, changed))


def test_newer_schema_is_refused(session_store: ClickHouse) -> None:
    layout = fresh_layout()
    session_store.run_sync(lambda c: migrate(c, layout))
    session_store.run_sync(
        lambda c: c.command(f"INSERT INTO {layout.migrations_table} (version) VALUES (99)")
    )
    with pytest.raises(SchemaError, match="newer than this gateway"):
        session_store.run_sync(lambda c: migrate(c, layout))


def test_retention_adds_a_ttl() -> None:
    from gateway.storage.schema import migrations

    ddl = "\n".join(migrations(Layout("db", 1, retention_days=30))[1])
    assert "TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE" in ddl
    assert "TTL" not in "\n".join(migrations(Layout("db", 1))[1])


text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.dictionaries(text, text, min_size=1, max_size=5), min_size=1, max_size=8))
def test_python_and_clickhouse_compute_the_same_series_hash(
    session_store: ClickHouse, label_sets: list[dict[str, str]]
) -> None:
    sets: list[Labels] = [
        validate_labels([(k.encode(), v.encode()) for k, v in labels.items()])
        for labels in label_sets
    ]
    table = pa.table(
        {"labels": pa.array([list(s) for s in sets], pa.map_(pa.string(), pa.string()))}
    )
    got = session_store.run_sync(lambda c: _hashes_in_clickhouse(c, table))
    assert got == [series_hash(s) for s in sets]


def _hashes_in_clickhouse(client: object, table: pa.Table) -> list[int]:
    database = f"hash_{uuid.uuid4().hex[:8]}"
    client.command(f"CREATE DATABASE {database}")  # type: ignore[attr-defined]
    try:
        client.command(  # type: ignore[attr-defined]
            f"CREATE TABLE {database}.t (n UInt32, labels Map(String, String)) "
            "ENGINE = MergeTree ORDER BY n"
        )
        numbered = table.append_column("n", pa.array(range(table.num_rows), pa.uint32()))
        client.insert_arrow(f"{database}.t", numbered)  # type: ignore[attr-defined]
        rows = client.query(  # type: ignore[attr-defined]
            f"SELECT {SERIES_HASH_SQL} AS h FROM {database}.t ORDER BY n"
        ).result_rows
        return [int(row[0]) for row in rows]
    finally:
        client.command(f"DROP DATABASE {database}")  # type: ignore[attr-defined]


def test_stored_series_rows_hash_to_their_id(session_store: ClickHouse) -> None:
    layout = fresh_layout(1)
    session_store.run_sync(lambda c: migrate(c, layout))
    labels = validate_labels([(b"__name__", b"up"), (b"job", "ü'\\\"{}".encode())])
    sid = series_hash(labels)
    batch = WriteBatch(samples=[], series=[NewSeries("t", sid, labels, 1, 2)], metadata=[])
    session_store.run_sync(lambda c: write_batch(c, layout, batch))
    rows = session_store.run_sync(
        lambda c: (
            c.query(
                f"SELECT series_id, {SERIES_HASH_SQL} AS h FROM {layout.series_table}"
            ).result_rows
        )
    )
    assert rows == [(sid, sid)]


def test_sample_tables_merge_with_the_wider_selector_base(session_store: ClickHouse) -> None:
    layout = fresh_layout()
    session_store.run_sync(lambda c: migrate(c, layout))
    for table in layout.samples_tables:
        create = session_store.run_sync(lambda c, t=table: c.command(f"SHOW CREATE TABLE {t}"))
        assert "merge_selector_base = 10" in create, create
