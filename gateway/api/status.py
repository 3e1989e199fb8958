"""`/api/v1/status/{buildinfo,runtimeinfo,flags}` in Prometheus' shapes."""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import threading
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

import gateway
from gateway.api import envelope
from gateway.app_keys import CONFIG, RESOLVER, STARTED_AT
from gateway.config import Config

# Mimir's buildinfo feature names. A non-empty `features` map makes Grafana treat the server as
# Mimir; "true" would make it use that API (e.g. manage rules through the ruler config API),
# and the gateway serves none of them.
FEATURES = {
    "ruler_config_api": "false",
    "alertmanager_config_api": "false",
    "query_sharding": "false",
    "federated_rules": "false",
}
SECRET = "<secret>"
_SECRET_FIELDS = frozenset({"bearer_token", "password"})
_PASSWORD_PARAM = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


async def buildinfo(request: web.Request) -> web.Response:
    request.app[RESOLVER].resolve(request.headers)  # with auth on, only for credentials
    return envelope.success(
        {
            "version": gateway.__version__,
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": f"python{platform.python_version()}",
            "features": FEATURES,
        }
    )


async def runtimeinfo(request: web.Request) -> web.Response:
    request.app[RESOLVER].resolve(request.headers)
    started = _rfc3339(request.app[STARTED_AT])
    retention = request.app[CONFIG].storage.retention_days
    return envelope.success(
        {
            "startTime": started,
            "CWD": os.getcwd(),
            "reloadConfigSuccess": True,
            "lastConfigTime": started,  # the configuration is read once, at start-up
            "corruptionCount": 0,
            "goroutineCount": threading.active_count(),
            "GOMAXPROCS": os.cpu_count() or 1,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": f"{retention}d" if retention else "unlimited",
        }
    )


async def flags(request: web.Request) -> web.Response:
    request.app[RESOLVER].resolve(request.headers)
    return envelope.success(effective_flags(request.app[CONFIG]))


def effective_flags(config: Config) -> dict[str, str]:
    """Every config key (`storage.dsn`, ...) with its effective value as text, secrets hidden."""
    result: dict[str, str] = {}
    _flatten(config, "", result)
    return dict(sorted(result.items()))


def _flatten(node: Any, prefix: str, out: dict[str, str]) -> None:
    for item in dataclasses.fields(node):
        value = getattr(node, item.name)
        path = prefix + item.name
        if dataclasses.is_dataclass(value):
            _flatten(value, path + ".", out)
        else:
            out[path] = _text(path, value)


def _text(path: str, value: Any) -> str:
    if path == "auth.tenants":
        # Any tenant may read the flags: other tenants' ids and user names are not theirs to see.
        return f"{len(value)} credentials configured (not shown)" if value else "[]"
    if path == "storage.dsn":
        return redact_dsn(str(value))
    if path == "admin.token":
        return SECRET if value else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_item_text(one) for one in value) + "]"
    return str(value)


def _item_text(item: Any) -> str:
    if not dataclasses.is_dataclass(item):
        return str(item)
    shown = []
    for one in dataclasses.fields(item):
        value = getattr(item, one.name)
        if value == "":
            continue
        shown.append(f"{one.name}: {SECRET if one.name in _SECRET_FIELDS else value}")
    return "{" + ", ".join(shown) + "}"


def redact_dsn(dsn: str) -> str:
    """A DSN with its password (user info or `password=` parameter) replaced."""
    dsn = _PASSWORD_PARAM.sub(rf"\1{SECRET}", dsn)
    scheme, sep, rest = dsn.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return dsn
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:{SECRET}@{host}"


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
