"""The known-series map: lookups, widening time spans, refresh and eviction."""

from __future__ import annotations

import numpy as np

from gateway.ingest.known_series import (
    LAST_SEEN_REFRESH_MS,
    KnownSeries,
    Registered,
    needs_registration,
)


def test_lookup_finds_remembered_series_of_the_tenant_only() -> None:
    known = KnownSeries(100)
    known.remember("a", [Registered(11, 1011, 1_000, 2_000), Registered(12, 1012, 5, 6)])
    found = known.lookup("a", [12, 13, 11])
    assert found.found.tolist() == [True, False, True]
    assert found.series_ids.tolist()[0::2] == [1012, 1011]
    assert found.first_ms.tolist()[0::2] == [5, 1_000]
    assert not known.lookup("b", [11, 12]).found.any()
    assert len(known) == 2


def test_remembering_again_widens_the_span() -> None:
    known = KnownSeries(100)
    known.remember("a", [Registered(1, 101, 1_000, 2_000)])
    known.remember("a", [Registered(1, 101, 500, 1_500), Registered(1, 101, 1_200, 9_000)])
    found = known.lookup("a", [1])
    assert (found.first_ms.tolist(), found.last_ms.tolist()) == ([500], [9_000])
    assert len(known) == 1


def test_samples_outside_the_stored_span_need_registration() -> None:
    known = KnownSeries(100)
    known.remember("a", [Registered(d, 100 + d, 10_000_000, 20_000_000) for d in range(4)])
    cached = known.lookup("a", [0, 1, 2, 3, 4])
    first = np.array([10_000_000, 9_999_999, 15_000_000, 12_000_000, 1], np.int64)
    last = np.array(
        [20_000_000, 20_000_000, 20_000_000 + LAST_SEEN_REFRESH_MS // 4,
         20_000_000 + LAST_SEEN_REFRESH_MS + 1, 2],
        np.int64,
    )
    stale = needs_registration(cached, first, last, cached.series_ids)
    # 1 is backfilled, 3 is newer than any refresh threshold; 2 is within it; 4 is unknown.
    assert stale.tolist() == [False, True, False, True, False]


def test_refresh_thresholds_are_spread_over_series() -> None:
    known = KnownSeries(10_000)
    digests = list(range(1000))
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 2**63, size=1000).astype(np.uint64)
    known.remember("a", [Registered(d, int(i), 0, 0) for d, i in zip(digests, ids, strict=True)])
    cached = known.lookup("a", digests)
    first = np.zeros(1000, np.int64)
    half_way = np.full(1000, LAST_SEEN_REFRESH_MS * 3 // 4, np.int64)
    share = needs_registration(cached, first, half_way, cached.series_ids).mean()
    assert 0.3 < share < 0.7
    never = np.full(1000, LAST_SEEN_REFRESH_MS // 2, np.int64)
    assert not needs_registration(cached, first, never, cached.series_ids).any()


def test_the_map_is_bounded_and_keeps_the_newest() -> None:
    known = KnownSeries(1000)
    for batch in range(12):
        known.remember("a", [Registered(batch * 100 + i, i, 0, 0) for i in range(100)])
    assert len(known) <= 1000
    found = known.lookup("a", [0, 1199, 1100, 300])
    assert found.found.tolist() == [False, True, True, True]
    assert found.series_ids.tolist()[1:] == [99, 0, 0]
    known.forget_tenant("a")
    assert len(known) == 0 and not known.lookup("a", [1199]).found.any()


def test_a_zero_sized_map_remembers_nothing() -> None:
    known = KnownSeries(0)
    known.remember("a", [Registered(1, 2, 3, 4)])
    assert len(known) == 0 and not known.lookup("a", [1]).found.any()
