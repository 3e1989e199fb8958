"""docs/limits.md's limits reference lists every limit once with its built-in default."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gateway.config import load
from gateway.limits.model import LIMIT_NAMES, Limits

DOC = Path(__file__).parents[2] / "docs" / "limits.md"


def reference_rows() -> list[list[str]]:
    text = DOC.read_text()
    section = text.split("## Limits reference", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_every_limit_is_documented_once_with_its_default() -> None:
    rows = reference_rows()
    names = [re.fullmatch(r"`(\w+)`", row[0]).group(1) for row in rows]  # type: ignore[union-attr]
    assert sorted(names) == sorted(LIMIT_NAMES), "add or remove rows to match Limits"
    assert len(names) == len(set(names))
    defaults = Limits().to_json()
    for name, row in zip(names, rows, strict=True):
        assert row[2] == f"`{json.dumps(defaults[name])}`", (
            f"{name}: docs say {row[2]}, the Limits dataclass has {json.dumps(defaults[name])}"
        )


def test_the_configuration_example_loads(tmp_path: Path) -> None:
    block = re.search(r"## Configuration\n\n```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    path = tmp_path / "gateway.yml"
    path.write_text(block.group(1))
    defaults = load(str(path)).limits.defaults
    assert defaults.metric_budgets == {"http_requests_total": 200000, "up": 0}
    assert defaults.max_fetched_samples_per_query is None
