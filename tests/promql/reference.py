"""Straightforward one-window-at-a-time versions of Prometheus' float algorithms.

Test oracles for the vectorised engine: each follows Prometheus' loop sample by sample (Kahan
sums, Welford, the regression with compensated sums, the smoothing recurrence, Go's sort order
for quantiles, the classic bucket walk), in plain Python floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise


def kahan_add(inc: float, total: float, comp: float) -> tuple[float, float]:
    new = total + inc
    if math.isinf(new):
        return new, 0.0
    if abs(total) >= abs(inc):
        return new, comp + ((total - new) + inc)
    return new, comp + ((inc - new) + total)


def kahan_sum(values: Sequence[float]) -> float:
    total, comp = 0.0, 0.0
    for value in values:
        total, comp = kahan_add(value, total, comp)
    return total + comp


def kahan_mean(values: Sequence[float]) -> float:
    total, comp, mean, count = values[0], 0.0, 0.0, 1.0
    incremental = False
    for i, value in enumerate(values[1:]):
        count = float(i + 2)
        if not incremental:
            new, new_comp = kahan_add(value, total, comp)
            if not math.isinf(new):
                total, comp = new, new_comp
                continue
            incremental = True
            mean = total / (count - 1)
            comp /= count - 1
        shrink = (count - 1) / count
        mean, comp = kahan_add(value / count, shrink * mean, shrink * comp)
    if incremental:
        return mean + comp
    return total / count + comp / count


def variance(values: Sequence[float]) -> float:
    count, mean, mean_c, aux, aux_c = 0.0, 0.0, 0.0, 0.0, 0.0
    for value in values:
        count += 1
        delta = value - (mean + mean_c)
        mean, mean_c = kahan_add(delta / count, mean, mean_c)
        aux, aux_c = kahan_add(delta * (value - (mean + mean_c)), aux, aux_c)
    return (aux + aux_c) / count


def go_sorted(values: Sequence[float]) -> list[float]:
    """Ascending with NaN first (the order of Go's sort over vectorByValueHeap)."""
    return [v for v in values if math.isnan(v)] + sorted(v for v in values if not math.isnan(v))


def quantile(q: float, values: Sequence[float]) -> float:
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = go_sorted(values)
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


def mad(values: Sequence[float]) -> float:
    if any(math.isnan(v) for v in values):
        return math.nan
    median = quantile(0.5, values)
    return quantile(0.5, [abs(v - median) for v in values])


def linear_regression(
    ts: Sequence[int], values: Sequence[float], intercept_ms: int
) -> tuple[float, float]:
    """Least squares slope per second and intercept at `intercept_ms`, with Kahan sums."""
    if all(v == values[0] for v in values[1:]):
        if math.isinf(values[0]):
            return math.nan, math.nan
        return 0.0, values[0]
    n = 0.0
    sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    for t, v in zip(ts, values, strict=True):
        n += 1
        x = (t - intercept_ms) / 1e3
        sx, cx = kahan_add(x, sx, cx)
        sy, cy = kahan_add(v, sy, cy)
        sxy, cxy = kahan_add(x * v, sxy, cxy)
        sx2, cx2 = kahan_add(x * x, sx2, cx2)
    sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
    cov = sxy - sx * sy / n
    var = sx2 - sx * sx / n
    slope = cov / var
    return slope, sy / n - slope * sx / n


def smooth(values: Sequence[float], sf: float, tf: float) -> float:
    level, trend, previous = values[0], values[1] - values[0], 0.0
    for i in range(1, len(values)):
        if i > 1:
            trend = tf * (level - previous) + (1 - tf) * trend
        previous, level = level, sf * values[i] + (1 - sf) * (level + trend)
    return level


def ts_of_extreme(ts: Sequence[int], values: Sequence[float], pick_max: bool) -> float:
    best_value, best_ts = values[0], ts[0]
    for t, v in zip(ts, values, strict=True):
        better = v >= best_value if pick_max else v <= best_value
        if better or math.isnan(best_value):
            best_value, best_ts = v, t
    return best_ts / 1000.0


Buckets = list[tuple[float, float]]


def _almost_equal(a: float, b: float, epsilon: float) -> bool:
    if a == b:
        return True
    diff = abs(a - b)
    total = abs(a) + abs(b)
    if a == 0 or b == 0 or total < 2.2250738585072014e-308:
        return diff < epsilon * 2.2250738585072014e-308
    return diff / min(total, 1.7976931348623157e308) < epsilon


def _coalesce(buckets: Buckets) -> Buckets:
    out: Buckets = []
    for bound, count in sorted(buckets, key=lambda b: b[0]):
        if out and out[-1][0] == bound:
            out[-1] = (bound, out[-1][1] + count)
        else:
            out.append((bound, count))
    return out


def bucket_quantile(q: float, raw: Buckets) -> tuple[float, bool]:
    """The quantile of classic buckets and whether monotonicity had to be forced."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    buckets = _coalesce(raw)
    if not buckets or buckets[-1][0] != math.inf:
        return math.nan, False
    forced = False
    fixed: Buckets = [buckets[0]]
    prev = buckets[0][1]
    for bound, count in buckets[1:]:
        if count == prev:
            fixed.append((bound, count))
        elif _almost_equal(prev, count, 1e-12) or count < prev:
            forced = forced or (count < prev and not _almost_equal(prev, count, 1e-12))
            fixed.append((bound, prev))
        else:
            fixed.append((bound, count))
            prev = count
    buckets = fixed
    if len(buckets) < 2:
        return math.nan, forced
    total = buckets[-1][1]
    if total == 0 or math.isnan(total):
        return math.nan, forced
    rank = q * total
    b = next((i for i in range(len(buckets) - 1) if buckets[i][1] >= rank), len(buckets) - 1)
    if b == len(buckets) - 1:
        return buckets[-2][0], forced
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0], forced
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * _go_div(rank, count), forced


def _go_div(a: float, b: float) -> float:
    """a / b with IEEE results for b == 0 (as Go computes it; Python raises)."""
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _rank(x: float, buckets: Buckets) -> float:
    if x == -math.inf:
        return 0.0
    if x == math.inf:
        return buckets[-1][1]
    prev_bound, prev_count = (0.0 if buckets[0][0] > 0 else -math.inf), 0.0
    for bound, count in buckets:
        if x <= bound:
            if x <= prev_bound:
                return prev_count
            if prev_bound == -math.inf:
                return count
            if bound == math.inf:
                return prev_count
            return prev_count + (x - prev_bound) / (bound - prev_bound) * (count - prev_count)
        prev_bound, prev_count = bound, count
    return buckets[-1][1]


def bucket_fraction(lower: float, upper: float, raw: Buckets) -> float:
    buckets = _coalesce(raw)
    if not buckets or buckets[-1][0] != math.inf:
        return math.nan
    total = buckets[-1][1]
    if total == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    return (_rank(upper, buckets) - _rank(lower, buckets)) / total


def extrapolated_rate(
    ts: Sequence[int], values: Sequence[float], end_ms: int, range_ms: int,
    is_counter: bool, is_rate: bool,
) -> float:
    """rate / increase / delta of one window (t - range, t], as Prometheus extrapolates."""
    result = values[-1] - values[0]
    if is_counter:
        for prev, cur in pairwise(values):
            if cur < prev:
                result += prev
    start_ms = end_ms - range_ms
    to_start = (ts[0] - start_ms) / 1000.0
    to_end = (end_ms - ts[-1]) / 1000.0
    sampled = (ts[-1] - ts[0]) / 1000.0
    average = sampled / (len(ts) - 1)
    threshold = average * 1.1
    if to_start >= threshold:
        to_start = average / 2
    if to_end >= threshold:
        to_end = average / 2
    if is_counter and result > 0 and values[0] >= 0:
        to_start = min(to_start, sampled * (values[0] / result))
    factor = (sampled + to_start + to_end) / sampled
    if is_rate:
        factor /= range_ms / 1000.0
    return result * factor
