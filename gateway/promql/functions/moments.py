"""Sum, mean and variance of many windows of one flat sample array, as Prometheus gets them.

Windows are [lo, hi) index ranges (they may overlap). Ordinary windows use double-double sums
(`compensated.window_sums`), which agree with Prometheus' Kahan sums to the last bit or two;
windows whose partial sums could overflow (or whose squares could under/overflow, for the
variance) replay Prometheus' sequential algorithm, vectorised across just those windows, so
its overflow behaviour is kept exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gateway.promql.functions.compensated import (
    DD,
    SAFE_TOTAL,
    Check,
    dd_add,
    dd_div,
    dd_mul,
    dd_neg,
    finite_part,
    ieee_total,
    kahan_mean_windows,
    kahan_windows,
    max_abs,
    nonfinite_counts,
    two_prod,
    welford_windows,
    window_sums,
)
from gateway.promql.functions.windows import window_reduce
from gateway.promql.types import BOOL, F64, I64

# Squares of magnitudes in [_TINY, _HUGE] neither overflow nor lose bits to underflow.
_HUGE = 1e150
_TINY = 1e-100
# A sequential algorithm over (values, lo, hi, check), for the windows a fast path cannot take.
Replay = Callable[[F64, I64, I64, Check], F64]


def _noop() -> None:
    return None


def _replay(
    risky: BOOL, out: F64, lo: I64, hi: I64, fn: Replay, values: F64, check: Check
) -> F64:
    if risky.any():
        take = np.flatnonzero(risky)
        out[take] = fn(values, lo[take], hi[take], check)
    return out


def _extremes(values: F64) -> tuple[bool, float, float]:
    """Whether all values are finite, and the largest and smallest non-zero finite magnitude:
    cheap global facts that let the common case skip the per-window special cases."""
    finite = np.abs(values[np.isfinite(values)])
    nonzero = finite[finite > 0]
    return (
        len(finite) == len(values),
        float(finite.max(initial=0.0)),
        float(nonzero.min(initial=np.inf)),
    )


def _with_nonfinite(out: F64, values: F64, lo: I64, hi: I64, all_finite: bool) -> F64:
    if all_finite:
        return out
    with np.errstate(invalid="ignore"):
        return ieee_total(out, *nonfinite_counts(values, lo, hi))


def _overflow_risk(values: F64, lo: I64, hi: I64, biggest: float) -> BOOL:
    """Windows whose partial sums could overflow (none, without a per-window look, when
    even the longest window of the largest value could not)."""
    counts = hi - lo
    if biggest * float(counts.max(initial=0)) < SAFE_TOTAL:
        return np.zeros(len(lo), dtype=np.bool_)
    with np.errstate(over="ignore"):
        return np.asarray(counts * max_abs(values, lo, hi) >= SAFE_TOTAL)


def window_total(values: F64, lo: I64, hi: I64, check: Check = _noop) -> F64:
    """sum_over_time: the compensated sum of values[lo:hi] per window (0 when empty)."""
    all_finite, biggest, _ = _extremes(values)
    high, low = window_sums(finite_part(values), None, lo, hi, check)
    out = _with_nonfinite(high + low, values, lo, hi, all_finite)
    risky = _overflow_risk(values, lo, hi, biggest)
    return _replay(risky, out, lo, hi, kahan_windows, values, check)


def window_mean(values: F64, lo: I64, hi: I64, check: Check = _noop) -> F64:
    """avg_over_time per window (NaN when empty)."""
    all_finite, biggest, _ = _extremes(values)
    counts = (hi - lo).astype(np.float64)
    high, low = window_sums(finite_part(values), None, lo, hi, check)
    with np.errstate(all="ignore"):
        mean = np.where(counts > 0, high / counts + low / counts, np.nan)
    out = _with_nonfinite(mean, values, lo, hi, all_finite)
    risky = _overflow_risk(values, lo, hi, biggest)
    return _replay(risky, out, lo, hi, kahan_mean_windows, values, check)


def variance_of(sums: DD, squares: DD, counts: F64) -> F64:
    """Population variance from double-double sums of x and x^2 (never below 0)."""
    with np.errstate(all="ignore"):
        mean = dd_div(sums, counts)
        var = dd_add(dd_div(squares, counts), dd_neg(dd_mul(mean, mean)))
        return np.asarray(np.maximum(var[0] + var[1], 0.0))


def squares(values: F64) -> DD:
    """x^2 per value, exactly, as a double-double."""
    return two_prod(values, values)


def window_variance(values: F64, lo: I64, hi: I64, check: Check = _noop) -> F64:
    """stdvar_over_time per window: 0 for constant windows, NaN when any value is NaN/Inf."""
    all_finite, biggest, smallest = _extremes(values)
    counts = (hi - lo).astype(np.float64)
    finite = finite_part(values)
    sq_h, sq_l = squares(finite)
    stacked_h = np.stack([finite, sq_h], axis=1)
    stacked_l = np.stack([np.zeros_like(finite), sq_l], axis=1)
    high, low = window_sums(stacked_h, stacked_l, lo, hi, check)
    out = variance_of((high[:, 0], low[:, 0]), (high[:, 1], low[:, 1]), counts)
    # Welford gives exactly 0 for equal values; so must we (no rounding residue).
    constant = window_reduce(values, lo, hi, np.fmin) == window_reduce(values, lo, hi, np.fmax)
    out = np.where(constant, 0.0, out)
    if not all_finite:
        nans, pos_inf, neg_inf = nonfinite_counts(values, lo, hi)
        out = np.where((nans + pos_inf + neg_inf) > 0, np.nan, out)
    longest = float(counts.max(initial=0))
    if biggest >= _HUGE or smallest < _TINY or longest * biggest * biggest >= SAFE_TOTAL:
        window_max = max_abs(values, lo, hi)
        risky = (counts > 0) & (
            (window_max >= _HUGE) | ((window_max > 0) & (window_max < _TINY))
        )
        with np.errstate(over="ignore"):
            risky |= counts * window_max * window_max >= SAFE_TOTAL
        out = _replay(risky, out, lo, hi, welford_windows, values, check)
    return out
