"""Active series per tenant, in sorted numpy arrays: ~20 bytes per tracked series.

A series is active while it received a sample within the window. Per tenant the tracker holds
parallel arrays sorted by series id: last-seen minute, metric-name code and the last minute
persisted to storage. Looking up a request's series is one vectorised `searchsorted`; only series
the tracker does not know (new or returning after the window) take Python work, in `add`.
The arrays are rebuilt and reconciled from storage (`merge`), so restarts and other replicas
see the same counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class Activity:
    """Rows of one tenant to persist: series ids, last-seen minutes, metric names."""

    tenant: str
    series_ids: Ids
    minutes: npt.NDArray[np.uint32]
    metric_codes: npt.NDArray[np.uint32]
    metric_names: Sequence[str]


class _TenantSeries:
    __slots__ = (
        "codes", "counts", "directory", "ids", "metrics", "minutes", "names", "persisted",
        "shift", "steps",
    )

    def __init__(self) -> None:
        self.ids: Ids = np.empty(0, np.uint64)
        self.minutes = np.empty(0, np.uint32)
        self.metrics = np.empty(0, np.uint32)
        self.persisted = np.empty(0, np.uint32)
        self.names: list[str] = []
        self.codes: dict[str, int] = {}
        self.counts = np.zeros(0, np.int64)
        self.directory: npt.NDArray[np.int64] | None = None
        self.shift = np.uint64(63)
        self.steps = 0

    def _index(self) -> npt.NDArray[np.int64]:
        """Start of each bucket of ids sharing their top bits (ids are uniform hashes).

        About four ids per bucket: a lookup bisects a handful of ids instead of the whole
        array, which keeps a request's lookups in cache (4-10x faster than `searchsorted`).
        """
        bits = self._bits(len(self.ids))
        self.shift = np.uint64(64 - bits)
        buckets = np.bincount((self.ids >> self.shift).astype(np.intp), minlength=1 << bits)
        directory = np.zeros(len(buckets) + 1, np.int64)
        np.cumsum(buckets, out=directory[1:])
        self.steps = int(buckets.max()).bit_length()
        self.directory = directory
        return directory

    @staticmethod
    def _bits(count: int) -> int:
        return max(1, min(20, count.bit_length() - 2))

    def _grow_index(self, ids: Ids) -> None:
        """Account for inserted ids in the bucket index (rebuilt when its size should change)."""
        if self.directory is None or self._bits(len(self.ids)) != 64 - int(self.shift):
            self.directory = None
            return
        buckets = (ids >> self.shift).astype(np.intp)
        added = np.bincount(buckets, minlength=len(self.directory) - 1)
        self.directory[1:] += np.cumsum(added)
        sizes = self.directory[buckets + 1] - self.directory[buckets]
        self.steps = max(self.steps, int(sizes.max()).bit_length())

    def code(self, metric: str) -> int:
        code = self.codes.get(metric)
        if code is None:
            code = self.codes[metric] = len(self.names)
            self.names.append(metric)
            self.counts = np.append(self.counts, np.int64(0))
        return code

    def positions(self, ids: Ids) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Where each id is (clipped to the array) and whether it is there."""
        count = len(self.ids)
        if not count:
            return np.zeros(len(ids), np.intp), np.zeros(len(ids), dtype=bool)
        directory = self.directory if self.directory is not None else self._index()
        bucket = (ids >> self.shift).astype(np.intp)
        low, high = directory[bucket], directory[bucket + 1]
        for _ in range(self.steps):  # vectorised bisection inside each id's bucket
            middle = (low + high) >> 1
            less = self.ids[np.minimum(middle, count - 1)] < ids
            searching = low < high
            low = np.where(searching & less, middle + 1, low)
            high = np.where(searching & ~less, middle, high)
        clipped = np.minimum(low, count - 1).astype(np.intp)
        return clipped, self.ids[clipped] == ids

    def insert(
        self, ids: Ids, minutes: npt.NDArray[np.uint32], codes: npt.NDArray[np.uint32],
        persisted: npt.NDArray[np.uint32],
    ) -> None:
        """Insert ids not present yet (unique)."""
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        at = np.searchsorted(self.ids, ids)
        self.ids = np.insert(self.ids, at, ids)
        self.minutes = np.insert(self.minutes, at, minutes[order])
        self.metrics = np.insert(self.metrics, at, codes[order])
        self.persisted = np.insert(self.persisted, at, persisted[order])
        self._grow_index(ids)
        self.counts += np.bincount(codes, minlength=len(self.counts))[: len(self.counts)]

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        removed = self.metrics[~mask]
        if len(removed):
            self.counts -= np.bincount(removed, minlength=len(self.counts))[: len(self.counts)]
        self.ids = self.ids[mask]
        self.minutes = self.minutes[mask]
        self.metrics = self.metrics[mask]
        self.persisted = self.persisted[mask]
        self.directory = None

    @property
    def nbytes(self) -> int:
        arrays = (self.ids, self.minutes, self.metrics, self.persisted, self.counts)
        index = 0 if self.directory is None else self.directory.nbytes
        return sum(array.nbytes for array in arrays) + index


