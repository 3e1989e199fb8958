"""Remote-read bodies: `ReadRequest` -> typed queries, series -> responses (pure, no I/O).

Two response types exist. SAMPLES is one `ReadResponse` (the caller snappy-compresses it).
STREAMED_XOR_CHUNKS is a stream of frames, each `uvarint(len) | CRC32C(msg), big-endian | msg`
where msg is a `ChunkedReadResponse` holding one series' XOR chunks, as Prometheus writes them
(storage/remote/codec.go, chunked.go). Responses are serialised by hand: samples are written
with numpy in one pass, which upb message objects (one per sample) cannot match.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

import google_crc32c
import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from gateway._pb.prometheus import remote_pb2 as pb
from gateway.errors import Errors, GatewayError
from gateway.model.labels import Labels
from gateway.model.matchers import BadMatcher, Matcher, MatchOp
from gateway.model.series import SeriesData
from gateway.remote.xor_chunk import split_chunks_many

SAMPLES_CONTENT_TYPE = "application/x-protobuf"
STREAMED_CONTENT_TYPE = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
DEFAULT_MAX_FRAME_BYTES = 1 << 20
"""Prometheus' default `remote_read_max_bytes_in_frame`."""

_MATCH_OPS = {
    pb.LabelMatcher.EQ: MatchOp.EQUAL,
    pb.LabelMatcher.NEQ: MatchOp.NOT_EQUAL,
    pb.LabelMatcher.RE: MatchOp.REGEX,
    pb.LabelMatcher.NRE: MatchOp.NOT_REGEX,
}
# Series are chunk-encoded in batches of about this many samples: one numpy pass per batch,
# while memory stays bounded however many series a query returns.
_BATCH_SAMPLES = 1 << 16


class ResponseType(IntEnum):
    SAMPLES = 0
    STREAMED_XOR_CHUNKS = 1


_SUPPORTED = frozenset(kind.value for kind in ResponseType)
_MASK64 = (1 << 64) - 1
_BYTES = [bytes((value,)) for value in range(0x80)]
_VARINT_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


@dataclass(frozen=True, slots=True)
class ReadHints:
    """What the PromQL engine will do with the data (advisory)."""

    step_ms: int
    func: str
    start_ms: int
    end_ms: int
    range_ms: int
    grouping: tuple[str, ...]
    by: bool


@dataclass(frozen=True, slots=True)
class QuerySpec:
    start_ms: int
    end_ms: int
    matchers: tuple[Matcher, ...]
    hints: ReadHints | None


@dataclass(frozen=True, slots=True)
class ReadRequestSpec:
    queries: tuple[QuerySpec, ...]
    accepted_response_types: tuple[ResponseType, ...]
    """The supported types the client listed, in its order of preference."""
    response_type: ResponseType
    """What to answer with: the first supported type listed, SAMPLES when none is listed."""


@dataclass(frozen=True, slots=True)
class ChunkData:
    min_time_ms: int
    max_time_ms: int
    encoding: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ChunkedSeriesData:
    labels: Labels
    chunks: tuple[ChunkData, ...]


@dataclass(frozen=True, slots=True)
class ChunkedFrame:
    """One decoded frame of a STREAMED_XOR_CHUNKS response."""

    query_index: int
    series: tuple[ChunkedSeriesData, ...]


class BadFrame(ValueError):
    """A streamed response that is truncated, corrupted or not a ChunkedReadResponse."""


def decode_read_request(data: bytes) -> ReadRequestSpec:
    """Decode an uncompressed `prometheus.ReadRequest`."""
    try:
        request = pb.ReadRequest.FromString(data)
    except DecodeError as exc:
        raise GatewayError(Errors.BAD_PROTOBUF, message="ReadRequest", detail=exc) from None
    queries = tuple(_query(index, query) for index, query in enumerate(request.queries))
    listed = list(request.accepted_response_types)
    supported = tuple(ResponseType(kind) for kind in listed if kind in _SUPPORTED)
    if listed and not supported:
        raise GatewayError(Errors.UNSUPPORTED_READ_RESPONSE_TYPE, accepted=listed)
    return ReadRequestSpec(
        queries=queries,
        accepted_response_types=supported,
        response_type=supported[0] if supported else ResponseType.SAMPLES,
    )


def _query(index: int, query: pb.Query) -> QuerySpec:
    matchers = []
    for matcher in query.matchers:
        op = _MATCH_OPS.get(matcher.type)
        if op is None:
            raise GatewayError(
                Errors.BAD_READ_MATCHER, query=index, detail=f"unknown type {matcher.type}"
            )
        try:
            matchers.append(Matcher.of(matcher.name, op, matcher.value))
        except BadMatcher as exc:
            raise GatewayError(Errors.BAD_READ_MATCHER, query=index, detail=exc) from None
    hints = None
    if query.HasField("hints"):
        given = query.hints
        hints = ReadHints(
            step_ms=given.step_ms,
            func=given.func,
            start_ms=given.start_ms,
            end_ms=given.end_ms,
            range_ms=given.range_ms,
            grouping=tuple(given.grouping),
            by=given.by,
        )
    return QuerySpec(
        start_ms=query.start_timestamp_ms,
        end_ms=query.end_timestamp_ms,
        matchers=tuple(matchers),
        hints=hints,
    )


