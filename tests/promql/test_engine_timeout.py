"""Query timeouts and cancellation stop work promptly instead of leaving it running."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from gateway.model.matchers import Matcher
from gateway.model.series import SeriesData
from gateway.promql.context import EngineOptions, EvalContext
from gateway.promql.engine import instant_query, range_query
from gateway.promql.errors import QueryCanceled, QueryTimeout
from gateway.promql.functions.buckets import Buckets, quantiles
from gateway.promql.functions.compensated import kahan_windows, segment_sums, window_sums
from gateway.promql.functions.ordered import window_quantiles
from gateway.promql.source import MemorySource

BOUND_SECONDS = 10  # far above the timeouts used: a hang fails instead of blocking the run
# One node that sorts a day of 1 s samples (all different) at each of 5,761 steps: over 20 s of
# work on a quiet 2-core machine with no AST node boundary in between, and no data needed.
LONG_QUERY = "quantile_over_time(0.5, sin(vector(time()))[1d:1s])"
DAY_MS = 86_400_000


class SlowSource:
    """A source whose every select takes far longer than the query may."""

    async def select(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        await asyncio.sleep(3600)
        return []


async def test_slow_selection_times_out() -> None:
    async with asyncio.timeout(BOUND_SECONDS):
        with pytest.raises(QueryTimeout, match="query timed out"):
            await instant_query(SlowSource(), "up", 0, EngineOptions(timeout_s=0.05))


async def test_expired_deadline_stops_evaluation() -> None:
    ctx = EvalContext(EngineOptions(), 0, 0, False, {})
    ctx.deadline = 1.0  # long past on the monotonic clock
    with pytest.raises(QueryTimeout):
        ctx.check_deadline()


async def test_abandoned_evaluation_stops() -> None:
    ctx = EvalContext(EngineOptions(), 0, 0, False, {})
    ctx.canceled = True
    with pytest.raises(QueryCanceled):
        ctx.check_deadline()


async def test_cancelling_the_caller_cancels_the_query() -> None:
    task = asyncio.ensure_future(instant_query(SlowSource(), "up", 0))
    await asyncio.sleep(0.05)
    task.cancel()
    async with asyncio.timeout(BOUND_SECONDS):
        with pytest.raises(asyncio.CancelledError):
            await task


def evaluating_threads() -> list[int]:
    """Threads (other than this one) currently running engine code."""
    out = []
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        current = frame
        while current is not None:
            if "/gateway/promql/" in current.f_code.co_filename:
                out.append(ident)
                break
            current = current.f_back
    return out


async def test_long_node_stops_at_its_deadline() -> None:
    options = EngineOptions(timeout_s=0.3)
    async with asyncio.timeout(BOUND_SECONDS):
        with pytest.raises(QueryTimeout, match="query timed out in expression evaluation"):
            await range_query(MemorySource(), LONG_QUERY, 0, DAY_MS, 15_000, options)
    assert not evaluating_threads()


async def test_abandoned_long_node_frees_its_thread() -> None:
    task = asyncio.ensure_future(range_query(MemorySource(), LONG_QUERY, 0, DAY_MS, 15_000))
    async with asyncio.timeout(BOUND_SECONDS):
        while not evaluating_threads():
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The worker thread notices at its next check, inside the node, and ends.
    async with asyncio.timeout(BOUND_SECONDS):
        while evaluating_threads():
            await asyncio.sleep(0.02)


class Stop(Exception):
    pass


def _stop_on_second_call() -> object:
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise Stop

    return check


def test_long_loops_check_the_deadline() -> None:
    """Each multi-pass helper asks `check` between its passes, so it can be stopped inside."""
    values = np.arange(5000, dtype=np.float64)
    lo, hi = np.zeros(1000, dtype=np.int64), np.full(1000, 5000, dtype=np.int64)
    starts = np.array([0, 5000], dtype=np.int64)
    buckets = Buckets(np.ones((1, 3)), np.ones((1, 3, 2)), np.ones((1, 3, 2), dtype=np.bool_))
    calls = [
        lambda check: window_sums(values, None, lo, hi, check),
        lambda check: kahan_windows(values, lo, hi, check),
        lambda check: segment_sums(values[:, None], None, starts, check),
        lambda check: window_quantiles(values, lo, hi, np.full(1000, 0.5), check),
        lambda check: quantiles(np.full(2, 0.5), buckets, check),
    ]
    for call in calls:
        with pytest.raises(Stop):
            call(_stop_on_second_call())
