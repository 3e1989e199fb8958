"""Classic histogram math on padded arrays: every histogram (group) at every step at once.

A `Buckets` holds, per group g, its distinct upper bounds sorted ascending (bounds[g, b]) and
per step s the cumulative count of each bucket (counts[g, b, s]); present[g, b, s] tells which
buckets exist at that step (a missing bucket is skipped, as if the series were not there, and
padding buckets are never present). The walks follow Prometheus' BucketQuantile and
BucketFraction over the present buckets in bound order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.promql.functions.compensated import Check
from gateway.promql.types import BOOL, F64, I64

# Counts this close are treated as equal: float noise must not look like a decreasing bucket.
SMALL_DELTA = 1e-12
_MIN_NORMAL = 2.2250738585072014e-308
_MAX_FLOAT = 1.7976931348623157e308


@dataclass(frozen=True, slots=True, eq=False)
class Buckets:
    bounds: F64  # (groups, buckets)
    counts: F64  # (groups, buckets, steps)
    present: BOOL  # (groups, buckets, steps)


def almost_equal(a: F64, b: F64, epsilon: float) -> BOOL:
    """Prometheus' relative float comparison, element-wise."""
    with np.errstate(all="ignore"):
        diff = np.abs(a - b)
        total = np.abs(a) + np.abs(b)
        tiny = (a == 0) | (b == 0) | (total < _MIN_NORMAL)
        near = np.where(
            tiny, diff < epsilon * _MIN_NORMAL, diff / np.minimum(total, _MAX_FLOAT) < epsilon
        )
    return np.asarray((a == b) | near)


def _take(values: np.ndarray, index: I64) -> np.ndarray:
    """values[g, index[g, s], s] (index clipped into range)."""
    safe = np.clip(index, 0, values.shape[1] - 1)
    return np.take_along_axis(values, safe[:, None, :], axis=1)[:, 0, :]


@dataclass(frozen=True, slots=True, eq=False)
class _Walk:
    """Where the present buckets are: per (group, step) the first and last present bucket,
    and per bucket the previous present one (-1 for none)."""

    first: I64
    last: I64
    previous: I64
    count: I64

    @staticmethod
    def of(present: BOOL) -> _Walk:
        positions = np.arange(present.shape[1], dtype=np.int64)[None, :, None]
        seen = np.maximum.accumulate(np.where(present, positions, -1), axis=1)
        previous = np.concatenate([np.full_like(seen[:, :1], -1), seen[:, :-1]], axis=1)
        return _Walk(
            np.argmax(present, axis=1).astype(np.int64),
            seen[:, -1],
            previous,
            present.sum(axis=1).astype(np.int64),
        )


def _bounds3(buckets: Buckets) -> F64:
    shape = buckets.counts.shape
    return np.broadcast_to(buckets.bounds[:, :, None], shape)


def _monotonic(buckets: Buckets, check: Check) -> tuple[F64, BOOL]:
    """Counts made non-decreasing bucket by bucket (ignoring float noise), and where a real
    decrease had to be removed. One pass per bucket position, across all groups and steps."""
    counts, present = buckets.counts, buckets.present
    fixed = counts.copy()
    forced = np.zeros((counts.shape[0], counts.shape[2]), dtype=np.bool_)
    prev = np.zeros_like(forced, dtype=np.float64)
    started = np.zeros_like(forced)
    with np.errstate(invalid="ignore"):
        for b in range(counts.shape[1]):
            check()
            here, cur = present[:, b], counts[:, b]
            later = here & started
            equal = cur == prev
            noise = almost_equal(prev, cur, SMALL_DELTA)
            lower = cur < prev
            hold = later & ~equal & (noise | lower)
            forced |= hold & lower & ~noise
            fixed[:, b] = np.where(hold, prev, cur)
            grows = here & ~(later & (equal | noise | lower))
            prev = np.where(grows, cur, prev)
            started |= here
    return fixed, forced