def encode_samples_response(results: Sequence[Sequence[SeriesData]]) -> bytes:
    """Serialise a `ReadResponse` with one `QueryResult` per query (not compressed)."""
    every = [series for result in results for series in result]
    blob, record_sizes = _sample_records(every)
    sample_bounds = np.zeros(len(every) + 1, dtype=np.int64)
    sample_bounds[1:] = np.cumsum([len(series.timestamps) for series in every])
    byte_ends = np.zeros(len(record_sizes) + 1, dtype=np.int64)
    byte_ends[1:] = np.cumsum(record_sizes)
    bounds: list[int] = byte_ends[sample_bounds].tolist()
    samples = memoryview(blob)
    cache: dict[tuple[str, str], tuple[bytes, int]] = {}
    parts: list[bytes | memoryview] = []
    index = 0
    for result in results:
        result_parts: list[bytes | memoryview] = []
        result_size = 0
        for series in result:
            labels, _ = _label_fields(series.labels, cache)
            start, stop = bounds[index], bounds[index + 1]
            index += 1
            head = b"\x0a" + _uvarint(len(labels) + stop - start)
            result_parts += (head, labels, samples[start:stop])
            result_size += len(head) + len(labels) + stop - start
        parts.append(b"\x0a" + _uvarint(result_size))
        parts += result_parts
    return b"".join(parts)


def _sample_records(every: Sequence[SeriesData]) -> tuple[bytes, npt.NDArray[np.int64]]:
    """Every sample as an encoded `TimeSeries.samples` field, and each record's size."""
    # Zero fields are left out, as proto3 encoders do, so the bytes equal upb's.
    if not any(len(series.timestamps) for series in every):
        return b"", np.empty(0, dtype=np.int64)
    stamps = np.concatenate([np.asarray(s.timestamps, dtype=np.int64) for s in every])
    values = np.concatenate([np.asarray(s.values, dtype=np.float64) for s in every])
    count = len(stamps)
    raw_time = stamps.view(np.uint64)
    has_value = values.view(np.uint64) != 0
    has_time = raw_time != 0
    # Varints carry 7 bits a byte (negative int64s take 10); size the columns to the largest.
    varint_size = np.searchsorted(_VARINT_LIMITS, raw_time, side="right") + 1
    groups = int(varint_size.max())
    size = np.where(has_value, 9, 0) + np.where(has_time, 1 + varint_size, 0)
    record = np.empty((count, 12 + groups), dtype=np.uint8)
    record[:, 0] = 0x12
    record[:, 1] = size
    record[:, 2] = 0x09
    record[:, 3:11] = values.astype("<f8").view(np.uint8).reshape(count, 8)
    record[:, 11] = 0x10
    # Each 7-bit group is cut from the little-endian bytes: cheaper than 64-bit shifts.
    octets = np.zeros((count, 9), dtype=np.uint8)
    octets[:, :8] = raw_time.astype("<u8").view(np.uint8).reshape(count, 8)
    septets = record[:, 12:]
    for group in range(groups):
        byte, bit = divmod(7 * group, 8)
        septet = octets[:, byte] >> bit
        if bit > 1:
            septet |= octets[:, byte + 1] << (8 - bit)
        septets[:, group] = septet & 0x7F
    # Rows differ only in (value present, timestamp present, varint size): look their
    # continuation bits and kept bytes up in small tables instead of computing them per row.
    septets |= _CONTINUATION[varint_size, :groups]
    layout = (has_value * 2 + has_time) * 11 + varint_size
    return record[_KEPT[layout, : 12 + groups]].tobytes(), (2 + size).astype(np.int64)


def _layouts() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """Continuation bits per varint size, and kept record bytes per sample layout."""
    continuation = np.zeros((11, 10), dtype=np.uint8)
    kept = np.zeros((44, 22), dtype=np.bool_)
    for varint_size in range(1, 11):
        continuation[varint_size, : varint_size - 1] = 0x80
        for has_value in (0, 1):
            for has_time in (0, 1):
                row = kept[(has_value * 2 + has_time) * 11 + varint_size]
                row[:2] = True
                row[2:11] = bool(has_value)
                row[11 : 12 + varint_size] = bool(has_time)
    return continuation, kept


_CONTINUATION, _KEPT = _layouts()


