"""Prometheus' own PromQL test scripts (testdata/, v3.14.0) run through MemorySource + engine.

Every eval is counted as passed, failed or skipped, per file and in total (run with `-s` to see
the table). Each file's pass rate must stay at or above the floor reached when it was last
measured, so a regression fails the build.

What is skipped, and why:
- Native histograms (not yet supported by the engine): all of `native_histograms.test`; any eval
  whose expected output holds a `{{...}}` histogram; any eval whose selectors match a series
  loaded with histogram samples, or the native (NHCB) twin that `load_with_nhcb` creates for a
  classic `_bucket` family. Classic-bucket evals in the same blocks still run.
- Experimental 3.x extensions that are a later stage: `info`, `fill-modifier`,
  `extended_vectors`, `duration_expression`, `name_label_dropping`, `type_and_unit` and
  `start_timestamps` (all their evals are counted as skipped). `limit.test` runs; its evals
  over native histograms are skipped like any other (tests/promql/local/ has float-only ones).

Harness choices, as upstream: `expect fail msg:` and `expect warn|info msg:` need the exact
message, `expect fail regex:` a regex search hit; annotations are only checked when an eval
states an expectation about them.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from tests.promql.promqlcheck import Outcome, Runner
from tests.promql.promqltest import parse_script

TESTDATA = Path(__file__).parent / "testdata"

# Pass-rate floors over non-skipped evals, as measured; raise them as the engine improves.
FLOORS: dict[str, float] = {
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
SKIPPED_FILES: dict[str, str] = {
    "native_histograms.test": "native histograms",
    "info.test": "experimental",
    "fill-modifier.test": "experimental",
    "extended_vectors.test": "experimental",
    "duration_expression.test": "experimental",
    "name_label_dropping.test": "experimental",
    "type_and_unit.test": "experimental",
    "start_timestamps.test": "experimental",
}
_EVAL_LINE = re.compile(r"^eval", re.MULTILINE)


@cache
def outcomes(name: str) -> tuple[Outcome, ...]:
    """Run one script (once per session) and return every eval's outcome."""
    text = (TESTDATA / name).read_text()
    if name in SKIPPED_FILES:
        reason = SKIPPED_FILES[name]
        return tuple(
            Outcome(text.count("\n", 0, m.start()) + 1, "", "skip", reason)
            for m in _EVAL_LINE.finditer(text)
        )
    return tuple(asyncio.run(Runner().run(parse_script(text))))


def _counts(name: str) -> Counter[str]:
    return Counter(o.status for o in outcomes(name))


def test_every_file_is_classified() -> None:
    present = {p.name for p in TESTDATA.glob("*.test")}
    assert present == set(FLOORS) | set(SKIPPED_FILES)


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_file_pass_rate(name: str) -> None:
    counts = _counts(name)
    eligible = counts["pass"] + counts["fail"]
    rate = counts["pass"] / eligible if eligible else 1.0
    failures = [f"L{o.line} {o.query}: {o.detail}" for o in outcomes(name) if o.status == "fail"]
    assert rate >= FLOORS[name], "\n".join(failures)


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    total: Counter[str] = Counter()
    lines = []
    for path in sorted(TESTDATA.glob("*.test")):
        counts = _counts(path.name)
        total.update(counts)
        lines.append(
            f"{path.name}: {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['skip']} skipped"
        )
    lines.append(
        f"TOTAL: {total['pass']} passed, {total['fail']} failed, {total['skip']} skipped"
    )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    core = sum(_counts(n)["pass"] for n in FLOORS)
    eligible = sum(_counts(n)["pass"] + _counts(n)["fail"] for n in FLOORS)
    assert core / eligible >= 0.95


DOCS = Path(__file__).parents[2] / "docs" / "promql.md"
_DOC_ROW = re.compile(r"^\| (\S+\.test)[^|]*\| (\d+) / (\d+) / (\d+) \| (\d+) / (\d+) / (\d+) \|$")


def documented_counts() -> dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """Per file, the (memory, storage) passed / failed / skipped in docs/promql.md's table."""
    out = {}
    for line in DOCS.read_text().splitlines():
        match = _DOC_ROW.match(line)
        if match:
            n = [int(g) for g in match.groups()[1:]]
            out[match.group(1)] = ((n[0], n[1], n[2]), (n[3], n[4], n[5]))
    return out


def test_documented_pass_rates_are_current() -> None:
    documented = documented_counts()
    assert set(documented) == set(FLOORS)
    for name in FLOORS:
        counts = _counts(name)
        assert documented[name][0] == (counts["pass"], counts["fail"], counts["skip"]), name
