"""XOR chunks: bit-exact with Prometheus (golden chunks, a naive reference writer) and lossless."""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.remote.xor_chunk import (
    BadChunk,
    decode_xor,
    encode_xor,
    split_chunks,
    split_chunks_many,
)

STALE_NAN_BITS = 0x7FF0000000000002
MASK64 = (1 << 64) - 1

# Chunks Prometheus 3.x cut for `0+100x240` loaded at 1m from t=0 (one sample a minute, value
# 100 per minute), as listed in its remote-read handler tests: samples 0-119, 120-239 and 240.
PROMETHEUS_CHUNK_0_119 = (
    b"\000x\000\000\000\000\000\000\000\000\000\340\324\003\302|\005\224\000\301\254}\351z2\320O"
    b"\355\264n[\007\316\224\243md\371\320\375\032Pm\nS\235\016Q\255\006P\275\250\277\312\201Z"
    b"\003(3\240R\207\332\005(\017\240\322\201\332=(\023\2402\203Z\007(w\2402\201Z\017(\023\265"
    b"\227\364P\033@\245\007\364\nP\033C\245\002t\036P+@e\036\364\016Pk@e\002t:P;A\245\001\364"
    b"\nS\373@\245\006t\006P+C\345\002\364\006Pk@\345\036t\nP\033A\245\003\364:P\033@\245\006t"
    b"\016ZJ\377\\\205\313\210\327\270\017\345+F[\310\347E)\355\024\241\366\342}(v\215(N\203)"
    b"\326\207(\336\203(V\332W\362\202t4\240m\005(\377AJ\006\320\322\202t\374\240\255\003(oA"
    b"\312:\3202"
)
PROMETHEUS_CHUNK_120_239 = (
    b"\000x\200\364\356\006@\307p\000\000\000\000\000\340\324\003\340>\224\355\260\277\322\200"
    b"\372\005(=\240R\207:\003(\025\240\362\201z\003(\365\240r\203:\005(\r\241\322\201\372\r("
    b"\r\240R\237:\007(5\2402\201z\037(\025\2402\203:\005(\375\240R\200\372\r(\035\241\322\201"
    b":\003(5\240r\326g\364\271\213\227!\253q\037\312N\340GJ\033E)\375\024\241\266\362}(N\217("
    b"V\203)\336\207(\326\203(N\334W\322\203\2644\240}\005(\373AJ\031\3202\202\264\374\240\275"
    b"\003(kA\3129\320R\201\2644\240\375\264\277\322\200\332\005(3\240r\207Z\003(\027\240\362"
    b"\201Z\003(\363\240R\203\332\005(\017\241\322\201\332\r(\023\2402\237Z\007(7\2402\201Z\037"
    b"(\023\240\322\200\332\005(\377\240R\200\332\r "
)
PROMETHEUS_CHUNK_240 = b"\000\001\200\350\335\r@\327p\000\000\000\000\000"


def floats(*bits: int) -> npt.NDArray[np.float64]:
    return np.array(bits, dtype=np.uint64).view(np.float64)


def stamps(*values: int) -> npt.NDArray[np.int64]:
    return np.array(values, dtype=np.int64)


def reference_encode(times: list[int], bits: list[int]) -> bytes:
    """A deliberately naive XOR writer: one bit at a time, straight from the format."""
    out = bytearray(len(times).to_bytes(2, "big"))
    stream: list[int] = []

    def put(value: int, width: int) -> None:
        stream.extend((value >> shift) & 1 for shift in range(width - 1, -1, -1))

    lead, trail = 0xFF, 0
    delta = 0
    for index, (time, value) in enumerate(zip(times, bits, strict=True)):
        if index == 0:
            out += uvarint(((time << 1) ^ (time >> 63)) & MASK64) + value.to_bytes(8, "big")
            continue
        new_delta = time - times[index - 1]
        if index == 1:
            out += uvarint(new_delta & MASK64)
        else:
            dod = new_delta - delta
            if dod == 0:
                put(0, 1)
            elif -8191 <= dod <= 8192:
                put(0b10, 2)
                put(dod & 0x3FFF, 14)
            elif -65535 <= dod <= 65536:
                put(0b110, 3)
                put(dod & 0x1FFFF, 17)
            elif -524287 <= dod <= 524288:
                put(0b1110, 4)
                put(dod & 0xFFFFF, 20)
            else:
                put(0b1111, 4)
                put(dod & MASK64, 64)
        delta = new_delta
        xor = value ^ bits[index - 1]
        if xor == 0:
            put(0, 1)
            continue
        put(1, 1)
        new_lead = min(64 - xor.bit_length(), 31)
        new_trail = (xor & -xor).bit_length() - 1
        if lead != 0xFF and new_lead >= lead and new_trail >= trail:
            put(0, 1)
            put(xor >> trail, 64 - lead - trail)
        else:
            lead, trail = new_lead, new_trail
            put(1, 1)
            put(lead, 5)
            put((64 - lead - trail) & 0x3F, 6)
            put(xor >> trail, 64 - lead - trail)
    stream += [0] * (-len(stream) % 8)
    for start in range(0, len(stream), 8):
        out.append(int("".join(map(str, stream[start : start + 8])), 2))
    return bytes(out)


