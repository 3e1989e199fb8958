"""Typed keys of what `create_app` puts in the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from gateway.config import Config
from gateway.ingest.batcher import Batcher
from gateway.ingest.known_series import KnownSeries
from gateway.limits.service import LimitsService
from gateway.metrics import GatewayMetrics
from gateway.readiness import Readiness
from gateway.storage.clickhouse import ClickHouse
from gateway.storage.labels_cache import SeriesLabelsCache
from gateway.storage.schema import Layout
from gateway.tenancy import TenantResolver
from gateway.workers import WorkerIdentity

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", GatewayMetrics)
STORE = web.AppKey("store", ClickHouse)
LAYOUT = web.AppKey("layout", Layout)
RESOLVER = web.AppKey("resolver", TenantResolver)
KNOWN_SERIES = web.AppKey("known_series", KnownSeries)
SERIES_LABELS = web.AppKey("series_labels", SeriesLabelsCache)
BATCHER = web.AppKey("batcher", Batcher)
READINESS = web.AppKey("readiness", Readiness)
STARTED_AT = web.AppKey("started_at", float)
"""Wall-clock Unix time at which the app was created (runtimeinfo)."""
WORKER = web.AppKey("worker", WorkerIdentity)
LIMITS = web.AppKey("limits", LimitsService)
ADMIN_TOKEN = web.AppKey("admin_token", bytes)
"""SHA-256 of the admin token (empty: the admin API is off)."""
