"""`/-/healthy`, `/-/ready` and the gateway's own `/metrics`."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.app_keys import LIMITS, METRICS, READINESS, WORKER
from gateway.worker_metrics import all_workers_metrics


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="Gateway is Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    """Ready: storage reachable with the current schema and, with limits on, active series
    loaded (until then writes answer 503 too)."""
    readiness = request.app[READINESS]
    if not readiness.ready:
        return web.Response(status=503, text=f"Gateway is not ready: {readiness.problem}\n")
    limits = request.app[LIMITS]
    if limits.settings.enabled and not limits.loaded:
        return web.Response(status=503, text="Gateway is not ready: active series not loaded yet\n")
    return web.Response(text="Gateway is Ready.\n")


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    worker = request.app.get(WORKER)
    if worker is None:
        body = generate_latest(registry)
    else:
        body = await all_workers_metrics(worker, registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
