"""Remote-read codec: real Prometheus 2.42 requests, SAMPLES and streamed-chunk responses."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._pb.prometheus import remote_pb2 as pb
from gateway.errors import Errors, GatewayError
from gateway.model.series import SeriesData
from gateway.remote import snappy
from gateway.remote.read_codec import (
    BadFrame,
    ChunkData,
    ChunkedFrame,
    ChunkedSeriesData,
    ReadHints,
    ResponseType,
    decode_chunked_frames,
    decode_read_request,
    encode_samples_response,
    iter_chunked_frames,
)
from gateway.remote.xor_chunk import decode_xor
from tests.remote.test_xor_chunk import (
    PROMETHEUS_CHUNK_0_119,
    PROMETHEUS_CHUNK_120_239,
    PROMETHEUS_CHUNK_240,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prometheus-2.42"
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
OPS = {"EQ": "=", "NEQ": "!=", "RE": "=~", "NRE": "!~"}


def crc32c_reference(data: bytes) -> int:
    """Bitwise CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), independent of the codec."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def dumped_requests() -> dict[str, dict[str, Any]]:
    """rr_decoded.txt: per capture file, the ReadRequest as JSON."""
    sections: dict[str, dict[str, Any]] = {}
    for block in (FIXTURES / "rr_decoded.txt").read_text().split("== ")[1:]:
        name, _sizes, body = block.split("\n", 2)
        sections[name.strip()] = json.loads(body)
    return sections


@pytest.mark.parametrize("name", ["rr_1_instant_up.bin", "rr_2_range_rate.bin"])
def test_decodes_prometheus_requests_as_dumped(name: str) -> None:
    expected = dumped_requests()[name]
    spec = decode_read_request(snappy.decompress((FIXTURES / name).read_bytes(), 1 << 20))
    assert spec.accepted_response_types == ()
    assert spec.response_type is ResponseType.SAMPLES
    assert len(spec.queries) == len(expected["queries"])
    for query, want in zip(spec.queries, expected["queries"], strict=True):
        assert query.start_ms == want["start_timestamp_ms"]
        assert query.end_ms == want["end_timestamp_ms"]
        assert [(m.name, m.op.value, m.value) for m in query.matchers] == [
            (m["name"], OPS[m["type"]], m["value"]) for m in want["matchers"]
        ]
        hints = want["hints"]
        assert query.hints == ReadHints(
            step_ms=hints.get("step_ms", 0),
            func=hints.get("func", ""),
            start_ms=hints.get("start_ms", 0),
            end_ms=hints.get("end_ms", 0),
            range_ms=hints.get("range_ms", 0),
            grouping=tuple(hints.get("grouping", ())),
            by=hints.get("by", False),
        )


def test_range_request_regex_matcher_works() -> None:
    body = snappy.decompress((FIXTURES / "rr_2_range_rate.bin").read_bytes(), 1 << 20)
    job = decode_read_request(body).queries[0].matchers[0]
    assert job.matches("node") and job.matches("prometheus") and not job.matches("xnode")


def request(**fields: Any) -> bytes:
    return pb.ReadRequest(**fields).SerializeToString()


def test_all_matcher_types_hints_and_several_queries() -> None:
    data = request(
        queries=[
            pb.Query(
                start_timestamp_ms=-5,
                end_timestamp_ms=10,
                matchers=[
                    pb.LabelMatcher(type=pb.LabelMatcher.EQ, name="__name__", value="up"),
                    pb.LabelMatcher(type=pb.LabelMatcher.NEQ, name="job", value=""),
                    pb.LabelMatcher(type=pb.LabelMatcher.RE, name="a", value="x|y"),
                    pb.LabelMatcher(type=pb.LabelMatcher.NRE, name="b", value=".+"),
                ],
                hints=pb.ReadHints(
                    step_ms=30_000, func="sum", start_ms=1, end_ms=2, grouping=["job", "env"],
                    by=True, range_ms=300_000,
                ),
            ),
            pb.Query(start_timestamp_ms=1, end_timestamp_ms=2),
        ],
        accepted_response_types=[pb.ReadRequest.STREAMED_XOR_CHUNKS, pb.ReadRequest.SAMPLES],
    )
    spec = decode_read_request(data)
    first, second = spec.queries
    assert (first.start_ms, first.end_ms) == (-5, 10)
    assert [str(m) for m in first.matchers] == [
        '__name__="up"', 'job!=""', 'a=~"x|y"', 'b!~".+"'
    ]
    assert first.hints == ReadHints(30_000, "sum", 1, 2, 300_000, ("job", "env"), True)
    assert second.matchers == () and second.hints is None
    assert spec.accepted_response_types == (
        ResponseType.STREAMED_XOR_CHUNKS, ResponseType.SAMPLES
    )
    assert spec.response_type is ResponseType.STREAMED_XOR_CHUNKS


