"""`/api/v1/series`, `/labels`, `/label/<name>/values` with every matcher type, GET and POST."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gateway.api.series import unescape_label_name
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import RunningGateway

T = 1_700_000_000_000


async def load(gateway: RunningGateway) -> None:
    items = [
        series(
            [(b"__name__", b"http_requests_total"), (b"code", b"200"), (b"job", b"api")], [(T, 1.0)]
        ),
        series(
            [(b"__name__", b"http_requests_total"), (b"code", b"500"), (b"job", b"api")], [(T, 2.0)]
        ),
        series([(b"__name__", b"http_requests_total"), (b"job", b"web")], [(T, 3.0)]),
        series(
            [(b"__name__", b"up"), (b"job", b"web"), (b"dotted.name", b"x\ny")], [(T, 1.0)]
        ),
    ]
    status, text, _ = await post(gateway, rw1(*items))
    assert status == 204, text


async def call(
    gateway: RunningGateway, method: str, path: str, params: list[tuple[str, str]]
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        if method == "GET":
            request = session.get(gateway.url + path, params=params)
        else:
            request = session.post(gateway.url + path, data=params)
        async with request as response:
            return response.status, await response.json()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("selector", "codes"),
    [
        ('http_requests_total{job="api"}', {"200", "500"}),
        ('http_requests_total{code!="200"}', {"500", ""}),
        ('http_requests_total{code=~"2.."}', {"200"}),
        ('http_requests_total{code=~"2"}', set()),  # anchored
        ('http_requests_total{code!~"5.*"}', {"200", ""}),
        ('http_requests_total{code=""}', {""}),  # a missing label is ""
        ('{__name__=~"http_.*", job="web"}', {""}),
    ],
)
async def test_series_matchers(
    gateway: RunningGateway, method: str, selector: str, codes: set[str]
) -> None:
    await load(gateway)
    status, body = await call(gateway, method, "/api/v1/series", [("match[]", selector)])
    assert status == 200, body
    assert {item.get("code", "") for item in body["data"]} == codes


async def test_dot_matches_newline(gateway: RunningGateway) -> None:
    await load(gateway)
    status, body = await call(gateway, "GET", "/api/v1/series", [("match[]", 'up{job=~"w.b"}')])
    assert status == 200 and len(body["data"]) == 1
    status, body = await call(
        gateway, "GET", "/api/v1/series", [("match[]", '{"dotted.name"=~"x.y"}')]
    )
    assert status == 200 and body["data"][0]["dotted.name"] == "x\ny"


async def test_several_match_params_are_a_union(gateway: RunningGateway) -> None:
    await load(gateway)
    status, body = await call(
        gateway, "GET", "/api/v1/series", [("match[]", "up"), ("match[]", '{code="500"}')]
    )
    assert status == 200
    assert sorted(item["__name__"] for item in body["data"]) == ["http_requests_total", "up"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ([], "no match[] parameter provided"),
        ([("match[]", '{job=~""}')], "at least one non-empty matcher"),
        ([("match[]", "up{")], "parse error"),
        ([("match[]", 'up{a=~"("}')], "regex"),
        ([("match[]", "up"), ("start", "yesterday")], 'invalid parameter "start"'),
        ([("match[]", "up"), ("limit", "-1")], "limit"),
    ],
)
async def test_bad_parameters_are_bad_data(
    gateway: RunningGateway, params: list[tuple[str, str]], words: str
) -> None:
    status, body = await call(gateway, "GET", "/api/v1/series", params)
    assert status == 400
    assert body["status"] == "error" and body["errorType"] == "bad_data"
    assert words in body["error"]


async def test_time_range_filters_series(gateway: RunningGateway) -> None:
    await load(gateway)
    seconds = T / 1000
    inside = [("match[]", "up"), ("start", str(seconds - 60)), ("end", "2023-11-14T22:14:00Z")]
    assert len((await call(gateway, "GET", "/api/v1/series", inside))[1]["data"]) == 1
    before = [("match[]", "up"), ("start", "0"), ("end", str(seconds - 60))]
    assert (await call(gateway, "GET", "/api/v1/series", before))[1]["data"] == []


async def test_labels_and_values(gateway: RunningGateway) -> None:
    await load(gateway)
    status, body = await call(gateway, "GET", "/api/v1/labels", [])
    assert body["data"] == ["__name__", "code", "dotted.name", "job"]
    status, body = await call(gateway, "POST", "/api/v1/labels", [("match[]", "up")])
    assert body["data"] == ["__name__", "dotted.name", "job"]
    status, body = await call(gateway, "GET", "/api/v1/label/job/values", [])
    assert body["data"] == ["api", "web"]
    status, body = await call(
        gateway, "GET", "/api/v1/label/code/values", [("match[]", '{job="api"}'), ("limit", "1")]
    )
    assert body["data"] == ["200"] and body["warnings"]
    status, body = await call(gateway, "GET", "/api/v1/label/U__dotted_2e_name/values", [])
    assert body["data"] == ["x\ny"]
    status, body = await call(gateway, "GET", "/api/v1/label/nope/values", [])
    assert status == 200 and body["data"] == []


def test_unescape_label_name() -> None:
    assert unescape_label_name("U__dotted_2e_name") == "dotted.name"
    assert unescape_label_name("U__a__b") == "a_b"
    assert unescape_label_name("U___1f600_") == "\U0001f600"
    assert unescape_label_name("plain_name") == "plain_name"
    assert unescape_label_name("U__bad_zz_") == "U__bad_zz_"
