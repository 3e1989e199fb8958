"""Vectorised window reductions over the samples of one series at every step."""

from __future__ import annotations

import math

import numpy as np

from gateway.promql.types import F64, I64

# Below this magnitude a float64 running sum keeps every input's bits relevant to 1e-9.
_EXACT_CUMSUM_LIMIT = 1e12


def window_sums(values: F64, lo: I64, hi: I64) -> F64:
    """Sum of values[lo:hi] per window (exact enough; falls back to fsum for risky inputs)."""
    if len(values) and np.isfinite(values).all() and np.abs(values).max() < _EXACT_CUMSUM_LIMIT:
        csum = np.concatenate([[0.0], np.cumsum(values)])
        return np.asarray(csum[hi] - csum[lo], dtype=np.float64)
    out = np.zeros(len(lo), dtype=np.float64)
    for j, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
        if b > a:
            out[j] = _fsum(values[a:b])
    return out


def _fsum(values: F64) -> float:
    total, comp = 0.0, 0.0
    for value in values.tolist():
        total, comp = kahan_add(value, total, comp)
    return total + comp


def kahan_add(inc: float, total: float, comp: float) -> tuple[float, float]:
    """One step of Kahan-Babuska summation; returns the new (sum, compensation)."""
    new = total + inc
    if math.isinf(new):
        return new, 0.0
    if abs(total) >= abs(inc):
        return new, comp + ((total - new) + inc)
    return new, comp + ((inc - new) + total)


def kahan_mean(values: list[float]) -> float:
    """Mean by compensated sum, switching to an incremental mean if the sum overflows."""
    total, comp, mean = values[0], 0.0, 0.0
    incremental = False
    count = 1.0
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


def kahan_variance(values: list[float]) -> float:
    """Population variance by Welford's method with compensated sums."""
    count, mean, mean_c, aux, aux_c = 0.0, 0.0, 0.0, 0.0, 0.0
    for value in values:
        count += 1
        delta = value - (mean + mean_c)
        mean, mean_c = kahan_add(delta / count, mean, mean_c)
        aux, aux_c = kahan_add(delta * (value - (mean + mean_c)), aux, aux_c)
    return (aux + aux_c) / count


def window_reduce(values: F64, lo: I64, hi: I64, ufunc: np.ufunc) -> F64:
    """`ufunc.reduce` over values[lo:hi] per window; empty windows give NaN."""
    out = np.full(len(lo), np.nan, dtype=np.float64)
    ok = hi > lo
    if not ok.any() or len(values) == 0:
        return out
    # reduceat reduces between consecutive indices, so interleave (lo, hi) pairs and keep the
    # even results; a padding element keeps every index in bounds.
    padded = np.concatenate([values, [np.nan]])
    idx = np.empty(2 * int(ok.sum()), dtype=np.int64)
    idx[0::2] = lo[ok]
    idx[1::2] = hi[ok]
    with np.errstate(all="ignore"):
        out[ok] = ufunc.reduceat(padded, idx)[0::2]
    return out


def pair_flags_count(flags: F64, lo: I64, hi: I64) -> F64:
    """Count flags[i] for lo < i < hi (flags mark something between samples i-1 and i)."""
    csum = np.concatenate([[0.0], np.cumsum(flags)])
    # flags[i] is about the pair (i-1, i): both ends lie in [lo, hi) when lo+1 <= i <= hi-1.
    first = np.minimum(lo + 1, len(flags))
    upper = np.maximum(hi, first)
    return np.asarray(csum[upper] - csum[first], dtype=np.float64)


def sorted_nan_first(values: F64) -> F64:
    """Sort ascending with NaNs first, as Go's sort.Float64s orders them."""
    nans = np.isnan(values)
    return np.concatenate([values[nans], np.sort(values[~nans])])


def quantile(q: float, values: F64) -> float:
    """Prometheus' quantile of a set of values (linear interpolation between ranks)."""
    if len(values) == 0 or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted_nan_first(values)
    rank = q * (len(ordered) - 1)
    lower = max(0, math.floor(rank))
    upper = min(len(ordered) - 1, lower + 1)
    weight = rank - math.floor(rank)
    return float(ordered[lower] * (1 - weight) + ordered[upper] * weight)
