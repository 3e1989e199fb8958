"""Series the gateway has already stored: identity digest -> series id and stored time span.

A hit means the series row exists, so its labels need neither decoding nor validation nor
re-inserting, as long as the request's samples lie inside the time span the series row already
covers. The stored row's `first_seen`/`last_seen` bound the series in queries, so a sample older
than `first_seen` (a backfill, a late retry) or well past `last_seen` makes the series register
again, which widens the row. The map is bounded per process (a tenant's oldest entries leave
first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from gateway.storage.sql import LAST_SEEN_SLACK_MS

# A stored `last_seen` may trail a series' newest sample by up to this much; readers widen
# their time filter by the same amount.
LAST_SEEN_REFRESH_MS = LAST_SEEN_SLACK_MS
_MISSING = -1


@dataclass(frozen=True, slots=True)
class KnownLookup:
    """What the map knows about each digest of a request, as parallel arrays."""

    found: npt.NDArray[np.bool_]
    series_ids: npt.NDArray[np.uint64]
    first_ms: npt.NDArray[np.int64]
    last_ms: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Registered:
    """A series whose row now covers [first_ms, last_ms]."""

    digest: int
    series_id: int
    first_ms: int
    last_ms: int


class _TenantSeries:
    """One tenant's entries: digest -> slot, with ids and time spans in numpy arrays."""

    def __init__(self) -> None:
        self.slots: dict[int, int] = {}
        self.ids: npt.NDArray[np.uint64] = np.zeros(16, np.uint64)
        self.first: npt.NDArray[np.int64] = np.zeros(16, np.int64)
        self.last: npt.NDArray[np.int64] = np.zeros(16, np.int64)

    def __len__(self) -> int:
        return len(self.slots)

    def lookup(self, digests: Sequence[int]) -> KnownLookup:
        slots = np.fromiter(
            map(self.slots.get, digests, repeat(_MISSING)), np.int64, count=len(digests)
        )
        found = slots != _MISSING
        at = np.where(found, slots, 0)
        return KnownLookup(found, self.ids[at], self.first[at], self.last[at])

    def remember(self, entries: Sequence[Registered]) -> None:
        for entry in entries:
            slot = self.slots.get(entry.digest)
            if slot is None:
                slot = len(self.slots)
                if slot == self.ids.size:
                    self._grow()
                self.slots[entry.digest] = slot
                self.ids[slot] = entry.series_id
                self.first[slot] = entry.first_ms
                self.last[slot] = entry.last_ms
            else:
                self.first[slot] = min(int(self.first[slot]), entry.first_ms)
                self.last[slot] = max(int(self.last[slot]), entry.last_ms)

    def keep_newest(self, count: int) -> None:
        """Drop all but the `count` most recently added entries."""
        # Dicts keep insertion order, so the last keys are the newest.
        newest = list(self.slots.items())[len(self.slots) - count :] if count > 0 else []
        old_slots = np.fromiter((slot for _, slot in newest), np.int64, count=len(newest))
        self.slots = {digest: index for index, (digest, _) in enumerate(newest)}
        size = max(16, len(newest))
        self.ids = _resized(self.ids[old_slots], size)
        self.first = _resized(self.first[old_slots], size)
        self.last = _resized(self.last[old_slots], size)

    def _grow(self) -> None:
        size = self.ids.size * 2
        self.ids = _resized(self.ids, size)
        self.first = _resized(self.first, size)
        self.last = _resized(self.last, size)


_Array = TypeVar("_Array", npt.NDArray[np.uint64], npt.NDArray[np.int64])


def _resized(array: _Array, size: int) -> _Array:
    out = np.zeros(size, array.dtype)
    out[: array.size] = array
    return out


class KnownSeries:
    """Bounded per-tenant map from identity digest to series id and stored time span."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._by_tenant: dict[str, _TenantSeries] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def lookup(self, tenant: str, digests: Sequence[int]) -> KnownLookup:
        """What is known of each digest (`found` False for series not known to be stored)."""
        known = self._by_tenant.get(tenant)
        if known is None:
            count = len(digests)
            return KnownLookup(
                np.zeros(count, bool),
                np.zeros(count, np.uint64),
                np.zeros(count, np.int64),
                np.zeros(count, np.int64),
            )
        return known.lookup(digests)

    def remember(self, tenant: str, entries: Sequence[Registered]) -> None:
        """Record series whose rows are now stored, widening the spans of known ones."""
        if self._max_entries == 0 or not entries:
            return
        known = self._by_tenant.setdefault(tenant, _TenantSeries())
        before = len(known)
        known.remember(entries)
        self._size += len(known) - before
        if self._size > self._max_entries:
            # Evict a tenth more than needed, so eviction (a copy) is not paid on every request.
            excess = self._size - self._max_entries + self._max_entries // 10
            known.keep_newest(max(0, len(known) - excess))
            self._size = sum(map(len, self._by_tenant.values()))

    def forget_tenant(self, tenant: str) -> None:
        known = self._by_tenant.pop(tenant, None)
        if known is not None:
            self._size -= len(known)


def needs_registration(
    known: KnownLookup,
    first_ms: npt.NDArray[np.int64],
    last_ms: npt.NDArray[np.int64],
    series_ids: npt.NDArray[np.uint64],
) -> npt.NDArray[np.bool_]:
    """Known series whose samples [first_ms, last_ms] the stored row does not cover.

    A row is refreshed once a sample is newer than its `last_seen` by a per-series share of
    `LAST_SEEN_REFRESH_MS` (between half and all of it), so series registered together do not
    all come back in the same request.
    """
    jitter = (series_ids % np.uint64(LAST_SEEN_REFRESH_MS // 2)).astype(np.int64)
    refresh_after = known.last_ms + LAST_SEEN_REFRESH_MS // 2 + jitter
    return known.found & ((first_ms < known.first_ms) | (last_ms > refresh_after))
