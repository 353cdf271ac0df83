"""Errors of the SDK: what the server refused (`ApiError`, one subclass per wire code of the v1
API), kept apart from failures to talk to it at all (`TransportError`).

The split matters to callers: an API error is an answer (sending the same request again gets
the same answer, except for `unavailable` and `rate_limited`), a transport error is the absence
of one (the request may or may not have been applied).
"""

from __future__ import annotations

import json
from typing import Dict, Mapping, Optional, Type


class HopperError(Exception):
    """Base of every error this SDK raises."""

    #: Seconds the server asked to wait before retrying (`Retry-After`), if it said.
    retry_after: Optional[float] = None

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later."""
        return False


class TransportError(HopperError):
    """The server could not be reached, or the connection broke before an answer arrived."""

    @property
    def retryable(self) -> bool:
        return True


class ProtocolError(HopperError):
    """The server answered something this SDK cannot read (a proxy's page, say)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"unexpected answer from the Hopper server (HTTP {status}): {message}")
        self.status = status


class ApiError(HopperError):
    """An error answer of the server: `{"error": {"code", "message", "field"}}` and its status.

    Codes this SDK does not know come as a plain `ApiError` with `code` kept verbatim, so a
    newer server never breaks an older SDK.
    """

    #: The wire code a subclass stands for.
    CODE = ""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: Optional[str] = None,
        retry_after: Optional[float] = None,
        request_id: Optional[str] = None,
    ) -> None:
        text = f"{code} ({status}): {message}"
        if field:
            text += f" [field: {field}]"
        super().__init__(text)
        self.status = status
        self.code = code
        self.message = message
        #: The offending request field (`jobs[3].priority`), when the server named one.
        self.field = field
        self.retry_after = retry_after
        #: The `X-Request-Id` of the answer, to find the server's log line.
        self.request_id = request_id

    @property
    def retryable(self) -> bool:
        """`503 unavailable` (nothing was changed), `429 rate_limited` and other 5xx answers."""
        return self.code in ("unavailable", "rate_limited") or self.status >= 500


class InvalidArgumentError(ApiError):
    """400: malformed JSON, wrong type, value out of range, unknown field; `field` names it."""

    CODE = "invalid_argument"


class UnauthenticatedError(ApiError):
    """401: missing or bad credentials."""

    CODE = "unauthenticated"


class PermissionDeniedError(ApiError):
    """403: the key's role does not allow the call, or a cross-origin call changed state."""

    CODE = "permission_denied"


class NotFoundError(ApiError):
    """404: unknown job or schedule (queues never answer 404)."""

    CODE = "not_found"


class LeaseLostError(ApiError):
    """409: the lease token is not the job's current one; the job is no longer yours."""

    CODE = "lease_lost"


class InvalidStateError(ApiError):
    """409: the transition is not allowed from the job's state, or a schedule's name is
    taken."""

    CODE = "invalid_state"


class IdempotencyConflictError(ApiError):
    """409: the idempotency key exists with a different queue, kind or args."""

    CODE = "idempotency_conflict"


class TooLargeError(ApiError):
    """413: the body or `args` is over its limit."""

    CODE = "too_large"


class RateLimitedError(ApiError):
    """429: slow down; `retry_after` says for how long."""

    CODE = "rate_limited"


class UnavailableError(ApiError):
    """503: shutting down or storage unreachable; nothing was changed, safe to retry."""

    CODE = "unavailable"


_BY_CODE: Dict[str, Type[ApiError]] = {
    cls.CODE: cls
    for cls in (
        InvalidArgumentError,
        UnauthenticatedError,
        PermissionDeniedError,
        NotFoundError,
        LeaseLostError,
        InvalidStateError,
        IdempotencyConflictError,
        TooLargeError,
        RateLimitedError,
        UnavailableError,
    )
}

# What an answer without a readable error body stands for, by status (a proxy's 502 page).
_BY_STATUS = {400: "invalid_argument", 404: "not_found", 413: "too_large", 429: "rate_limited"}


def api_error(status: int, body: bytes, headers: Mapping[str, str]) -> ApiError:
    """The exception for an error answer; an unreadable body still yields one, by status."""
    retry_after: Optional[float] = None
    try:
        retry_after = float(headers.get("retry-after", ""))
    except ValueError:
        pass
    request_id = headers.get("x-request-id")
    try:
        err = json.loads(body)["error"]
        code, message, field = str(err["code"]), str(err.get("message", "")), err.get("field")
    except (ValueError, TypeError, KeyError):
        code = _BY_STATUS.get(status, "unavailable" if status >= 500 else f"http_{status}")
        message = body[:200].decode("utf-8", "replace") or f"HTTP {status}"
        field = None
    cls = _BY_CODE.get(code, ApiError)
    return cls(status, code, message, field, retry_after, request_id)
