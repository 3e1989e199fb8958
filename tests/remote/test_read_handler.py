"""`POST /api/v1/read` through the real app and engine: both response types, limits, errors."""

from __future__ import annotations

import json
from collections.abc import Sequence

import aiohttp
import numpy as np
import pytest

from gateway._pb.prometheus import remote_pb2 as pb
from gateway.remote import snappy
from gateway.remote.read_codec import (
    SAMPLES_CONTENT_TYPE,
    STREAMED_CONTENT_TYPE,
    decode_chunked_frames,
)
from gateway.remote.xor_chunk import decode_xor
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import FIXTURES, RunningGateway, make_config, start_gateway

# Inside the time range of the captured requests rr_1 and rr_2 (2026-12).
T0 = 1_796_320_059_000
STEP = 15_000
COUNT = 45  # 11 minutes

Sample = tuple[int, float]
SeriesKey = tuple[tuple[str, str], ...]
EQ, NEQ, RE, NRE = (pb.LabelMatcher.EQ, pb.LabelMatcher.NEQ, pb.LabelMatcher.RE,
                    pb.LabelMatcher.NRE)


def stored_series() -> dict[SeriesKey, list[Sample]]:
    """What `load` writes: Prometheus-like series with external label replica, off the grid."""
    data: dict[SeriesKey, list[Sample]] = {}
    targets = [("prometheus", "127.0.0.1:9090"), ("node", "127.0.0.1:9100"), ("other", "x:1")]
    for offset, (job, instance) in enumerate(targets):
        stamps = [T0 + 123 + offset + i * STEP for i in range(COUNT)]
        for replica in ("r1", "r2"):
            base = (("instance", instance), ("job", job), ("replica", replica))
            data[(("__name__", "up"), *base)] = [(t, 1.0) for t in stamps]
            data[(("__name__", "process_cpu_seconds_total"), *base)] = [
                (t, 0.25 * i + offset) for i, t in enumerate(stamps)
            ]
    return data


async def load(gateway: RunningGateway, **headers: str) -> dict[SeriesKey, list[Sample]]:
    data = stored_series()
    items = [
        series([(n.encode(), v.encode()) for n, v in key], samples)
        for key, samples in data.items()
    ]
    status, text, _ = await post(gateway, rw1(*items), **headers)
    assert status == 204, text
    return data


def query(
    start: int, end: int, *matchers: tuple[int, str, str]
) -> pb.Query:
    return pb.Query(
        start_timestamp_ms=start,
        end_timestamp_ms=end,
        matchers=[pb.LabelMatcher(type=t, name=n, value=v) for t, n, v in matchers],
    )


def request_body(queries: Sequence[pb.Query], accepted: Sequence[int] = ()) -> bytes:
    message = pb.ReadRequest(queries=list(queries), accepted_response_types=list(accepted))
    return snappy.compress(message.SerializeToString())


async def remote_read(
    gateway: RunningGateway, body: bytes, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.post(
        gateway.url + "/api/v1/read",
        data=body,
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                 **headers},
    ) as response:
        return response.status, dict(response.headers), await response.read()


def samples_result(payload: bytes) -> list[list[tuple[SeriesKey, list[Sample]]]]:
    """A SAMPLES response as, per query, [(labels, samples)] in response order."""
    message = pb.ReadResponse.FromString(snappy.decompress(payload, 1 << 30))
    return [
        [
            (
                tuple(
                    (label.name.decode(), label.value.decode())
                    for label in map(pb.Label.FromString, one.labels)
                ),
                [(sample.timestamp, sample.value) for sample in one.samples],
            )
            for one in result.timeseries
        ]
        for result in message.results
    ]


def streamed_result(payload: bytes) -> list[list[tuple[SeriesKey, list[Sample]]]]:
    """A streamed response decoded the same way, frames of one series joined."""
    per_query: dict[int, list[tuple[SeriesKey, list[Sample]]]] = {}
    for frame in decode_chunked_frames(payload):
        assert len(frame.series) == 1
        one = frame.series[0]
        samples: list[Sample] = []
        for chunk in one.chunks:
            stamps, values = decode_xor(chunk.data)
            assert chunk.min_time_ms == stamps[0] and chunk.max_time_ms == stamps[-1]
            samples += zip(stamps.tolist(), values.tolist(), strict=True)
        found = per_query.setdefault(frame.query_index, [])
        if found and found[-1][0] == one.labels:
            found[-1][1].extend(samples)
        else:
            found.append((one.labels, samples))
    return [per_query.get(index, []) for index in range(max(per_query, default=-1) + 1)]


def expected(
    data: dict[SeriesKey, list[Sample]], start: int, end: int, **labels: str
) -> list[tuple[SeriesKey, list[Sample]]]:
    chosen = []
    for key, samples in sorted(data.items()):
        if all(dict(key).get(name) == value for name, value in labels.items()):
            inside = [(t, v) for t, v in samples if start <= t <= end]
            if inside:
                chosen.append((key, inside))
    return chosen


