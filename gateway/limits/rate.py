"""Per-tenant ingestion rate limiting with token buckets (samples per second + burst)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by tenant; `share` divides the rate among worker processes."""

    def __init__(self, share: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self._share = max(1, share)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, tenant: str, samples: int, rate: float, burst: float) -> float:
        """Take `samples` tokens; 0.0 when allowed, else seconds until they would be."""
        if rate <= 0 or samples == 0:
            return 0.0
        rate, burst = rate / self._share, max(burst / self._share, 1.0)
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = self._buckets[tenant] = _Bucket(burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if samples <= bucket.tokens:
            bucket.tokens -= samples
            return 0.0
        # A request larger than the bucket can never pass; tell the sender to wait a full refill.
        missing = min(samples, burst) - bucket.tokens
        return max(missing / rate, 0.001)


def retry_after_header(seconds: float) -> str:
    """Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