class ActiveSeriesTracker:
    """Active series of every tenant, by series id, with per-metric counts."""

    def __init__(self, window_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self.window_minutes = max(1, window_seconds // 60)
        self.clock = clock
        self._tenants: dict[str, _TenantSeries] = {}

    def minute(self) -> int:
        return int(self.clock() // 60)

    def tenants(self) -> list[str]:
        return sorted(self._tenants)

    def count(self, tenant: str) -> int:
        """Active series of a tenant."""
        series = self._tenants.get(tenant)
        return 0 if series is None else len(series.ids)

    def metric_count(self, tenant: str, metric: str) -> int:
        series = self._tenants.get(tenant)
        if series is None or metric not in series.codes:
            return 0
        return int(series.counts[series.codes[metric]])

    def metric_counts(self, tenant: str) -> dict[str, int]:
        """Active series per metric name (metrics with none left out)."""
        series = self._tenants.get(tenant)
        if series is None:
            return {}
        nonzero = np.flatnonzero(series.counts)
        return {series.names[i]: int(series.counts[i]) for i in nonzero}

    def top_metric_counts(self, tenant: str, n: int) -> dict[str, int]:
        """The `n` metric names with the most active series (ties: the name seen first)."""
        series = self._tenants.get(tenant)
        if series is None:
            return {}
        counts = series.counts
        chosen = np.flatnonzero(counts)
        if len(chosen) > n:
            kth = np.partition(counts[chosen], -n)[-n]
            above = chosen[counts[chosen] > kth]
            ties = chosen[counts[chosen] == kth][: n - len(above)]
            chosen = np.concatenate([above, ties])
        return {series.names[i]: int(counts[i]) for i in chosen}

    def touch(self, tenant: str, ids: Ids) -> npt.NDArray[np.bool_]:
        """Mark tracked ids as seen now; returns which ids are tracked (vectorised)."""
        series = self._tenants.get(tenant)
        if series is None or not len(series.ids):
            return np.zeros(len(ids), dtype=bool)
        pos, found = series.positions(ids)
        series.minutes[pos[found]] = self.minute()
        return found

    def add(self, tenant: str, ids: Ids | Sequence[int], metrics: Sequence[str]) -> None:
        """Start tracking series not tracked yet (unique ids), seen now."""
        if not len(ids):
            return
        series = self._tenants.setdefault(tenant, _TenantSeries())
        code_of = {metric: series.code(metric) for metric in dict.fromkeys(metrics)}
        codes = np.fromiter(map(code_of.__getitem__, metrics), np.uint32, len(metrics))
        count = len(ids)
        minutes = np.full(count, self.minute(), np.uint32)
        series.insert(np.array(ids, np.uint64), minutes, codes, np.zeros(count, np.uint32))

    def merge(
        self,
        tenant: str,
        ids: Ids,
        minutes: npt.NDArray[np.uint32],
        metric_codes: npt.NDArray[np.uint32],
        metric_names: Sequence[str],
    ) -> None:
        """Fold in series read from storage (unique ids): union, latest minute wins."""
        if not len(ids):
            return
        series = self._tenants.setdefault(tenant, _TenantSeries())
        pos, found = series.positions(ids)
        at = pos[found]
        series.minutes[at] = np.maximum(series.minutes[at], minutes[found])
        series.persisted[at] = np.maximum(series.persisted[at], minutes[found])
        missing = ~found
        if missing.any():
            lookup = np.fromiter(
                (series.code(name) for name in metric_names), np.uint32, len(metric_names)
            )
            new_minutes = minutes[missing]
            series.insert(ids[missing], new_minutes, lookup[metric_codes[missing]], new_minutes)

    def expire(self) -> None:
        """Forget series not seen within the window; drop tenants left with none."""
        cutoff = self.minute() - self.window_minutes
        for tenant in list(self._tenants):
            series = self._tenants[tenant]
            mask = series.minutes >= cutoff
            if not mask.all():
                series.keep(mask)
            if not len(series.ids):
                del self._tenants[tenant]

    def unpersisted(
        self, resolution_minutes: int, tenant: str | None = None, new_only: bool = False
    ) -> list[Activity]:
        """Series whose last-seen minute moved `resolution` past what storage has.

        With `new_only`, only series storage has no row of at all; `tenant` limits it to one.
        """
        result = []
        for owner, series in self._tenants.items():
            if tenant is not None and owner != tenant:
                continue
            due = series.persisted == 0
            if not new_only:
                due |= series.minutes >= series.persisted + np.uint32(resolution_minutes)
            if due.any():
                result.append(
                    Activity(
                        owner, series.ids[due], series.minutes[due], series.metrics[due],
                        list(series.names),
                    )
                )
        return result

    def mark_persisted(self, rows: Iterable[Activity]) -> None:
        """Record that these rows are in storage."""
        for activity in rows:
            series = self._tenants.get(activity.tenant)
            if series is None:
                continue
            pos, found = series.positions(activity.series_ids)
            at = pos[found]
            series.persisted[at] = np.maximum(series.persisted[at], activity.minutes[found])

    def memory_bytes(self) -> int:
        """Bytes held by the arrays (metric-name strings excluded)."""
        return sum(series.nbytes for series in self._tenants.values())
