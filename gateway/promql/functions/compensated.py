"""Accurate sums over many (possibly overlapping) windows at once, in double-double arithmetic.

Prometheus sums floats with Kahan-Babuska compensation, one sample after the other. Doing that
per window in Python is slow, and differences of one running sum lose every digit smaller than
the largest value summed so far (1e11 followed by 4.4 gave 4.400390625). Instead each value is
a double-double (hi + lo, about 106 bits) and a window [lo, hi) is the sum of the power-of-two
blocks its length is made of: `levels` builds the block sums of length 1, 2, 4, ... once for
every position, each window adds the blocks of its set length bits. That is log2(longest
window) numpy passes, and a window only ever touches its own samples, so large values outside
it cost it nothing.

Non-finite samples never enter the double-doubles (an Inf would turn the error terms into
NaN); callers count them separately (`nonfinite_counts`) and apply IEEE's rules. Windows whose
partial sums could overflow take `kahan_windows`, a sequential Kahan sum vectorised across
those windows, which gives Prometheus' answer bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gateway.promql.types import F64, I64

Check = Callable[[], None]
DD = tuple[F64, F64]

# Dekker's splitter for float64 (2^27 + 1): splits a double into two 26-bit halves.
_SPLITTER = 134217729.0
# Below this, no partial sum of a window (count * largest magnitude) can overflow.
SAFE_TOTAL = 1e300


def _noop() -> None:
    return None


def two_sum(a: F64, b: F64) -> DD:
    """s + e == a + b exactly (Knuth), for finite inputs."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fast_two_sum(a: F64, b: F64) -> DD:
    s = a + b
    return s, b - (s - a)


def two_prod(a: F64, b: F64) -> DD:
    """p + e == a * b exactly (Dekker), for |a|, |b| well below 2^996 (larger values are
    the callers' to route elsewhere; they only produce garbage here, never an error)."""
    with np.errstate(all="ignore"):
        ca = _SPLITTER * a
        a_hi = ca - (ca - a)
        a_lo = a - a_hi
        cb = _SPLITTER * b
        b_hi = cb - (cb - b)
        b_lo = b - b_hi
        p = a * b
        return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def dd_add(a: DD, b: DD) -> DD:
    """Double-double addition (the accurate variant: two error-free sums)."""
    s, e = two_sum(a[0], b[0])
    t, f = two_sum(a[1], b[1])
    s, e = _fast_two_sum(s, e + t)
    return _fast_two_sum(s, e + f)


def _dd_add_quick(a: DD, b: DD) -> DD:
    """Double-double addition without the second error-free sum: exact to about 2^-104 of
    |a| + |b| in absolute terms, which is all a sum of many values needs (Kahan's own bound is
    2^-53 of the result)."""
    s = a[0] + b[0]
    bb = s - a[0]
    e = ((a[0] - (s - bb)) + (b[0] - bb)) + (a[1] + b[1])
    h = s + e
    return h, e - (h - s)


def dd_neg(a: DD) -> DD:
    return -a[0], -a[1]


def dd_mul(a: DD, b: DD) -> DD:
    """Double-double product."""
    p, e = two_prod(a[0], b[0])
    return _fast_two_sum(p, e + (a[0] * b[1] + a[1] * b[0]))


def dd_div(a: DD, d: F64) -> DD:
    """Double-double divided by a double."""
    q1 = a[0] / d
    p, e = two_prod(q1, d)
    q2 = (((a[0] - p) - e) + a[1]) / d
    return _fast_two_sum(q1, q2)


