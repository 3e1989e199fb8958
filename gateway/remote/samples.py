"""Vectorised decoding of the raw `Sample {double value = 1; int64 timestamp = 2}` encodings.

Every protobuf encoder we know writes a sample as `[0x09 <8 bytes>] [0x10 <varint>]` (fields in
order, zero values omitted). We decode all samples of a request at once with numpy; any sample
that does not fit that shape sends the whole request through the exact per-sample protobuf
decoder instead, so unusual but valid encodings are still read correctly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from gateway._pb.prometheus import remote_pb2

_VALUE_TAG = 0x09
_TIMESTAMP_TAG = 0x10
_MAX_VARINT_BYTES = 10
# Spare bytes after the last payload keep every gather below in bounds without per-index checks
# (a value is read as 8 bytes before the payload's length is checked).
_SPARE_BYTES = 16


class MalformedSample(ValueError):
    """A sample's bytes are not a valid Sample message."""

    def __init__(self, index: int) -> None:
        super().__init__(f"sample {index} is malformed")
        self.index = index


def decode_samples(
    payloads: Sequence[bytes],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Timestamps (ms) and values of raw Sample encodings, in order."""
    count = len(payloads)
    if count == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    fast = _decode_payloads_fast(payloads)
    return fast if fast is not None else _decode_exact(payloads)


def decode_sample_spans(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Like `decode_samples` for the payloads `buffer[starts[i]:ends[i]]`.

    `buffer` must hold `_SPARE_BYTES` bytes past the last payload.
    """
    if starts.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    fast = _decode_fast(buffer, starts, ends)
    if fast is not None:
        return fast
    data = buffer.tobytes()
    return _decode_exact([data[start:end] for start, end in zip(starts, ends, strict=True)])


def _decode_payloads_fast(
    payloads: Sequence[bytes],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    lengths = np.fromiter(map(len, payloads), dtype=np.int64, count=len(payloads))
    buffer = np.frombuffer(b"".join(payloads) + bytes(_SPARE_BYTES), dtype=np.uint8)
    ends = np.cumsum(lengths)
    return _decode_fast(buffer, ends - lengths, ends)


def _decode_fast(
    buffer: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    count = len(starts)
    lengths = ends - starts

    has_value = (lengths > 0) & (buffer[starts] == _VALUE_TAG)
    values = np.zeros(count, dtype=np.float64)
    if has_value.any():
        offsets = starts[has_value][:, None] + np.arange(1, 9)
        values[has_value] = buffer[offsets].view("<f8").ravel()

    timestamp_at = starts + np.where(has_value, 9, 0)
    if (timestamp_at > ends).any():
        return None
    has_timestamp = timestamp_at < ends
    if not (buffer[timestamp_at[has_timestamp]] == _TIMESTAMP_TAG).all():
        return None

    timestamps = np.zeros(count, dtype=np.uint64)
    position = timestamp_at + 1
    shift = np.zeros(count, dtype=np.uint64)
    active = has_timestamp.copy()
    for _ in range(_MAX_VARINT_BYTES):
        if not active.any():
            break
        byte = buffer[np.minimum(position, buffer.size - 1)].astype(np.uint64)
        timestamps[active] |= (byte[active] & np.uint64(0x7F)) << shift[active]
        position += active
        shift += np.uint64(7) * active
        active &= byte >= 0x80
    if active.any() or not np.array_equal(np.where(has_timestamp, position, ends), ends):
        return None
    return timestamps.view(np.int64), values


def _decode_exact(
    payloads: Sequence[bytes],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    count = len(payloads)
    timestamps = np.empty(count, dtype=np.int64)
    values = np.empty(count, dtype=np.float64)
    parse = remote_pb2.Sample.FromString
    for index, payload in enumerate(payloads):
        try:
            sample = parse(payload)
        except DecodeError:
            raise MalformedSample(index) from None
        timestamps[index] = sample.timestamp
        values[index] = sample.value
    return timestamps, values
