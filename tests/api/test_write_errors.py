"""The write error matrix: every kind of bad request gets its documented status, never a 5xx."""

from __future__ import annotations

import aiohttp
import pytest

from gateway._pb.io.prometheus.write.v2 import remote_write_v2_pb2 as v2
from gateway._pb.prometheus import remote_pb2 as v1
from gateway.config import Config
from gateway.remote import snappy
from tests.conftest import FIXTURES, RunningGateway, make_config, start_gateway

V1 = "application/x-protobuf"
V2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"


def series(labels: list[tuple[bytes, bytes]], samples: list[tuple[int, float]]) -> v1.TimeSeries:
    return v1.TimeSeries(
        labels=[v1.Label(name=n, value=v).SerializeToString() for n, v in labels],
        samples=[v1.Sample(timestamp=t, value=x) for t, x in samples],
    )


def rw1(*items: v1.TimeSeries) -> bytes:
    return snappy.compress(v1.WriteRequest(timeseries=list(items)).SerializeToString())


async def post(
    gateway: RunningGateway, body: bytes, content_type: str = V1, **headers: str
) -> tuple[int, str, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.url + "/api/v1/write",
            data=body,
            headers={"Content-Type": content_type, "Content-Encoding": "snappy", **headers},
        ) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


async def series_count(gateway: RunningGateway, selector: str, **headers: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            gateway.url + "/api/v1/series", params={"match[]": selector}, headers=headers
        ) as response,
    ):
        body = await response.json()
        assert response.status == 200, body
        return len(body["data"])


GOOD = series([(b"__name__", b"ok_metric"), (b"job", b"a")], [(1_700_000_000_000, 1.0)])


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b"\x10not-snappy-at-all", V1, 400, "snappy"),
        (snappy.compress(b"\xff\xff\xff\xff"), V1, 400, "protobuf"),
        (rw1(GOOD), "application/json", 415, "Content-Type"),
        (rw1(GOOD), "application/x-protobuf;proto=io.prometheus.write.v9.Request", 415, "v9"),
        (
            rw1(series([(b"__name__", b"x"), (b"\xff", b"v")], [(1, 1.0)])),
            V1,
            400,
            "invalid label name",
        ),
        (
            rw1(series([(b"__name__", b"x"), (b"a", b"\xc3\x28")], [(1, 1.0)])),
            V1,
            400,
            "not valid UTF-8",
        ),
        (
            rw1(series([(b"__name__", b"x"), (b"a", b"1"), (b"a", b"2")], [(1, 1.0)])),
            V1,
            400,
            "duplicate label name",
        ),
        (rw1(series([(b"__name__", b"x")], [(10**16, 1.0)])), V1, 400, "storable range"),
    ],
)
async def test_bad_bodies_get_a_clear_4xx(
    gateway: RunningGateway, body: bytes, content_type: str, status: int, words: str
) -> None:
    got, text, _ = await post(gateway, body, content_type)
    assert got == status, text
    assert words in text


async def test_empty_write_request_is_accepted(gateway: RunningGateway) -> None:
    got, text, _ = await post(gateway, snappy.compress(b""))
    assert got == 204, text


async def test_bad_series_do_not_stop_the_good_ones(gateway: RunningGateway) -> None:
    bad = series([(b"__name__", b"bad_metric"), (b"a", b"1"), (b"a", b"2")], [(1, 1.0)])
    got, text, _ = await post(gateway, rw1(bad, GOOD))
    assert got == 400 and "duplicate label name" in text
    assert await series_count(gateway, "ok_metric") == 1
    assert await series_count(gateway, '{__name__=~"bad.*"}') == 0


async def test_unsorted_labels_are_accepted_and_sorted(gateway: RunningGateway) -> None:
    item = series([(b"zone", b"z"), (b"__name__", b"unsorted"), (b"app", b"a")], [(5, 1.0)])
    got, text, _ = await post(gateway, rw1(item))
    assert got == 204, text
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/api/v1/series", params={"match[]": "unsorted"}) as response,
    ):
        assert (await response.json())["data"] == [
            {"__name__": "unsorted", "app": "a", "zone": "z"}
        ]


async def test_oversized_bodies_are_413(chdb_dsn: str) -> None:
    config: Config = make_config(
        chdb_dsn, **{"ingest.max_body_bytes": 4096, "ingest.max_decoded_bytes": 20_000}
    )
    running = await start_gateway(config)
    try:
        got, text, _ = await post(running, b"\x00" * 5000)
        assert got == 413 and "ingest.max_body_bytes" in text
        # rw_1.bin is 10 kB compressed: over the body cap.
        got, text, _ = await post(running, (FIXTURES / "rw_1.bin").read_bytes())
        assert got == 413
        # Small compressed, large decompressed: refused from snappy's header alone.
        bomb = snappy.compress(b"\x00" * 60_000)
        assert len(bomb) < 4096
        got, text, _ = await post(running, bomb)
        assert got == 413 and "ingest.max_decoded_bytes" in text
    finally:
        await running.runner.cleanup()


