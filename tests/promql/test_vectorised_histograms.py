"""histogram_quantile and histogram_fraction, vectorised over histograms and steps, against the
bucket-list walk of one histogram at one step (tests/promql/reference.py).

Random classic histograms: bounds with negatives, zero, duplicates written two ways (`1` and
`1.0`), sometimes no `+Inf` bucket; counts sometimes decreasing (monotonicity fix-up), tiny
float noise, zeros, NaN; buckets missing at some steps.
"""

from __future__ import annotations

import asyncio
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.model.labels import Labels
from gateway.promql.context import EngineOptions
from gateway.promql.engine import range_query
from gateway.promql.result import MatrixValue, Result
from gateway.promql.source import MemorySource
from tests.promql import reference as ref

OPTIONS = EngineOptions(max_samples=10_000_000, lookback_delta_ms=1)
STEP = 10_000
STEPS = 6
BOUNDS = ["-1", "0", "0.5", "1", "1.0", "2.5", "10", "+Inf"]
Rows = list[tuple[Labels, float, list[float | None]]]


@st.composite
def histograms(draw: st.DrawFn) -> Rows:
    count = st.one_of(
        st.integers(0, 50).map(float),
        st.sampled_from([math.nan, 1e-13, 0.0, 7.0 + 1e-12]),
    )
    point = st.one_of(count, count, count, st.none())
    rows: Rows = []
    for h in range(draw(st.integers(1, 3))):
        chosen = draw(st.lists(st.sampled_from(BOUNDS), min_size=1, max_size=6, unique=True))
        for le in chosen:
            labels = (("__name__", "h_bucket"), ("h", str(h)), ("le", le))
            values = draw(st.lists(point, min_size=STEPS, max_size=STEPS))
            if draw(st.booleans()):
                # Mostly cumulative: scale by the bound's position so counts tend to grow.
                values = [None if v is None else v + 10 * BOUNDS.index(le) for v in values]
            rows.append((labels, float(le), values))
    return rows


def _run(rows: Rows, query: str) -> Result:
    source = MemorySource()
    for labels, _, values in rows:
        points = [(j * STEP, v) for j, v in enumerate(values) if v is not None]
        if points:
            source.add(labels, [t for t, _ in points], [v for _, v in points])
    return asyncio.run(range_query(source, query, 0, (STEPS - 1) * STEP, STEP, OPTIONS))


def _expected(rows: Rows, step: int) -> dict[str, ref.Buckets]:
    out: dict[str, ref.Buckets] = {}
    for labels, bound, values in rows:
        value = values[step]
        if value is not None:
            out.setdefault(dict(labels)["h"], []).append((bound, value))
    return out


def _points(result: Result) -> dict[str, dict[int, float]]:
    assert isinstance(result.value, MatrixValue)
    return {
        dict(s.labels)["h"]: dict(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        for s in result.value.series
    }


def _same(want: float, got: float) -> bool:
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    return want == got or abs(want - got) <= 1e-12 * max(abs(want), abs(got))


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(histograms(), st.sampled_from([0.0, 0.1, 0.5, 0.9, 0.99, 1.0, -0.5, 1.5, math.nan]))
def test_histogram_quantile(rows: Rows, q: float) -> None:
    result = _run(rows, f"histogram_quantile({q}, h_bucket)")
    got = _points(result)
    forced_any = False
    for step in range(STEPS):
        for h, buckets in _expected(rows, step).items():
            want, forced = ref.bucket_quantile(q, buckets)
            forced_any |= forced
            have = got[h][step * STEP]
            assert _same(want, have), (q, h, step, buckets, want, have)
    infos = [i for i in result.infos if "fixed for monotonicity" in i]
    assert bool(infos) == forced_any


@SETTINGS
@given(histograms(), st.sampled_from([(0.0, 1.0), (-math.inf, 0.5), (0.2, math.inf),
                                      (1.0, 1.0), (2.0, 1.0), (-2.0, 20.0), (math.nan, 1.0)]))
def test_histogram_fraction(rows: Rows, bounds: tuple[float, float]) -> None:
    lower, upper = (f"{b}" if math.isfinite(b) else ("NaN" if math.isnan(b) else
                    ("+Inf" if b > 0 else "-Inf")) for b in bounds)
    got = _points(_run(rows, f"histogram_fraction({lower}, {upper}, h_bucket)"))
    for step in range(STEPS):
        for h, buckets in _expected(rows, step).items():
            want = ref.bucket_fraction(bounds[0], bounds[1], buckets)
            have = got[h][step * STEP]
            assert _same(want, have), (bounds, h, step, buckets, want, have)


def test_empty_first_bucket_at_rank_zero_is_nan() -> None:
    # rank 0 falls in an empty first bucket: 0/0 inside the interpolation is NaN in Go (the
    # per-step Python version raised ZeroDivisionError here, a 500).
    rows: Rows = [
        ((("__name__", "h_bucket"), ("h", "0"), ("le", "0.5")), 0.5, [0.0] * STEPS),
        ((("__name__", "h_bucket"), ("h", "0"), ("le", "+Inf")), math.inf, [70.0] * STEPS),
    ]
    got = _points(_run(rows, "histogram_quantile(0, h_bucket)"))
    assert all(math.isnan(v) for v in got["0"].values())
