"""Order statistics over many windows at once: quantiles, median deviations, arg-max/min.

Windows are gathered into a padded matrix (one row per window) in chunks of bounded size and
sorted row-wise with NaN first, as Go's sort of a vectorByValueHeap orders them; the quantile is
then read with Prometheus' interpolation between ranks for every window at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from gateway.promql.types import F64, I64

Check = Callable[[], None]

# Most cells in one padded chunk (8 bytes each): bounds memory whatever the window count.
_CHUNK_CELLS = 1 << 21


def _noop() -> None:
    return None


def padded_chunks(
    values: F64, lo: I64, hi: I64, check: Check = _noop
) -> Iterator[tuple[slice, F64, I64]]:
    """(windows slice, padded matrix, lengths) per chunk; padding cells hold +Inf.

    Rows are copied out of a sliding-window view of the values (one contiguous copy per
    row), then the cells past each window's end are overwritten.
    """
    lengths = (hi - lo).astype(np.int64)
    width = max(int(lengths.max(initial=0)), 1)
    per_chunk = max(_CHUNK_CELLS // width, 1)
    padded = np.concatenate([values, np.full(width, np.inf)])
    view = np.lib.stride_tricks.sliding_window_view(padded, width)
    cols = np.arange(width, dtype=np.int64)
    for first in range(0, len(lo), per_chunk):
        check()
        part = slice(first, min(first + per_chunk, len(lo)))
        n = lengths[part]
        matrix = view[lo[part]]
        matrix[cols[None, :] >= n[:, None]] = np.inf
        yield part, matrix, n


def sorted_rows(matrix: F64) -> tuple[F64, I64]:
    """Each row sorted ascending in place, NaNs counted and sorted as -Inf; Go orders NaN
    before everything, so position i of a row is NaN exactly when i < its NaN count."""
    nan = np.isnan(matrix)
    nans = nan.sum(axis=1)
    matrix[nan] = -np.inf
    matrix.sort(axis=1)
    return matrix, nans


def quantile_of_sorted(ordered: F64, n: I64, q: F64, nans: I64 | None = None) -> F64:
    """Prometheus' quantile per row of sorted rows holding n real values each (the first
    `nans` of them NaN)."""
    with np.errstate(all="ignore"):
        count = n.astype(np.float64)
        rank = q * (count - 1)
        floor = np.floor(rank)
        lower = np.maximum(0.0, floor)
        upper = np.minimum(count - 1, lower + 1)
        weight = rank - floor
        last = max(ordered.shape[1] - 1, 0)
        li = np.clip(np.nan_to_num(lower), 0, last).astype(np.int64)
        ui = np.clip(np.nan_to_num(upper), 0, last).astype(np.int64)
        low = np.take_along_axis(ordered, li[:, None], axis=1)[:, 0]
        high = np.take_along_axis(ordered, ui[:, None], axis=1)[:, 0]
        if nans is not None:
            low = np.where(li < nans, np.nan, low)
            high = np.where(ui < nans, np.nan, high)
        out = low * (1 - weight) + high * weight
        out = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, out))
        return np.asarray(np.where(np.isnan(q) | (n == 0), np.nan, out))


def window_quantiles(values: F64, lo: I64, hi: I64, q: F64, check: Check = _noop) -> F64:
    """The q[w]-quantile of values[lo[w]:hi[w]] for every window w."""
    out = np.full(len(lo), np.nan, dtype=np.float64)
    for part, matrix, n in padded_chunks(values, lo, hi, check):
        ordered, nans = sorted_rows(matrix)
        out[part] = quantile_of_sorted(ordered, n, q[part], nans)
    return out


def window_mad(values: F64, lo: I64, hi: I64, check: Check = _noop) -> F64:
    """The median absolute deviation from the median per window; NaN if a value is NaN."""
    out = np.full(len(lo), np.nan, dtype=np.float64)
    for part, matrix, n in padded_chunks(values, lo, hi, check):
        half = np.full(len(n), 0.5)
        ordered, nans = sorted_rows(matrix)
        median = quantile_of_sorted(ordered, n, half)
        valid = np.arange(matrix.shape[1])[None, :] < n[:, None]
        with np.errstate(all="ignore"):
            deviation = np.where(valid, np.abs(ordered - median[:, None]), np.inf)
        # |Inf - Inf| is NaN, which Go sorts first.
        deviation, deviation_nans = sorted_rows(deviation)
        mad = quantile_of_sorted(deviation, n, half, deviation_nans)
        out[part] = np.where(nans > 0, np.nan, mad)
    return out


def window_arg_extreme(values: F64, lo: I64, hi: I64, pick_max: bool) -> I64:
    """Per non-empty window, the flat index Prometheus' ts_of_max/min_over_time reports: the
    last index holding the window's max (min) among non-NaN values, the last index when all
    are NaN. Empty windows give -1.

    Every value gets a dense rank (NaN lowest priority), and rank * n + index is maximised per
    window with one reduceat, so ties go to the later sample.
    """
    out = np.full(len(lo), -1, dtype=np.int64)
    ok = hi > lo
    if not ok.any():
        return out
    n = len(values)
    nan = np.isnan(values)
    _, rank = np.unique(np.where(nan, 0.0, values), return_inverse=True)
    rank = rank.astype(np.int64) + 1
    if not pick_max:
        rank = int(rank.max()) + 1 - rank
    rank[nan] = 0
    key = rank * n + np.arange(n, dtype=np.int64)
    idx = np.empty(2 * int(ok.sum()), dtype=np.int64)
    idx[0::2], idx[1::2] = lo[ok], hi[ok]
    best = np.maximum.reduceat(np.concatenate([key, [0]]), idx)[0::2]
    out[ok] = best % n
    return out