def uvarint(number: int) -> bytes:
    out = bytearray()
    while number >= 0x80:
        out.append(0x80 | (number & 0x7F))
        number >>= 7
    out.append(number)
    return bytes(out)


def assert_exact(
    data: bytes, times: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> None:
    """`data` is what the reference writes and decodes back to the same bits."""
    assert data == reference_encode(times.tolist(), values.view(np.uint64).tolist())
    got_times, got_values = decode_xor(data)
    assert got_times.tolist() == times.tolist()
    assert got_values.view(np.uint64).tolist() == values.view(np.uint64).tolist()


def test_matches_chunks_written_by_prometheus() -> None:
    times = np.arange(241, dtype=np.int64) * 60_000
    values = np.arange(241, dtype=np.float64) * 100
    chunks = split_chunks(times, values)
    assert chunks == [
        (0, 7_140_000, PROMETHEUS_CHUNK_0_119),
        (7_200_000, 14_340_000, PROMETHEUS_CHUNK_120_239),
        (14_400_000, 14_400_000, PROMETHEUS_CHUNK_240),
    ]
    for (_, _, data), start in zip(chunks, (0, 120, 240), strict=True):
        got_times, got_values = decode_xor(data)
        assert got_times.tolist() == times[start : start + 120].tolist()
        assert got_values.tolist() == values[start : start + 120].tolist()


def test_hand_assembled_chunk() -> None:
    # 3 samples: t=1000 v=1.0, t=2000 v=1.0, t=3000 v=2.0.
    expected = bytes.fromhex(
        "0003"  # sample count
        "d00f"  # zigzag varint of 1000
        "3ff0000000000000"  # 1.0
        "e807"  # first delta 1000 as uvarint
        # bits: 0 (same value) | 0 (dod 0) | 1 1 (new window) 00001 (leading 1)
        # 001011 (11 significant bits) 11111111111 (1.0 ^ 2.0 >> 52), zero-padded
        "3097ffc0"
    )
    data = encode_xor(stamps(1000, 2000, 3000), np.array([1.0, 1.0, 2.0]))
    assert data == expected
    assert_exact(data, stamps(1000, 2000, 3000), np.array([1.0, 1.0, 2.0]))


@pytest.mark.parametrize(
    "values",
    [
        floats(0x7FF8000000000000, STALE_NAN_BITS, 0x7FF8000000000001, 0xFFF8000000000000),
        np.array([np.inf, -np.inf, np.inf, 0.0, -0.0, 0.0, -0.0]),
        np.array([-0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308]),
        floats(STALE_NAN_BITS, STALE_NAN_BITS, 0x3FF0000000000000, STALE_NAN_BITS),
        floats(0, MASK64, 0, 1, 1 << 63, (1 << 63) | 1),
    ],
    ids=["nans", "infinities-and-zeros", "extremes", "stale-markers", "bit-patterns"],
)
def test_special_values_round_trip_bit_exact(values: npt.NDArray[np.float64]) -> None:
    times = 1_700_000_000_000 + np.arange(len(values), dtype=np.int64) * 15_000
    assert_exact(encode_xor(times, values), times, values)


@pytest.mark.parametrize(
    "dod",
    [0, 1, -1, 8191, -8191, 8192, -8192, 8193, 65535, -65535, 65536, -65536, 65537,
     524287, -524287, 524288, -524288, 524289, 10**12, -(10**9)],
)
def test_every_delta_of_delta_bucket_edge(dod: int) -> None:
    # Deltas stay positive so timestamps keep increasing: 10^9, then 10^9 + dod.
    times = stamps(5, 5 + 10**9, 5 + 2 * 10**9 + dod, 5 + 3 * 10**9 + dod)
    values = np.array([1.0, 2.0, 3.0, 4.0])
    assert_exact(encode_xor(times, values), times, values)


@pytest.mark.parametrize("count", [1, 2, 3, 119, 120, 121])
def test_sizes(count: int) -> None:
    rng = np.random.default_rng(count)
    times = np.cumsum(rng.integers(1, 60_000, count)).astype(np.int64)
    values = np.round(rng.normal(size=count) * 100, 1)
    assert_exact(encode_xor(times, values), times, values)


def test_empty_chunk() -> None:
    assert encode_xor(stamps(), np.array([])) == b"\x00\x00"
    times, values = decode_xor(b"\x00\x00")
    assert len(times) == len(values) == 0
    assert split_chunks(stamps(), np.array([])) == []


def test_irregular_timestamps_and_large_gaps() -> None:
    times = stamps(-86_400_000, -1, 0, 1, 15_001, 15_002, 10**13, 10**13 + 1, 2**62, 2**62 + 7)
    values = np.linspace(-1, 1, len(times))
    assert_exact(encode_xor(times, values), times, values)


def test_long_chunk() -> None:
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.integers(1, 20_000, 5000)).astype(np.int64)
    values = np.cumsum(rng.normal(size=5000))
    assert_exact(encode_xor(times, values), times, values)


