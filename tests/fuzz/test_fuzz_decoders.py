"""Random and mutated bodies never crash the pure decoders: they decode or raise a 4xx error.

Seeds are the real Prometheus 2.42 payloads; mutations flip, insert, delete and duplicate bytes
of the decompressed protobuf (so the decoder, not snappy, sees the damage) and of the
compressed body (so snappy's framing is attacked too).
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.remote import snappy
from gateway.remote.read_codec import decode_read_request
from gateway.remote.write_codec import DecodedWrite, decode_v1, decode_v2
from tests.conftest import FIXTURES
from tests.remote.test_write_codec import rw2_request

MAX_DECODED = 1 << 22
WRITE_SEEDS = [
    snappy.decompress((FIXTURES / name).read_bytes(), MAX_DECODED)
    for name in ("rw_1.bin", "rw_3_metadata.bin", "rw_4_stale_markers.bin")
] + [rw2_request([({"__name__": "m", "a": "b"}, [(1, 1.0), (2, 2.0)])])]
READ_SEEDS = [
    snappy.decompress((FIXTURES / name).read_bytes(), MAX_DECODED)
    for name in ("rr_1_instant_up.bin", "rr_2_range_rate.bin")
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "cut"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x09, 0x10]))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif action == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


def touch_everything(decoded: DecodedWrite) -> None:
    """Decode every series' labels too: the lazy part must not crash either."""
    for index in range(decoded.series_count):
        decoded.raw_labels(index)


def check_decoder(decode: object, data: bytes) -> None:
    started = time.monotonic()
    try:
        result = decode(data)  # type: ignore[operator]
        if isinstance(result, DecodedWrite):
            touch_everything(result)
            assert len(result.timestamps) == len(result.values) == int(result.sample_counts.sum())
    except GatewayError as exc:
        assert 400 <= exc.status < 500, exc.message
    assert time.monotonic() - started < 2.0, "a decoder took too long on a small input"


@pytest.mark.parametrize("decode", [decode_v1, decode_v2], ids=["rw1", "rw2"])
@given(data=mutated(WRITE_SEEDS))
def test_mutated_write_bodies(decode: object, data: bytes) -> None:
    check_decoder(decode, data)


@pytest.mark.parametrize("decode", [decode_v1, decode_v2], ids=["rw1", "rw2"])
@given(data=st.binary(max_size=512))
def test_random_write_bodies(decode: object, data: bytes) -> None:
    check_decoder(decode, data)


@given(data=mutated(READ_SEEDS) | st.binary(max_size=256))
def test_read_requests(data: bytes) -> None:
    check_decoder(decode_read_request, data)


@given(data=mutated([snappy.compress(seed) for seed in WRITE_SEEDS]) | st.binary(max_size=256))
def test_snappy_bodies(data: bytes) -> None:
    try:
        snappy.decompress(data, MAX_DECODED)
    except GatewayError as exc:
        assert exc.status in (400, 413)
