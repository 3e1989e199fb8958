"""Query results and their Prometheus API JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.model.labels import Labels
from gateway.promql.types import F64, I64


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant vector result."""

    labels: Labels
    timestamp_ms: int
    value: float


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """One series of a matrix result."""

    labels: Labels
    timestamps: I64
    values: F64


@dataclass(frozen=True, slots=True)
class VectorValue:
    samples: list[Sample]


@dataclass(frozen=True, slots=True)
class MatrixValue:
    series: list[Series]


@dataclass(frozen=True, slots=True)
class ScalarValue:
    timestamp_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class StringValue:
    timestamp_ms: int
    value: str


ResultValue = VectorValue | MatrixValue | ScalarValue | StringValue


@dataclass(frozen=True, slots=True)
class Result:
    """A query's value plus the annotations Prometheus reports beside it."""

    value: ResultValue
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)

    @property
    def result_type(self) -> str:
        return _TYPE_NAMES[type(self.value)]


_TYPE_NAMES: dict[type, str] = {
    VectorValue: "vector",
    MatrixValue: "matrix",
    ScalarValue: "scalar",
    StringValue: "string",
}


def format_value(value: float) -> str:
    """Prometheus' sample value text: shortest round-trip form without an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    # repr is the shortest round-trip form too, 40x faster; only its exponent form needs numpy.
    text = repr(value)
    if "e" in text:
        return np.format_float_positional(value, trim="-")
    return text[:-2] if text.endswith(".0") else text


def format_time(ms: int) -> float | int:
    """Unix seconds as a JSON number (an int when whole, as Prometheus prints it)."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _metric(labels: Labels) -> dict[str, str]:
    return dict(labels)


def to_prometheus_json(result: Result) -> dict[str, Any]:
    """The `data` object of a Prometheus query API response."""
    value = result.value
    body: Any
    if isinstance(value, VectorValue):
        body = [
            {
                "metric": _metric(s.labels),
                "value": [format_time(s.timestamp_ms), format_value(s.value)],
            }
            for s in value.samples
        ]
    elif isinstance(value, MatrixValue):
        body = [
            {
                "metric": _metric(s.labels),
                "values": [
                    [format_time(int(t)), format_value(float(v))]
                    for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True)
                ],
            }
            for s in value.series
        ]
    elif isinstance(value, ScalarValue):
        body = [format_time(value.timestamp_ms), format_value(value.value)]
    else:
        body = [format_time(value.timestamp_ms), value.value]
    return {"resultType": result.result_type, "result": body}
