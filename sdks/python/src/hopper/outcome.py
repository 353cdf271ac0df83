"""How a handler says what became of its job besides returning (completed) or raising any
exception (a retryable failure): `Retry` and `Fail`, raised from the handler.

    @app.task
    def charge(order_id):
        if gateway.busy():
            raise Retry(in_ms=30_000)                        # again in 30 s, counts as an attempt
        if not order_exists(order_id):
            raise Fail("no such order", retryable=False)     # dead at once
"""

from __future__ import annotations

from typing import Optional

#: Error kinds the worker reports, besides an exception's own class name.
KIND_ERROR = "error"
KIND_RETRY = "retry"
KIND_TIMEOUT = "timeout"
KIND_INVALID_ARGS = "invalid_args"
KIND_UNKNOWN_KIND = "unknown_kind"


class Retry(Exception):
    """Fail this attempt and run the job again after `in_ms` instead of its backoff.

    It counts as an attempt: with none left the job is dead.
    """

    def __init__(self, in_ms: Optional[int] = None, message: str = "") -> None:
        if in_ms is not None and in_ms < 0:
            raise ValueError("in_ms must be >= 0")
        self.in_ms = in_ms
        self.message = message or (
            f"the handler asked to retry in {in_ms} ms"
            if in_ms is not None
            else "the handler asked to retry"
        )
        super().__init__(self.message)


class Fail(Exception):
    """Fail this attempt with a message and an error kind of your choosing.

    `retryable=False` sends the job to the dead-letter queue at once, whatever attempts are
    left: for failures no retry can fix (a malformed address, a deleted record).
    """

    def __init__(
        self, message: str = "", *, retryable: bool = True, kind: str = KIND_ERROR
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.kind = kind
