"""histogram_quantile and histogram_fraction over classic `le` buckets."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gateway.model.labels import Labels, metric_name
from gateway.promql.context import go_float
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.types import F64, Vector

BUCKET_LABEL = "le"
# Counts this close are treated as equal: float noise must not look like a decreasing bucket.
_SMALL_DELTA = 1e-12

Buckets = list[tuple[float, float]]  # (upper bound, cumulative count), sorted by bound


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


def _monotonic(buckets: Buckets) -> tuple[Buckets, bool]:
    forced = False
    out: Buckets = [buckets[0]]
    prev = buckets[0][1]
    for bound, count in buckets[1:]:
        if count == prev:
            out.append((bound, count))
        elif _almost_equal(prev, count, _SMALL_DELTA) or count < prev:
            forced = forced or (count < prev and not _almost_equal(prev, count, _SMALL_DELTA))
            out.append((bound, prev))
        else:
            out.append((bound, count))
            prev = count
    return out, forced


def bucket_quantile(q: float, raw: Buckets) -> tuple[float, bool]:
    """The q-quantile of classic buckets, and whether counts had to be made monotonic."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    buckets = _coalesce(raw)
    if not buckets or buckets[-1][0] != math.inf:
        return math.nan, False
    buckets, forced = _monotonic(buckets)
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
    return start + (end - start) * (rank / count), forced


def _rank(x: float, buckets: Buckets) -> float:
    """How many observations lie at or below x, interpolating inside finite buckets."""
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
    """The share of observations between lower and upper."""
    buckets = _coalesce(raw)
    if not buckets or buckets[-1][0] != math.inf:
        return math.nan
    total = buckets[-1][1]
    if total == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    return (_rank(upper, buckets) - _rank(lower, buckets)) / total


def _parse_bound(value: str) -> float | None:
    try:
        return float(value.strip())
    except ValueError:
        return None


def _classic(call: CallArgs, vector: Vector, reduce: Callable[[int, Buckets], float]) -> Vector:
    """Group bucket series by their labels without `le`, then reduce each group per step."""
    groups: dict[Labels, list[tuple[int, float]]] = {}
    for row, labels in enumerate(vector.labels):
        current = dict(labels)
        bound = _parse_bound(current.get(BUCKET_LABEL, ""))
        if bound is None:
            call.ctx.annotations.warn(
                f'bucket label "le" is missing or has a malformed value of '
                f'"{current.get(BUCKET_LABEL, "")}" for metric name "{metric_name(labels)}"'
            )
            continue
        # The name stays in the key (it is dropped later), so two histograms that differ only
        # by name collide at the end, as in Prometheus.
        key = tuple(p for p in labels if p[0] != BUCKET_LABEL)
        groups.setdefault(key, []).append((row, bound))
    keys = list(groups)
    values = np.zeros((len(keys), vector.steps), dtype=np.float64)
    present = np.zeros((len(keys), vector.steps), dtype=np.bool_)
    for g, key in enumerate(keys):
        rows = groups[key]
        idx = np.array([r for r, _ in rows])
        bounds = [b for _, b in rows]
        for j in np.flatnonzero(vector.present[idx].any(axis=0)).tolist():
            buckets = [
                (bounds[k], float(vector.values[r, j]))
                for k, r in enumerate(idx.tolist())
                if vector.present[r, j]
            ]
            values[g, j] = reduce(j, buckets)
            present[g, j] = True
    return Vector(keys, values, present, np.ones(len(keys), dtype=np.bool_))


def _histogram_quantile(call: CallArgs) -> Vector:
    return _quantile_of(call, call.scalar(0), call.vector(1))


def _histogram_quantiles(call: CallArgs) -> Vector:
    vector, label = call.vector(0), call.string(1)
    parts: list[Vector] = []
    for index in range(2, len(call.args)):
        q = call.scalar(index)
        part = _quantile_of(call, q, vector)
        text = go_float(float(q[0])) if not np.isfinite(q[0]) else repr(float(q[0]))
        labels = [
            tuple(sorted([*(p for p in ls if p[0] != label), (label, text)])) for ls in part.labels
        ]
        parts.append(Vector(labels, part.values, part.present, part.drop_name))
    if not parts:
        return Vector.empty(vector.steps)
    return Vector(
        [ls for part in parts for ls in part.labels],
        np.vstack([part.values for part in parts]),
        np.vstack([part.present for part in parts]),
        np.concatenate([part.drop_name for part in parts]),
    )


def _quantile_of(call: CallArgs, q: F64, vector: Vector) -> Vector:
    for value in np.unique(q).tolist():
        if not 0 <= value <= 1:
            call.ctx.annotations.warn(
                f"quantile value should be between 0 and 1, got {go_float(value)}"
            )
    forced_names: set[str] = set()

    def reduce(step: int, buckets: Buckets) -> float:
        result, forced = bucket_quantile(float(q[step]), buckets)
        if forced:
            forced_names.add("")
        return result

    out = _classic(call, vector, reduce)
    if forced_names:
        names = sorted({metric_name(labels) for labels in vector.labels})
        call.ctx.annotations.info(
            "input to histogram_quantile needed to be fixed for monotonicity (see "
            "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)"
            f' for metric name "{names[0] if names else ""}"'
        )
    return out


def _histogram_fraction(call: CallArgs) -> Vector:
    lower, upper = call.scalar(0), call.scalar(1)
    vector = call.vector(2)
    return _classic(
        call, vector, lambda j, b: bucket_fraction(float(lower[j]), float(upper[j]), b)
    )


def _native_only(call: CallArgs) -> Vector:
    # These read native histograms; float samples contribute nothing.
    vector = call.vector(len(call.args) - 1)
    return Vector.empty(vector.steps)



FUNCTIONS: dict[str, Function] = {
    "histogram_quantile": _histogram_quantile,
    "histogram_quantiles": _histogram_quantiles,
    "histogram_fraction": _histogram_fraction,
    "histogram_count": _native_only,
    "histogram_sum": _native_only,
    "histogram_avg": _native_only,
    "histogram_stddev": _native_only,
    "histogram_stdvar": _native_only,
}
