"""The Limits model: strict parsing of overrides, precedence of the sources, the YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, load
from gateway.limits.model import LIMIT_NAMES, BadLimits, Limits, parse_overrides
from gateway.limits.overrides import TenantLimits, load_overrides_file


def test_names_are_mimirs_plus_budgets() -> None:
    for name in (
        "max_global_series_per_user", "max_global_series_per_metric",
        "max_label_names_per_series", "max_label_name_length", "max_label_value_length",
        "ingestion_rate", "ingestion_burst_size", "max_samples_per_request",
        "max_metadata_per_user", "drop_labels", "max_values_per_label", "metric_budgets",
        "max_fetched_series_per_query", "max_fetched_samples_per_query",
    ):
        assert name in LIMIT_NAMES


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([], "expected a JSON object"),
        ({"max_series": 1}, "max_series: unknown limit"),
        ({"max_global_series_per_user": -1}, "max_global_series_per_user: must be >= 0"),
        ({"max_global_series_per_user": "10"}, "max_global_series_per_user: expected"),
        ({"max_global_series_per_user": True}, "max_global_series_per_user: expected"),
        ({"max_global_series_per_user": 1.5}, "max_global_series_per_user: expected"),
        ({"ingestion_rate": float("nan")}, "ingestion_rate: expected"),
        ({"drop_labels": "pod"}, "drop_labels: expected a list"),
        ({"drop_labels": ["__name__"]}, "drop_labels: __name__ cannot be dropped"),
        ({"drop_labels": [""]}, r"drop_labels\[0\]"),
        ({"max_values_per_label": {"pod": -5}}, "max_values_per_label.pod: must be >= 0"),
        ({"metric_budgets": [1]}, "metric_budgets: expected an object"),
        ({"max_fetched_series_per_query": -1}, "max_fetched_series_per_query: must be >= 0"),
        ({"max_fetched_samples_per_query": "x"}, "max_fetched_samples_per_query: expected"),
    ],
)
def test_bad_overrides_name_the_key(data: Any, words: str) -> None:
    with pytest.raises(BadLimits, match=words):
        parse_overrides(data)


def test_precedence_defaults_file_admin() -> None:
    registry = TenantLimits(Limits(max_global_series_per_user=100, max_label_name_length=50))
    registry.set_file({"a": {"max_global_series_per_user": 10, "max_label_value_length": 7}})
    registry.set_admin({"a": {"max_global_series_per_user": 5}})
    limits = registry.for_tenant("a")
    assert limits.max_global_series_per_user == 5  # admin API wins
    assert limits.max_label_value_length == 7  # from the file
    assert limits.max_label_name_length == 50  # default
    assert registry.for_tenant("b").max_global_series_per_user == 100
    registry.set_admin_tenant("a", None)
    assert registry.for_tenant("a").max_global_series_per_user == 10


def test_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "overrides.yml"
    path.write_text("overrides:\n  a:\n    max_global_series_per_user: 3\n    drop_labels: [x]\n")
    assert load_overrides_file(path) == {
        "a": {"max_global_series_per_user": 3, "drop_labels": ("x",)}
    }
    path.write_text("overrides:\n  a:\n    nope: 3\n")
    with pytest.raises(BadLimits, match=r"overrides\.a\.nope: unknown limit"):
        load_overrides_file(path)


def test_config_defaults_and_validation() -> None:
    config = load(None, {"limits.defaults.max_values_per_label": {"pod": 5}})
    assert config.limits.defaults.max_values_per_label == {"pod": 5}
    with pytest.raises(ConfigError, match=r"limits\.defaults\.max_global_series_per_user"):
        load(None, {"limits.defaults.max_global_series_per_user": -1})
    # Nullable limits: absent or null = not set (the endpoint's setting), else a count.
    assert load(None, {}).limits.defaults.max_fetched_series_per_query is None
    assert load(
        None, {"limits.defaults.max_fetched_series_per_query": None}
    ).limits.defaults.max_fetched_series_per_query is None
    assert load(
        None, {"limits.defaults.max_fetched_samples_per_query": 0}
    ).limits.defaults.max_fetched_samples_per_query == 0
    with pytest.raises(ConfigError, match=r"max_fetched_series_per_query: expected an integer"):
        load(None, {"limits.defaults.max_fetched_series_per_query": "many"})
    with pytest.raises(ConfigError, match=r"admin\.token must be at least 16"):
        load(None, {"admin.token": "short"})
    with pytest.raises(ConfigError, match=r"admin\.token must differ"):
        load(
            None,
            {
                "admin.token": "x" * 20,
                "auth.tenants": [{"tenant": "a", "bearer_token": "x" * 20}],
            },
        )
