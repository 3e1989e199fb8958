"""`POST /api/v1/write` (and Mimir's `/api/v1/push`): remote-write 1.0 and 2.0."""

from __future__ import annotations

from aiohttp import web

from gateway.app_keys import BATCHER, CONFIG, KNOWN_SERIES, METRICS, READINESS, RESOLVER
from gateway.errors import Errors, GatewayError
from gateway.ingest.prepare import PreparedWrite, prepare
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
    decoded = decode_v2(data) if version == 2 else decode_v1(data)
    prepared = prepare(decoded, tenant, app[KNOWN_SERIES])
    _count_received(request, decoded, prepared)
    if len(prepared.samples) or prepared.new_series or prepared.metadata:
        try:
            await app[BATCHER].submit(prepared)
        except StorageError as exc:
            raise GatewayError(Errors.STORAGE_UNAVAILABLE, detail=str(exc)) from None
        app[KNOWN_SERIES].remember(tenant, prepared.new_keys)
    metrics = app[METRICS]
    metrics.stored_samples.labels(tenant).inc(len(prepared.samples))
    metrics.new_series.labels(tenant).inc(len(prepared.new_series))
    metrics.known_series.set(len(app[KNOWN_SERIES]))
    headers = _written_headers(prepared) if version == 2 else {}
    if prepared.errors:
        return web.Response(
            status=400, text=_describe_errors(prepared), headers=headers,
        )
    return web.Response(status=204, headers=headers)


def _count_received(request: web.Request, decoded: DecodedWrite, prepared: PreparedWrite) -> None:
    metrics = request.app[METRICS]
    tenant = prepared.tenant
    metrics.received_samples.labels(tenant).inc(len(decoded.timestamps))
    metrics.received_series.labels(tenant).inc(decoded.series_count)
    metrics.received_metadata.labels(tenant).inc(len(decoded.metadata))
    for reason, count in prepared.discarded.items():
        metrics.discarded_samples.labels(tenant, reason).inc(count)


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