def rw2_body(name: str) -> bytes:
    request = v2.Request(
        symbols=[b"", b"__name__", name.encode(), b"job", b"j", b"Help text."],
        timeseries=[
            v2.TimeSeries(
                labels_refs=[1, 2, 3, 4],
                samples=[
                    v2.Sample(value=1.0, timestamp=1000),
                    v2.Sample(value=2.0, timestamp=2000),
                ],
                metadata=v2.Metadata(type=v2.Metadata.METRIC_TYPE_GAUGE, help_ref=5),
            )
        ],
    )
    return snappy.compress(request.SerializeToString())


async def test_rw2_is_accepted_with_written_headers(gateway: RunningGateway) -> None:
    got, text, headers = await post(gateway, rw2_body("rw2_metric"), V2)
    assert got == 204, text
    assert headers["X-Prometheus-Remote-Write-Samples-Written"] == "2"
    assert headers["X-Prometheus-Remote-Write-Histograms-Written"] == "0"
    assert headers["X-Prometheus-Remote-Write-Exemplars-Written"] == "0"
    assert await series_count(gateway, "rw2_metric") == 1


async def test_rw2_native_histograms_are_refused_by_name(gateway: RunningGateway) -> None:
    request = v2.Request(
        symbols=[b"", b"__name__", b"hist", b"flt"],
        timeseries=[
            v2.TimeSeries(labels_refs=[1, 2], histograms=[v2.Histogram(timestamp=1000)]),
            v2.TimeSeries(labels_refs=[1, 3], samples=[v2.Sample(value=1, timestamp=1000)]),
        ],
    )
    got, text, headers = await post(gateway, snappy.compress(request.SerializeToString()), V2)
    assert got == 400 and "native histograms are not supported" in text
    assert headers["X-Prometheus-Remote-Write-Samples-Written"] == "1"
    assert await series_count(gateway, "flt") == 1


@pytest.mark.parametrize(
    ("header", "status"),
    [("", 400), ("a" * 151, 400), ("..", 400), ("bad/tenant", 400), ("ok-tenant_1.x", 204)],
)
async def test_tenant_header_is_validated(
    gateway: RunningGateway, header: str, status: int
) -> None:
    got, text, _ = await post(gateway, rw1(GOOD), **{"X-Scope-OrgID": header})
    assert got == status, text


async def test_tenants_are_isolated_without_auth(gateway: RunningGateway) -> None:
    only_a = series([(b"__name__", b"tenant_a_only")], [(1, 1.0)])
    assert (await post(gateway, rw1(only_a), **{"X-Scope-OrgID": "a"}))[0] == 204
    assert await series_count(gateway, "tenant_a_only", **{"X-Scope-OrgID": "a"}) == 1
    assert await series_count(gateway, "tenant_a_only", **{"X-Scope-OrgID": "b"}) == 0
    assert await series_count(gateway, "tenant_a_only") == 0  # the default tenant


async def test_auth_maps_credentials_to_tenants(chdb_dsn: str) -> None:
    tenants = [
        {"tenant": "team-a", "bearer_token": "token-a"},
        {"tenant": "team-b", "username": "bob", "password": "secret"},
    ]
    running = await start_gateway(make_config(chdb_dsn, **{"auth.tenants": tenants}))
    try:
        body = rw1(series([(b"__name__", b"authed")], [(1, 1.0)]))
        assert (await post(running, body))[0] == 401
        assert (await post(running, body, Authorization="Bearer wrong"))[0] == 401
        assert (await post(running, body, Authorization="Basic Ym9iOndyb25n"))[0] == 401
        spoof = {"Authorization": "Bearer token-a", "X-Scope-OrgID": "team-b"}
        assert (await post(running, body, **spoof))[0] == 403
        assert (await post(running, body, Authorization="Bearer token-a"))[0] == 204
        same = {"Authorization": "Bearer token-a", "X-Scope-OrgID": "team-a"}
        assert (await post(running, body, **same))[0] == 204
        assert await series_count(running, "authed", Authorization="Bearer token-a") == 1
        # "bob:secret" in base64
        assert await series_count(running, "authed", Authorization="Basic Ym9iOnNlY3JldA==") == 0
    finally:
        await running.runner.cleanup()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "identity"])
@pytest.mark.parametrize("path", ["/api/v1/write", "/api/v1/read"])
async def test_other_content_encodings_are_415_without_server_errors(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture, encoding: str, path: str
) -> None:
    # Bodies that are not what the encoding says: nothing may try to decode them first.
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.post(
            gateway.url + path, data=rw1(GOOD),
            headers={"Content-Type": V1, "Content-Encoding": encoding},
        ) as response,
    ):
        assert response.status == 415, await response.text()
        assert encoding in await response.text()
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
