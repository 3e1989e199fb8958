"""histogram_quantile and histogram_fraction over classic `le` buckets, all groups at once."""

from __future__ import annotations

import numpy as np

from gateway.model.labels import Labels, metric_name
from gateway.promql.context import go_float
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.functions.buckets import Buckets, fractions, quantiles
from gateway.promql.types import BOOL, F64, Vector

BUCKET_LABEL = "le"


def _parse_bound(value: str) -> float | None:
    try:
        return float(value.strip())
    except ValueError:
        return None


def _group_buckets(call: CallArgs, vector: Vector) -> tuple[list[Labels], Buckets]:
    """Group bucket series by their labels without `le`, merge equal bounds, and lay the
    buckets out padded: (groups, buckets) bounds, (groups, buckets, steps) counts."""
    ids: dict[Labels, int] = {}
    rows: list[int] = []
    group_of: list[int] = []
    bounds: list[float] = []
    for row, labels in enumerate(vector.labels):
        if row & 1023 == 0:
            call.ctx.check_deadline()
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
        group_of.append(ids.setdefault(key, len(ids)))
        rows.append(row)
        bounds.append(bound)
    steps = vector.steps
    if not rows:
        empty = np.zeros((0, 0, steps))
        return [], Buckets(np.zeros((0, 0)), empty, empty.astype(np.bool_))
    row_a, group_a, bound_a = np.array(rows), np.array(group_of), np.array(bounds)
    order = np.lexsort((bound_a, group_a))
    row_a, group_a, bound_a = row_a[order], group_a[order], bound_a[order]
    # Series of one histogram with the same bound (le="1" and le="1.0") are one bucket.
    heads = np.flatnonzero(
        np.r_[True, (group_a[1:] != group_a[:-1]) | (bound_a[1:] != bound_a[:-1])]
    )
    present = vector.present[row_a]
    counts = np.add.reduceat(np.where(present, vector.values[row_a], 0.0), heads, axis=0)
    merged_present = np.logical_or.reduceat(present, heads, axis=0)
    group_h, bound_h = group_a[heads], bound_a[heads]
    sizes = np.bincount(group_h, minlength=len(ids))
    position = np.arange(len(heads)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    width = int(sizes.max())
    padded_bounds = np.full((len(ids), width), np.inf)
    padded_bounds[group_h, position] = bound_h
    padded_counts = np.zeros((len(ids), width, steps))
    padded_counts[group_h, position] = counts
    padded_present = np.zeros((len(ids), width, steps), dtype=np.bool_)
    padded_present[group_h, position] = merged_present
    return list(ids), Buckets(padded_bounds, padded_counts, padded_present)


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
    keys, buckets = _group_buckets(call, vector)
    values, present, forced = quantiles(q, buckets, call.ctx.check_deadline)
    for g in np.flatnonzero(forced.any(axis=1)).tolist():
        call.ctx.annotations.info(
            "input to histogram_quantile needed to be fixed for monotonicity (see "
            "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)"
            f' for metric name "{metric_name(keys[g])}"'
        )
    return _vector(keys, values, present)


def _vector(keys: list[Labels], values: F64, present: BOOL) -> Vector:
    return Vector(
        keys, np.where(present, values, 0.0), present, np.ones(len(keys), dtype=np.bool_)
    )


def _histogram_fraction(call: CallArgs) -> Vector:
    lower, upper = call.scalar(0), call.scalar(1)
    keys, buckets = _group_buckets(call, call.vector(2))
    values, present = fractions(lower, upper, buckets)
    return _vector(keys, values, present)


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
