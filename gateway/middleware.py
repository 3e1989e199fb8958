"""One place that turns errors into HTTP responses and times every request."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api import envelope
from gateway.api.query_guard import is_parser_panic
from gateway.app_keys import CONFIG, METRICS
from gateway.errors import Errors, GatewayError
from gateway.model.duration import parse_duration_ms
from gateway.storage.clickhouse import StorageError

log = logging.getLogger(__name__)

# Paths answered in the Prometheus JSON envelope; the remote protocols answer plain text.
_JSON_PREFIX = "/api/v1/"
_TEXT_PATHS = ("/api/v1/write", "/api/v1/push", "/api/v1/read")
# "/api/v1/query" covers query_range too (and query_exemplars, which reads no storage).
_OWN_TIMEOUT = ("/api/v1/query", "/api/v1/admin/")


def _wants_json(path: str) -> bool:
    return path.startswith(_JSON_PREFIX) and not path.startswith(_TEXT_PATHS)


@web.middleware
async def errors_and_timing(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        seconds = _read_timeout(request)
        if seconds is None:
            response = await handler(request)
        else:
            try:
                async with asyncio.timeout(seconds):
                    response = await handler(request)
            except TimeoutError:
                raise GatewayError(
                    Errors.READ_TIMEOUT, seconds=seconds, setting="query.timeout"
                ) from None
        status = response.status
        return response
    except GatewayError as exc:
        status = exc.status
        return _error_response(request, exc.status, exc.message, exc.reason)
    except StorageError as exc:
        status = 503
        log.warning("storage error on %s %s: %s", request.method, request.path, exc)
        return _error_response(request, 503, f"storage unavailable: {exc}", "storage")
    except web.HTTPException as exc:
        status = exc.status
        if exc.status >= 400 and _wants_json(request.path):
            return _error_response(request, exc.status, exc.reason, "http")
        if exc.status >= 400:
            count_rejection(request, "http", exc.status)  # answered by aiohttp as it is
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        status = 500
        return _error_response(request, 500, "internal error (see the gateway log)", "internal")
    except BaseException as exc:
        # A Rust panic of promql-parser is a BaseException: without this, aiohttp drops the
        # connection with no answer. Cancellation and interpreter exits still propagate.
        if not is_parser_panic(exc):
            raise
        log.exception("parser panic on %s %s", request.method, request.path)
        status = 500
        return _error_response(request, 500, "internal error (see the gateway log)", "internal")
    finally:
        route = request.match_info.route.resource
        handler_name = route.canonical if route is not None else "unmatched"
        request.app[METRICS].request_duration.labels(
            handler_name, request.method, str(status)
        ).observe(time.perf_counter() - started)


def count_rejection(request: web.Request, reason: str, status: int) -> None:
    """Count one request answered with an error; every error answer passes here once."""
    request.app[METRICS].rejected_requests.labels(reason, str(status)).inc()


def _read_timeout(request: web.Request) -> float | None:
    """`query.timeout` for the JSON read endpoints, so slow storage answers a 503 instead of
    hanging. The query API applies it (and its `timeout` parameter) itself; admin calls change
    state and remote protocols set their own (see remote-read's `select`)."""
    path = request.path
    if not _wants_json(path) or path.startswith(_OWN_TIMEOUT):
        return None
    return parse_duration_ms(request.app[CONFIG].query.timeout) / 1000


def _error_response(request: web.Request, status: int, message: str, reason: str) -> web.Response:
    count_rejection(request, reason, status)
    if _wants_json(request.path):
        return envelope.error(status, message)
    headers = {"WWW-Authenticate": 'Bearer realm="metrics-gateway"'} if status == 401 else None
    return web.Response(status=status, text=message + "\n", headers=headers)
