"""Query errors, each mapped once to a Prometheus API errorType and HTTP status."""

from __future__ import annotations

from typing import ClassVar


class QueryError(Exception):
    """Base of every error a PromQL query can end with."""

    error_type: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadData(QueryError):
    """The query text or its parameters are invalid (parse and type errors)."""

    error_type = "bad_data"
    status = 400


class ExecutionError(QueryError):
    """The query is valid but cannot be evaluated on this data."""

    error_type = "execution"
    status = 422


class QueryTimeout(QueryError):
    """Evaluation ran past its deadline."""

    error_type = "timeout"
    status = 503


class QueryCanceled(QueryError):
    """The caller went away before the query finished."""

    error_type = "canceled"
    status = 499


class TooManySamples(ExecutionError):
    """More samples than `max_samples` would be held in memory at once."""

    def __init__(self) -> None:
        super().__init__(
            "query processing would load too many samples into memory in query execution"
        )
