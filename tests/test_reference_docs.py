"""The checked-in references equal what the code generates (regenerate with the commands)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import flag_paths
from gateway.errors import Errors
from gateway.reference_docs import configuration_reference, errors_reference

DOCS = Path(__file__).parent.parent / "docs"


@pytest.mark.parametrize(
    ("command", "file"),
    [("config-reference", "configuration.md"), ("errors-reference", "errors.md")],
)
def test_checked_in_reference_is_current(
    command: str, file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command]) == 0
    generated = capsys.readouterr().out
    assert generated == (DOCS / file).read_text(), (
        f"docs/{file} is stale: run `python -m gateway {command} > docs/{file}`"
    )


def test_every_key_and_error_is_documented() -> None:
    config_doc = configuration_reference()
    assert all(f"| `{path}` |" in config_doc for path, _ in flag_paths())
    assert "| `server.workers` | integer | `1` |" in config_doc
    errors_doc = errors_reference()
    assert all(f"`err-gateway-{error.value.id}`" in errors_doc for error in Errors)
