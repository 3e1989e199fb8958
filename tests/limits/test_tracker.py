"""The active-series tracker: vectorised lookups, budgets' counts, expiry, persistence marks."""

from __future__ import annotations

import numpy as np

from gateway.limits.rate import NEVER, RateLimiter, retry_after_header
from gateway.limits.tracker import ActiveSeriesTracker


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


def test_add_touch_and_counts() -> None:
    tracker = ActiveSeriesTracker(3600, Clock())
    tracker.add("a", [30, 10, 20], ["m1", "m2", "m1"])
    assert tracker.count("a") == 3 and tracker.count("b") == 0
    assert tracker.metric_count("a", "m1") == 2
    assert tracker.metric_counts("a") == {"m1": 2, "m2": 1}
    found = tracker.touch("a", ids(10, 11, 30, 2**64 - 1))
    assert found.tolist() == [True, False, True, False]
    assert tracker.touch("b", ids(10)).tolist() == [False]


def test_expiry_keeps_recent_series() -> None:
    clock = Clock()
    tracker = ActiveSeriesTracker(3600, clock)
    tracker.add("a", [1, 2], ["m", "m"])
    clock.now += 1800
    tracker.touch("a", ids(2))
    clock.now += 1860  # series 1 last seen 61 minutes ago
    tracker.expire()
    assert tracker.count("a") == 1 and tracker.metric_count("a", "m") == 1
    clock.now += 3700
    tracker.expire()
    assert tracker.tenants() == []


def test_merge_is_a_union_with_the_latest_minute() -> None:
    clock = Clock()
    tracker = ActiveSeriesTracker(3600, clock)
    tracker.add("a", [5, 7], ["m", "n"])
    minute = tracker.minute()
    tracker.merge(
        "a", ids(5, 6, 9), np.array([minute - 1, minute, minute], np.uint32),
        np.array([0, 1, 1], np.uint32), ["m", "other"],
    )
    assert tracker.count("a") == 4
    assert tracker.metric_counts("a") == {"m": 1, "n": 1, "other": 2}
    # Storage has 5 (a minute old: within the resolution) and 6, 9: only 7 is due.
    due = tracker.unpersisted(5)
    assert [sorted(row.series_ids.tolist()) for row in due] == [[7]]
    tracker.mark_persisted(due)
    assert tracker.unpersisted(5) == []
    clock.now += 5 * 60
    tracker.touch("a", ids(7))
    assert [row.series_ids.tolist() for row in tracker.unpersisted(5)] == [[7]]


def test_memory_is_about_twenty_bytes_per_series() -> None:
    tracker = ActiveSeriesTracker(3600, Clock())
    count = 100_000
    tracker.add("a", list(range(1, count + 1)), ["m"] * count)
    assert tracker.memory_bytes() <= 21 * count


def test_token_bucket() -> None:
    clock = Clock(0.0)
    limiter = RateLimiter(clock=clock)
    assert limiter.take("a", 100, rate=100, burst=200) == 0.0
    assert limiter.take("a", 100, rate=100, burst=200) == 0.0
    wait = limiter.take("a", 50, rate=100, burst=200)
    assert 0.4 < wait <= 0.5
    assert retry_after_header(wait) == "1"
    clock.now += 0.5
    assert limiter.take("a", 50, rate=100, burst=200) == 0.0
    assert limiter.take("b", 10, rate=0, burst=0) == 0.0  # unlimited
    assert limiter.take("c", 1000, rate=100, burst=200) == NEVER  # never fits, not a wait


def test_lookups_agree_with_isin_while_the_index_grows() -> None:
    rng = np.random.default_rng(3)
    tracker = ActiveSeriesTracker(3600, Clock())
    every = rng.permutation(np.unique(rng.integers(1, 2**64 - 1, 20_000, dtype=np.uint64)))
    for first in range(0, len(every), 777):
        chunk = every[first : first + 777]
        tracker.touch("t", chunk[:10])  # builds or uses the bucket index
        tracker.add("t", chunk.tolist(), ["m"] * len(chunk))
        seen = every[: first + len(chunk)]
        probe = np.concatenate(
            [
                seen[rng.integers(0, len(seen), 300)],
                rng.integers(0, 2**64 - 1, 300, dtype=np.uint64),
                ids(0, 2**64 - 1),
            ]
        )
        assert tracker.touch("t", probe).tolist() == np.isin(probe, seen).tolist()
