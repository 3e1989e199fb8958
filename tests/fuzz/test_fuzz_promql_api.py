"""The PromQL front door under random and mutated text: never a 5xx, never a crash, bounded time.

Seeds are the expressions of the conformance scripts (tests/promql/testdata); mutations add
nested brackets, cut and duplicate slices, paste long strings, odd Unicode and extreme numbers.
Each example goes through the HTTP API of a real gateway (in this process, on the real embedded
engine, with a little data loaded) to one of the endpoints that parse PromQL. A crash of the
parser would take this test process down; a hang runs into the client timeout.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.api.test_write_errors import rw1, series
from tests.conftest import RunningGateway, make_config, start_gateway

TESTDATA = Path(__file__).resolve().parents[1] / "promql" / "testdata"
_EVAL = re.compile(
    r"^eval(?:_\w+)? +(?:instant +at +\S+|range +from +\S+ +to +\S+ +step +\S+) +(.+)$"
)
REQUEST_SECONDS = 60  # the client gives up (and the example fails) after this long


def seed_queries() -> list[str]:
    found: set[str] = set()
    for path in sorted(TESTDATA.glob("*.test")):
        for line in path.read_text().splitlines():
            match = _EVAL.match(line.strip())
            if match:
                found.add(match.group(1))
    return sorted(found)


SEEDS = seed_queries()
# (method, path, parameter, other parameters) of every endpoint that parses PromQL.
ENDPOINTS = [
    ("GET", "/api/v1/query", "query", [("time", "3000")]),
    ("POST", "/api/v1/query", "query", [("time", "3000")]),
    ("POST", "/api/v1/query_range", "query", [("start", "0"), ("end", "3000"), ("step", "60")]),
    ("POST", "/api/v1/query_exemplars", "query", [("start", "0"), ("end", "3000")]),
    ("POST", "/api/v1/series", "match[]", [("start", "0"), ("end", "3000")]),
    ("POST", "/api/v1/labels", "match[]", []),
    ("GET", "/api/v1/label/job/values", "match[]", []),
    ("POST", "/api/v1/cardinality/label_names", "selector", []),
    ("GET", "/api/v1/status/tsdb", "selector", []),
]
ODD_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",))
    | st.sampled_from("\x00\ufeff\u2028\u202e\U0010ffff"),
    max_size=40,
)
FRAGMENTS = st.sampled_from([
    "(", ")", "[", "]", "{", "}", "[5m:1s]", "[1y]", "@ 1e20", "@ -1e20", "offset -1y",
    "offset 1e9y",
    " or ", " and ", " unless ", " / on(job) group_left ", "1e308", "-1e308", "NaN", "Inf", "-0",
    "0x7fffffffffffffff", '"\\xff"', '"\\u0000"', "`", '"', "'", "#", "\n", "=~", '=~"(a*)*b"',
    "sum(", "rate(", "histogram_quantile(0.9, ", "topk(1e9, ", "label_replace(", ",", "by ()",
])


@st.composite
def queries(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(
            ["fragment", "wrap", "cut", "duplicate", "odd", "long", "truncate"]
        ))
        if action == "fragment":
            text = text[:at] + draw(FRAGMENTS) + text[at:]
        elif action == "wrap":
            depth = draw(st.integers(1, 300))
            opener, closer = draw(st.sampled_from([("(", ")"), ("sum(", ")"), ("{", "}")]))
            text = opener * depth + text + closer * depth
        elif action == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif action == "duplicate":
            text = text[:at] + text[at : at + draw(st.integers(1, 200))] * draw(
                st.integers(2, 50)
            ) + text[at:]
        elif action == "odd":
            text = text[:at] + draw(ODD_TEXT) + text[at:]
        elif action == "long":
            text = text[:at] + '"' + "x" * draw(st.integers(1000, 200_000)) + '"' + text[at:]
        else:
            text = text[:at]
    return text


class GatewayThread:
    """A real gateway serving from its own event loop thread, for synchronous hypothesis tests."""

    def __init__(self, chdb_dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        config = make_config(chdb_dsn, **{"query.timeout": "20s"})
        self.running: RunningGateway = self._wait(start_gateway(config))
        self._load()

    def _wait(self, coro: object) -> RunningGateway:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)  # type: ignore[arg-type]

    def _load(self) -> None:
        body = rw1(*(
            series(
                [(b"__name__", b"http_requests"), (b"job", job), (b"instance", b"%d" % i),
                 (b"group", group)],
                [(minute * 60_000, float(minute * (i + 1))) for minute in range(60)],
            )
            for job in (b"api-server", b"app-server") for group in (b"production", b"canary")
            for i in range(2)
        ))
        status, text = self.request(
            "POST", "/api/v1/write", body=body,
            headers={"Content-Type": "application/x-protobuf"},
        )
        assert status == 204, text

    def request(
        self, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.running.port, timeout=REQUEST_SECONDS
        )
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.running.runner.cleanup(), self.loop).result(120)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture(scope="module")
def front_door(chdb_dsn: str) -> Iterator[GatewayThread]:
    gateway = GatewayThread(chdb_dsn)
    yield gateway
    gateway.close()


def check(gateway: GatewayThread, endpoint: int, text: str) -> None:
    method, path, name, extra = ENDPOINTS[endpoint]
    form = urlencode([(name, text), *extra])
    if method == "GET":
        if len(form) > 7000:
            return  # past the request-line limit: refused before any handler (tested elsewhere)
        status, body = gateway.request(method, f"{path}?{form}")
    else:
        status, body = gateway.request(
            method, path, body=form.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert status < 500, (status, path, text[:300], body[:500])
    if status >= 400:
        answer = json.loads(body)
        assert answer["status"] == "error" and answer["error"], answer
        assert "Traceback" not in answer["error"] and "internal error" not in answer["error"]
    health, _ = gateway.request("GET", "/-/healthy")
    assert health == 200


@given(endpoint=st.integers(0, len(ENDPOINTS) - 1), text=queries())
# Found by this test: a non-UTF-8 byte echoed in the error message made the answer a 500, and
# so did an instant vector as the parameter of limitk / limit_ratio.
@example(endpoint=0, text='label_replace(testmetric, "\\xff", "", "src", "(.*)")')
@example(endpoint=0, text="count(limit_ratio(t % 17/17, http_requests))")
def test_mutated_queries(front_door: GatewayThread, endpoint: int, text: str) -> None:
    check(front_door, endpoint, text)


@given(
    endpoint=st.integers(0, len(ENDPOINTS) - 1),
    text=st.text(max_size=300) | st.text(st.sampled_from('()[]{}"`\\ ,=~!+-*/^@:'), max_size=3000),
)
def test_random_text(front_door: GatewayThread, endpoint: int, text: str) -> None:
    check(front_door, endpoint, text)


def test_seeds_are_many() -> None:
    """The conformance scripts give the mutations plenty to start from."""
    assert len(SEEDS) > 1000
