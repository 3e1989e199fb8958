"""What a function implementation receives, and helpers shared by the function modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import promql_parser as pp

from gateway.promql.context import EvalContext
from gateway.promql.errors import BadData
from gateway.promql.types import F64, Grid, RangeVector, Scalar, String, Value, Vector


@dataclass(frozen=True, slots=True)
class CallArgs:
    """A function call: evaluated arguments, their AST nodes, the grid and the context."""

    name: str
    args: list[Value]
    nodes: list[pp.Expr]
    grid: Grid
    ctx: EvalContext

    def vector(self, index: int) -> Vector:
        value = self.args[index]
        if not isinstance(value, Vector):
            raise BadData(f"expected instant vector argument {index + 1} to {self.name}()")
        return value

    def range(self, index: int) -> RangeVector:
        value = self.args[index]
        if not isinstance(value, RangeVector):
            raise BadData(f"expected range vector argument {index + 1} to {self.name}()")
        return value

    def scalar(self, index: int) -> F64:
        value = self.args[index]
        if not isinstance(value, Scalar):
            raise BadData(f"expected scalar argument {index + 1} to {self.name}()")
        return value.values

    def string(self, index: int) -> str:
        value = self.args[index]
        if not isinstance(value, String):
            raise BadData(f"expected string argument {index + 1} to {self.name}()")
        return value.value


Function = Callable[[CallArgs], Value]


def map_vector(vector: Vector, fn: Callable[[F64], F64], keep_name: bool = False) -> Vector:
    """Apply an element-wise numpy function; results drop `__name__` unless told otherwise."""
    with np.errstate(all="ignore"):
        values = fn(vector.values)
    drop = vector.drop_name if keep_name else np.ones(len(vector.labels), dtype=np.bool_)
    return Vector(vector.labels, values, vector.present.copy(), drop)
