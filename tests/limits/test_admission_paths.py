"""Admission decides a whole request at once when it fits; that must equal series-by-series.

`Admission.admit` sums a request's new series per budget and admits them all when every sum
fits, and otherwise goes series by series (`_admit_each`), the reference semantics: request
order, each budget used up by the earlier series. Random requests against random limits must
get the same decisions, errors and remaining budgets from both.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.limits.admission import Admission
from gateway.limits.distinct import DistinctValues
from gateway.limits.model import Limits
from gateway.limits.tracker import ActiveSeriesTracker
from gateway.model.labels import Labels, series_hash

series_labels = st.builds(
    lambda metric, pod, user: tuple(
        sorted(
            [("__name__", metric), ("pod", f"p{pod}")]
            + ([("user_id", f"u{user}")] if user is not None else [])
        )
    ),
    st.sampled_from(["a", "b", "c"]),
    st.integers(0, 5),
    st.none() | st.integers(0, 2),
)
requests = st.lists(st.lists(series_labels, max_size=12), min_size=1, max_size=3)
limits = st.builds(
    Limits,
    max_global_series_per_user=st.integers(0, 12),
    max_global_series_per_metric=st.integers(0, 5),
    metric_budgets=st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 4), max_size=2),
    max_values_per_label=st.dictionaries(
        st.sampled_from(["pod", "user_id"]), st.integers(0, 4), max_size=2
    ),
)


def admission(limits: Limits) -> Admission:
    return Admission("t", limits, ActiveSeriesTracker(3600), DistinctValues(), DistinctValues())


def decide(
    admission: Admission, request: list[Labels], one_by_one: bool
) -> list[tuple[int, str]]:
    ids = np.array([series_hash(labels) for labels in request], np.uint64)
    keep = np.ones(len(request), dtype=bool)
    if one_by_one:
        tracked = admission.tracker.touch("t", ids)
        refused = admission._admit_each(ids, np.flatnonzero(keep & ~tracked), request.__getitem__)
    else:
        refused = admission.admit(ids, keep, request.__getitem__)
    return sorted((index, str(error)) for index, error in refused)


def state(admission: Admission) -> tuple[object, ...]:
    tracker, values = admission.tracker, admission.label_values
    return (
        tracker.count("t"),
        tracker.metric_counts("t"),
        values.keys_of("t"),
        {name: values.unknown("t", name, {f"p{i}" for i in range(6)}) for name in ["pod"]},
    )


@settings(max_examples=400, deadline=None)
@given(limits, requests)
def test_the_whole_request_path_decides_as_series_by_series(
    limits: Limits, requests: list[list[Labels]]
) -> None:
    at_once, one_by_one = admission(limits), admission(limits)
    for request in requests:
        assert decide(at_once, request, False) == decide(one_by_one, request, True)
        assert state(at_once) == state(one_by_one)


def test_a_request_that_fits_is_admitted_whole_and_counts_its_label_values() -> None:
    gate = admission(Limits(max_global_series_per_user=4, max_values_per_label={"pod": 3}))
    request = [(("__name__", "a"), ("pod", f"p{i}")) for i in range(3)]
    assert decide(gate, request + request[:1], False) == []
    assert gate.tracker.count("t") == 3
    assert gate.label_values.keys_of("t") == {"pod": 3}
    # The fourth pod value exceeds the label budget, though the series budget has room.
    refused = decide(gate, [(("__name__", "a"), ("pod", "p3"))], False)
    assert [index for index, _ in refused] == [0]
    assert "pod" in refused[0][1]


def test_a_series_whose_labels_are_now_refused_is_refused_alone() -> None:
    # A series stored before a limit was lowered: its labels are shaped only when admitted,
    # and that refusal is its own (a 400 for it), not the request's.
    limits = Limits(max_label_value_length=3)
    checked = admission(limits)
    request = [(("__name__", "a"), ("pod", "p1")), (("__name__", "a"), ("pod", "p-long"))]
    ids = np.array([series_hash(labels) for labels in request], np.uint64)
    refused = checked.admit(ids, np.ones(2, dtype=bool), lambda i: checked.shape(request[i]))
    assert [(index, error.reason) for index, error in refused] == [(1, "label_value_too_long")]
    assert checked.tracker.count("t") == 1
