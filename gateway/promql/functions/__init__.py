"""The PromQL function table: name -> implementation over evaluated arguments."""

from __future__ import annotations

from gateway.promql.functions import (
    histogram,
    labelfns,
    mathfns,
    misc,
    overtime,
    rates,
    timefns,
    trend,
)
from gateway.promql.functions.base import CallArgs, Function

FUNCTIONS: dict[str, Function] = {
    **rates.FUNCTIONS,
    **overtime.FUNCTIONS,
    **trend.FUNCTIONS,
    **mathfns.FUNCTIONS,
    **timefns.FUNCTIONS,
    **labelfns.FUNCTIONS,
    **misc.FUNCTIONS,
    **histogram.FUNCTIONS,
}

__all__ = ["FUNCTIONS", "CallArgs", "Function"]
