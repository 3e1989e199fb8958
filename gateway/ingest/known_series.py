"""Series the gateway has already stored: identity digest -> series id, per tenant.

A hit means the series row exists, so its labels need neither decoding nor validation nor
re-inserting. The map is bounded (oldest entries leave first) and emptied when the UTC day
changes, so every active series re-registers once a day and its `last_seen` stays within a day.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


def utc_day(now: float) -> int:
    return int(now // 86400)


class KnownSeries:
    """Bounded per-tenant map from identity digest to series id."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._by_tenant: dict[str, dict[int, int]] = {}
        self._size = 0
        self._day = utc_day(clock())

    def __len__(self) -> int:
        return self._size

    def lookup(self, tenant: str, digests: list[int]) -> list[int | None]:
        """The series id of each digest, None for series not known to be stored."""
        self._roll_day()
        known = self._by_tenant.get(tenant)
        if known is None:
            return [None] * len(digests)
        return list(map(known.get, digests))

    def remember(self, tenant: str, entries: Iterable[tuple[int, int]]) -> None:
        """Record (digest, series id) pairs whose series rows are now stored."""
        if self._max_entries == 0:
            return
        known = self._by_tenant.setdefault(tenant, {})
        before = len(known)
        known.update(entries)
        self._size += len(known) - before
        if self._size > self._max_entries:
            self._evict(known, self._size - self._max_entries)

    def forget_tenant(self, tenant: str) -> None:
        self._size -= len(self._by_tenant.pop(tenant, {}))

    def _evict(self, known: dict[int, int], count: int) -> None:
        # Dicts keep insertion order, so the first keys are the oldest.
        for digest in list(known)[: min(count, len(known))]:
            del known[digest]
        self._size = sum(len(entries) for entries in self._by_tenant.values())

    def _roll_day(self) -> None:
        day = utc_day(self._clock())
        if day != self._day:
            self._day = day
            self._by_tenant.clear()
            self._size = 0
