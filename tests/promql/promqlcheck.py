"""Running parsed PromQL test scripts against MemorySource + the engine, and judging results."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import promql_parser as pp

from gateway.model.labels import METRIC_NAME, Labels
from gateway.promql.context import EngineOptions
from gateway.promql.engine import instant_query, range_query
from gateway.promql.errors import QueryError
from gateway.promql.parse import selector_matchers
from gateway.promql.plan import children
from gateway.promql.result import MatrixValue, Result, ScalarValue, StringValue, VectorValue
from gateway.promql.source import MemorySource, SeriesSource
from tests.promql.promqltest import Clear, Command, Eval, Load

# The engine settings the scripts assume (README of testdata/).
OPTIONS = EngineOptions(max_samples=10_000)
EPSILON = 1e-6
_MIN_NORMAL = 2.2250738585072014e-308

@dataclass
class Outcome:
    line: int
    query: str
    status: str  # "pass" | "fail" | "skip"
    detail: str = ""


@dataclass
class Runner:
    """Runs a script's commands against a fresh MemorySource (subclasses query other sources)."""

    source: MemorySource = field(default_factory=MemorySource)
    native: list[Labels] = field(default_factory=list)

    async def run(self, commands: list[Command]) -> list[Outcome]:
        out: list[Outcome] = []
        for command in commands:
            if isinstance(command, Clear):
                await self.clear()
            elif isinstance(command, Load):
                await self.load(command)
            else:
                out.append(await self._eval(command))
        return out

    def query_source(self) -> SeriesSource:
        """The source queries are evaluated against."""
        return self.source

    async def clear(self) -> None:
        self.source.clear()
        self.native.clear()

    async def load(self, load: Load) -> None:
        self._load(load)

    def _load(self, load: Load) -> None:
        for series in load.series:
            if series.native:
                self.native.append(series.labels)
                continue
            points = [
                (i * load.interval_ms, v) for i, v in enumerate(series.values) if v is not None
            ]
            self.source.add(series.labels, [t for t, _ in points], [v for _, v in points])
            if load.nhcb:
                self.native.append(_nhcb_labels(series.labels))

    def _touches_native(self, query: str) -> bool:
        try:
            expr = pp.parse(query)
        except ValueError:
            return False
        for selector in _selectors(expr):
            try:
                matchers = selector_matchers(selector)
            except QueryError:
                continue
            if any(all(m.matches_labels(ls) for m in matchers) for ls in self.native):
                return True
        return False

    async def _eval(self, ev: Eval) -> Outcome:
        if ev.native or any(s.native for s in ev.expected) or self._touches_native(ev.query):
            return Outcome(ev.line, ev.query, "skip", "native histograms")
        try:
            if ev.step_ms:
                result = await range_query(
                    self.query_source(), ev.query, ev.start_ms, ev.end_ms, ev.step_ms, OPTIONS
                )
            else:
                result = await instant_query(
                    self.query_source(), ev.query, ev.start_ms, OPTIONS
                )
        except QueryError as exc:
            return Outcome(ev.line, ev.query, *_check_failure(ev, exc))
        if ev.fail:
            return Outcome(ev.line, ev.query, "fail", "expected an error, got a result")
        problem = _check_result(ev, result) or _check_annotations(ev, result)
        return Outcome(ev.line, ev.query, "fail" if problem else "pass", problem or "")


def _nhcb_labels(labels: Labels) -> Labels:
    out = []
    for name, value in labels:
        if name == "le":
            continue
        if name == METRIC_NAME and value.endswith("_bucket"):
            value = value[: -len("_bucket")]
        out.append((name, value))
    return tuple(out)


def _selectors(expr: pp.Expr) -> Iterator[pp.VectorSelector]:
    if isinstance(expr, pp.VectorSelector):
        yield expr
    elif isinstance(expr, pp.MatrixSelector):
        yield expr.vector_selector
    else:
        for child in children(expr):
            yield from _selectors(child)