def test_response_type_negotiation_skips_unknown_types() -> None:
    spec = decode_read_request(request(accepted_response_types=[7, 0]))
    assert spec.accepted_response_types == (ResponseType.SAMPLES,)
    assert spec.response_type is ResponseType.SAMPLES
    with pytest.raises(GatewayError) as caught:
        decode_read_request(request(accepted_response_types=[7, 9]))
    assert caught.value.error is Errors.UNSUPPORTED_READ_RESPONSE_TYPE
    assert caught.value.status == 400 and "[7, 9]" in caught.value.message


@pytest.mark.parametrize(
    ("matcher", "fragment"),
    [
        # 9 is no LabelMatcher.Type; proto3 keeps unknown enum values as plain ints.
        (pb.LabelMatcher(type=9, name="a", value="b"), "unknown type 9"),  # type: ignore[arg-type]
        (pb.LabelMatcher(type=pb.LabelMatcher.RE, name="a", value="(unclosed"), "invalid regex"),
    ],
)
def test_bad_matchers_are_refused(matcher: pb.LabelMatcher, fragment: str) -> None:
    data = request(queries=[pb.Query(), pb.Query(matchers=[matcher])])
    with pytest.raises(GatewayError) as caught:
        decode_read_request(data)
    assert caught.value.error is Errors.BAD_READ_MATCHER
    assert caught.value.status == 400
    assert "query 1" in caught.value.message and fragment in caught.value.message


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\x05\x1a\x03",  # a query whose matcher runs past the end
        b"\xff\xff\xff",
        b"\x0a\x06\x1a\x04\x12\x02\xff\xfe",  # a matcher name that is not UTF-8
    ],
)
def test_undecodable_bodies_are_bad_protobuf(data: bytes) -> None:
    with pytest.raises(GatewayError) as caught:
        decode_read_request(data)
    assert caught.value.error is Errors.BAD_PROTOBUF
    assert "ReadRequest" in caught.value.message


def series(
    labels: tuple[tuple[str, str], ...], times: list[int], values: list[float]
) -> SeriesData:
    return SeriesData(labels, np.array(times, dtype=np.int64), np.array(values, dtype=np.float64))


def upb_response(results: list[list[SeriesData]]) -> bytes:
    """The same response built with the protobuf runtime, for byte-for-byte comparison."""
    response = pb.ReadResponse()
    for result in results:
        query_result = response.results.add()
        for one in result:
            ts = query_result.timeseries.add()
            ts.labels.extend(
                pb.Label(name=n.encode(), value=v.encode()).SerializeToString()
                for n, v in one.labels
            )
            for time, value in zip(one.timestamps.tolist(), one.values.tolist(), strict=True):
                ts.samples.add(timestamp=time, value=value)
    return response.SerializeToString()


def read_back(data: bytes) -> list[list[tuple[tuple[tuple[str, str], ...], list[int], list[int]]]]:
    """(labels, timestamps, value bits) per series per query of a serialised ReadResponse."""
    out = []
    for result in pb.ReadResponse.FromString(data).results:
        rows = []
        for ts in result.timeseries:
            labels = tuple(
                (label.name.decode(), label.value.decode())
                for label in map(pb.Label.FromString, ts.labels)
            )
            times = [sample.timestamp for sample in ts.samples]
            bits = [struct.unpack("<Q", struct.pack("<d", s.value))[0] for s in ts.samples]
            rows.append((labels, times, bits))
        out.append(rows)
    return out


def value_bits(values: npt.NDArray[np.float64]) -> list[int]:
    return [int(bit) for bit in values.view(np.uint64)]


def test_samples_response_matches_the_protobuf_runtime() -> None:
    up = (("__name__", "up"), ("instance", "host:9100"), ("job", "node"))
    results = [
        [
            series(up, [1_700_000_000_000, 1_700_000_015_000, 1_700_000_030_000],
                   [1.0, STALE_NAN, 0.0]),
            series((("__name__", "x"), ("empty", "")), [0, 1, -1, -(2**62)],
                   [float("nan"), float("inf"), -float("inf"), -0.0]),
            series((("__name__", "no_samples"),), [], []),
        ],
        [],
        [series((("__name__", "ü\u2603"), ("v", "\U0001f600")), [2**63 - 1], [5e-324])],
    ]
    data = encode_samples_response(results)
    assert data == upb_response(results)
    assert read_back(data) == [
        [(s.labels, s.timestamps.tolist(), value_bits(s.values)) for s in result]
        for result in results
    ]


def test_empty_responses() -> None:
    assert encode_samples_response([]) == b""
    assert encode_samples_response([[]]) == b"\x0a\x00"
    assert encode_samples_response([[], []]) == upb_response([[], []])


label_sets = st.lists(
    st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)), max_size=4
).map(lambda pairs: tuple(sorted(dict(pairs).items())))
series_strategy = st.builds(
    lambda labels, samples: series(
        labels, [time for time, _ in samples], [value for _, value in samples]
    ),
    label_sets,
    st.lists(
        st.tuples(
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.one_of(
                st.floats(),
                st.integers(min_value=0, max_value=2**64 - 1).map(
                    lambda bits: struct.unpack("<d", struct.pack("<Q", bits))[0]
                ),
            ),
        ),
        max_size=20,
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(series_strategy, max_size=4), max_size=3))
def test_property_samples_response_equals_protobuf(results: list[list[SeriesData]]) -> None:
    data = encode_samples_response(results)
    assert data == upb_response(results)
    back = read_back(data)
    assert [[(s.timestamps.tolist(), value_bits(s.values)) for s in r] for r in results] == [
        [(times, bits) for _, times, bits in r] for r in back
    ]