async def test_captured_prometheus_requests_get_stored_samples(gateway: RunningGateway) -> None:
    """rr_1 (instant `up`) and rr_2 (range `rate`, regex job), byte for byte as 2.42 sent them."""
    data = await load(gateway)
    headers = json.loads((FIXTURES / "rr_1.headers.json").read_text())["headers"]
    sent = {k: v for k, v in headers.items() if k not in ("Host", "Content-Length")}

    body = (FIXTURES / "rr_1_instant_up.bin").read_bytes()
    status, response_headers, payload = await remote_read(gateway, body, **sent)
    assert status == 200, payload
    assert response_headers["Content-Type"] == SAMPLES_CONTENT_TYPE
    assert response_headers["Content-Encoding"] == "snappy"
    start, end = 1796320419252, 1796320719252
    assert samples_result(payload) == [
        expected(data, start, end, __name__="up", replica="r1")
    ]

    body = (FIXTURES / "rr_2_range_rate.bin").read_bytes()
    status, _, payload = await remote_read(gateway, body, **sent)
    assert status == 200, payload
    start, end = 1796320059000, 1796320719000
    result = samples_result(payload)
    wanted = [
        item for item in expected(data, start, end, __name__="process_cpu_seconds_total",
                                  replica="r1")
        if dict(item[0])["job"] in ("node", "prometheus")
    ]
    assert result == [wanted] and len(wanted) == 2


@pytest.mark.parametrize("accepted", [[], [0], [1], [1, 0], [7, 1], [0, 1]])
async def test_response_type_follows_accepted_types(
    gateway: RunningGateway, accepted: list[int]
) -> None:
    data = await load(gateway)
    start, end = T0 + 60_000, T0 + 300_000
    queries = [
        query(start, end, (EQ, "__name__", "up"), (NEQ, "job", "other")),
        query(T0, T0 + COUNT * STEP, (RE, "__name__", "process_.*"), (NRE, "replica", "r1")),
        query(start, end, (EQ, "__name__", "nothing_here")),
    ]
    status, headers, payload = await remote_read(gateway, request_body(queries, accepted))
    assert status == 200, payload
    streamed = [kind for kind in accepted if kind in (0, 1)][:1] == [1]
    if streamed:
        assert headers["Content-Type"] == STREAMED_CONTENT_TYPE
        assert "Content-Encoding" not in headers
        result = streamed_result(payload)
    else:
        assert headers["Content-Type"] == SAMPLES_CONTENT_TYPE
        result = samples_result(payload)
    up = [item for item in expected(data, start, end, __name__="up")
          if dict(item[0])["job"] != "other"]
    cpu = expected(data, T0, T0 + COUNT * STEP, __name__="process_cpu_seconds_total",
                   replica="r2")
    # A streamed response has no frame for a query without series.
    assert result[:2] == [up, cpu] and len(up) == 4 and len(cpu) == 3
    assert result[2:] in ([], [[]])


async def test_start_and_end_are_inclusive_as_given(gateway: RunningGateway) -> None:
    data = await load(gateway)
    key = next(k for k in data if dict(k)["job"] == "node" and dict(k)["__name__"] == "up")
    stamps = [t for t, _ in data[key]]
    matchers = [(EQ, "__name__", "up"), (EQ, "job", "node"), (EQ, "replica", "r1")]
    for accepted in ([0], [1]):
        body = request_body([query(stamps[3], stamps[5], *matchers)], accepted)
        status, _, payload = await remote_read(gateway, body)
        assert status == 200
        result = samples_result(payload) if accepted == [0] else streamed_result(payload)
        assert [t for t, _ in result[0][0][1]] == stamps[3:6]


async def test_long_series_stream_in_several_frames(chdb_dsn: str) -> None:
    config = make_config(chdb_dsn, **{"remote_read.max_bytes_in_frame": 1024})
    running = await start_gateway(config)
    try:
        stamps = T0 + np.arange(2000, dtype=np.int64) * STEP + 7
        values = np.cumsum(np.linspace(0.1, 3.3, 2000))
        samples = list(zip(stamps.tolist(), values.tolist(), strict=True))
        item = series([(b"__name__", b"long"), (b"job", b"j")], samples)
        status, text, _ = await post(running, rw1(item))
        assert status == 204, text
        body = request_body([query(0, int(stamps[-1]), (EQ, "__name__", "long"))], [1])
        status, _, payload = await remote_read(running, body)
        assert status == 200
        frames = decode_chunked_frames(payload)
        assert len(frames) > 5
        # A frame holds chunks until their size passes the budget: at most one chunk over it.
        assert all(len(frame.series[0].chunks) <= 8 for frame in frames)
        assert streamed_result(payload) == [[((("__name__", "long"), ("job", "j")), samples)]]
    finally:
        await running.runner.cleanup()


