"""Label validation, canonical form and the series hash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import Errors, GatewayError
from gateway.model.labels import canonical_bytes, format_labels, series_hash, validate_labels


def test_labels_are_sorted_and_empty_values_dropped() -> None:
    labels = validate_labels([(b"job", b"x"), (b"__name__", b"up"), (b"empty", b"")])
    assert labels == (("__name__", "up"), ("job", "x"))


def test_utf8_names_are_accepted() -> None:
    labels = validate_labels([("métrique.total".encode(), "ü".encode()), (b"__name__", b"a.b")])
    assert labels == (("__name__", "a.b"), ("métrique.total", "ü"))


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ([(b"\xff", b"x")], Errors.LABEL_NAME_INVALID),
        ([(b"", b"x")], Errors.LABEL_NAME_INVALID),
        ([(b"a", b"\xc3\x28")], Errors.LABEL_VALUE_INVALID),
        ([(b"a", b"1"), (b"a", b"2")], Errors.DUPLICATE_LABEL_NAMES),
        ([], Errors.NO_LABELS),
        ([(b"a", b"")], Errors.NO_LABELS),
    ],
)
def test_invalid_label_sets_are_refused(raw: list[tuple[bytes, bytes]], error: Errors) -> None:
    with pytest.raises(GatewayError) as caught:
        validate_labels(raw)
    assert caught.value.error is error
    assert caught.value.status == 400


def test_hash_does_not_depend_on_input_order() -> None:
    a = validate_labels([(b"__name__", b"up"), (b"job", b"x")])
    b = validate_labels([(b"job", b"x"), (b"__name__", b"up")])
    assert series_hash(a) == series_hash(b)
    assert canonical_bytes(a) == b"__name__\xffup\xffjob\xffx\xff"


def test_format_labels_quotes_values() -> None:
    labels = validate_labels([(b"__name__", b"up"), (b"a", b'q"\\')])
    assert format_labels(labels) == 'up{a="q\\"\\\\"}'


label_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(label_text, label_text, min_size=1, max_size=6))
def test_hash_is_injective_enough(labels: dict[str, str]) -> None:
    valid = validate_labels([(k.encode(), v.encode()) for k, v in labels.items()])
    changed = validate_labels([(k.encode(), (v + "x").encode()) for k, v in labels.items()])
    assert series_hash(valid) != series_hash(changed)