def _check_failure(ev: Eval, exc: QueryError) -> tuple[str, str]:
    if not ev.fail:
        return "fail", f"unexpected error: {exc.message}"
    # Upstream compares the whole message, and searches with the regex.
    if ev.fail_msg is not None and ev.fail_msg != exc.message:
        return "fail", f"error {exc.message!r} is not {ev.fail_msg!r}"
    if ev.fail_regex is not None and not re.search(ev.fail_regex, exc.message):
        return "fail", f"error {exc.message!r} does not match /{ev.fail_regex}/"
    return "pass", ""


def almost_equal(expected: float, actual: float) -> bool:
    """Prometheus' float comparison for test results (relative tolerance)."""
    if math.isnan(expected) and math.isnan(actual):
        return True
    if expected == actual:
        return True
    diff = abs(expected - actual)
    total = abs(expected) + abs(actual)
    if expected == 0 or actual == 0 or total < _MIN_NORMAL:
        return diff < EPSILON * _MIN_NORMAL
    return diff / min(total, 1.7976931348623157e308) < EPSILON


def _check_result(ev: Eval, result: Result) -> str | None:
    value = result.value
    if ev.string is not None:
        if not isinstance(value, StringValue) or value.value != ev.string:
            return f"expected string {ev.string!r}, got {value}"
        return None
    if ev.scalar is not None:
        if not isinstance(value, ScalarValue):
            return f"expected scalar {ev.scalar}, got {result.result_type}"
        if not almost_equal(ev.scalar, value.value):
            return f"expected scalar {ev.scalar}, got {value.value}"
        return None
    if isinstance(value, MatrixValue):
        return _check_matrix(ev, value)
    if isinstance(value, VectorValue):
        return _check_vector(ev, value)
    if isinstance(value, ScalarValue):
        return f"got scalar {value.value}, expected a vector"
    return f"unexpected {result.result_type} result"


def _check_vector(ev: Eval, value: VectorValue) -> str | None:
    if ev.step_ms or ev.range_vector is not None:
        return f"expected a matrix, got vector {value.samples}"
    expected = [(s.labels, s.values[0] if s.values else None) for s in ev.expected]
    actual = [(s.labels, s.value) for s in value.samples]
    if len(expected) != len(actual):
        return f"expected {len(expected)} samples, got {len(actual)}: {actual}"
    if ev.ordered:
        for (el, ev_), (al, av) in zip(expected, actual, strict=True):
            if el != al or ev_ is None or not almost_equal(ev_, av):
                return f"ordered mismatch: expected {el} {ev_}, got {al} {av}"
        return None
    got = dict(actual)
    if len(got) != len(actual):
        return "duplicate label sets in the result"
    for labels, want in expected:
        if labels not in got:
            return f"missing {labels}; got {actual}"
        if want is None or not almost_equal(want, got[labels]):
            return f"{labels}: expected {want}, got {got[labels]}"
    return None


def _check_matrix(ev: Eval, value: MatrixValue) -> str | None:
    if ev.range_vector is not None:
        start, _, step = ev.range_vector
    elif ev.step_ms:
        start, step = ev.start_ms, ev.step_ms
    else:
        return "expected a vector, got a matrix"
    expected: dict[Labels, list[tuple[int, float]]] = {}
    for series in ev.expected:
        expected[series.labels] = [
            (start + i * step, v) for i, v in enumerate(series.values) if v is not None
        ]
    actual = {
        s.labels: list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        for s in value.series
    }
    if set(expected) != set(actual):
        return f"series differ: expected {sorted(expected)}, got {sorted(actual)}"
    for labels, want in expected.items():
        got = actual[labels]
        if len(want) != len(got) or any(
            wt != gt or not almost_equal(wv, gv)
            for (wt, wv), (gt, gv) in zip(want, got, strict=True)
        ):
            return f"{labels}: expected {want}, got {got}"
    return None


def _check_annotations(ev: Eval, result: Result) -> str | None:
    for wanted, msg, got, kind in (
        (ev.warn, ev.warn_msg, result.warnings, "warnings"),
        (ev.info, ev.info_msg, result.infos, "infos"),
    ):
        if wanted is True and not got:
            return f"expected {kind}, got none"
        # Like a failure message, an annotation message must be one of them exactly.
        if wanted is True and msg is not None and msg not in got:
            return f"expected {kind} {msg!r}, got {got}"
        if wanted is False and got:
            return f"expected no {kind}, got {got}"
    return None
