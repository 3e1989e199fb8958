"""`POST /api/v1/read`: Prometheus remote-read, answered with SAMPLES or STREAMED_XOR_CHUNKS.

Status codes follow Prometheus' read handler where it has one: a request that cannot be decoded
is 400 (a body over the size limits 413, a Content-Encoding other than snappy 415); a query over
a per-query limit is 422, like the query API's limit errors (Prometheus says 400 for its sample
limit; either way its remote-read client neither retries nor reads the status); storage failures
are 503 and anything unexpected 500. Once a streamed response has started, an error can no
longer change the status: the connection is cut without the final chunk, so the reader fails
instead of taking a short answer for a complete one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence

from aiohttp import web

from gateway.api.envelope import STORABLE_MAX_MS, STORABLE_MIN_MS
from gateway.app_keys import CONFIG, LAYOUT, LIMITS, RESOLVER, SERIES_LABELS, STORE
from gateway.errors import Errors, GatewayError
from gateway.limits.read_limits import remote_read_limits
from gateway.model.duration import parse_duration_ms
from gateway.model.matchers import BadMatcher, check_selector
from gateway.model.series import SeriesData
from gateway.remote import snappy
from gateway.remote.read_codec import (
    SAMPLES_CONTENT_TYPE,
    STREAMED_CONTENT_TYPE,
    QuerySpec,
    ResponseType,
    decode_read_request,
    encode_samples_response,
    iter_chunked_frames,
)
from gateway.storage.clickhouse import StorageError
from gateway.storage.sample_reader import select_series

log = logging.getLogger(__name__)

# Series are chunk-encoded off the event loop in groups of about this many samples: large
# enough that the thread hop is cheap, small enough to keep memory flat while streaming.
_ENCODE_GROUP_SAMPLES = 1 << 17

SERIES_ONLY_HINT = "series"

_Select = Callable[[QuerySpec], Awaitable[list[SeriesData]]]


async def read(request: web.Request) -> web.StreamResponse:
    app = request.app
    tenant = app[RESOLVER].resolve(request.headers)
    settings = app[CONFIG].remote_read
    encoding = request.headers.get("Content-Encoding", "snappy").strip().lower()
    if encoding != "snappy":
        raise GatewayError(Errors.UNSUPPORTED_ENCODING, encoding=encoding)
    body = await read_limited_body(request, settings.max_body_bytes, "remote_read.max_body_bytes")
    data = snappy.decompress(body, settings.max_decoded_bytes, "remote_read.max_decoded_bytes")
    spec = decode_read_request(data)
    for index, query in enumerate(spec.queries):
        try:
            check_selector(query.matchers)
        except BadMatcher as exc:
            raise GatewayError(Errors.BAD_READ_MATCHER, query=index, detail=exc) from None
    limits = remote_read_limits(app[LIMITS].limits_for(tenant), tenant, settings)
    timeout = parse_duration_ms(app[CONFIG].query.timeout) / 1000

    async def select(query: QuerySpec) -> list[SeriesData]:
        # Prometheus sends any int64 range; past the storable range the SQL would see times
        # DateTime64 cannot hold (and int64 extremes selected nothing), so clamp to it.
        start_ms = max(STORABLE_MIN_MS, min(STORABLE_MAX_MS, query.start_ms))
        end_ms = max(STORABLE_MIN_MS, min(STORABLE_MAX_MS, query.end_ms))
        if query.end_ms < query.start_ms:
            return []
        # Prometheus hints "series" when it wants the series, not their samples (a remote-read
        # behind its /api/v1/series): the sample tables are not read at all then.
        wants_samples = query.hints is None or query.hints.func != SERIES_ONLY_HINT
        try:
            async with asyncio.timeout(timeout):
                return await app[STORE].run(
                    lambda client: select_series(
                        client, app[LAYOUT], tenant, query.matchers, start_ms, end_ms, limits,
                        with_samples=wants_samples, labels_cache=app[SERIES_LABELS],
                    )
                )
        except TimeoutError:
            raise GatewayError(
                Errors.READ_TIMEOUT, seconds=timeout, setting="query.timeout"
            ) from None

    if spec.response_type is ResponseType.STREAMED_XOR_CHUNKS:
        return await _stream(request, spec.queries, select, settings.max_bytes_in_frame)
    results = await asyncio.gather(*(select(query) for query in spec.queries))
    payload = await asyncio.to_thread(_samples_body, results)
    return web.Response(
        body=payload,
        headers={"Content-Type": SAMPLES_CONTENT_TYPE, "Content-Encoding": "snappy"},
    )


def _samples_body(results: Sequence[Sequence[SeriesData]]) -> bytes:
    return snappy.compress(encode_samples_response(results))


async def _stream(
    request: web.Request,
    queries: Sequence[QuerySpec],
    select: _Select,
    max_frame_bytes: int,
) -> web.StreamResponse:
    # The first query is fetched before the status is sent, so its errors still get one.
    pending = await select(queries[0]) if queries else []
    response = web.StreamResponse(headers={"Content-Type": STREAMED_CONTENT_TYPE})
    await response.prepare(request)
    for index in range(len(queries)):
        try:
            if index:
                pending = await select(queries[index])
            for group in _groups(pending):
                frames = await asyncio.to_thread(_frames, index, group, max_frame_bytes)
                for frame in frames:
                    await response.write(frame)
        except ConnectionResetError:
            return response  # the reader went away; nobody is left to tell
        except (GatewayError, StorageError) as exc:
            log.warning("remote-read stream cut at query %d: %s", index, exc)
            _cut(request)
            return response
        except Exception:
            log.exception("remote-read stream cut at query %d", index)
            _cut(request)
            return response
    await response.write_eof()
    return response


def _cut(request: web.Request) -> None:
    """End the connection without the final chunk, so the reader sees a broken stream."""
    if request.transport is not None:
        request.transport.close()


def _frames(index: int, series: Sequence[SeriesData], max_frame_bytes: int) -> list[bytes]:
    return list(iter_chunked_frames(index, series, max_frame_bytes))


def _groups(series: Sequence[SeriesData]) -> Iterator[Sequence[SeriesData]]:
    start = samples = 0
    for index, one in enumerate(series):
        samples += len(one.timestamps)
        if samples >= _ENCODE_GROUP_SAMPLES:
            yield series[start : index + 1]
            start, samples = index + 1, 0
    if start < len(series):
        yield series[start:]


async def read_limited_body(request: web.Request, limit: int, setting: str) -> bytes:
    """The request body, refusing more than `limit` bytes without buffering them."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise GatewayError(Errors.BODY_TOO_LARGE, size=declared, limit=limit, setting=setting)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise GatewayError(
                Errors.BODY_TOO_LARGE, size=f"more than {limit}", limit=limit, setting=setting
            )
        chunks.append(chunk)
    return b"".join(chunks)
