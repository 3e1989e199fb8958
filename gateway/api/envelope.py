"""Prometheus API JSON envelopes and request-parameter parsing shared by the API handlers."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.errors import Errors, GatewayError

# Prometheus' errorType for each status the gateway answers with.
ERROR_TYPES = {
    400: "bad_data",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "bad_data",
    415: "bad_data",
    422: "execution",
    429: "too_many_requests",
    499: "canceled",
    503: "unavailable",
    500: "internal",
}

# Prometheus' defaults for an absent start/end: the whole representable range.
MIN_TIME_MS = -9_223_372_036_854_775
MAX_TIME_MS = 9_223_372_036_854_775


def success(
    data: Any, warnings: list[str] | None = None, infos: list[str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = warnings
    if infos:
        body["infos"] = infos
    return web.json_response(body, dumps=_dumps)


def error(status: int, message: str, error_type: str | None = None) -> web.Response:
    body = {
        "status": "error",
        "errorType": error_type or ERROR_TYPES.get(status, "internal"),
        "error": message,
    }
    return web.json_response(body, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def bad_param(detail: str) -> GatewayError:
    return GatewayError(Errors.BAD_QUERY_PARAM, detail=detail)


def parse_time_ms(text: str | None, name: str, default: int) -> int:
    """A Prometheus API time: float Unix seconds or RFC3339."""
    if text is None or text == "":
        return default
    try:
        seconds = float(text)
    except ValueError:
        moment = _rfc3339(text)
        if moment is None:
            raise bad_param(
                f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp'
            ) from None
        return int(moment.timestamp() * 1000)
    if not math.isfinite(seconds):
        raise bad_param(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')
    return max(MIN_TIME_MS, min(MAX_TIME_MS, round(seconds * 1000)))


def _rfc3339(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def parse_limit(text: str | None) -> int:
    """`limit` parameter: 0 or absent means no limit."""
    if text is None or text == "":
        return 0
    try:
        limit = int(text)
    except ValueError:
        raise bad_param(f'invalid parameter "limit": cannot parse "{text}"') from None
    if limit < 0:
        raise bad_param('invalid parameter "limit": must be non-negative')
    return limit


async def request_params(request: web.Request) -> dict[str, list[str]]:
    """Query-string and form-body parameters together, as Prometheus reads them."""
    params: dict[str, list[str]] = {}
    for key, value in request.query.items():
        params.setdefault(key, []).append(value)
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        for key, field_value in form.items():
            if isinstance(field_value, str):
                params.setdefault(key, []).append(field_value)
    return params


def first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None
