"""The conformance harness judges failures and annotations as upstream's promqltest does."""

from __future__ import annotations

from gateway.promql.errors import ExecutionError
from gateway.promql.result import Result, ScalarValue
from tests.promql.promqlcheck import _check_annotations, _check_failure
from tests.promql.promqltest import Eval, parse_script


def _eval(text: str) -> Eval:
    (ev,) = parse_script(text)
    assert isinstance(ev, Eval)
    return ev


def test_fail_message_must_be_exact() -> None:
    ev = _eval("eval instant at 0 x\n  expect fail msg: Parameter value is NaN\n")
    assert _check_failure(ev, ExecutionError("Parameter value is NaN"))[0] == "pass"
    # A message that merely contains the expected text is a different message.
    longer = ExecutionError("bad: Parameter value is NaN (query x)")
    assert _check_failure(ev, longer)[0] == "fail"


def test_fail_regex_searches() -> None:
    ev = _eval("eval instant at 0 x\n  expect fail regex: value is (NaN|Inf)$\n")
    assert _check_failure(ev, ExecutionError("Parameter value is NaN"))[0] == "pass"
    assert _check_failure(ev, ExecutionError("Parameter value is 1"))[0] == "fail"


def test_warning_message_must_be_exact() -> None:
    ev = _eval("eval instant at 0 x\n  expect warn msg: PromQL warning: w\n  1\n")
    exact = Result(ScalarValue(0, 1.0), ["PromQL warning: w"], [])
    longer = Result(ScalarValue(0, 1.0), ["PromQL warning: w and more"], [])
    assert _check_annotations(ev, exact) is None
    assert _check_annotations(ev, longer) is not None
