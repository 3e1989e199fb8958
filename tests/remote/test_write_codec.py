"""The remote-write decoders against real Prometheus 2.42 payloads and hand-built RW2 bodies."""

from __future__ import annotations

import ast
import math
import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway._pb.gateway import write_views_pb2 as views
from gateway._pb.io.prometheus.write.v2 import remote_write_v2_pb2 as v2
from gateway._pb.prometheus import remote_pb2 as v1
from gateway.errors import GatewayError
from gateway.remote import snappy
from gateway.remote.samples import _decode_exact, decode_samples
from gateway.remote.series_scan import scan_series
from gateway.remote.write_codec import _decode_v1_exact, decode_v1, decode_v2
from tests.conftest import FIXTURES

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def parse_dump() -> dict[str, dict[str, object]]:
    """rw_decoded.txt: per file its sizes, counts and the first series written out."""
    files: dict[str, dict[str, object]] = {}
    current: dict[str, object] = {}
    for line in (FIXTURES / "rw_decoded.txt").read_text().splitlines():
        if line.startswith("== "):
            current = {"series": [], "metadata": []}
            files[line[3:].strip()] = current
        elif line.startswith("compressed="):
            found = re.findall(r"\d+", line)
            current["compressed"], current["decompressed"] = int(found[0]), int(found[1])
        elif line.startswith("timeseries="):
            counts = dict(re.findall(r"(\w+)=(\d+)", line))
            current["counts"] = {k: int(v) for k, v in counts.items()}
        elif line.startswith("   {"):
            labels_text, samples_text = line.strip().rsplit("} ", 1)
            current["series"].append(  # type: ignore[attr-defined]
                (ast.literal_eval(labels_text + "}"), ast.literal_eval(samples_text))
            )
        elif line.startswith("  md "):
            current["metadata"].append(ast.literal_eval(line[5:]))  # type: ignore[attr-defined]
    return files


DUMP = parse_dump()


@pytest.mark.parametrize("name", sorted(DUMP))
def test_rw1_fixture_decodes_like_the_dump(name: str) -> None:
    expected = DUMP[name]
    body = (FIXTURES / name).read_bytes()
    assert len(body) == expected["compressed"]
    data = snappy.decompress(body, 1 << 25)
    assert len(data) == expected["decompressed"]
    decoded = decode_v1(data)
    counts = expected["counts"]
    assert isinstance(counts, dict)
    assert decoded.series_count == counts["timeseries"]
    assert int(decoded.sample_counts.sum()) == counts["samples"] == len(decoded.timestamps)
    assert len(decoded.metadata) == counts["metadata"]
    offsets = np.concatenate([[0], np.cumsum(decoded.sample_counts)])
    for index, (labels, samples) in enumerate(expected["series"]):  # type: ignore[arg-type]
        raw = decoded.raw_labels(index)
        assert {n.decode(): v.decode() for n, v in raw} == labels
        start, end = offsets[index], offsets[index + 1]
        got = list(
            zip(
                decoded.timestamps[start:end].tolist(),
                decoded.values[start:end].tolist(),
                strict=True,
            )
        )
        assert got == samples
    for index, item in enumerate(expected["metadata"]):  # type: ignore[arg-type]
        meta = decoded.metadata[index]
        assert meta.metric_family == item["name"]
        assert meta.type == item["type"].lower()
        assert meta.help == item["help"]
        assert meta.unit == (item["unit"] or "")


@pytest.mark.parametrize("name", ["rw_1.bin", "rw_2.bin", "rw_4_stale_markers.bin"])
def test_fast_sample_path_equals_full_protobuf_decode(name: str) -> None:
    data = snappy.decompress((FIXTURES / name).read_bytes(), 1 << 25)
    decoded = decode_v1(data)
    full = v1.WriteRequest.FromString(data)
    timestamps = [s.timestamp for ts in full.timeseries for s in ts.samples]
    bits = [struct.pack("<d", s.value) for ts in full.timeseries for s in ts.samples]
    assert decoded.timestamps.tolist() == timestamps
    assert [struct.pack("<d", v) for v in decoded.values.tolist()] == bits


def test_stale_markers_survive_bit_exact() -> None:
    data = snappy.decompress((FIXTURES / "rw_4_stale_markers.bin").read_bytes(), 1 << 25)
    decoded = decode_v1(data)
    bits = decoded.values.view(np.uint64)
    assert (bits == np.uint64(0x7FF0000000000002)).sum() > 0