def window_sums(
    hi_part: F64, lo_part: F64 | None, lo: I64, hi: I64, check: Check = _noop
) -> DD:
    """Double-double sums of rows [lo, hi) of `hi_part + lo_part` (axis 0), per window.

    Values must be finite; trailing axes are summed independently.
    """
    shape = (len(lo), *hi_part.shape[1:])
    acc_h = np.zeros(shape, dtype=np.float64)
    acc_l = np.zeros(shape, dtype=np.float64)
    length = (hi - lo).astype(np.int64)
    if len(lo) == 0 or len(hi_part) == 0 or int(length.max(initial=0)) == 0:
        return acc_h, acc_l
    longest = int(length.max())
    pos = lo.astype(np.int64).copy()
    level: DD = (hi_part, np.zeros_like(hi_part) if lo_part is None else lo_part)
    # A window's first block is copied, later ones added: the first set bit of its length.
    first_bit = length & -length
    width = 1
    with np.errstate(all="ignore"):
        while width <= longest:
            check()
            start = np.flatnonzero(first_bit == width)
            if len(start):
                at = pos[start]
                acc_h[start], acc_l[start] = level[0][at], level[1][at]
                pos[start] += width
            more = np.flatnonzero((length & width).astype(np.bool_) & (first_bit < width))
            if len(more):
                at = pos[more]
                acc = _dd_add_quick((acc_h[more], acc_l[more]), (level[0][at], level[1][at]))
                acc_h[more], acc_l[more] = acc
                pos[more] += width
            if width * 2 <= longest:
                level = _dd_add_quick(
                    (level[0][:-width], level[1][:-width]), (level[0][width:], level[1][width:])
                )
            width *= 2
    return acc_h, acc_l


def finite_part(values: F64) -> F64:
    """The values with non-finite ones replaced by 0 (counted separately)."""
    return np.where(np.isfinite(values), values, 0.0)


def nonfinite_counts(values: F64, lo: I64, hi: I64) -> tuple[I64, I64, I64]:
    """Per window, how many NaN, +Inf and -Inf values lie in rows [lo, hi)."""
    out = []
    for flags in (np.isnan(values), values == np.inf, values == -np.inf):
        csum = np.zeros((len(values) + 1, *values.shape[1:]), dtype=np.int64)
        np.cumsum(flags, axis=0, out=csum[1:])
        out.append(csum[hi] - csum[lo])
    return out[0], out[1], out[2]


def ieee_total(finite: F64, nans: I64, pos_inf: I64, neg_inf: I64) -> F64:
    """A sum's value once its non-finite inputs are known: NaN beats everything, +Inf and
    -Inf together give NaN, one kind of infinity wins over any finite total."""
    out = np.where(pos_inf > 0, np.inf, finite)
    out = np.where(neg_inf > 0, -np.inf, out)
    return np.asarray(np.where((nans > 0) | ((pos_inf > 0) & (neg_inf > 0)), np.nan, out))


def kahan_add(inc: F64, total: F64, comp: F64) -> DD:
    """One step of Kahan-Babuska (Neumaier) summation, element-wise, as Prometheus does it."""
    new = total + inc
    step = np.where(np.abs(total) >= np.abs(inc), (total - new) + inc, (inc - new) + total)
    return new, np.where(np.isinf(new), 0.0, comp + step)


def gather_rows(values: F64, lo: I64, hi: I64, offset: int) -> tuple[F64, np.ndarray]:
    """values[lo + offset] for every window still that long, and which windows those are."""
    active = (hi - lo) > offset
    idx = np.where(active, lo + offset, 0)
    return values[idx] if len(values) else np.zeros(len(lo)), active


def kahan_windows(values: F64, lo: I64, hi: I64, check: Check = _noop) -> F64:
    """Prometheus' sequential compensated sum of values[lo:hi], vectorised across windows."""
    total = np.zeros(len(lo), dtype=np.float64)
    comp = np.zeros(len(lo), dtype=np.float64)
    with np.errstate(all="ignore"):
        for offset in range(int((hi - lo).max(initial=0))):
            check()
            value, active = gather_rows(values, lo, hi, offset)
            new_total, new_comp = kahan_add(value, total, comp)
            total = np.where(active, new_total, total)
            comp = np.where(active, new_comp, comp)
        return np.asarray(total + comp)


