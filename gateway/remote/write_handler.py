"""`POST /api/v1/write` (and Mimir's `/api/v1/push`): remote-write 1.0 and 2.0."""

from __future__ import annotations

from aiohttp import web

from gateway.app_keys import BATCHER, CONFIG, KNOWN_SERIES, LIMITS, METRICS, READINESS, RESOLVER
from gateway.errors import Errors, GatewayError
from gateway.ingest.prepare import PreparedWrite, prepare
from gateway.ingest.request_caps import SeriesCaps, check_count
from gateway.limits import checks
from gateway.limits.rate import NEVER, retry_after_header
from gateway.middleware import count_rejection
from gateway.remote import snappy
from gateway.remote.write_codec import DecodedWrite, decode_v1, decode_v2
from gateway.storage.clickhouse import StorageError

V2_PROTO = "io.prometheus.write.v2.Request"
V1_PROTO = "prometheus.WriteRequest"
_MAX_ERRORS_SHOWN = 3


def protocol_version(content_type: str) -> int:
    """1 or 2 from the Content-Type; raises 415 for anything else."""
    media, *parameters = [part.strip() for part in content_type.split(";")]
    if media.lower() not in ("application/x-protobuf", ""):
        raise GatewayError(Errors.UNSUPPORTED_CONTENT_TYPE, content_type=content_type)
    proto = next(
        (p.partition("=")[2].strip('"') for p in parameters if p.lower().startswith("proto=")),
        V1_PROTO,
    )
    if proto == V1_PROTO:
        return 1
    if proto == V2_PROTO:
        return 2
    raise GatewayError(Errors.UNSUPPORTED_CONTENT_TYPE, content_type=content_type)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without buffering them."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise GatewayError(
            Errors.BODY_TOO_LARGE, size=declared, limit=limit, setting="ingest.max_body_bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise GatewayError(
                Errors.BODY_TOO_LARGE, size=f"more than {limit}", limit=limit,
                setting="ingest.max_body_bytes",
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def write(request: web.Request) -> web.Response:
    app = request.app
    tenant = app[RESOLVER].resolve(request.headers)
    version = protocol_version(request.headers.get("Content-Type", ""))
    encoding = request.headers.get("Content-Encoding", "snappy").strip().lower()
    if encoding != "snappy":
        raise GatewayError(Errors.UNSUPPORTED_ENCODING, encoding=encoding)
    if not app[READINESS].ready:
        raise GatewayError(Errors.STORAGE_UNAVAILABLE, detail=app[READINESS].problem)
    ingest = app[CONFIG].ingest
    body = await read_body(request, ingest.max_body_bytes)
    data = snappy.decompress(body, ingest.max_decoded_bytes)
    if version == 2:
        decoded = decode_v2(data, ingest.max_series_per_request, ingest.max_symbols_per_request)
    else:
        decoded = decode_v1(data, ingest.max_series_per_request)
    check_count(
        len(decoded.timestamps), ingest.max_samples_per_request, "samples",
        "ingest.max_samples_per_request",
    )
    refused = _request_limits(request, tenant, decoded)
    if refused is not None:
        return refused
    limits = app[LIMITS]
    admission = limits.admission(tenant) if limits.settings.enabled else None
    caps = SeriesCaps(ingest.max_labels_per_series, ingest.max_label_bytes_per_series)
    prepared = prepare(decoded, tenant, app[KNOWN_SERIES], admission, caps)
    _count_received(request, decoded, prepared)
    limits.record(tenant, 0, prepared.discarded)
    # The rate limit pays for stored samples: refused ones give their tokens back.
    _refund(request, tenant, len(decoded.timestamps) - len(prepared.samples))
    if len(prepared.samples) or prepared.new_series or prepared.metadata:
        try:
            await app[BATCHER].submit(prepared)
        except StorageError as exc:
            # The sender retries this body: charge it once, on the attempt that stores it.
            _refund(request, tenant, len(prepared.samples))
            app[READINESS].note_write_failure(exc)
            raise GatewayError(Errors.STORAGE_UNAVAILABLE, detail=str(exc)) from None
        app[KNOWN_SERIES].remember(tenant, prepared.new_keys)
    metrics = app[METRICS]
    metrics.stored_samples.labels(tenant).inc(len(prepared.samples))
    metrics.new_series.labels(tenant).inc(len(prepared.new_series))
    metrics.stored_metadata.labels(tenant).inc(len(prepared.metadata))
    metrics.known_series.set(len(app[KNOWN_SERIES]))
    limits.record(tenant, len(prepared.samples), {})
    headers = _written_headers(prepared) if version == 2 else {}
    if prepared.errors:
        # Partial: the rest was stored. Counted once, by the first refused series' reason.
        count_rejection(request, prepared.errors[0].reason, 400)
        return web.Response(
            status=400, text=_describe_errors(prepared), headers=headers,
        )
    return web.Response(status=204, headers=headers)