def test_split_chunks_cuts_at_max_samples() -> None:
    times = np.arange(250, dtype=np.int64) * 15_000
    values = np.sin(np.arange(250.0))
    chunks = split_chunks(times, values, max_samples=100)
    assert [(first, last) for first, last, _ in chunks] == [
        (0, 99 * 15_000), (100 * 15_000, 199 * 15_000), (200 * 15_000, 249 * 15_000)
    ]
    for (_, _, data), start in zip(chunks, (0, 100, 200), strict=True):
        assert_exact(data, times[start : start + 100], values[start : start + 100])


def test_many_series_at_once_equal_one_at_a_time() -> None:
    # Enough chunks to take the column-wise window scan; the single series takes the other.
    rng = np.random.default_rng(3)
    series = []
    for index in range(400):
        count = int(rng.integers(0, 300))
        times = np.cumsum(rng.integers(1, 10 ** int(rng.integers(1, 8)), count)).astype(np.int64)
        kind = index % 3
        if kind == 0:
            values = rng.normal(size=count)
        elif kind == 1:
            values = np.cumsum(rng.integers(0, 3, count)).astype(np.float64)
        else:
            values = rng.integers(0, 2**63, count, dtype=np.uint64).view(np.float64)
        series.append((times, values))
    together = split_chunks_many(series)
    for (times, values), chunks in zip(series, together, strict=True):
        assert chunks == split_chunks(times, values)
        for position, (_, _, data) in enumerate(chunks):
            window = slice(position * 120, position * 120 + 120)
            assert_exact(data, times[window], values[window])


sample_lists = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=2**40),
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=0, max_value=MASK64).map(
                lambda bits: struct.unpack("<d", struct.pack("<Q", bits))[0]
            ),
            st.sampled_from([0.0, -0.0, 1.0, 100.0]),
        ),
    ),
    min_size=1,
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(start=st.integers(min_value=-(2**50), max_value=2**50), samples=sample_lists)
def test_property_encode_decode_bit_exact(start: int, samples: list[tuple[int, float]]) -> None:
    times = start + np.cumsum([gap for gap, _ in samples]).astype(np.int64)
    values = np.array([value for _, value in samples], dtype=np.float64)
    assert_exact(encode_xor(times, values), times, values)


def test_rejects_malformed_input() -> None:
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        encode_xor(stamps(1, 2), np.array([1.0]))
    with pytest.raises(ValueError, match="do not fit"):
        encode_xor(np.arange(70_000, dtype=np.int64), np.zeros(70_000))
    with pytest.raises(ValueError, match="max_samples"):
        split_chunks(stamps(1), np.array([1.0]), max_samples=0)


@pytest.mark.parametrize(
    "data", [b"", b"\x00", b"\x00\x01", b"\x00\x01\x80", b"\x00\x01\x02\x3f\xf0"]
)
def test_decode_rejects_truncated_heads(data: bytes) -> None:
    with pytest.raises(BadChunk):
        decode_xor(data)


def test_decode_rejects_truncated_samples() -> None:
    times = np.arange(50, dtype=np.int64) * 15_000
    data = encode_xor(times, np.random.default_rng(1).normal(size=50))
    for cut in range(20, len(data) - 1, 7):
        with pytest.raises(BadChunk):
            decode_xor(data[:cut])