@pytest.mark.parametrize(
    ("overrides", "status", "words"),
    [
        ({"remote_read.max_series_per_query": 3}, 422, "remote_read.max_series_per_query"),
        ({"remote_read.max_samples_per_query": 100}, 422, "remote_read.max_samples_per_query"),
        ({"remote_read.max_body_bytes": 10}, 413, "remote_read.max_body_bytes"),
        ({"remote_read.max_decoded_bytes": 10}, 413, "remote_read.max_decoded_bytes"),
    ],
)
@pytest.mark.parametrize("accepted", [[0], [1]])
async def test_limits(
    chdb_dsn: str, overrides: dict[str, int], status: int, words: str, accepted: list[int]
) -> None:
    running = await start_gateway(make_config(chdb_dsn, **overrides))
    try:
        await load(running)
        body = request_body([query(T0, T0 + COUNT * STEP, (EQ, "__name__", "up"))], accepted)
        got, headers, payload = await remote_read(running, body)
        assert got == status, payload
        assert words in payload.decode()
        assert headers["Content-Type"].startswith("text/plain")
    finally:
        await running.runner.cleanup()


async def test_limits_are_per_query(chdb_dsn: str) -> None:
    running = await start_gateway(
        make_config(chdb_dsn, **{"remote_read.max_series_per_query": 6})
    )
    try:
        await load(running)
        queries = [query(T0, T0 + COUNT * STEP, (EQ, "__name__", name))
                   for name in ("up", "process_cpu_seconds_total")]
        status, _, payload = await remote_read(running, request_body(queries))
        assert status == 200
        assert [len(result) for result in samples_result(payload)] == [6, 6]
    finally:
        await running.runner.cleanup()


async def test_a_failing_later_query_cuts_the_stream(chdb_dsn: str) -> None:
    """Once 200 is sent, an error must not look like a complete, shorter answer."""
    running = await start_gateway(
        make_config(chdb_dsn, **{"remote_read.max_series_per_query": 2})
    )
    try:
        await load(running)
        queries = [
            query(T0, T0 + COUNT * STEP, (EQ, "__name__", "up"), (EQ, "job", "node")),
            query(T0, T0 + COUNT * STEP, (EQ, "__name__", "up")),
        ]
        with pytest.raises(aiohttp.ClientPayloadError):
            await remote_read(running, request_body(queries, [1]))
        # The first query alone is over the limit: refused before anything is sent.
        status, _, payload = await remote_read(running, request_body(queries[1:], [1]))
        assert status == 422 and b"remote_read.max_series_per_query" in payload
    finally:
        await running.runner.cleanup()


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"\x10not snappy", {}, 400, "snappy"),
        (snappy.compress(b"\xff\xff\xff"), {}, 400, "ReadRequest"),
        (request_body([query(0, 1, (EQ, "job", ""))]), {}, 400, "non-empty matcher"),
        (request_body([query(0, 1)]), {}, 400, "non-empty matcher"),
        (request_body([query(0, 1, (RE, "job", "("))]), {}, 400, "invalid regex"),
        (request_body([query(0, 1, (EQ, "job", "x"))], [5]), {}, 400, "response type"),
        (request_body([query(0, 1, (EQ, "job", "x"))]), {"Content-Encoding": "gzip"}, 415,
         "gzip"),
        (request_body([query(0, 1, (EQ, "job", "x"))]), {"X-Scope-OrgID": "a/b"}, 400,
         "tenant"),
    ],
)
async def test_bad_requests(
    gateway: RunningGateway, body: bytes, headers: dict[str, str], status: int, words: str
) -> None:
    got, _, payload = await remote_read(gateway, body, **headers)
    assert got == status, payload
    assert words in payload.decode()


async def test_empty_request_is_an_empty_response(gateway: RunningGateway) -> None:
    status, _, payload = await remote_read(gateway, request_body([]))
    assert status == 200 and samples_result(payload) == []
    status, _, payload = await remote_read(gateway, request_body([], [1]))
    assert status == 200 and payload == b""


async def test_series_hint_answers_series_without_samples(gateway: RunningGateway) -> None:
    """What Prometheus sends behind its /api/v1/series: hints func "series", no samples wanted."""
    data = await load(gateway)
    wanted = query(T0, T0 + COUNT * STEP, (EQ, "__name__", "up"), (EQ, "replica", "r1"))
    wanted.hints.CopyFrom(pb.ReadHints(func="series", start_ms=T0, end_ms=T0 + COUNT * STEP))
    status, _, payload = await remote_read(gateway, request_body([wanted]))
    assert status == 200
    names = [key for key, _ in expected(data, T0, T0 + COUNT * STEP, __name__="up", replica="r1")]
    assert samples_result(payload) == [[(key, []) for key in names]]
    # Streamed, a series without samples gets no frame, as from Prometheus' own TSDB.
    status, _, payload = await remote_read(
        gateway, request_body([wanted], [pb.ReadRequest.STREAMED_XOR_CHUNKS])
    )
    assert status == 200 and streamed_result(payload) == []
    # Any other function hint still gets the samples.
    wanted.hints.func = "rate"
    status, _, payload = await remote_read(gateway, request_body([wanted]))
    assert samples_result(payload) == [
        expected(data, T0, T0 + COUNT * STEP, __name__="up", replica="r1")
    ]
