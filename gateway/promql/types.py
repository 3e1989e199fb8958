"""Values flowing between evaluation stages, each covering every step of the query grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.model.labels import METRIC_NAME, Labels
from gateway.model.series import SeriesData

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])


def stale_mask(values: F64) -> BOOL:
    """Which values are Prometheus stale markers (a NaN with a specific bit pattern)."""
    return np.asarray(values.view(np.uint64) == np.uint64(STALE_NAN_BITS), dtype=np.bool_)


@dataclass(frozen=True, slots=True, eq=False)
class Grid:
    """The evaluation timestamps (ms) of one (sub)query."""

    times: I64

    @staticmethod
    def of(start_ms: int, end_ms: int, step_ms: int) -> Grid:
        """The grid start, start+step, ... <= end."""
        count = (end_ms - start_ms) // step_ms + 1 if step_ms > 0 else 1
        return Grid(start_ms + np.arange(count, dtype=np.int64) * max(step_ms, 0))

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True, slots=True, eq=False)
class Scalar:
    """A scalar per step."""

    values: F64


@dataclass(frozen=True, slots=True, eq=False)
class String:
    """A string literal (the same at every step)."""

    value: str


@dataclass(frozen=True, slots=True, eq=False)
class Vector:
    """An instant vector at every step: row i is series i, column j is step j."""

    labels: list[Labels]
    values: F64
    present: BOOL
    # Delayed __name__ removal: rows whose name is dropped once evaluation ends.
    drop_name: BOOL

    @staticmethod
    def empty(steps: int) -> Vector:
        """A vector without series."""
        return Vector(
            [],
            np.zeros((0, steps), dtype=np.float64),
            np.zeros((0, steps), dtype=np.bool_),
            np.zeros(0, dtype=np.bool_),
        )

    @property
    def steps(self) -> int:
        return int(self.values.shape[1])

    def take(self, rows: list[int] | I64) -> Vector:
        """The sub-vector of the given rows."""
        idx = np.asarray(rows, dtype=np.int64)
        return Vector(
            [self.labels[int(i)] for i in idx],
            self.values[idx],
            self.present[idx],
            self.drop_name[idx],
        )


@dataclass(frozen=True, slots=True, eq=False)
class RangeVector:
    """Series with samples, and the windows `(end - range_ms, end]` to evaluate at each step."""

    series: list[SeriesData]  # stale markers removed
    ends: I64
    range_ms: int
    drop_name: BOOL

    def bounds(self, index: int) -> tuple[I64, I64]:
        """Per step, the [lo, hi) sample indices of series `index` inside each window."""
        ts = self.series[index].timestamps
        lo = np.searchsorted(ts, self.ends - self.range_ms, side="right")
        hi = np.searchsorted(ts, self.ends, side="right")
        return lo.astype(np.int64), hi.astype(np.int64)


Value = Scalar | String | Vector | RangeVector


def without_name(labels: Labels) -> Labels:
    """Labels without `__name__`."""
    return tuple(pair for pair in labels if pair[0] != METRIC_NAME)


def type_name(value: Value) -> str:
    """Prometheus' name of a value type, for error messages."""
    if isinstance(value, Scalar):
        return "scalar"
    if isinstance(value, String):
        return "string"
    if isinstance(value, Vector):
        return "instant vector"
    return "range vector"
