"""Vectorised scan of remote-write 1.0 `TimeSeries` records (pure: bytes in, arrays out).

Walking a request's series one Python object at a time costs more than everything else the
gateway does with a sample. This module walks *all* series of a request at once with numpy: step
k advances every series past its k-th field, so the Python loop runs as often as the longest
series has fields (about a dozen), not once per label.

Every encoder we know writes a `TimeSeries` as its labels (field 1) followed by its samples
(field 2), with minimal varints. A series in any other shape (exemplars, histograms, fields out of
order, lengths that overrun the record) makes `scan_series` answer None, and the caller decodes
the request with the exact protobuf parser instead, so unusual but valid encodings still work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_LABEL_TAG = 0x0A  # field 1, length-delimited
_SAMPLE_TAG = 0x12  # field 2, length-delimited
_MAX_LENGTH_BYTES = 5  # a 32-bit length never needs more varint bytes
# Reads may look past the last record by up to this many bytes; the buffer is padded so they
# stay in bounds without per-index checks.
_PADDING = 16

Int64s = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ScannedSeries:
    """Where each series' labels and samples are in `buffer` (the records, concatenated).

    Series i's labels are the encoded `Label` fields in `buffer[label_starts[i]:label_ends[i]]`;
    its samples are the `Sample` payloads `sample_starts[j]:sample_ends[j]` for j in its range,
    series by series and in order within a series.
    """

    buffer: bytes
    padded: npt.NDArray[np.uint8]
    """`buffer` followed by spare zero bytes, for gathers that may read past a payload."""
    label_starts: Int64s
    label_ends: Int64s
    sample_counts: Int64s
    sample_starts: Int64s
    sample_ends: Int64s


def scan_series(records: Sequence[bytes]) -> ScannedSeries | None:
    """Locate labels and samples of every `TimeSeries` record, or None for an unusual shape."""
    count = len(records)
    lengths = np.fromiter(map(len, records), dtype=np.int64, count=count)
    joined = b"".join(records)
    buffer = np.frombuffer(joined + bytes(_PADDING), dtype=np.uint8)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    positions = starts.copy()

    if not _skip_fields(buffer, positions, ends, _LABEL_TAG, None):
        return None
    label_ends = positions.copy()

    owners: list[Int64s] = []
    spans: list[tuple[Int64s, Int64s]] = []
    if not _skip_fields(buffer, positions, ends, _SAMPLE_TAG, (owners, spans)):
        return None
    if not np.array_equal(positions, ends):
        return None  # a field other than labels-then-samples: let the exact parser handle it

    if owners:
        series_of_sample = np.concatenate(owners)
        # Stable: samples of one series keep their order (field steps are in order).
        order = np.argsort(series_of_sample, kind="stable")
        sample_starts = np.concatenate([span[0] for span in spans])[order]
        sample_ends = np.concatenate([span[1] for span in spans])[order]
        sample_counts = np.bincount(series_of_sample, minlength=count).astype(np.int64)
    else:
        sample_starts = sample_ends = np.empty(0, np.int64)
        sample_counts = np.zeros(count, np.int64)
    return ScannedSeries(
        joined, buffer, starts, label_ends, sample_counts, sample_starts, sample_ends
    )


def _skip_fields(
    buffer: npt.NDArray[np.uint8],
    positions: Int64s,
    ends: Int64s,
    tag: int,
    collect: tuple[list[Int64s], list[tuple[Int64s, Int64s]]] | None,
) -> bool:
    """Advance each series past its run of length-delimited fields with `tag`, in place.

    With `collect`, the series index and payload span of each skipped field are appended.
    False if a field's length is malformed or overruns its series.
    """
    # Series leave the walk at their first field with another tag and never rejoin it.
    at = np.arange(positions.size)
    while True:
        current = positions[at]
        at = at[(current < ends[at]) & (buffer[current] == tag)]
        if at.size == 0:
            return True
        lengths = _read_lengths(buffer, positions[at] + 1)
        if lengths is None:
            return False
        payload_starts, payload_lengths = lengths
        payload_ends = payload_starts + payload_lengths
        if (payload_ends > ends[at]).any():
            return False
        if collect is not None:
            collect[0].append(at)
            collect[1].append((payload_starts, payload_ends))
        positions[at] = payload_ends


def _read_lengths(buffer: npt.NDArray[np.uint8], at: Int64s) -> tuple[Int64s, Int64s] | None:
    """(payload start, payload length) of the varint lengths at `at`; None if over 5 bytes."""
    first = buffer[at].astype(np.int64)
    if (first < 0x80).all():  # the common case: every payload is shorter than 128 bytes
        return at + 1, first
    values = np.zeros(at.size, dtype=np.int64)
    positions = at.copy()
    active = np.ones(at.size, dtype=bool)
    for step in range(_MAX_LENGTH_BYTES):
        byte = buffer[positions].astype(np.int64)
        values |= np.where(active, (byte & 0x7F) << (7 * step), 0)
        positions += active
        active &= byte >= 0x80
        if not active.any():
            return positions, values
    return None
