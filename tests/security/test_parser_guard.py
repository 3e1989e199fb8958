"""Every parameter that reaches the PromQL parser is bounded first: a clean 400, the process alive.

promql-parser crashes the process (SIGSEGV) on ~32 000 nested parentheses and takes seconds on a
few thousand, so the gateway runs as its own process here: a crash shows as a dead process, not
as a dead test runner. The static test below keeps new parse calls from bypassing the guard.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.test_process_faults import start, wait_ready
from tests.prometheus_process import free_port

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
TIMEOUT = aiohttp.ClientTimeout(total=60)
# (method, path, parameter, other parameters): every place a request's text is parsed as PromQL.
PARSED: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    ("POST", "/api/v1/query", "query", [("time", "100")]),
    ("POST", "/api/v1/query_range", "query", [("start", "0"), ("end", "60"), ("step", "15")]),
    ("POST", "/api/v1/query_exemplars", "query", [("start", "0"), ("end", "60")]),
    ("POST", "/api/v1/series", "match[]", []),
    ("POST", "/api/v1/labels", "match[]", []),
    ("GET", "/api/v1/label/job/values", "match[]", []),
    ("POST", "/api/v1/cardinality/label_names", "selector", []),
    ("POST", "/api/v1/cardinality/label_values", "selector", [("label_names[]", "job")]),
    ("POST", "/api/v1/cardinality/active_series", "selector", []),
    ("GET", "/api/v1/status/tsdb", "selector", []),
]
HOSTILE = {
    # The audit's crash: 64 KB of nesting, under query.max_query_bytes (128 KiB).
    "crash-32k-parens": "(" * 32_000 + "up" + ")" * 32_000,
    "5k-parens": "(" * 5_000 + "up" + ")" * 5_000,
    "nested-braces": "{" * 3_000 + "}" * 3_000,
    "nested-calls": "sum(" * 2_000 + "up" + ")" * 2_000,
    "operator-chain": "up" + " + up" * 3_000,
    "huge": 'up{a="' + "x" * (200 << 10) + '"}',
}
GET_LIMIT = 2_400  # percent-encoded, within aiohttp's 8 KiB request line


@pytest.fixture(scope="module")
def process_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("guard")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp / "gateway.log").open("wb") as log:
        process = start(tmp / "data", port, log, "--admin-token", "guard-admin-token")
        try:
            asyncio.run(wait_ready(url, process))
            yield url
            assert process.poll() is None, "the gateway died"
        finally:
            process.terminate()
            process.wait(30)


async def _send(
    session: aiohttp.ClientSession, url: str, method: str, path: str,
    params: list[tuple[str, str]],
) -> tuple[int, object]:
    kwargs = {"params": params} if method == "GET" else {"data": params}
    async with session.request(method, url + path, **kwargs) as response:  # type: ignore[arg-type]
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


@pytest.mark.parametrize("shape", sorted(HOSTILE))
@pytest.mark.parametrize(("method", "path", "name", "extra"), PARSED, ids=[p[1] for p in PARSED])
async def test_hostile_text_is_refused_and_the_process_lives(
    process_gateway: str, shape: str, method: str, path: str, name: str,
    extra: list[tuple[str, str]],
) -> None:
    text = HOSTILE[shape]
    if method == "GET" and shape == "huge":
        pytest.skip("over the request-line limit: aiohttp refuses it before routing")
    if method == "GET" and len(text) > GET_LIMIT:
        text = text[: GET_LIMIT // 2] + text[-GET_LIMIT // 2 :]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        status, body = await _send(session, process_gateway, method, path, [(name, text), *extra])
        assert status == 400, (status, str(body)[:300])
        assert isinstance(body, dict) and body["status"] == "error", body
        assert body["errorType"] == "bad_data", body
        assert name in body["error"] and "query.max_query_" in body["error"], body["error"]
        async with session.get(process_gateway + "/-/healthy") as response:
            assert response.status == 200


async def test_ordinary_text_still_parses(process_gateway: str) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for method, path, name, extra in PARSED:
            text = 'up{job="x"}'
            params = [(name, text), *extra]
            status, body = await _send(session, process_gateway, method, path, params)
            assert status == 200, (path, body)


def _parser_calls(tree: ast.AST) -> list[int]:
    """Lines calling promql_parser.parse / pp.parse (however the module was imported)."""
    aliases = {"promql_parser"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name == "promql_parser"}
        if isinstance(node, ast.ImportFrom) and node.module == "promql_parser" and any(
            a.name == "parse" for a in node.names
        ):
            raise AssertionError("import promql_parser.parse under another name")
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "parse"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in aliases
    ]


def test_the_parser_is_only_reached_through_the_guard() -> None:
    """promql-parser is called in two places: the guard, and the engine's parse step, which
    gets its text only from the query API's `guarded_text` (the engine is called nowhere else)."""
    callers: dict[str, list[int]] = {}
    engine_users = set()
    for path in sorted(GATEWAY.rglob("*.py")):
        if "_pb" in path.parts:
            continue
        source = path.read_text()
        tree = ast.parse(source)
        relative = str(path.relative_to(GATEWAY.parent))
        if lines := _parser_calls(tree):
            callers[relative] = lines
        if "engine.instant_query" in source or "engine.range_query" in source:
            engine_users.add(relative)
        if "parse_query(" in source and not relative.startswith("gateway/promql/"):
            raise AssertionError(f"{relative} calls the engine's parse_query directly")
    assert set(callers) == {"gateway/api/query_guard.py", "gateway/promql/parse.py"}, callers
    assert engine_users == {"gateway/api/query.py"}, engine_users
    query_api = (GATEWAY / "api" / "query.py").read_text()
    assert 'guarded_text(text, "query"' in query_api


# promql-parser converts times when they are read: these raised ValueError/OverflowError (500)
# or panicked in Rust (negative `@`: the connection dropped with no answer). Found by the fuzz
# campaign of tests/fuzz/test_fuzz_promql_api.py.
UNREADABLE_TIMES = [
    "metric @ -1", "metric @ 1e19", "metric @ 253402300800", "x offset -1e18",
    "rate(x[5m] @ -1)", "sum(x @ -5) by (a)", "x[5m:1m] @ -5", "1 + (x offset -1e18)",
    "label_replace(x @ -1, 'a', 'b', 'c', 'd')", "max_over_time(x[1h:] @ 1e19)",
]


@pytest.mark.parametrize("text", UNREADABLE_TIMES)
async def test_unreadable_times_are_bad_data(process_gateway: str, text: str) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        for method, path, name, extra in PARSED[:3]:
            params = [(name, text), *extra]
            status, body = await _send(session, process_gateway, method, path, params)
            assert status == 400, (path, text, body)
            assert isinstance(body, dict) and body["errorType"] == "bad_data", body
            assert "out of the supported range" in body["error"], body
        async with session.get(process_gateway + "/-/healthy") as response:
            assert response.status == 200
