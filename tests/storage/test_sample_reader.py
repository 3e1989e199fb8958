"""Selecting series and samples from the real engine: matchers, time bounds, duplicates, limits."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from gateway.errors import GatewayError
from gateway.model.labels import series_hash, validate_labels
from gateway.model.matchers import Matcher
from gateway.storage.clickhouse import ClickHouse, migrate
from gateway.storage.sample_reader import ClickHouseSeriesSource, SelectLimits, select_series
from gateway.storage.schema import Layout
from gateway.storage.writer import NewSeries, TenantSamples, WriteBatch, write_batch

T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def stored(session_store: ClickHouse) -> Layout:
    layout = Layout(database=f"reader_{uuid.uuid4().hex[:10]}", sample_shards=3)
    session_store.run_sync(lambda c: migrate(c, layout))
    batches = []
    for tenant in ("a", "b"):
        series, samples = [], []
        for job in ("api", "web", "db"):
            for instance in range(4):
                labels = validate_labels(
                    [(b"__name__", b"up"), (b"job", job.encode()), (b"instance", b"%d" % instance)]
                )
                sid = series_hash(labels)
                ts = T0 + np.arange(10, dtype=np.int64) * 15_000
                series.append(NewSeries(tenant, sid, labels, int(ts[0]), int(ts[-1])))
                samples.append(
                    TenantSamples(
                        tenant, np.full(10, sid, np.uint64), ts, np.arange(10.0) + instance
                    )
                )
        batches.append(WriteBatch(samples, series, []))
    for batch in batches + batches[:1]:  # tenant a's batch twice: a retried body
        session_store.run_sync(lambda c, b=batch: write_batch(c, layout, b))
    return layout


def select(
    store: ClickHouse,
    layout: Layout,
    tenant: str,
    *matchers: Matcher,
    start: int = T0,
    end: int = T0 + 10 * 15_000,
    limits: SelectLimits | None = None,
):  # type: ignore[no-untyped-def]
    return store.run_sync(
        lambda c: select_series(
            c, layout, tenant, list(matchers), start, end, limits or SelectLimits()
        )
    )


def test_selects_by_matchers_sorted_by_labels(session_store: ClickHouse, stored: Layout) -> None:
    found = select(
        session_store,
        stored,
        "a",
        Matcher.of("__name__", "=", "up"),
        Matcher.of("job", "=~", "api|web"),
        Matcher.of("instance", "!=", "0"),
    )
    assert [dict(s.labels)["job"] + dict(s.labels)["instance"] for s in found] == [
        "api1",
        "web1",
        "api2",
        "web2",
        "api3",
        "web3",
    ]
    assert all(len(s.timestamps) == 10 for s in found)  # the duplicate batch is de-duplicated
    assert found[0].values.tolist() == (np.arange(10.0) + 1).tolist()


def test_time_bounds_are_inclusive(session_store: ClickHouse, stored: Layout) -> None:
    found = select(
        session_store, stored, "a", Matcher.of("job", "=", "db"), start=T0 + 15_000, end=T0 + 45_000
    )
    assert len(found) == 4
    assert found[0].timestamps.tolist() == [T0 + 15_000, T0 + 30_000, T0 + 45_000]


def test_tenants_never_see_each_other(session_store: ClickHouse, stored: Layout) -> None:
    assert len(select(session_store, stored, "b", Matcher.of("job", "=", "db"))) == 4
    assert select(session_store, stored, "c", Matcher.of("job", "=", "db")) == []


def test_limits_raise_422(session_store: ClickHouse, stored: Layout) -> None:
    with pytest.raises(GatewayError) as caught:
        select(
            session_store,
            stored,
            "a",
            Matcher.of("__name__", "=", "up"),
            limits=SelectLimits(max_series=5),
        )
    assert caught.value.status == 422 and "max_fetched_series_per_query" in caught.value.message
    with pytest.raises(GatewayError) as caught:
        select(
            session_store,
            stored,
            "a",
            Matcher.of("__name__", "=", "up"),
            limits=SelectLimits(max_samples=50),
        )
    assert caught.value.status == 422


async def test_source_adapter(session_store: ClickHouse, stored: Layout) -> None:
    source = ClickHouseSeriesSource(session_store, stored, "a", SelectLimits())
    found = await source.select([Matcher.of("instance", "=", "3")], T0, T0)
    assert len(found) == 3 and all(s.timestamps.tolist() == [T0] for s in found)


def test_series_without_samples_in_range(session_store: ClickHouse, stored: Layout) -> None:
    """Series alive in the range but without a sample in it select as nothing (no error)."""
    up = Matcher.of("__name__", "=", "up")
    assert select(session_store, stored, "a", up, start=T0 + 1, end=T0 + 14_999) == []
