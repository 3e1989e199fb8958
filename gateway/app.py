"""`create_app(config)`: assembles the gateway from its parts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.api import admin, cardinality, health, metadata, query, series, status
from gateway.app_keys import (
    ADMIN_TOKEN,
    BATCHER,
    CONFIG,
    KNOWN_SERIES,
    LAYOUT,
    METRICS,
    READINESS,
    RESOLVER,
    SERIES_LABELS,
    STARTED_AT,
    STORE,
    WORKER,
)
from gateway.config import Config
from gateway.ingest.batcher import Batcher
from gateway.ingest.known_series import KnownSeries
from gateway.limits.context import limits_context
from gateway.metrics import GatewayMetrics
from gateway.middleware import errors_and_timing
from gateway.readiness import Readiness
from gateway.remote import read_handler, write_handler
from gateway.storage.clickhouse import ClickHouse, StorageLocked
from gateway.storage.labels_cache import SeriesLabelsCache
from gateway.storage.schema import Layout
from gateway.storage.writer import WriteBatch, write_batch
from gateway.tenancy import TenantResolver
from gateway.worker_metrics import add_worker_header, serve_own_metrics
from gateway.workers import WorkerIdentity

log = logging.getLogger(__name__)
READINESS_INTERVAL_SECONDS = 5.0


def server_options() -> dict[str, Any]:
    """Options of the HTTP server that runs the app (`web.run_app` / `web.AppRunner` kwargs).

    aiohttp decodes gzip, deflate and br request bodies on its own, before any handler could
    refuse them and without the gateway's decoded-size caps: the remote protocols carry snappy
    and refuse other encodings with 415 themselves, so bodies reach handlers as sent.
    """
    return {"auto_decompress": False}


def create_app(config: Config, worker: WorkerIdentity | None = None) -> web.Application:
    """The gateway as an aiohttp application; storage opens when the app starts.

    `worker` is set in a worker process of a multi-process gateway (see gateway.workers).
    """
    app = web.Application(
        middlewares=[errors_and_timing],
        # Bodies are read and size-checked by the handlers themselves.
        client_max_size=config.ingest.max_body_bytes + 1,
    )
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    app[METRICS] = GatewayMetrics()
    app[LAYOUT] = Layout.for_config(config.storage)
    app[RESOLVER] = TenantResolver(config.auth, config.admin.token)
    app[KNOWN_SERIES] = KnownSeries(config.ingest.known_series_cache_size)
    app[SERIES_LABELS] = _series_labels_cache(config.query.series_labels_cache_size, app[METRICS])
    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(limits_context)
    app[ADMIN_TOKEN] = admin.token_fingerprint(config.admin.token)
    if worker is not None:
        app[WORKER] = worker
        app.cleanup_ctx.append(serve_own_metrics(worker, app[METRICS].registry))
        app.on_response_prepare.append(add_worker_header(worker))
    _routes(app)
    return app


def _series_labels_cache(max_series: int, metrics: GatewayMetrics) -> SeriesLabelsCache:
    hits = metrics.series_labels_lookups.labels("hit")
    misses = metrics.series_labels_lookups.labels("miss")

    def observe(hit: int, missed: int) -> None:
        hits.inc(hit)
        misses.inc(missed)

    cache = SeriesLabelsCache(max_series, observe)
    metrics.series_labels_cached.set_function(lambda: len(cache))
    return cache


def _routes(app: web.Application) -> None:
    for path in ("/api/v1/write", "/api/v1/push"):
        app.router.add_post(path, write_handler.write)
    for method in ("GET", "POST"):
        app.router.add_route(method, "/api/v1/series", series.series)
        app.router.add_route(method, "/api/v1/labels", series.labels)
        app.router.add_route(method, "/api/v1/query", query.query)
        app.router.add_route(method, "/api/v1/query_range", query.query_range)
    app.router.add_get("/api/v1/label/{name}/values", series.label_values)
    app.router.add_post("/api/v1/label/{name}/values", series.method_not_allowed)
    app.router.add_post("/api/v1/read", read_handler.read)
    for method in ("GET", "POST"):
        app.router.add_route(method, "/api/v1/query_exemplars", metadata.query_exemplars)
    app.router.add_get("/api/v1/metadata", metadata.metadata)
    app.router.add_get("/api/v1/status/buildinfo", status.buildinfo)
    app.router.add_get("/api/v1/status/runtimeinfo", status.runtimeinfo)
    app.router.add_get("/api/v1/status/flags", status.flags)
    admin.add_routes(app.router)
    cardinality.add_routes(app.router)
    app.router.add_get("/-/healthy", health.healthy)
    app.router.add_get("/-/ready", health.ready)
    app.router.add_get("/metrics", health.metrics)


async def _storage(app: web.Application) -> AsyncIterator[None]:
    """Open storage, migrate, run the batcher; on shutdown flush what is pending."""
    config = app[CONFIG]
    store = ClickHouse.for_config(config.storage)
    app[STORE] = store
    layout = app[LAYOUT]
    readiness = Readiness(store, layout, app[METRICS], config.storage.min_free_bytes)
    app[READINESS] = readiness

    async def sink(batch: WriteBatch) -> None:
        await store.run(lambda client: write_batch(client, layout, batch))

    ingest = config.ingest
    batcher = Batcher(
        sink,
        app[METRICS],
        max_rows=ingest.batch_max_rows,
        max_delay_seconds=ingest.batch_max_delay_ms / 1000,
        concurrency=ingest.flush_concurrency,
        min_delay_seconds=ingest.batch_min_delay_ms / 1000,
    )
    app[BATCHER] = batcher
    try:
        await readiness.check()
    except StorageLocked:
        store.close()
        raise
    watcher = asyncio.get_running_loop().create_task(readiness.watch(READINESS_INTERVAL_SECONDS))
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await batcher.close()
        store.close()