def quantiles(q: F64, buckets: Buckets, check: Check) -> tuple[F64, BOOL, BOOL]:
    """(value, defined, monotonicity forced) per (group, step) for quantile q[step]."""
    if buckets.counts.shape[1] == 0:
        none = np.zeros((buckets.counts.shape[0], len(q)), dtype=np.bool_)
        return np.zeros(none.shape), none, none
    present = buckets.present
    has_any = np.asarray(present.any(axis=1), dtype=np.bool_)
    walk = _Walk.of(present)
    bounds = _bounds3(buckets)
    fixed, forced = _monotonic(buckets, check)
    last_bound = _take(bounds, walk.last)
    with np.errstate(all="ignore"):
        total = _take(fixed, walk.last)
        rank = q[None, :] * total
        positions = np.arange(present.shape[1])[None, :, None]
        hit = present & (positions != walk.last[:, None, :]) & (fixed >= rank[:, None, :])
        found = hit.any(axis=1)
        b = np.where(found, np.argmax(hit, axis=1), walk.last)
        before = _take(walk.previous, b)
        bound_b = _take(bounds, b)
        at_first = b == walk.first
        start = np.where(at_first, 0.0, _take(bounds, before))
        below = np.where(at_first, 0.0, _take(fixed, before))
        width = _take(fixed, b) - below
        value = start + (bound_b - start) * ((rank - below) / width)
        value = np.where(at_first & (bound_b <= 0), bound_b, value)
        # Past every finite bucket: the largest finite upper bound.
        value = np.where(found, value, _take(bounds, _take(walk.previous, walk.last)))
        bad = (last_bound != np.inf) | (walk.count < 2) | (total == 0) | np.isnan(total)
        value = np.where(bad, np.nan, value)
        qs = np.broadcast_to(q[None, :], value.shape)
        value = np.where(qs < 0, -np.inf, np.where(qs > 1, np.inf, value))
        value = np.where(np.isnan(qs), np.nan, value)
    # The fix-up only ran when the quantile was in range and the +Inf bucket there.
    walked = (last_bound == np.inf) & (qs >= 0) & (qs <= 1)
    return np.asarray(value, dtype=np.float64), has_any, np.asarray(forced & walked)


def _rank(x: F64, buckets: Buckets, walk: _Walk) -> F64:
    """Observations at or below x[step], interpolating inside finite buckets (raw counts)."""
    present, counts = buckets.present, buckets.counts
    bounds = _bounds3(buckets)
    xs = np.broadcast_to(x[None, :], walk.first.shape)
    with np.errstate(all="ignore"):
        hit = present & (xs[:, None, :] <= bounds)
        i = np.where(hit.any(axis=1), np.argmax(hit, axis=1), walk.last)
        before = _take(walk.previous, i)
        at_first = i == walk.first
        first_bound = _take(bounds, walk.first)
        prev_bound = np.where(
            at_first, np.where(first_bound > 0, 0.0, -np.inf), _take(bounds, before)
        )
        prev_count = np.where(at_first, 0.0, _take(counts, before))
        bound_i, count_i = _take(bounds, i), _take(counts, i)
        inside = prev_count + (xs - prev_bound) / (bound_i - prev_bound) * (count_i - prev_count)
        out = np.where(bound_i == np.inf, prev_count, inside)
        out = np.where(prev_bound == -np.inf, count_i, out)
        out = np.where(xs <= prev_bound, prev_count, out)
        total = _take(counts, walk.last)
        out = np.where(xs == np.inf, total, np.where(xs == -np.inf, 0.0, out))
    return np.asarray(out)


def fractions(lower: F64, upper: F64, buckets: Buckets) -> tuple[F64, BOOL]:
    """(share of observations in [lower, upper], defined) per (group, step)."""
    if buckets.counts.shape[1] == 0:
        none = np.zeros((buckets.counts.shape[0], len(lower)), dtype=np.bool_)
        return np.zeros(none.shape), none
    walk = _Walk.of(buckets.present)
    has_any = np.asarray(buckets.present.any(axis=1), dtype=np.bool_)
    total = _take(buckets.counts, walk.last)
    last_bound = _take(_bounds3(buckets), walk.last)
    lo = np.broadcast_to(lower[None, :], total.shape)
    hi = np.broadcast_to(upper[None, :], total.shape)
    with np.errstate(all="ignore"):
        value = (_rank(upper, buckets, walk) - _rank(lower, buckets, walk)) / total
        value = np.where(lo >= hi, 0.0, value)
        bad = (total == 0) | np.isnan(lo) | np.isnan(hi)
        value = np.where(bad, np.nan, value)
        value = np.where(last_bound != np.inf, np.nan, value)
    return np.asarray(value, dtype=np.float64), has_any
