"""Per-tenant ingestion rate limiting with token buckets (samples per second + burst).

Tokens pay for stored samples: a request takes its samples' tokens up front and gets back the
tokens of samples that were then refused or could not be stored (`refund`), so a sender retrying
after a storage failure is not charged twice. A request larger than the bucket could never be
taken, however long the sender waits: `take` says so (`NEVER`) instead of a wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


NEVER = math.inf
"""What `take` answers for a request larger than the bucket."""


class RateLimiter:
    """Token buckets keyed by tenant; `share` divides the rate among worker processes."""

    def __init__(self, share: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self._share = max(1, share)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def capacity(self, burst: float) -> float:
        """Tokens this process' bucket holds for a tenant's burst (shared among workers)."""
        return max(burst / self._share, 1.0)

    def take(self, tenant: str, samples: int, rate: float, burst: float) -> float:
        """Take `samples` tokens; 0.0 when allowed, NEVER when more than the bucket holds, else
        seconds until they would be there."""
        if rate <= 0 or samples == 0:
            return 0.0
        rate, burst = rate / self._share, self.capacity(burst)
        if samples > burst:
            return NEVER
        bucket = self._refill(tenant, rate, burst)
        if samples <= bucket.tokens:
            bucket.tokens -= samples
            return 0.0
        return max((samples - bucket.tokens) / rate, 0.001)

    def refund(self, tenant: str, samples: int, rate: float, burst: float) -> None:
        """Give back tokens of samples taken but not stored (never above the bucket's size)."""
        if rate <= 0 or samples <= 0 or tenant not in self._buckets:
            return
        rate, burst = rate / self._share, self.capacity(burst)
        bucket = self._refill(tenant, rate, burst)
        bucket.tokens = min(burst, bucket.tokens + samples)

    def _refill(self, tenant: str, rate: float, burst: float) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = self._buckets[tenant] = _Bucket(burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        return bucket


def retry_after_header(seconds: float) -> str:
    """Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
