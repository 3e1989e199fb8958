"""Prometheus' PromQL test scripts through the real write path, ClickHouse and the engine.

Each `load` block is written as one batch with `write_batch` (the group-commit sink of the
remote-write path) into a database of the session's embedded ClickHouse; each `clear` starts a
new tenant, so nothing is deleted. Evals read through `ClickHouseSeriesSource`, the same source
the query API uses. Skips are those of test_conformance (native histograms, experimental files).

Differences from the memory run are storage semantics: a `load` that writes a sample at a
timestamp some earlier `load` already wrote keeps both rows until ClickHouse merges them, and the
reader then returns one of the two (the memory source keeps the later one).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

from gateway.model.labels import series_hash
from gateway.storage.clickhouse import ClickHouse, migrate
from gateway.storage.sample_reader import ClickHouseSeriesSource, SelectLimits
from gateway.storage.schema import Layout
from gateway.storage.writer import NewSeries, TenantSamples, WriteBatch, write_batch
from tests.promql.promqlcheck import Outcome, Runner
from tests.promql.promqltest import Load, parse_script
from tests.promql.test_conformance import FLOORS, SKIPPED_FILES, TESTDATA, documented_counts
from tests.promql.test_conformance import outcomes as memory_outcomes

# Pass-rate floors over non-skipped evals through storage, as measured.
STORAGE_FLOORS: dict[str, float] = {
    "aggregators.test": 1.0,
    "at_modifier.test": 1.0,
    "collision.test": 1.0,
    "functions.test": 1.0,
    "histograms.test": 1.0,
    "limit.test": 1.0,
    "literals.test": 1.0,
    "operators.test": 1.0,
    "range_queries.test": 1.0,
    "selectors.test": 1.0,
    "staleness.test": 1.0,
    "subquery.test": 1.0,
    "trig_functions.test": 1.0,
}


class StorageRunner(Runner):
    """A Runner whose loads go to ClickHouse and whose queries read from it."""

    def __init__(self, store: ClickHouse, layout: Layout, name: str) -> None:
        super().__init__()
        self.store = store
        self.layout = layout
        self.name = name.removesuffix(".test").replace("_", "-")
        self.generation = 0
        self.source_now = self._source()

    def _source(self) -> ClickHouseSeriesSource:
        tenant = f"{self.name}-{self.generation}"
        return ClickHouseSeriesSource(self.store, self.layout, tenant, SelectLimits())

    def query_source(self) -> ClickHouseSeriesSource:
        return self.source_now

    async def clear(self) -> None:
        await super().clear()
        self.generation += 1
        self.source_now = self._source()

    async def load(self, load: Load) -> None:
        # The memory source still tracks which series are native histograms (skipped).
        await super().load(load)
        tenant = f"{self.name}-{self.generation}"
        parts: list[TenantSamples] = []
        new: list[NewSeries] = []
        for series in load.series:
            if series.native:
                continue
            points = [
                (i * load.interval_ms, v) for i, v in enumerate(series.values) if v is not None
            ]
            if not points or not series.labels:
                continue
            sid = series_hash(series.labels)
            times = np.array([t for t, _ in points], dtype=np.int64)
            values = np.array([v for _, v in points], dtype=np.float64)
            new.append(NewSeries(tenant, sid, series.labels, int(times[0]), int(times[-1])))
            parts.append(
                TenantSamples(tenant, np.full(len(times), sid, np.uint64), times, values)
            )
        if new:
            batch = WriteBatch(parts, new, [])
            await self.store.run(lambda client: write_batch(client, self.layout, batch))


@pytest.fixture(scope="module")
def storage_outcomes(session_store: ClickHouse) -> Iterator[dict[str, tuple[Outcome, ...]]]:
    """Every eligible file run once through storage, in a database of its own."""
    layout = Layout(database=f"conformance_{uuid.uuid4().hex[:12]}", sample_shards=2)
    session_store.run_sync(lambda client: migrate(client, layout))

    async def run_all() -> dict[str, tuple[Outcome, ...]]:
        results = {}
        for name in sorted(STORAGE_FLOORS):
            runner = StorageRunner(session_store, layout, name)
            results[name] = tuple(await runner.run(parse_script((TESTDATA / name).read_text())))
        return results

    yield asyncio.run(run_all())
    session_store.run_sync(lambda client: client.command(f"DROP DATABASE {layout.database}"))


def test_every_eligible_file_runs_through_storage() -> None:
    assert set(STORAGE_FLOORS) == set(FLOORS)
    assert not set(STORAGE_FLOORS) & set(SKIPPED_FILES)


@pytest.mark.parametrize("name", sorted(STORAGE_FLOORS))
def test_file_pass_rate_through_storage(
    storage_outcomes: dict[str, tuple[Outcome, ...]], name: str
) -> None:
    found = storage_outcomes[name]
    counts = Counter(o.status for o in found)
    eligible = counts["pass"] + counts["fail"]
    rate = counts["pass"] / eligible if eligible else 1.0
    failures = [f"L{o.line} {o.query}: {o.detail}" for o in found if o.status == "fail"]
    assert rate >= STORAGE_FLOORS[name], "\n".join(failures)


def test_storage_agrees_with_memory(storage_outcomes: dict[str, tuple[Outcome, ...]]) -> None:
    """The same evals pass and are skipped through storage as in memory."""
    differ = [
        f"{name} L{mem.line} {mem.query}: memory {mem.status}, storage {got.status} {got.detail}"
        for name, found in storage_outcomes.items()
        for mem, got in zip(memory_outcomes(name), found, strict=True)
        if mem.status != got.status
    ]
    assert not differ, "\n".join(differ)


def test_storage_summary(
    storage_outcomes: dict[str, tuple[Outcome, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    total: Counter[str] = Counter()
    lines = []
    for name, found in sorted(storage_outcomes.items()):
        counts = Counter(o.status for o in found)
        total.update(counts)
        lines.append(
            f"{name} (storage): {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['skip']} skipped"
        )
    lines.append(
        f"TOTAL (storage): {total['pass']} passed, {total['fail']} failed, "
        f"{total['skip']} skipped"
    )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert total["pass"] / (total["pass"] + total["fail"]) >= 0.95


def test_documented_storage_pass_rates_are_current(
    storage_outcomes: dict[str, tuple[Outcome, ...]],
) -> None:
    documented = documented_counts()
    for name, found in storage_outcomes.items():
        counts = Counter(o.status for o in found)
        assert documented[name][1] == (counts["pass"], counts["fail"], counts["skip"]), name
