"""Snappy block bodies, with the decoded size checked before any memory is allocated."""

from __future__ import annotations

import cramjam

from gateway.errors import Errors, GatewayError


def declared_length(body: bytes) -> int:
    """The decoded length a snappy block declares in its uvarint header."""
    result = 0
    for index, byte in enumerate(body[:5]):
        result |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return result
    raise GatewayError(Errors.BAD_SNAPPY, detail="invalid length header")


def decompress(
    body: bytes, max_decoded_bytes: int, setting: str = "ingest.max_decoded_bytes"
) -> bytes:
    """Decompress a snappy block body no larger than `max_decoded_bytes` once decoded."""
    if not body:
        return b""
    size = declared_length(body)
    if size > max_decoded_bytes:
        raise GatewayError(
            Errors.DECODED_TOO_LARGE,
            size=size,
            limit=max_decoded_bytes,
            setting=setting,
        )
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise GatewayError(Errors.BAD_SNAPPY, detail=str(exc) or "decode failed") from None


def compress(data: bytes) -> bytes:
    """Snappy block compression (used by responses, tests and benchmarks)."""
    return bytes(cramjam.snappy.compress_raw(data))
