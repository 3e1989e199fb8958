"""One `/metrics` for all worker processes: any worker answers with every worker's series.

A scrape reaches one worker (the kernel picks it), so each worker also serves its own registry on
a private unix socket; the worker that is scraped collects the others' and adds a `worker` label
to every sample. `sum without (worker) (...)` aggregates; a restarted worker is a counter reset
of its own series, which `rate()` handles. A worker that does not answer in time is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from gateway.workers import WorkerIdentity

WORKER_LABEL = "worker"
WORKER_HEADER = "X-Gateway-Worker"
_PEER_TIMEOUT_SECONDS = 2.0


def serve_own_metrics(
    identity: WorkerIdentity, registry: CollectorRegistry
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx entry serving this worker's own registry on its unix socket."""

    async def own_metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    async def context(app: web.Application) -> AsyncIterator[None]:
        private = web.Application()
        private.router.add_get("/metrics", own_metrics)
        runner = web.AppRunner(private, access_log=None)
        await runner.setup()
        path = identity.socket_path(identity.index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by a previous incarnation of this worker
        await web.UnixSite(runner, path).start()
        try:
            yield
        finally:
            await runner.cleanup()

    return context


def add_worker_header(
    identity: WorkerIdentity,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An on_response_prepare hook naming the worker (and pid) that answered."""
    value = f"{identity.index}; pid={os.getpid()}"

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[WORKER_HEADER] = value

    return hook


async def all_workers_metrics(identity: WorkerIdentity, registry: CollectorRegistry) -> bytes:
    """The exposition of every reachable worker, each sample labelled with its worker."""
    peers = [index for index in range(identity.count) if index != identity.index]
    answers = await asyncio.gather(
        *(_fetch(identity.socket_path(index)) for index in peers), return_exceptions=True
    )
    texts = {identity.index: generate_latest(registry).decode()}
    for index, answer in zip(peers, answers, strict=True):
        if isinstance(answer, str):
            texts[index] = answer
    merged = CollectorRegistry(auto_describe=False)
    merged.register(_Merged(texts))
    return generate_latest(merged)


async def _fetch(path: str) -> str:
    timeout = aiohttp.ClientTimeout(total=_PEER_TIMEOUT_SECONDS)
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path), timeout=timeout) as session,
        session.get("http://worker/metrics") as response,
    ):
        response.raise_for_status()
        return await response.text()


class _Merged(Collector):
    """A collector over parsed expositions: one family per name, samples of every worker."""

    def __init__(self, texts: dict[int, str]) -> None:
        self._texts = texts

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for index, text in sorted(self._texts.items()):
            for family in text_string_to_metric_families(text):
                merged = families.get(family.name)
                if merged is None:
                    merged = Metric(family.name, family.documentation, family.type, family.unit)
                    families[family.name] = merged
                merged.samples.extend(
                    Sample(
                        s.name, {**s.labels, WORKER_LABEL: str(index)}, s.value, s.timestamp,
                        s.exemplar,
                    )
                    for s in family.samples
                )
        return families.values()
