"""Distinct values per (tenant, key): label values under a label budget, metadata families.

Only budgeted label names are tracked, so the sets stay as small as the budgets. The sets are
replaced from storage on every reconciliation (values of series that left the active window
leave), keeping what was admitted locally while the storage read was running.
"""

from __future__ import annotations

from collections.abc import Iterable

Key = tuple[str, str]


class DistinctValues:
    """Per (tenant, key) sets of values, reloaded wholesale from storage."""

    def __init__(self) -> None:
        self._sets: dict[Key, set[str]] = {}
        self._recent: dict[Key, set[str]] | None = None

    def count(self, tenant: str, key: str) -> int:
        values = self._sets.get((tenant, key))
        return 0 if values is None else len(values)

    def lookup(self, tenant: str, key: str, value: str) -> tuple[bool, int]:
        """Whether the value is known, and how many values the key has."""
        values = self._sets.get((tenant, key))
        if values is None:
            return False, 0
        return value in values, len(values)

    def contains(self, tenant: str, key: str, value: str) -> bool:
        values = self._sets.get((tenant, key))
        return values is not None and value in values

    def unknown(self, tenant: str, key: str, values: set[str]) -> set[str]:
        """The values the key does not have yet."""
        known = self._sets.get((tenant, key))
        return values if known is None else values - known

    def add(self, tenant: str, key: str, value: str) -> None:
        self.add_all(tenant, key, (value,))

    def add_all(self, tenant: str, key: str, values: Iterable[str]) -> None:
        values = tuple(values)
        self._sets.setdefault((tenant, key), set()).update(values)
        if self._recent is not None:
            self._recent.setdefault((tenant, key), set()).update(values)

    def begin_reload(self) -> None:
        """Start remembering local additions, to survive the coming `finish_reload`."""
        self._recent = {}

    def abort_reload(self) -> None:
        """The storage read failed: keep the current sets."""
        self._recent = None

    def finish_reload(self, groups: Iterable[tuple[str, str, Iterable[str]]]) -> None:
        """Replace every set by (tenant, key, values) groups plus the additions since begin."""
        fresh: dict[Key, set[str]] = {}
        for tenant, key, values in groups:
            fresh.setdefault((tenant, key), set()).update(values)
        for owner_key, values in (self._recent or {}).items():
            fresh.setdefault(owner_key, set()).update(values)
        self._sets = fresh
        self._recent = None

    def keys_of(self, tenant: str) -> dict[str, int]:
        """Value counts per key of one tenant."""
        return {key: len(values) for (owner, key), values in self._sets.items() if owner == tenant}
