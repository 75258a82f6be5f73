"""The errors ``core.py``'s clients raise: one :class:`SuiteError` subclass per kind of failure."""

from __future__ import annotations

import httpx


class SuiteError(Exception):
    """Any failure talking to a service."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        where = f" (HTTP {self.status}, request id {self.request_id})" if self.status else ""
        return f"{self.message}{where}"


class AuthenticationError(SuiteError):
    """Missing or wrong API key (401, 403)."""


class InvalidRequestError(SuiteError):
    """The service refused the input (400, 413 and any other 4xx not named here)."""


class NotFoundError(SuiteError):
    """Unknown model or route (404)."""


class RateLimitError(SuiteError):
    """The service's queue was still full (429) after the retries."""


class ServiceUnavailableError(SuiteError):
    """503 after the retries (loading, shutting down), or unreachable, timed out, or broken midway."""


class UpstreamFailureError(SuiteError):
    """The service's upstream failed (502) or was too slow (504)."""


class ServerError(SuiteError):
    """Any other 5xx: a bug in the service (the message has its request id)."""


class StreamError(SuiteError):
    """A stream that had started ended with an error line/event."""


ERROR_BY_STATUS: dict[int, type[SuiteError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    429: RateLimitError,
    502: UpstreamFailureError,
    503: ServiceUnavailableError,
    504: UpstreamFailureError,
}
ERROR_BY_TYPE: dict[str | None, type[SuiteError]] = {
    "authentication_error": AuthenticationError,
    "invalid_request_error": InvalidRequestError,
    "not_found_error": NotFoundError,
    "rate_limit_error": RateLimitError,
    "service_unavailable_error": ServiceUnavailableError,
    "server_error": ServerError,
}
"""What a WebSocket error event's ``type`` raises."""


def error_for(response: httpx.Response) -> SuiteError:
    """The :class:`SuiteError` for a failed answer: its kind from the status, message and code from the body."""
    try:
        detail = response.json().get("error", {})
        message, code = str(detail.get("message", response.text)), detail.get("code")
    except (ValueError, AttributeError):
        message, code = response.text[:500] or response.reason_phrase, None
    status = response.status_code
    kind = ERROR_BY_STATUS.get(status, InvalidRequestError if status < 500 else ServerError)
    return kind(message, status=status, code=code, request_id=response.headers.get("X-Request-ID"))
