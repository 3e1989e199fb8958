"""Typed keys of what `create_app` puts in the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from gateway.config import Config
from gateway.ingest.batcher import Batcher
from gateway.ingest.known_series import KnownSeries
from gateway.metrics import GatewayMetrics
from gateway.readiness import Readiness
from gateway.storage.clickhouse import ClickHouse
from gateway.storage.schema import Layout
from gateway.tenancy import TenantResolver

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", GatewayMetrics)
STORE = web.AppKey("store", ClickHouse)
LAYOUT = web.AppKey("layout", Layout)
RESOLVER = web.AppKey("resolver", TenantResolver)
KNOWN_SERIES = web.AppKey("known_series", KnownSeries)
BATCHER = web.AppKey("batcher", Batcher)
READINESS = web.AppKey("readiness", Readiness)
