"""Prometheus' XOR ("Gorilla") float chunks, bit-exact with tsdb/chunkenc/xor.go.

Layout: a 2-byte big-endian sample count; the first timestamp as a zigzag varint and the first
value as 64 raw bits; the second timestamp as a uvarint delta; then, per sample, the timestamp's
delta-of-delta in one of five buckets and the value XORed with the previous one. Bits are
written most significant first; the last byte is zero-padded.

The encoder is columnar: numpy computes every field of every chunk of many series at once and
packs them into 64-bit words; only the choice of XOR windows, a sequential scan, runs in Python.
The decoder (used by tests and clients) reads sample by sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

MAX_SAMPLES_PER_CHUNK = 120
"""Prometheus cuts a head chunk at 120 samples; readers expect chunks of about that size."""

_MAX_HEADER_COUNT = 0xFFFF
_MASK64 = (1 << 64) - 1
_BYTES = [bytes((value,)) for value in range(0x80)]
# A sample never takes more than 4+64 (timestamp) + 2+5+6+64 (value) = 145 bits; the reader
# fetches this many bytes at a time, enough for one sample at any bit offset.
_WINDOW_BYTES = 20
_WINDOW_BITS = _WINDOW_BYTES * 8

Chunk = tuple[int, int, bytes]
"""(min_time_ms, max_time_ms, XOR chunk bytes)."""


class BadChunk(ValueError):
    """Bytes that are not a well-formed XOR chunk."""


def encode_xor(timestamps: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> bytes:
    """Encode samples (timestamps ascending) as one XOR chunk."""
    if len(timestamps) != len(values):
        raise ValueError(f"{len(timestamps)} timestamps but {len(values)} values")
    if len(timestamps) > _MAX_HEADER_COUNT:
        raise ValueError(f"{len(timestamps)} samples do not fit in one chunk")
    if not len(timestamps):
        return bytes(2)
    stamps, bits = _columns([(timestamps, values)])
    return _encode_runs(stamps, bits, np.array([len(stamps)], dtype=np.int64))[0]


def split_chunks(
    timestamps: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    max_samples: int = MAX_SAMPLES_PER_CHUNK,
) -> list[Chunk]:
    """Cut samples into consecutive XOR chunks of at most `max_samples` samples each."""
    return split_chunks_many([(timestamps, values)], max_samples)[0]


def split_chunks_many(
    series: Sequence[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]],
    max_samples: int = MAX_SAMPLES_PER_CHUNK,
) -> list[list[Chunk]]:
    """`split_chunks` for many series at once (one numpy pass instead of one per series)."""
    if not 0 < max_samples <= _MAX_HEADER_COUNT:
        raise ValueError(f"max_samples must be in 1..{_MAX_HEADER_COUNT}, got {max_samples}")
    for stamps, values in series:
        if len(stamps) != len(values):
            raise ValueError(f"{len(stamps)} timestamps but {len(values)} values")
    sizes = [len(stamps) for stamps, _ in series]
    runs: list[int] = []
    for size in sizes:
        full, rest = divmod(size, max_samples)
        runs += [max_samples] * full
        if rest:
            runs.append(rest)
    if not runs:
        return [[] for _ in series]
    stamps, bits = _columns(series)
    lengths = np.array(runs, dtype=np.int64)
    datas = _encode_runs(stamps, bits, lengths)
    ends = np.cumsum(lengths)
    firsts = stamps[ends - lengths].tolist()
    lasts = stamps[ends - 1].tolist()
    result: list[list[Chunk]] = []
    index = 0
    for size in sizes:
        count = -(-size // max_samples)
        result.append(
            list(zip(firsts[index : index + count], lasts[index : index + count],
                     datas[index : index + count], strict=True))
        )
        index += count
    return result


def _columns(
    series: Sequence[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    stamps = np.concatenate([np.asarray(s, dtype=np.int64) for s, _ in series])
    values = np.concatenate([np.asarray(v, dtype=np.float64) for _, v in series])
    return stamps, values.view(np.uint64)


def _encode_runs(
    stamps: npt.NDArray[np.int64], bits: npt.NDArray[np.uint64], lengths: npt.NDArray[np.int64]
) -> list[bytes]:
    """One chunk per run: run i is the next `lengths[i]` (>= 1) samples."""
    starts = np.cumsum(lengths) - lengths
    heads = _chunk_heads(stamps, bits, starts, lengths)
    values, widths = _fields(stamps, bits, starts, lengths)
    streams = _pack(values, widths, starts, lengths)
    return [head + stream for head, stream in zip(heads, streams, strict=True)]


def _chunk_heads(
    stamps: npt.NDArray[np.int64],
    bits: npt.NDArray[np.uint64],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
) -> list[bytes]:
    """The byte-aligned start of each chunk: count, first sample, first delta."""
    heads = []
    seconds = np.minimum(starts + 1, len(stamps) - 1)
    rows = zip(
        lengths.tolist(), stamps[starts].tolist(), bits[starts].tolist(),
        stamps[seconds].tolist(), strict=True,
    )
    for count, first, value, second in rows:
        head = count.to_bytes(2, "big") + _uvarint(((first << 1) ^ (first >> 63)) & _MASK64)
        head += value.to_bytes(8, "big")
        if count > 1:
            head += _uvarint((second - first) & _MASK64)
        heads.append(head)
    return heads


def _fields(
    stamps: npt.NDArray[np.int64],
    bits: npt.NDArray[np.uint64],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """Three bit fields per sample, in stream order, as (values, widths) of shape (n, 3)."""
    # A chunk's first sample (it is in the head) and unused slots have width 0.
    count = len(stamps)
    position = np.arange(count) - np.repeat(starts, lengths)
    # int64 arithmetic wraps like Go's, so the 64-bit bucket gets what Prometheus writes.
    dod = np.zeros(count, dtype=np.int64)
    dod[2:] = np.diff(stamps, 2)
    raw = dod.view(np.uint64)
    has_dod = position >= 2
    xor = np.zeros(count, dtype=np.uint64)
    xor[1:] = bits[1:] ^ bits[:-1]
    xor[starts] = 0
    changed = xor != 0

    # Timestamp: delta-of-delta buckets 0, '10'+14, '110'+17, '1110'+20, '1111'+64 bits.
    buckets = [~has_dod, dod == 0, (dod >= -8191) & (dod <= 8192),
               (dod >= -65535) & (dod <= 65536), (dod >= -524287) & (dod <= 524288)]
    zero = np.zeros(count, dtype=np.uint64)
    time_value = np.select(
        buckets,
        [zero, zero, 0x8000 | (raw & 0x3FFF), 0xC0000 | (raw & 0x1FFFF),
         0xE00000 | (raw & 0xFFFFF)],
        zero,
    )
    time_width = np.select(buckets, [0, 1, 16, 20, 24], 68)
    wide = time_width == 68

    # Value: '0' when unchanged, else '1' + a window control and the window's bits.
    leading, trailing, fresh = _windows(xor, changed, starts, lengths)
    window = (64 - leading - trailing).astype(np.uint64)
    head_value = np.where(
        fresh,
        (0b11 << 11) | (leading.astype(np.uint64) << 6) | (window & 0x3F),
        np.where(changed, np.uint64(0b10), np.uint64(0)),
    )
    head_width = np.where(fresh, 13, np.where(changed, 2, (position >= 1).astype(np.int64)))
    shift = head_width.astype(np.uint64)

    values = np.empty((count, 3), dtype=np.uint64)
    widths = np.empty((count, 3), dtype=np.int64)
    # Timestamp and value control share a field; a 68-bit timestamp field takes two.
    values[:, 0] = np.where(
        wide, 0xF000000000000000 | (raw >> 4), (time_value << shift) | head_value
    )
    widths[:, 0] = np.where(wide, 64, time_width + head_width)
    values[:, 1] = np.where(wide, ((raw & 0xF) << shift) | head_value, 0)
    widths[:, 1] = np.where(wide, 4 + head_width, 0)
    values[:, 2] = xor >> trailing.astype(np.uint64)
    widths[:, 2] = np.where(changed, window.astype(np.int64), 0)
    return values, widths


def _windows(
    xor: npt.NDArray[np.uint64],
    changed: npt.NDArray[np.bool_],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Per sample, the zero window (leading, trailing) of its XOR and whether it is new."""
    # Halves convert to float64 exactly, so frexp's exponent is their exact bit length.
    high = np.frexp((xor >> np.uint64(32)).astype(np.float64))[1].astype(np.int64)
    low = np.frexp((xor & np.uint64(0xFFFFFFFF)).astype(np.float64))[1].astype(np.int64)
    # 5 bits hold the leading count; xor.go clamps it to 31 the same way.
    lead = np.minimum(64 - np.where(high > 0, high + 32, low), 31)
    lowest_bit = xor & (~xor + np.uint64(1))
    trail = np.frexp(lowest_bit.astype(np.float64))[1].astype(np.int64) - 1
    if len(xor) >= _COLUMN_SCAN_MIN_SAMPLES_PER_STEP * int(lengths.max()):
        fresh = _fresh_by_columns(lead, trail, changed, starts, lengths)
    else:
        fresh = _fresh_by_samples(lead, trail, changed, lengths)
    # Each XOR uses the latest new window; a chunk's first changed value always opens one.
    rows = np.flatnonzero(changed)
    opened = fresh[rows]
    latest = rows[np.maximum.accumulate(np.where(opened, np.arange(len(rows)), 0))]
    leading = np.zeros(len(xor), dtype=np.int64)
    trailing = np.zeros(len(xor), dtype=np.int64)
    leading[rows] = lead[latest]
    trailing[rows] = trail[latest]
    return leading, trailing, fresh


