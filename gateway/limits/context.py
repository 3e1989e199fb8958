"""The limits subsystem's part of the app lifecycle (an aiohttp cleanup context)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.app_keys import CONFIG, KNOWN_SERIES, LAYOUT, LIMITS, METRICS, READINESS, STORE
from gateway.limits.model import Limits
from gateway.limits.service import LimitsService
from gateway.storage.clickhouse import StorageError

log = logging.getLogger(__name__)


async def limits_context(app: web.Application) -> AsyncIterator[None]:
    """Load limits and active series, keep them in step with storage, persist on shutdown."""
    service = LimitsService(app[CONFIG], app[METRICS], app[STORE], app[LAYOUT])
    known = app[KNOWN_SERIES]

    def forget_known(tenant: str, limits: Limits) -> None:
        # Known series map raw label digests to ids hashed after drop_labels: stale if it changed.
        known.forget_tenant(tenant)

    service.on_change.append(forget_known)
    app[LIMITS] = service
    if app[READINESS].ready:
        try:
            await service.load()
        except StorageError as exc:
            log.warning("limits not loaded at start-up, retrying: %s", exc)
    task = asyncio.get_running_loop().create_task(service.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.close()
