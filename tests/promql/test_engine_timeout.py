"""Query timeouts and cancellation stop work promptly instead of leaving it running."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.model.matchers import Matcher
from gateway.model.series import SeriesData
from gateway.promql.context import EngineOptions, EvalContext
from gateway.promql.engine import instant_query
from gateway.promql.errors import QueryCanceled, QueryTimeout

BOUND_SECONDS = 10  # far above the timeouts used: a hang fails instead of blocking the run


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
