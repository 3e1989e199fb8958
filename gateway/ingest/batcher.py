"""Group commit: concurrent write requests share one storage insert.

A request joins the open batch and waits. The batch is sealed and inserted as soon as a flush
slot is free (after `min_delay`, which lets simultaneous arrivals share it); while every slot is
busy it keeps growing, until a slot frees up, it holds `max_rows` samples or its first request
has waited `max_delay`. Under light load a request is stored almost at once; under heavy load
inserts grow to whatever arrived during the previous insert, which is what ClickHouse wants.
Every request is answered only after its batch's insert returns, so a 2xx means "stored".
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
    __slots__ = ("done", "opened", "parts", "rows", "timers")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.parts: list[PreparedWrite] = []
        self.rows = 0
        self.opened = loop.time()
        self.done: asyncio.Future[None] = loop.create_future()
        self.timers: list[asyncio.TimerHandle] = []


class Batcher:
    """Collects prepared writes into batches and inserts them through `sink`."""

    def __init__(
        self,
        sink: BatchSink,
        metrics: GatewayMetrics,
        max_rows: int,
        max_delay_seconds: float,
        concurrency: int,
        min_delay_seconds: float = 0.005,
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._max_rows = max_rows
        self._max_delay = max_delay_seconds
        self._min_delay = min(min_delay_seconds, max_delay_seconds)
        self._slots = concurrency
        self._open: _OpenBatch | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def submit(self, prepared: PreparedWrite) -> None:
        """Add a request's rows; returns once they are stored (raises if they were not)."""
        if self._closed:
            raise GatewayError(Errors.SHUTTING_DOWN)
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None:
            batch = self._open = _OpenBatch(loop)
            batch.timers.append(loop.call_later(self._max_delay, self._seal, batch))
            if self._slot_free():
                batch.timers.append(loop.call_later(self._min_delay, self._seal, batch))
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
            self._seal(self._open, force=True)
        while self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    def _slot_free(self) -> bool:
        return len(self._flushing) < self._slots

    def _seal(self, batch: _OpenBatch, force: bool = False) -> None:
        if self._open is not batch:
            return
        if not force and not self._slot_free() and batch.rows < self._max_rows:
            age = asyncio.get_running_loop().time() - batch.opened
            if age < self._max_delay:
                return  # a finishing flush seals it
        self._open = None
        for timer in batch.timers:
            timer.cancel()
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flush_done)

    def _flush_done(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        batch = self._open
        if batch is None:
            return
        wait = self._min_delay - (asyncio.get_running_loop().time() - batch.opened)
        if wait <= 0:
            self._seal(batch)
        else:
            batch.timers.append(asyncio.get_running_loop().call_later(wait, self._seal, batch))

    async def _flush(self, batch: _OpenBatch) -> None:
        write = WriteBatch(
            samples=[part.samples for part in batch.parts if len(part.samples)],
            series=[series for part in batch.parts for series in part.new_series],
            metadata=[item for part in batch.parts for item in part.metadata],
        )
        self._metrics.inflight_batches.inc()
        started = time.perf_counter()
        try:
            await self._sink(write)
        except Exception as exc:
            self._metrics.storage_errors.labels("insert").inc()
            self._metrics.flush_duration.labels("failed").observe(time.perf_counter() - started)
            batch.done.set_exception(exc)
            # Every waiter re-raises it; mark it retrieved so asyncio does not warn.
            batch.done.exception()
            return
        finally:
            self._metrics.inflight_batches.dec()
        self._metrics.flush_duration.labels("stored").observe(time.perf_counter() - started)
        self._metrics.batch_rows.observe(write.sample_count)
        self._metrics.batch_requests.observe(len(batch.parts))
        batch.done.set_result(None)