def _request_limits(
    request: web.Request, tenant: str, decoded: DecodedWrite
) -> web.Response | None:
    """Request-wide limits: samples per request (400) and ingestion rate (429 + Retry-After)."""
    service = request.app[LIMITS]
    if not service.settings.enabled:
        return None
    if not service.loaded:
        raise GatewayError(Errors.LIMITS_NOT_LOADED)
    limits = service.limits_for(tenant)
    samples = len(decoded.timestamps)
    if not checks.is_within_samples_per_request(samples, limits.max_samples_per_request):
        error = GatewayError(
            Errors.TOO_MANY_SAMPLES_PER_REQUEST, count=samples,
            limit=limits.max_samples_per_request, tenant=tenant,
        )
        _discard(request, tenant, error.reason, samples)
        raise error
    wait = service.rate.take(tenant, samples, limits.ingestion_rate, limits.burst)
    if wait == 0.0:
        return None
    if wait == NEVER:
        # Waiting cannot help, so a 429 would stall a sender that retries it (Prometheus with
        # retry_on_http_429) forever: refuse it for good.
        error = GatewayError(
            Errors.INGESTION_BURST_EXCEEDED, count=samples,
            burst=f"{service.rate.capacity(limits.burst):g}", tenant=tenant,
        )
        _discard(request, tenant, error.reason, samples)
        raise error
    retry = retry_after_header(wait)
    error = GatewayError(
        Errors.RATE_LIMITED, count=samples, rate=f"{limits.ingestion_rate:g}",
        burst=f"{limits.burst:g}", tenant=tenant, retry=retry,
    )
    _discard(request, tenant, error.reason, samples)
    count_rejection(request, error.reason, error.status)
    return web.Response(
        status=error.status, text=error.message + "\n", headers={"Retry-After": retry}
    )


def _refund(request: web.Request, tenant: str, samples: int) -> None:
    service = request.app[LIMITS]
    if samples > 0 and service.settings.enabled:
        limits = service.limits_for(tenant)
        service.rate.refund(tenant, samples, limits.ingestion_rate, limits.burst)


def _discard(request: web.Request, tenant: str, reason: str, samples: int) -> None:
    request.app[METRICS].discarded_samples.labels(tenant, reason).inc(samples)
    request.app[LIMITS].record(tenant, 0, {reason: samples})


def _count_received(request: web.Request, decoded: DecodedWrite, prepared: PreparedWrite) -> None:
    metrics = request.app[METRICS]
    tenant = prepared.tenant
    metrics.received_samples.labels(tenant).inc(len(decoded.timestamps))
    metrics.received_series.labels(tenant).inc(decoded.series_count)
    metrics.received_metadata.labels(tenant).inc(len(decoded.metadata))
    for reason, count in prepared.discarded.items():
        metrics.discarded_samples.labels(tenant, reason).inc(count)
    for reason, count in prepared.discarded_metadata.items():
        metrics.discarded_metadata.labels(tenant, reason).inc(count)


def _written_headers(prepared: PreparedWrite) -> dict[str, str]:
    return {
        "X-Prometheus-Remote-Write-Samples-Written": str(len(prepared.samples)),
        "X-Prometheus-Remote-Write-Histograms-Written": "0",
        "X-Prometheus-Remote-Write-Exemplars-Written": "0",
    }


def _describe_errors(prepared: PreparedWrite) -> str:
    shown = [error.message for error in prepared.errors[:_MAX_ERRORS_SHOWN]]
    more = len(prepared.errors) - len(shown)
    if more > 0:
        shown.append(f"... and {more} more series refused")
    return "\n".join(shown) + "\n"
