"""Group commit: concurrent write requests share one storage insert.

A request joins the open batch and waits; the batch is sealed when it holds `max_rows` samples
or its first request has waited `max_delay`, then inserted. Every request in it is answered
only after the insert returns, success or failure, so a 2xx always means "stored".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from gateway.errors import Errors, GatewayError
from gateway.ingest.prepare import PreparedWrite
from gateway.metrics import GatewayMetrics
from gateway.storage.writer import WriteBatch

BatchSink = Callable[[WriteBatch], Awaitable[None]]


class _OpenBatch:
    __slots__ = ("done", "parts", "rows", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.parts: list[PreparedWrite] = []
        self.rows = 0
        self.done: asyncio.Future[None] = loop.create_future()
        self.timer: asyncio.TimerHandle | None = None


class Batcher:
    """Collects prepared writes into batches and inserts them through `sink`."""

    def __init__(
        self,
        sink: BatchSink,
        metrics: GatewayMetrics,
        max_rows: int,
        max_delay_seconds: float,
        concurrency: int,
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._max_rows = max_rows
        self._max_delay = max_delay_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._open: _OpenBatch | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def submit(self, prepared: PreparedWrite) -> None:
        """Add a request's rows; returns once they are stored (raises if they were not)."""
        if self._closed:
            raise GatewayError(Errors.SHUTTING_DOWN)
        batch = self._open
        if batch is None:
            batch = self._open = _OpenBatch(asyncio.get_running_loop())
            batch.timer = asyncio.get_running_loop().call_later(
                self._max_delay, self._seal, batch
            )
        batch.parts.append(prepared)
        batch.rows += len(prepared.samples) + len(prepared.new_series)
        if batch.rows >= self._max_rows:
            self._seal(batch)
        # The insert goes on even if this request's client goes away.
        await asyncio.shield(batch.done)

    async def close(self) -> None:
        """Stop accepting, insert what is open, wait for every insert."""
        self._closed = True
        if self._open is not None:
            self._seal(self._open)
        while self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    def _seal(self, batch: _OpenBatch) -> None:
        if self._open is not batch:
            return
        self._open = None
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, batch: _OpenBatch) -> None:
        write = WriteBatch(
            samples=[part.samples for part in batch.parts if len(part.samples)],
            series=[series for part in batch.parts for series in part.new_series],
            metadata=[item for part in batch.parts for item in part.metadata],
        )
        async with self._slots:
            self._metrics.inflight_batches.inc()
            started = time.perf_counter()
            try:
                await self._sink(write)
            except Exception as exc:
                self._metrics.storage_errors.labels("insert").inc()
                batch.done.set_exception(exc)
                # Every waiter re-raises it; mark it retrieved so asyncio does not warn.
                batch.done.exception()
                return
            finally:
                self._metrics.inflight_batches.dec()
            self._metrics.flush_duration.observe(time.perf_counter() - started)
            self._metrics.batch_rows.observe(write.sample_count)
            self._metrics.batch_requests.observe(len(batch.parts))
            batch.done.set_result(None)