def test_identity_keys_are_stable_and_distinct() -> None:
    data = snappy.decompress((FIXTURES / "rw_1.bin").read_bytes(), 1 << 25)
    first, second = decode_v1(data), decode_v1(data)
    assert first.keys == second.keys
    assert len(set(first.keys)) == first.series_count


sample_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, STALE_NAN, math.inf, -math.inf]),
)
timestamps = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(timestamps, sample_values), max_size=50))
def test_sample_decoder_matches_protobuf(samples: list[tuple[int, float]]) -> None:
    payloads = [v1.Sample(value=v, timestamp=t).SerializeToString() for t, v in samples]
    got_t, got_v = decode_samples(payloads)
    assert got_t.tolist() == [t for t, _ in samples]
    # Protobuf itself drops -0.0's sign (zero is not encoded); compare what it would decode.
    expected = [v1.Sample.FromString(p).value for p in payloads]
    assert [struct.pack("<d", x) for x in got_v.tolist()] == [
        struct.pack("<d", x) for x in expected
    ]


def test_unusual_field_order_takes_the_exact_path() -> None:
    # timestamp before value: valid protobuf, not what encoders write.
    reordered = b"\x10\x05" + b"\x09" + struct.pack("<d", 1.5)
    got_t, got_v = decode_samples([reordered])
    assert got_t.tolist() == [5] and got_v.tolist() == [1.5]
    assert _decode_exact([reordered])[1].tolist() == [1.5]


def test_truncated_sample_is_a_400() -> None:
    series = v1.TimeSeries(labels=[v1.Label(name=b"__name__", value=b"x").SerializeToString()])
    body = bytearray(v1.WriteRequest(timeseries=[series]).SerializeToString())
    # Append a sample whose value is cut short.
    sample = b"\x12\x05\x09\x00\x00\x00\x00"
    inner = bytes(body[2:]) + sample
    data = b"\x0a" + bytes([len(inner)]) + inner
    with pytest.raises(GatewayError) as caught:
        decode_v1(data)
    assert caught.value.status == 400


