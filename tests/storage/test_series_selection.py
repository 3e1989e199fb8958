"""Series selection SQL (inverted-index narrowing) selects exactly what the matchers say."""

from __future__ import annotations

import itertools
import uuid

import pytest

from gateway.model.labels import Labels, series_hash
from gateway.model.matchers import Matcher, MatchOp
from gateway.storage.clickhouse import ClickHouse, migrate
from gateway.storage.querier import TimeRange, find_series, label_names, label_values
from gateway.storage.schema import Layout
from gateway.storage.sql import Params
from gateway.storage.writer import NewSeries, WriteBatch, write_batch

T0 = 1_700_000_000_000


def label_sets() -> list[Labels]:
    sets: list[Labels] = []
    for name, job, pod, extra in itertools.product(
        ("", "m", "other"), ("x", "y"), ("p-1", "p-12", "p-2", ""), ("", "e")
    ):
        pairs = {"__name__": name, "job": job, "pod": pod, "extra": extra}
        sets.append(tuple(sorted((k, v) for k, v in pairs.items() if v)))
    return sets


@pytest.fixture(scope="module")
def stored(session_store: ClickHouse) -> Layout:
    layout = Layout(database=f"selection_{uuid.uuid4().hex[:10]}", sample_shards=2)
    session_store.run_sync(lambda c: migrate(c, layout))
    series = [NewSeries(tenant, series_hash(labels), labels, T0, T0)
              for tenant in ("a", "b") for labels in label_sets()]
    batch = WriteBatch([], series, [])
    session_store.run_sync(lambda c: write_batch(c, layout, batch))
    return layout


MATCHERS = [
    Matcher.of("__name__", MatchOp.EQUAL, "m"),
    Matcher.of("__name__", MatchOp.REGEX, "m|other"),
    Matcher.of("__name__", MatchOp.NOT_EQUAL, "m"),
    Matcher.of("job", MatchOp.EQUAL, "x"),
    Matcher.of("pod", MatchOp.REGEX, "p-1.*"),
    Matcher.of("pod", MatchOp.REGEX, "p-2|"),  # matches "": checked on the series rows
    Matcher.of("pod", MatchOp.NOT_REGEX, "p-1.*"),
    Matcher.of("extra", MatchOp.EQUAL, ""),
    Matcher.of("extra", MatchOp.NOT_EQUAL, ""),
]


@pytest.mark.parametrize(
    "selector",
    [list(pair) for pair in itertools.combinations(MATCHERS, 2)]
    + [[MATCHERS[3]], [MATCHERS[4]], [MATCHERS[3], MATCHERS[4], MATCHERS[8]]],
    ids=lambda selector: ",".join(map(str, selector)),
)
def test_selection_equals_matcher_semantics(
    session_store: ClickHouse, stored: Layout, selector: list[Matcher]
) -> None:
    found = session_store.run_sync(
        lambda c: find_series(c, stored, "a", [selector], TimeRange(T0, T0), 0)
    )
    wanted = sorted(
        labels for labels in label_sets() if all(m.matches_labels(labels) for m in selector)
    )
    assert found == wanted


def test_several_selectors_are_a_union(session_store: ClickHouse, stored: Layout) -> None:
    first = [Matcher.of("job", MatchOp.EQUAL, "x"), Matcher.of("pod", MatchOp.EQUAL, "p-2")]
    second = [Matcher.of("__name__", MatchOp.EQUAL, "other"), Matcher.of("extra", "=", "e")]
    found = session_store.run_sync(
        lambda c: find_series(c, stored, "b", [first, second], TimeRange(T0, T0), 0)
    )
    wanted = sorted(
        labels for labels in label_sets()
        if any(all(m.matches_labels(labels) for m in one) for one in (first, second))
    )
    assert found == wanted and len(wanted) > 4


@pytest.fixture(scope="module")
def spread_in_time(session_store: ClickHouse) -> Layout:
    """Tenant "a": the label sets above at T0, at T0 - 10 days, and from T0 + 10 days."""
    layout = Layout(database=f"browse_{uuid.uuid4().hex[:10]}", sample_shards=2)
    session_store.run_sync(lambda c: migrate(c, layout))
    day = 86_400_000
    series = []
    for shift, prefix in ((0, "now"), (-10 * day, "old"), (10 * day, "new")):
        for labels in label_sets():
            shifted = tuple(sorted((*labels, ("when", prefix))))
            series.append(NewSeries("a", series_hash(shifted), shifted, T0 + shift, T0 + shift))
    other = (("__name__", "b_only"), ("secret", "b"))
    series.append(NewSeries("b", series_hash(other), other, T0, T0))
    session_store.run_sync(lambda c: write_batch(c, layout, WriteBatch([], series, [])))
    return layout


BROWSING_SELECTORS = [
    [],
    [[Matcher.of("__name__", MatchOp.NOT_EQUAL, "")]],
    [[Matcher.of("__name__", MatchOp.REGEX, ".+")]],
    [[Matcher.of("job", MatchOp.EQUAL, "x")]],
    [[Matcher.of("__name__", MatchOp.EQUAL, "m")], [Matcher.of("pod", MatchOp.EQUAL, "p-2")]],
]


@pytest.mark.parametrize("selectors", BROWSING_SELECTORS, ids=str)
@pytest.mark.parametrize("days", [(-11, -9), (-1, 1), (-11, 11), (9, 30), (20, 30)], ids=str)
def test_label_browsing_equals_the_series_it_selects(
    session_store: ClickHouse,
    spread_in_time: Layout,
    selectors: list[list[Matcher]],
    days: tuple[int, int],
) -> None:
    window = TimeRange(T0 + days[0] * 86_400_000, T0 + days[1] * 86_400_000)
    series = session_store.run_sync(
        lambda c: find_series(c, spread_in_time, "a", selectors or [[all_series]], window, 0)
    )
    names = session_store.run_sync(
        lambda c: label_names(c, spread_in_time, "a", selectors, window, 0)
    )
    assert names == sorted({name for labels in series for name, _ in labels})
    for name in ("__name__", "pod", "when", "secret"):
        values = session_store.run_sync(
            lambda c, n=name: label_values(c, spread_in_time, "a", n, selectors, window, 0)
        )
        assert values == sorted({v for labels in series for n, v in labels if n == name})
    limited = session_store.run_sync(
        lambda c: label_values(c, spread_in_time, "a", "pod", selectors, window, 2)
    )
    assert limited == sorted({v for labels in series for n, v in labels if n == "pod"})[:2]


# Selects every series of the tenant, named or not: the reference for "no selector".
all_series = Matcher.of("when", MatchOp.REGEX, ".+")


def test_id_arrays_reach_clickhouse_as_typed_uint64_arrays(session_store: ClickHouse) -> None:
    ids = [0, 1, 2**63 - 1, 2**63, 2**64 - 1]
    params = Params()
    placeholder = params.add_ids(ids)
    rows = session_store.run_sync(
        lambda c: c.query(
            f"SELECT toTypeName({placeholder}), {placeholder}", parameters=params.values
        ).result_rows
    )
    assert rows == [("Array(UInt64)", ids)]
