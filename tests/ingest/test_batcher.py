"""Group commit: who shares a batch, when a batch is inserted, and what waiters are told."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gateway.errors import GatewayError
from gateway.ingest.batcher import Batcher
from gateway.ingest.prepare import PreparedWrite
from gateway.metrics import GatewayMetrics
from gateway.storage.writer import TenantSamples, WriteBatch


def prepared(rows: int, tenant: str = "t") -> PreparedWrite:
    ids = np.arange(rows, dtype=np.uint64)
    samples = TenantSamples(tenant, ids, np.zeros(rows, np.int64), np.ones(rows))
    return PreparedWrite(tenant, samples, [], [], [])


class Sink:
    """Records batches; each insert waits until the test lets it finish."""

    def __init__(self) -> None:
        self.batches: list[WriteBatch] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail: Exception | None = None

    async def __call__(self, batch: WriteBatch) -> None:
        self.batches.append(batch)
        await self.release.wait()
        if self.fail is not None:
            raise self.fail


def batcher(sink: Sink, metrics: GatewayMetrics, **options: float) -> Batcher:
    settings = {"max_rows": 1000, "max_delay_seconds": 5.0, "concurrency": 1,
                "min_delay_seconds": 0.01, **options}
    return Batcher(sink, metrics, **settings)  # type: ignore[arg-type]


def counter(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_simultaneous_requests_share_one_insert() -> None:
    sink, metrics = Sink(), GatewayMetrics()
    commit = batcher(sink, metrics)
    await asyncio.gather(*(commit.submit(prepared(10)) for _ in range(5)))
    assert [batch.sample_count for batch in sink.batches] == [50]
    assert counter(metrics, "gateway_batch_requests_sum") == 5


async def test_requests_wait_for_their_insert() -> None:
    sink, metrics = Sink(), GatewayMetrics()
    sink.release.clear()
    commit = batcher(sink, metrics)
    waiter = asyncio.ensure_future(commit.submit(prepared(10)))
    await asyncio.sleep(0.1)
    assert len(sink.batches) == 1 and not waiter.done()  # inserting, not acknowledged
    sink.release.set()
    await asyncio.wait_for(waiter, 1)


async def test_a_full_batch_is_inserted_at_once() -> None:
    sink, metrics = Sink(), GatewayMetrics()
    commit = batcher(sink, metrics, max_rows=100, min_delay_seconds=2.0, max_delay_seconds=3.0)
    await asyncio.wait_for(commit.submit(prepared(150)), 1)
    assert [batch.sample_count for batch in sink.batches] == [150]


async def test_a_batch_grows_while_every_slot_is_busy() -> None:
    sink, metrics = Sink(), GatewayMetrics()
    sink.release.clear()
    commit = batcher(sink, metrics)
    first = asyncio.ensure_future(commit.submit(prepared(1)))
    await asyncio.sleep(0.05)  # the first batch is inserting and holds the only slot
    later = [asyncio.ensure_future(commit.submit(prepared(2))) for _ in range(3)]
    await asyncio.sleep(0.1)
    assert len(sink.batches) == 1
    sink.release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 1)
    assert [batch.sample_count for batch in sink.batches] == [1, 6]


async def test_the_longest_wait_is_bounded_even_with_busy_slots() -> None:
    sink, metrics = Sink(), GatewayMetrics()
    sink.release.clear()
    commit = batcher(sink, metrics, max_delay_seconds=0.2)
    first = asyncio.ensure_future(commit.submit(prepared(1)))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(commit.submit(prepared(1)))
    await asyncio.sleep(0.4)
    assert len(sink.batches) == 2  # sealed at max_delay although the slot was still busy
    sink.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 1)


async def test_a_failed_insert_fails_every_request_of_the_batch() -> None:
    sink, metrics = Sink(), GatewayMetrics()
    sink.fail = RuntimeError("storage is down")
    commit = batcher(sink, metrics)
    results = await asyncio.gather(
        *(commit.submit(prepared(5)) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, RuntimeError) for result in results)
    assert counter(metrics, "gateway_storage_errors_total", operation="insert") == 1
    assert counter(metrics, "gateway_batch_flush_duration_seconds_count", outcome="failed") == 1
    sink.fail = None
    await commit.submit(prepared(5))  # the next batch is unaffected
    assert counter(metrics, "gateway_batch_flush_duration_seconds_count", outcome="stored") == 1


async def test_close_inserts_what_is_open_and_then_refuses() -> None:
    sink, metrics = Sink(), GatewayMetrics()
    commit = batcher(sink, metrics, min_delay_seconds=2.0, max_delay_seconds=3.0)
    waiter = asyncio.ensure_future(commit.submit(prepared(7)))
    await asyncio.sleep(0.05)
    assert sink.batches == []
    await asyncio.wait_for(commit.close(), 1)
    assert [batch.sample_count for batch in sink.batches] == [7]
    await waiter
    with pytest.raises(GatewayError) as refused:
        await commit.submit(prepared(1))
    assert refused.value.status == 503