def rw2_request(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
    symbols: list[bytes] = [b""]

    def ref(text: str) -> int:
        encoded = text.encode()
        if encoded not in symbols:
            symbols.append(encoded)
        return symbols.index(encoded)

    out = []
    for labels, samples in series:
        refs = [r for name, value in sorted(labels.items()) for r in (ref(name), ref(value))]
        out.append(
            v2.TimeSeries(
                labels_refs=refs,
                samples=[v2.Sample(value=v, timestamp=t) for t, v in samples],
                metadata=v2.Metadata(
                    type=v2.Metadata.METRIC_TYPE_COUNTER, help_ref=ref("Requests."), unit_ref=0
                ),
            )
        )
    return v2.Request(symbols=symbols, timeseries=out).SerializeToString()


def test_rw2_decodes_symbols_samples_and_metadata() -> None:
    data = rw2_request(
        [
            ({"__name__": "http_requests_total", "code": "200"}, [(1000, 1.0), (2000, 2.0)]),
            ({"__name__": "http_requests_total", "code": "500"}, [(1000, STALE_NAN)]),
        ]
    )
    decoded = decode_v2(data)
    assert decoded.series_count == 2
    assert decoded.sample_counts.tolist() == [2, 1]
    assert decoded.timestamps.tolist() == [1000, 2000, 1000]
    assert decoded.values.view(np.uint64)[2] == 0x7FF0000000000002
    assert decoded.raw_labels(1) == [(b"__name__", b"http_requests_total"), (b"code", b"500")]
    assert [(m.metric_family, m.type, m.help) for m in decoded.metadata] == [
        ("http_requests_total", "counter", "Requests.")
    ]
    assert decoded.keys[0] != decoded.keys[1]


def test_rw2_bad_symbol_reference_is_a_400() -> None:
    data = v2.Request(
        symbols=[b"", b"__name__"], timeseries=[v2.TimeSeries(labels_refs=[1, 7])]
    ).SerializeToString()
    with pytest.raises(GatewayError) as caught:
        decode_v2(data)
    assert caught.value.status == 400 and "symbol 7" in caught.value.message


def test_rw2_odd_label_refs_is_a_400() -> None:
    data = v2.Request(
        symbols=[b"", b"a"], timeseries=[v2.TimeSeries(labels_refs=[1])]
    ).SerializeToString()
    with pytest.raises(GatewayError) as caught:
        decode_v2(data)
    assert caught.value.status == 400


def test_rw2_histograms_and_exemplars_are_counted() -> None:
    series = v2.TimeSeries(
        labels_refs=[1, 2],
        histograms=[v2.Histogram(timestamp=1)],
        exemplars=[v2.Exemplar(value=1.0, timestamp=1), v2.Exemplar(value=2.0, timestamp=2)],
    )
    decoded = decode_v2(
        v2.Request(symbols=[b"", b"__name__", b"x"], timeseries=[series]).SerializeToString()
    )
    assert (decoded.histograms, decoded.exemplars) == (1, 2)


def test_snappy_declared_length_is_checked_before_decoding() -> None:
    body = snappy.compress(b"x" * 1000)
    with pytest.raises(GatewayError) as caught:
        snappy.decompress(body, 999)
    assert caught.value.status == 413
    assert snappy.decompress(body, 1000) == b"x" * 1000


def test_corrupt_snappy_is_a_400() -> None:
    with pytest.raises(GatewayError) as caught:
        snappy.decompress(b"\x10garbage-not-snappy", 1 << 20)
    assert caught.value.status == 400


label_texts = st.text(min_size=1, max_size=200)  # past 127 bytes: multi-byte varint lengths
series_strategy = st.tuples(
    st.dictionaries(label_texts, st.text(max_size=300), max_size=6),
    st.lists(st.tuples(timestamps, sample_values), max_size=5),
    st.integers(min_value=0, max_value=2),  # exemplars: they send a request to the exact path
)


def _encode_rw1(series: list[tuple[dict[str, str], list[tuple[int, float]], int]]) -> bytes:
    request = v1.WriteRequest()
    for labels, samples, exemplars in series:
        one = request.timeseries.add()
        one.labels.extend(
            v1.Label(name=n.encode(), value=v.encode()).SerializeToString()
            for n, v in labels.items()
        )
        one.samples.extend(v1.Sample(value=v, timestamp=t) for t, v in samples)
        for index in range(exemplars):
            one.exemplars.add(value=float(index), timestamp=index)
    return request.SerializeToString()


@settings(max_examples=300, deadline=None)
@given(st.lists(series_strategy, max_size=8))
def test_vectorised_series_scan_equals_the_exact_decoder(
    series: list[tuple[dict[str, str], list[tuple[int, float]], int]],
) -> None:
    data = _encode_rw1(series)
    decoded = decode_v1(data)
    exact = _decode_v1_exact(data, [])
    assert decoded.keys == exact.keys
    assert decoded.sample_counts.tolist() == exact.sample_counts.tolist()
    assert decoded.timestamps.tolist() == exact.timestamps.tolist()
    assert decoded.values.tobytes() == exact.values.tobytes()
    assert decoded.exemplars == exact.exemplars == sum(e for _, _, e in series)
    for index, (labels, _, _) in enumerate(series):
        expected = [(n.encode(), v.encode()) for n, v in labels.items()]
        assert decoded.raw_labels(index) == exact.raw_labels(index) == expected
    # The bound that lets the limits skip measuring each label of a request.
    longest = max((len(text.encode()) for labels, _, _ in series for pair in labels.items()
                   for text in pair), default=0)
    assert decoded.longest_label >= longest and exact.longest_label >= longest
    v2_decoded = decode_v2(rw2_request([(labels, samples) for labels, samples, _ in series]))
    assert v2_decoded.longest_label >= longest


def test_series_scan_takes_common_requests_and_refuses_unusual_shapes() -> None:
    data = _encode_rw1([({"__name__": "up", "job": "a" * 300}, [(1, 1.0), (2, 2.0)], 0)])
    records = views.RawSeriesV1.FromString(data).timeseries
    scanned = scan_series(records)
    assert scanned is not None
    assert scanned.sample_counts.tolist() == [2]
    with_exemplar = _encode_rw1([({"__name__": "up"}, [(1, 1.0)], 1)])
    assert scan_series(views.RawSeriesV1.FromString(with_exemplar).timeseries) is None
    # A sample before the labels: valid protobuf in an order no encoder writes.
    sample = v1.Sample(value=1.0, timestamp=5).SerializeToString()
    label = v1.Label(name=b"__name__", value=b"up").SerializeToString()
    record = b"\x12" + bytes([len(sample)]) + sample + b"\x0a" + bytes([len(label)]) + label
    assert scan_series([record]) is None
    body = b"\x0a" + bytes([len(record)]) + record
    decoded = decode_v1(body)
    assert decoded.raw_labels(0) == [(b"__name__", b"up")]
    assert decoded.timestamps.tolist() == [5]
