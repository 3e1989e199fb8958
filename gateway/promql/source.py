"""The data a query reads: the `SeriesSource` protocol and an in-memory implementation.

Bounds: `select(matchers, start_ms, end_ms)` returns every sample with
`start_ms <= t <= end_ms` (both ends inclusive). The engine asks for exactly the span it needs,
so the left-open windows `(t - r, t]` of PromQL are cut by the engine itself, and a source may
return a little more than asked without changing results. Stale markers (StaleNaN) are returned
as samples: they end a series in instant selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from gateway.model.labels import Labels
from gateway.model.matchers import Matcher
from gateway.model.series import SeriesData

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class SeriesSource(Protocol):
    """Anything that can return the series matching a selector over a time span."""

    async def select(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        """Series matching all matchers, with samples in [start_ms, end_ms]."""
        ...


@dataclass(slots=True)
class MemorySource:
    """A `SeriesSource` over series held in memory (tests and the conformance harness)."""

    series: dict[Labels, SeriesData] = field(default_factory=dict)

    def add(self, labels: Labels, timestamps: Sequence[int], values: Sequence[float]) -> None:
        """Add samples to a series; later samples at an existing timestamp replace it."""
        old = self.series.get(labels)
        ts = np.asarray(timestamps, dtype=np.int64)
        vs = np.asarray(values, dtype=np.float64)
        if old is not None:
            ts = np.concatenate([old.timestamps, ts])
            vs = np.concatenate([old.values, vs])
        # Stable sort, then keep the last sample per timestamp (the most recent write wins).
        order = np.argsort(ts, kind="stable")
        ts, vs = ts[order], vs[order]
        keep = np.ones(len(ts), dtype=bool)
        keep[:-1] = ts[1:] != ts[:-1]
        self.series[labels] = SeriesData(labels, ts[keep], vs[keep])

    def clear(self) -> None:
        """Forget every series."""
        self.series.clear()

    async def select(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        """Series matching all matchers, with samples in [start_ms, end_ms]."""
        out: list[SeriesData] = []
        for labels, data in self.series.items():
            if not all(m.matches_labels(labels) for m in matchers):
                continue
            lo = int(np.searchsorted(data.timestamps, start_ms, side="left"))
            hi = int(np.searchsorted(data.timestamps, end_ms, side="right"))
            if hi > lo:
                out.append(SeriesData(labels, data.timestamps[lo:hi], data.values[lo:hi]))
        return out