def iter_chunked_frames(
    query_index: int, series: Iterable[SeriesData], max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> Iterator[bytes]:
    """Frames of a STREAMED_XOR_CHUNKS response for one query, one series per frame."""
    # Prometheus' reader takes only the first series of a frame, so series are never packed
    # together. As Prometheus does, a series whose chunks exceed `max_frame_bytes` goes on in
    # more frames with the same labels, a frame may overshoot by up to one chunk, and a series
    # without samples gets no frame.
    cache: dict[tuple[str, str], tuple[bytes, int]] = {}
    for batch in _batches(series):
        chunk_lists = split_chunks_many([(one.timestamps, one.values) for one in batch])
        for one, chunks in zip(batch, chunk_lists, strict=True):
            if not chunks:
                continue
            labels, labels_size = _label_fields(one.labels, cache)
            budget = max_frame_bytes - labels_size
            pending: list[bytes] = []
            left = budget
            for index, (min_time, max_time, data) in enumerate(chunks):
                message = _chunk_message(min_time, max_time, data)
                pending.append(b"\x12" + _uvarint(len(message)) + message)
                left -= len(message)
                if left > 0 and index + 1 < len(chunks):
                    continue
                yield _frame(query_index, labels, pending)
                pending = []
                left = budget


def _batches(series: Iterable[SeriesData]) -> Iterator[list[SeriesData]]:
    batch: list[SeriesData] = []
    samples = 0
    for one in series:
        batch.append(one)
        samples += len(one.timestamps)
        if samples >= _BATCH_SAMPLES:
            yield batch
            batch, samples = [], 0
    if batch:
        yield batch


def _frame(query_index: int, labels: bytes, chunk_fields: list[bytes]) -> bytes:
    body = labels + b"".join(chunk_fields)
    message = b"\x0a" + _uvarint(len(body)) + body
    if query_index:
        message += b"\x10" + _uvarint(query_index)
    checksum: int = google_crc32c.value(message)
    return _uvarint(len(message)) + checksum.to_bytes(4, "big") + message


def _chunk_message(min_time: int, max_time: int, data: bytes) -> bytes:
    message = bytearray()
    if min_time:
        message += b"\x08" + _uvarint(min_time)
    if max_time:
        message += b"\x10" + _uvarint(max_time)
    message += b"\x18\x01"  # type: XOR
    if data:
        message += b"\x22" + _uvarint(len(data)) + data
    return bytes(message)


def _label_fields(
    labels: Labels, cache: dict[tuple[str, str], tuple[bytes, int]]
) -> tuple[bytes, int]:
    """The `labels` field of TimeSeries or ChunkedSeries, and the Label messages' own size."""
    # The messages' own size is what Prometheus charges against a frame's byte budget.
    fields = []
    size = 0
    for pair in labels:
        known = cache.get(pair)
        if known is None:
            message = _label_message(*pair)
            known = cache[pair] = (b"\x0a" + _uvarint(len(message)) + message, len(message))
        fields.append(known[0])
        size += known[1]
    return b"".join(fields), size


def _label_message(name: str, value: str) -> bytes:
    message = b""
    if name:
        encoded = name.encode()
        message += b"\x0a" + _uvarint(len(encoded)) + encoded
    if value:
        encoded = value.encode()
        message += b"\x12" + _uvarint(len(encoded)) + encoded
    return message


def decode_chunked_frames(data: bytes) -> list[ChunkedFrame]:
    """Split a STREAMED_XOR_CHUNKS body into frames, checking each frame's CRC32C."""
    frames: list[ChunkedFrame] = []
    position = 0
    while position < len(data):
        size, position = _read_uvarint(data, position)
        if position + 4 + size > len(data):
            raise BadFrame(f"frame {len(frames)} is truncated")
        expected = int.from_bytes(data[position : position + 4], "big")
        message = data[position + 4 : position + 4 + size]
        position += 4 + size
        actual: int = google_crc32c.value(message)
        if actual != expected:
            raise BadFrame(
                f"frame {len(frames)}: CRC32C {actual:08x} does not match {expected:08x}"
            )
        try:
            response = pb.ChunkedReadResponse.FromString(message)
        except DecodeError as exc:
            raise BadFrame(f"frame {len(frames)}: {exc}") from None
        frames.append(_frame_from_proto(response))
    return frames


def _frame_from_proto(response: pb.ChunkedReadResponse) -> ChunkedFrame:
    try:
        return ChunkedFrame(
            query_index=response.query_index,
            series=tuple(
                ChunkedSeriesData(
                    labels=tuple(
                        (label.name.decode(), label.value.decode()) for label in one.labels
                    ),
                    chunks=tuple(
                        ChunkData(chunk.min_time_ms, chunk.max_time_ms, chunk.type, chunk.data)
                        for chunk in one.chunks
                    ),
                )
                for one in response.chunked_series
            ),
        )
    except UnicodeDecodeError as exc:
        raise BadFrame(f"label is not valid UTF-8: {exc}") from None


def _uvarint(number: int) -> bytes:
    number &= _MASK64
    if number < 0x80:
        return _BYTES[number]
    if number < 0x4000:
        return bytes((0x80 | (number & 0x7F), number >> 7))
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _read_uvarint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while position < len(data) and shift < 64:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
    raise BadFrame("truncated or overlong frame length")
