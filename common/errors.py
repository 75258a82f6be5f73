"""Domain errors shared by every service, and their OpenAI-shaped JSON form.

Engines raise these without knowing about HTTP; the app factory turns each into
``{"error": {"message", "type", "param", "code"}}`` with the class's status code.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    """Base of every error a caller may see. Subclasses fix status, type and default code."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON body for this error."""
        return error_body(self.message, self.type, self.code, self.param)


class BadRequest(ApiError):
    """The caller sent something invalid (400)."""

    status = 400
    type = "invalid_request_error"
    default_code = "invalid_request"


class Unauthorized(ApiError):
    """Missing or wrong API key (401)."""

    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"

    def __init__(self, message: str = "missing or invalid API key") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class NotFound(ApiError):
    """Unknown route, model or other named resource (404)."""

    status = 404
    type = "not_found_error"
    default_code = "not_found"


def model_not_found(name: str | None, available: list[str]) -> NotFound:
    """The 404 for a model this service does not serve, listing the names it answers to."""
    return NotFound(
        f"model {name!r} is not served here; available: {', '.join(available)}", param="model", code="model_not_found"
    )


class PayloadTooLarge(ApiError):
    """Request body over the configured limit (413)."""

    status = 413
    type = "invalid_request_error"
    default_code = "payload_too_large"


class Overloaded(ApiError):
    """The bounded queue is full (429); the caller should retry after ``retry_after`` seconds."""

    status = 429
    type = "rate_limit_error"
    default_code = "queue_full"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(ApiError):
    """The model is not loaded (yet) or the engine is shutting down (503)."""

    status = 503
    type = "service_unavailable_error"
    default_code = "not_ready"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


class UpstreamError(ApiError):
    """An upstream service failed or could not be reached (502)."""

    status = 502
    type = "upstream_error"
    default_code = "upstream_error"


class UpstreamTimeout(ApiError):
    """An upstream service did not answer in time (504)."""

    status = 504
    type = "upstream_error"
    default_code = "upstream_timeout"


class ClientGone(ApiError):
    """The client closed its connection before the answer was ready; its work was stopped.

    Status 499 (nginx's "client closed request"): nobody reads the response, but logs and metrics do.
    """

    status = 499
    type = "client_closed_request"
    default_code = "client_closed_request"


def error_body(message: str, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    """Build the OpenAI-shaped error body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
