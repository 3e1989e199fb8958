"""Our own PromQL test scripts (tests/promql/local/, same format as Prometheus' testdata/).

They cover, on float samples only, what the upstream scripts test mostly together with native
histograms (which make those evals skipped here): count_values and limitk / limit_ratio; and
grouping by `__name__` after it was removed, which upstream tests only in an experimental file.
Every eval must pass.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.promql.promqlcheck import Runner
from tests.promql.promqltest import parse_script

LOCAL = Path(__file__).parent / "local"


@pytest.mark.parametrize("path", sorted(LOCAL.glob("*.test")), ids=lambda p: p.name)
def test_local_script(path: Path) -> None:
    outcomes = asyncio.run(Runner().run(parse_script(path.read_text())))
    assert outcomes, "no evals"
    assert all(o.status != "skip" for o in outcomes)
    failures = [f"L{o.line} {o.query}: {o.detail}" for o in outcomes if o.status == "fail"]
    assert not failures, "\n".join(failures)