METRIC = "test_metric1"


def prometheus_series(foo: str, samples: int) -> SeriesData:
    labels = (("__name__", METRIC), ("b", "c"), ("baz", "qux"), ("d", "e"), ("foo", foo))
    times = np.arange(samples, dtype=np.int64) * 60_000
    return SeriesData(labels, times, np.arange(samples, dtype=np.float64) * 100)


def test_frames_match_prometheus_stream() -> None:
    # Prometheus' stream for `0+100x119`, `0+100x120` and `0+100x240` with frames limited to
    # the 57 label bytes + 480: the longest series continues in a second frame.
    one = [prometheus_series("bar1", 120), prometheus_series("bar2", 121),
           prometheus_series("bar3", 241)]
    frames = decode_chunked_frames(b"".join(iter_chunked_frames(0, one, 57 + 480)))

    def frame(foo: str, *chunks: tuple[int, int, bytes]) -> ChunkedFrame:
        labels = (("__name__", METRIC), ("b", "c"), ("baz", "qux"), ("d", "e"), ("foo", foo))
        return ChunkedFrame(
            query_index=0,
            series=(ChunkedSeriesData(labels, tuple(ChunkData(*c[:2], 1, c[2]) for c in chunks)),),
        )

    first = (0, 7_140_000, PROMETHEUS_CHUNK_0_119)
    assert frames == [
        frame("bar1", first),
        frame("bar2", first, (7_200_000, 7_200_000, b"\000\001\200\364\356\006@\307p\0\0\0\0\0")),
        frame("bar3", first, (7_200_000, 14_340_000, PROMETHEUS_CHUNK_120_239)),
        frame("bar3", (14_400_000, 14_400_000, PROMETHEUS_CHUNK_240)),
    ]


def test_frame_layout_and_checksum() -> None:
    data = b"".join(iter_chunked_frames(3, [prometheus_series("x", 5)], 1 << 20))
    size = data[0]
    assert size < 0x80 and len(data) == 1 + 4 + size
    message = data[5:]
    assert int.from_bytes(data[1:5], "big") == crc32c_reference(message)
    response = pb.ChunkedReadResponse.FromString(message)
    assert response.query_index == 3
    assert crc32c_reference(b"123456789") == 0xE3069283


def test_streamed_round_trip_across_batches() -> None:
    rng = np.random.default_rng(11)
    many = []
    for index in range(300):
        count = int(rng.integers(0, 400))
        times = 1_700_000_000_000 + np.cumsum(rng.integers(1, 30_000, count)).astype(np.int64)
        values = np.where(rng.random(count) < 0.05, STALE_NAN, rng.normal(size=count))
        many.append(SeriesData((("__name__", "m"), ("i", str(index))), times, values))
    frames = decode_chunked_frames(b"".join(iter_chunked_frames(1, many, 1 << 20)))
    with_samples = [one for one in many if len(one.timestamps)]
    assert len(frames) == len(with_samples)
    for frame, want in zip(frames, with_samples, strict=True):
        assert frame.query_index == 1
        (got,) = frame.series
        assert got.labels == want.labels
        assert all(len(decode_xor(c.data)[0]) <= 120 for c in got.chunks)
        times = np.concatenate([decode_xor(c.data)[0] for c in got.chunks])
        values = np.concatenate([decode_xor(c.data)[1] for c in got.chunks])
        assert times.tolist() == want.timestamps.tolist()
        assert value_bits(values) == value_bits(want.values)
        assert [(c.min_time_ms, c.max_time_ms) for c in got.chunks] == [
            (int(decode_xor(c.data)[0][0]), int(decode_xor(c.data)[0][-1])) for c in got.chunks
        ]


def test_small_frame_limit_gives_one_chunk_per_frame() -> None:
    frames = list(iter_chunked_frames(0, [prometheus_series("x", 600)], 1))
    decoded = decode_chunked_frames(b"".join(frames))
    assert [len(frame.series[0].chunks) for frame in decoded] == [1, 1, 1, 1, 1]


def test_corrupted_frames_are_detected() -> None:
    data = bytearray(b"".join(iter_chunked_frames(0, [prometheus_series("x", 130)], 1 << 20)))
    for position in (6, len(data) // 2, len(data) - 1):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x01
        with pytest.raises(BadFrame, match="CRC32C"):
            decode_chunked_frames(bytes(corrupted))
    with pytest.raises(BadFrame, match="truncated"):
        decode_chunked_frames(bytes(data[:-1]))
    with pytest.raises(BadFrame):
        decode_chunked_frames(b"\xff")


def test_series_data_checks_lengths() -> None:
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        series((("a", "b"),), [1, 2], [1.0])
