"""A range vector laid out flat: every series' samples end to end, and each window's bounds.

Window (row i, step j) covers flat samples [lo[i, j], hi[i, j]); all windows of all series are
then reduced with a few numpy passes instead of a loop per series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gateway.promql.types import BOOL, F64, I64, RangeVector


@dataclass(frozen=True, slots=True, eq=False)
class Flat:
    """The samples of a range vector's series concatenated, with every window's bounds."""

    timestamps: I64
    values: F64
    starts: I64  # starts[i]: first flat index of series i; starts[-1] == total samples
    lo: I64  # (rows, steps)
    hi: I64  # (rows, steps)
    ends: I64  # (steps,) window ends (ms)
    range_ms: int

    @property
    def counts(self) -> I64:
        return np.asarray(self.hi - self.lo, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.lo.shape[0]), int(self.lo.shape[1]))

    def same_series_as_previous(self) -> BOOL:
        """For each flat sample, whether the sample before it belongs to the same series."""
        out = np.ones(len(self.values), dtype=np.bool_)
        out[self.starts[:-1][self.starts[:-1] < len(out)]] = False
        return out


def flatten(rv: RangeVector) -> Flat:
    """The flat layout of a range vector (one searchsorted over (series, time) keys)."""
    rows, steps = len(rv.series), len(rv.ends)
    lengths = np.fromiter((len(s.timestamps) for s in rv.series), np.int64, rows)
    starts = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    if rows == 0 or int(starts[-1]) == 0:
        zeros = np.zeros((rows, steps), dtype=np.int64)
        empty = np.zeros(0, dtype=np.int64)
        return Flat(empty, np.zeros(0), starts, zeros, zeros.copy(), rv.ends, rv.range_ms)
    ts = np.concatenate([s.timestamps for s in rv.series]).astype(np.int64, copy=False)
    values = np.concatenate([s.values for s in rv.series]).astype(np.float64, copy=False)
    low = min(int(ts.min()), int(rv.ends.min()) - rv.range_ms)
    span = max(int(ts.max()), int(rv.ends.max())) - low + 1
    if steps and span * rows < 2**62:
        # Series i owns the key range [i * span, (i + 1) * span): one sorted array for all.
        # On a step grid most window starts are earlier windows' ends (always when the range is
        # a multiple of the step): each distinct time is searched once, half the work.
        base = np.arange(rows, dtype=np.int64) * span
        keys = ts - low + np.repeat(base, lengths)
        times = np.unique(np.concatenate([rv.ends - rv.range_ms, rv.ends]))
        found = np.searchsorted(keys, (times - low)[None, :] + base[:, None], "right")
        lo = found[:, np.searchsorted(times, rv.ends - rv.range_ms)]
        hi = found[:, np.searchsorted(times, rv.ends)]
    else:
        # Keys would not fit in int64 (spans of centuries): search each series on its own.
        lo = np.zeros((rows, steps), dtype=np.int64)
        hi = np.zeros((rows, steps), dtype=np.int64)
        for i in range(rows):
            own = ts[starts[i] : starts[i + 1]]
            lo[i] = starts[i] + np.searchsorted(own, rv.ends - rv.range_ms, side="right")
            hi[i] = starts[i] + np.searchsorted(own, rv.ends, side="right")
    return Flat(
        ts, values, starts, lo.astype(np.int64), hi.astype(np.int64), rv.ends, rv.range_ms
    )


def by_row_blocks(
    rv: RangeVector, reduce: Callable[[Flat], tuple[F64, BOOL]], block_cells: int
) -> tuple[F64, BOOL]:
    """`reduce` of the flat windows, applied to blocks of consecutive series of about
    `block_cells` windows and stacked: the same as one call over all series for a reducer
    whose rows do not depend on each other (a window never leaves its series).

    One pass over 10k series x 241 steps made ~20 MB temporaries that every numpy operation
    page-faulted in afresh; in blocks they stay in the caches (rate: 1.4x faster, and 1.6x
    where transparent huge pages are off).
    """
    rows = len(rv.series)
    per_block = max(1, block_cells // max(len(rv.ends), 1))
    if rows <= per_block:
        return reduce(flatten(rv))
    parts = [
        reduce(flatten(_rows(rv, first, first + per_block))) for first in range(0, rows, per_block)
    ]
    return np.concatenate([part[0] for part in parts]), np.concatenate([part[1] for part in parts])


def _rows(rv: RangeVector, first: int, stop: int) -> RangeVector:
    return RangeVector(rv.series[first:stop], rv.ends, rv.range_ms, rv.drop_name[first:stop])
