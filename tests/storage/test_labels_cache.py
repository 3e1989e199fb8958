"""The series labels cache: its own rules, and selections through it equal selections without."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.model.labels import Labels
from gateway.model.matchers import Matcher
from gateway.model.series import SeriesData
from gateway.storage.clickhouse import ClickHouse
from gateway.storage.labels_cache import SeriesLabelsCache
from gateway.storage.sample_reader import SelectLimits, select_series
from gateway.storage.schema import Layout
from tests.storage.test_sample_reader import T0, stored  # noqa: F401  (the stored fixture)

END = T0 + 10 * 15_000
UP = Matcher.of("__name__", "=", "up")


def _labels(job: str) -> Labels:
    return (("__name__", "up"), ("job", job))


def test_lookup_finds_what_was_remembered_per_tenant() -> None:
    seen: list[tuple[int, int]] = []
    cache = SeriesLabelsCache(10, lambda hits, misses: seen.append((hits, misses)))
    cache.remember("a", {1: _labels("api"), 2: _labels("web")})
    assert cache.lookup("a", [1, 2, 3]) == ({1: _labels("api"), 2: _labels("web")}, [3])
    # The same id in another tenant is another entry.
    assert cache.lookup("b", [1]) == ({}, [1])
    assert seen == [(2, 1), (0, 1)]
    assert len(cache) == 2


def test_least_recently_used_leave_first() -> None:
    cache = SeriesLabelsCache(2)
    cache.remember("a", {1: _labels("one"), 2: _labels("two")})
    cache.lookup("a", [1])  # 1 is used again, so 2 is the oldest
    cache.remember("a", {3: _labels("three")})
    found, missing = cache.lookup("a", [1, 2, 3])
    assert sorted(found) == [1, 3] and missing == [2]


def test_size_zero_keeps_nothing() -> None:
    seen: list[tuple[int, int]] = []
    cache = SeriesLabelsCache(0, lambda hits, misses: seen.append((hits, misses)))
    cache.remember("a", {1: _labels("api")})
    assert cache.lookup("a", [1]) == ({}, [1])
    assert len(cache) == 0 and seen == [(0, 1)]


def _select(
    store: ClickHouse,
    layout: Layout,
    tenant: str,
    matchers: list[Matcher],
    cache: SeriesLabelsCache | None,
    **options: object,
) -> list[SeriesData]:
    return store.run_sync(
        lambda c: select_series(
            c, layout, tenant, matchers, T0, END, labels_cache=cache, **options  # type: ignore[arg-type]
        )
    )


def _same(got: list[SeriesData], want: list[SeriesData]) -> None:
    assert [s.labels for s in got] == [s.labels for s in want]
    for one, other in zip(got, want, strict=True):
        assert one.timestamps.tolist() == other.timestamps.tolist()
        assert one.values.tolist() == other.values.tolist()


@pytest.mark.parametrize(
    "matchers",
    [
        [UP],
        [UP, Matcher.of("job", "=~", "api|web")],
        [UP, Matcher.of("instance", "!=", "0")],
        [Matcher.of("job", "=", "db")],
        [UP, Matcher.of("job", "=", "nothing")],
    ],
    ids=["all", "regex", "not-equal", "no-name", "none"],
)
def test_selections_through_the_cache_equal_those_without(
    session_store: ClickHouse, stored: Layout, matchers: list[Matcher]  # noqa: F811
) -> None:
    counts: list[tuple[int, int]] = []
    cache = SeriesLabelsCache(1000, lambda hits, misses: counts.append((hits, misses)))
    want = _select(session_store, stored, "a", matchers, None)
    cold = _select(session_store, stored, "a", matchers, cache)
    warm = _select(session_store, stored, "a", matchers, cache)
    _same(cold, want)
    _same(warm, want)
    assert counts == [(0, len(want)), (len(want), 0)]
    series_only = _select(session_store, stored, "a", matchers, cache, with_samples=False)
    assert [s.labels for s in series_only] == [s.labels for s in want]


def test_a_partly_cached_selection_reads_only_the_missing_labels(
    session_store: ClickHouse, stored: Layout  # noqa: F811
) -> None:
    counts: list[tuple[int, int]] = []
    cache = SeriesLabelsCache(1000, lambda hits, misses: counts.append((hits, misses)))
    api = _select(session_store, stored, "a", [UP, Matcher.of("job", "=", "api")], cache)
    every = _select(session_store, stored, "a", [UP], cache)
    _same(every, _select(session_store, stored, "a", [UP], None))
    assert counts == [(0, len(api)), (len(api), len(every) - len(api))]
    # Tenant b has series with the same labels, hence the same ids: its own entries still.
    other = _select(session_store, stored, "b", [UP], cache)
    assert counts[-1] == (0, len(other))


def test_the_series_limit_holds_with_the_cache(
    session_store: ClickHouse, stored: Layout  # noqa: F811
) -> None:
    cache = SeriesLabelsCache(1000)
    _select(session_store, stored, "a", [UP], cache)  # every label set cached
    with pytest.raises(GatewayError) as refused:
        _select(
            session_store, stored, "a", [UP], cache, limits=SelectLimits(max_series=5)
        )
    assert refused.value.status == 422
    assert "max_fetched_series_per_query" in refused.value.message
