"""time(), timestamp() and the calendar functions (UTC), vectorised with datetime64."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.types import F64, Scalar, Vector

_DAY_S = 86_400


def _time(call: CallArgs) -> Scalar:
    return Scalar(call.grid.times / 1000.0)


def _timestamp(call: CallArgs) -> Vector:
    # Only reached for computed arguments: their samples are stamped with the step's time.
    vector = call.vector(0)
    times = np.broadcast_to(call.grid.times / 1000.0, vector.values.shape)
    drop = np.ones(len(vector.labels), dtype=np.bool_)
    return Vector(vector.labels, times.copy(), vector.present.copy(), drop)


def _seconds(call: CallArgs) -> tuple[Vector, F64]:
    if call.args:
        vector = call.vector(0)
        return vector, vector.values
    times = call.grid.times / 1000.0
    vector = Vector(
        [()], times[None, :], np.ones((1, len(times)), np.bool_), np.zeros(1, np.bool_)
    )
    return vector, vector.values


def _calendar(part: Callable[[F64], F64]) -> Function:
    def impl(call: CallArgs) -> Vector:
        vector, seconds = _seconds(call)
        finite = np.isfinite(seconds)
        whole = np.where(finite, np.trunc(np.where(finite, seconds, 0)), 0).astype(np.int64)
        values = np.where(finite, part(whole.astype(np.float64)), np.nan)
        drop = np.ones(len(vector.labels), dtype=np.bool_)
        return Vector(vector.labels, values, vector.present.copy(), drop)

    return impl


def _dt(seconds: F64, unit: str) -> npt.NDArray[np.datetime64]:
    return seconds.astype(np.int64).astype("datetime64[s]").astype(f"datetime64[{unit}]")


def _year(s: F64) -> F64:
    return (_dt(s, "Y").astype(np.int64) + 1970).astype(np.float64)


def _month(s: F64) -> F64:
    return (_dt(s, "M").astype(np.int64) % 12 + 1).astype(np.float64)


def _day_of_month(s: F64) -> F64:
    days = _dt(s, "D") - _dt(s, "M").astype("datetime64[D]")
    return np.asarray(days.astype(np.int64) + 1, dtype=np.float64)


def _day_of_year(s: F64) -> F64:
    days = _dt(s, "D") - _dt(s, "Y").astype("datetime64[D]")
    return np.asarray(days.astype(np.int64) + 1, dtype=np.float64)


def _day_of_week(s: F64) -> F64:
    # 1970-01-01 was a Thursday (weekday 4 with Sunday = 0).
    return ((_dt(s, "D").astype(np.int64) + 4) % 7).astype(np.float64)


def _days_in_month(s: F64) -> F64:
    month = _dt(s, "M")
    days = (month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")
    return np.asarray(days.astype(np.int64), dtype=np.float64)


def _hour(s: F64) -> F64:
    return np.asarray(np.floor(np.mod(s, _DAY_S) / 3600), dtype=np.float64)


def _minute(s: F64) -> F64:
    return np.asarray(np.floor(np.mod(s, 3600) / 60), dtype=np.float64)


FUNCTIONS: dict[str, Function] = {
    "time": _time,
    "timestamp": _timestamp,
    "year": _calendar(_year),
    "month": _calendar(_month),
    "day_of_month": _calendar(_day_of_month),
    "day_of_year": _calendar(_day_of_year),
    "day_of_week": _calendar(_day_of_week),
    "days_in_month": _calendar(_days_in_month),
    "hour": _calendar(_hour),
    "minute": _calendar(_minute),
}