def kahan_mean_windows(values: F64, lo: I64, hi: I64, check: Check = _noop) -> F64:
    """Prometheus' mean of values[lo:hi] (compensated sum, switching to an incremental mean
    once the sum would overflow), vectorised across windows; empty windows give NaN."""
    n = len(lo)
    total, comp, mean = np.zeros(n), np.zeros(n), np.zeros(n)
    incremental = np.zeros(n, dtype=np.bool_)
    with np.errstate(all="ignore"):
        first, _ = gather_rows(values, lo, hi, 0)
        total = first.copy()
        for offset in range(1, int((hi - lo).max(initial=0))):
            check()
            value, active = gather_rows(values, lo, hi, offset)
            count = float(offset + 1)
            new_total, new_comp = kahan_add(value, total, comp)
            # Windows whose sum overflows now switch to the incremental mean from here on.
            switch = active & ~incremental & np.isinf(new_total)
            direct = active & ~incremental & ~switch
            total = np.where(direct, new_total, total)
            comp = np.where(direct, new_comp, comp)
            mean = np.where(switch, total / (count - 1), mean)
            comp = np.where(switch, comp / (count - 1), comp)
            incremental |= switch
            shrink = (count - 1) / count
            inc_mean, inc_comp = kahan_add(value / count, shrink * mean, shrink * comp)
            step = active & incremental
            mean = np.where(step, inc_mean, mean)
            comp = np.where(step, inc_comp, comp)
        count_all = (hi - lo).astype(np.float64)
        out = np.where(incremental, mean + comp, total / count_all + comp / count_all)
        return np.asarray(np.where(count_all > 0, out, np.nan))


def welford_windows(values: F64, lo: I64, hi: I64, check: Check = _noop) -> F64:
    """Prometheus' population variance of values[lo:hi] (Welford, compensated), vectorised
    across windows."""
    n = len(lo)
    count, mean, mean_c, aux, aux_c = (np.zeros(n) for _ in range(5))
    with np.errstate(all="ignore"):
        for offset in range(int((hi - lo).max(initial=0))):
            check()
            value, active = gather_rows(values, lo, hi, offset)
            new_count = count + active
            delta = value - (mean + mean_c)
            new_mean, new_mean_c = kahan_add(delta / new_count, mean, mean_c)
            new_aux, new_aux_c = kahan_add(delta * (value - (new_mean + new_mean_c)), aux, aux_c)
            count = new_count
            mean, mean_c = np.where(active, new_mean, mean), np.where(active, new_mean_c, mean_c)
            aux, aux_c = np.where(active, new_aux, aux), np.where(active, new_aux_c, aux_c)
        return np.asarray((aux + aux_c) / count)


def max_abs(values: F64, lo: I64, hi: I64) -> F64:
    """The largest magnitude per window (0 for empty windows), NaN and Inf ignored."""
    finite = np.abs(finite_part(values))
    out = np.zeros(len(lo), dtype=np.float64)
    ok = hi > lo
    if ok.any():
        idx = np.empty(2 * int(ok.sum()), dtype=np.int64)
        idx[0::2], idx[1::2] = lo[ok], hi[ok]
        out[ok] = np.maximum.reduceat(np.concatenate([finite, [0.0]]), idx)[0::2]
    return out


def segment_sums(
    hi_part: F64, lo_part: F64 | None, starts: I64, check: Check = _noop
) -> DD:
    """Double-double sums of consecutive row segments [starts[g], starts[g + 1]) (axis 0).

    Segments partition the rows, so a pairwise tree within each segment does it: every pass
    adds neighbouring rows of a segment, halving it, until one row per segment is left.
    Values (`hi_part + lo_part`) must be finite.
    """
    sizes = np.diff(starts).astype(np.int64)
    groups = len(sizes)
    out_h = np.zeros((groups, *hi_part.shape[1:]), dtype=np.float64)
    out_l = np.zeros_like(out_h)
    cur: DD = (hi_part, np.zeros_like(hi_part) if lo_part is None else lo_part)
    with np.errstate(all="ignore"):
        while int(sizes.max(initial=0)) > 1:
            check()
            first = np.zeros(groups + 1, dtype=np.int64)
            np.cumsum(sizes, out=first[1:])
            pos = np.arange(int(first[-1]), dtype=np.int64) - np.repeat(first[:-1], sizes)
            left = np.flatnonzero(pos % 2 == 0)
            partnered = np.flatnonzero(pos[left] + 1 < np.repeat(sizes, sizes)[left])
            new_h, new_l = cur[0][left], cur[1][left]
            right = left[partnered] + 1
            summed = _dd_add_quick(
                (new_h[partnered], new_l[partnered]), (cur[0][right], cur[1][right])
            )
            new_h[partnered], new_l[partnered] = summed
            cur = (new_h, new_l)
            sizes = (sizes + 1) // 2
    single = sizes == 1
    out_h[single], out_l[single] = cur[0], cur[1]
    return out_h, out_l
