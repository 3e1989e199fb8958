"""Vectorised window reductions that numpy's reduceat and cumulative sums express directly."""

from __future__ import annotations

import numpy as np

from gateway.promql.types import F64, I64


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
