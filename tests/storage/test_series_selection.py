"""Series selection SQL (inverted-index narrowing) selects exactly what the matchers say."""

from __future__ import annotations

import itertools
import uuid

import pytest

from gateway.model.labels import Labels, series_hash
from gateway.model.matchers import Matcher, MatchOp
from gateway.storage.clickhouse import ClickHouse, migrate
from gateway.storage.querier import TimeRange, find_series
from gateway.storage.schema import Layout
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