# xor.go keeps a window while each XOR fits inside it: a sequential scan. Across many chunks it
# runs one numpy step per sample position (all chunks at once); for few chunks a Python loop over
# the samples is cheaper. The crossover constant was measured on the 2-core machine.
_COLUMN_SCAN_MIN_SAMPLES_PER_STEP = 200


def _fresh_by_columns(
    lead: npt.NDArray[np.int64],
    trail: npt.NDArray[np.int64],
    changed: npt.NDArray[np.bool_],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    steps = np.arange(int(lengths.max()))[:, None]
    inside = steps < lengths
    grid = np.where(inside, starts + steps, 0)
    grid_changed = changed[grid] & inside
    grid_lead = lead[grid]
    grid_trail = trail[grid]
    grid_fresh = np.zeros(grid.shape, dtype=np.bool_)
    # 64 leading zeros never fit, so each chunk's first change opens a window.
    window_lead = np.full(len(lengths), 64, dtype=np.int64)
    window_trail = np.zeros(len(lengths), dtype=np.int64)
    for step in range(1, len(grid)):
        lead_now = grid_lead[step]
        trail_now = grid_trail[step]
        new = grid_changed[step] & ((lead_now < window_lead) | (trail_now < window_trail))
        np.copyto(window_lead, lead_now, where=new)
        np.copyto(window_trail, trail_now, where=new)
        grid_fresh[step] = new
    fresh = np.zeros(len(lead), dtype=np.bool_)
    fresh[grid[inside]] = grid_fresh[inside]
    return fresh


def _fresh_by_samples(
    lead: npt.NDArray[np.int64],
    trail: npt.NDArray[np.int64],
    changed: npt.NDArray[np.bool_],
    lengths: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    rows = np.flatnonzero(changed)
    owners = np.repeat(np.arange(len(lengths)), lengths)[rows]
    flags = bytearray(len(rows))
    window_lead = window_trail = 0
    current = -1
    samples = zip(lead[rows].tolist(), trail[rows].tolist(), owners.tolist(), strict=True)
    for index, (lead_now, trail_now, owner) in enumerate(samples):
        if owner == current and lead_now >= window_lead and trail_now >= window_trail:
            continue
        current, window_lead, window_trail = owner, lead_now, trail_now
        flags[index] = 1
    fresh = np.zeros(len(lead), dtype=np.bool_)
    fresh[rows] = np.frombuffer(flags, dtype=np.bool_)
    return fresh


def _pack(
    values: npt.NDArray[np.uint64],
    widths: npt.NDArray[np.int64],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
) -> list[bytes]:
    """Concatenate each run's fields, most significant bit first, into zero-padded bytes."""
    used = np.add.reduceat(widths.sum(axis=1), starts)
    # Every run starts on a 64-bit word, so a field touches at most two words.
    spans = (used + 63) // 64 * 64
    base = np.cumsum(spans) - spans
    shift_to_run = np.repeat(base - (np.cumsum(used) - used), lengths)
    flat_widths = widths.ravel()
    offsets = (np.cumsum(flat_widths) - flat_widths).reshape(widths.shape)
    offsets = (offsets + shift_to_run[:, None]).ravel()
    flat_values = values.ravel()
    word = offsets >> 6
    end = (offsets & 63) + flat_widths
    fits = end <= 64
    # Clamping keeps shifts below 64 (undefined in numpy); only empty fields hit the clamp.
    left = np.where(fits, np.minimum(64 - end, 63), 0).astype(np.uint64)
    right = np.where(fits, 0, end - 64).astype(np.uint64)
    # One spare word: an empty field may sit just past the last run.
    words = np.zeros(int(spans.sum()) // 64 + 1, dtype=np.uint64)
    firsts = np.flatnonzero(np.diff(word, prepend=-1))
    # Fields never overlap, so OR-ing them is the same as writing them.
    words[word[firsts]] = np.bitwise_or.reduceat((flat_values << left) >> right, firsts)
    spill = np.flatnonzero(~fits)
    words[word[spill] + 1] |= flat_values[spill] << (128 - end[spill]).astype(np.uint64)
    stream = words.astype(">u8").tobytes()
    offsets_bytes = (base // 8).tolist()
    sizes = ((used + 7) // 8).tolist()
    return [stream[at : at + size] for at, size in zip(offsets_bytes, sizes, strict=True)]


def decode_xor(data: bytes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Decode one XOR chunk into timestamps (ms) and values."""
    if len(data) < 2:
        raise BadChunk("chunk shorter than its 2-byte header")
    count = int.from_bytes(data[:2], "big")
    stamps = np.empty(count, dtype=np.int64)
    bits = np.empty(count, dtype=np.uint64)
    if count == 0:
        return stamps, bits.view(np.float64)
    zigzag, pos = _read_uvarint(data, 2)
    time = (zigzag >> 1) ^ -(zigzag & 1)
    if pos + 8 > len(data):
        raise BadChunk("chunk ends inside the first value")
    value = int.from_bytes(data[pos : pos + 8], "big")
    pos += 8
    stamps[0], bits[0] = time, value
    if count > 1:
        delta, pos = _read_uvarint(data, pos)
        delta = _signed64(delta)
        _read_samples(data, pos * 8, count, time, delta, value, stamps, bits)
    return stamps, bits.view(np.float64)


def _read_samples(
    data: bytes,
    bit_pos: int,
    count: int,
    time: int,
    delta: int,
    value: int,
    stamps: npt.NDArray[np.int64],
    bits: npt.NDArray[np.uint64],
) -> None:
    padded = data + bytes(_WINDOW_BYTES)
    total_bits = len(data) * 8
    leading = trailing = 0
    times = [0] * count
    vals = [0] * count
    for index in range(1, count):
        start = bit_pos >> 3
        window = int.from_bytes(padded[start : start + _WINDOW_BYTES], "big")
        # `left` counts the unread bits of the window; each read takes from its top.
        left = _WINDOW_BITS - (bit_pos & 7)
        if index > 1:
            ones = 0
            while ones < 4 and (window >> (left - 1 - ones)) & 1:
                ones += 1
            left -= min(ones + 1, 4)
            if ones == 4:
                left -= 64
                dod = _signed64((window >> left) & _MASK64)
            elif ones:
                size = (14, 17, 20)[ones - 1]
                left -= size
                dod = (window >> left) & ((1 << size) - 1)
                if dod > 1 << (size - 1):
                    dod -= 1 << size
            else:
                dod = 0
            delta = _signed64((delta + dod) & _MASK64)
        time = _signed64((time + delta) & _MASK64)
        left -= 1
        if (window >> left) & 1:
            left -= 1
            if (window >> left) & 1:
                left -= 11
                head = (window >> left) & 0x7FF
                leading = head >> 6
                width = (head & 0x3F) or 64
                trailing = 64 - leading - width
                if trailing < 0:
                    raise BadChunk(f"sample {index}: {leading} leading + {width} bits exceed 64")
            width = 64 - leading - trailing
            left -= width
            value ^= ((window >> left) & ((1 << width) - 1)) << trailing
        bit_pos += _WINDOW_BITS - (bit_pos & 7) - left
        if bit_pos > total_bits:
            raise BadChunk(f"chunk ends inside sample {index} of {count}")
        times[index] = time
        vals[index] = value
    stamps[1:] = np.array(times[1:], dtype=np.int64)
    bits[1:] = np.array(vals[1:], dtype=np.uint64)


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


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data) and shift < 70:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7
    raise BadChunk("truncated or overlong varint")


def _signed64(number: int) -> int:
    return number - (1 << 64) if number >> 63 else number
