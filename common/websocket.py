"""WebSocket routes on the kit's Flask apps (simple-websocket; works under gunicorn's gthread worker).

A WebSocket view gets a :class:`Socket` and runs for the whole connection on one request thread.
The HTTP-level API-key check does not run for these routes (the blueprint lists them in
``websocket_endpoints``): browsers cannot set headers on a
WebSocket, and a refused handshake tells a page nothing. The view calls :func:`authorized` after
accepting instead, and answers a bad key with an error event and close code 1008.

Credentials, first found wins: ``Authorization: Bearer <key>``; the ``api_key`` query parameter;
a subprotocol ``openai-insecure-api-key.<key>`` (what OpenAI's browser clients send).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, request
from simple_websocket import ConnectionClosed, Server

from common.auth import bearer_token, key_matches
from common.errors import ApiError, BadRequest
from common.openapi import ApiBlueprint

log = logging.getLogger("suite.websocket")

KEY_SUBPROTOCOL = "openai-insecure-api-key."

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_LATER = 1013


class Socket(Server):
    """The accepted connection: ``send_json``, ``receive(timeout)``, ``close(code, reason)``."""

    def choose_subprotocol(self, request: Any) -> str | None:
        # A browser that offers subprotocols fails the connection unless one is echoed back.
        offered = list(request.subprotocols)
        for name in self.subprotocols:
            if name in offered:
                return name
        return offered[0] if offered else None

    def send_json(self, event: dict[str, Any]) -> None:
        """Send one event as a JSON text frame."""
        self.send(json.dumps(event, ensure_ascii=False))

    def fail(self, error: ApiError) -> None:
        """Send ``{"error": ...}`` and close with the code that fits the error's status."""
        try:
            self.send_json({"error": {"message": error.message, "type": error.type, "code": error.code}})
            self.close(close_code(error.status), error.message[:120])
        except ConnectionClosed:
            pass


def close_code(status: int) -> int:
    """WebSocket close code for an HTTP-style error status."""
    if status == 413:
        return CLOSE_TOO_BIG
    if status in (429, 503):
        return CLOSE_TRY_LATER
    if status >= 500:
        return CLOSE_SERVER_ERROR
    return CLOSE_POLICY


def json_object(message: str) -> dict[str, Any]:
    """A text frame parsed as one JSON object.

    Raises:
        BadRequest: not JSON, or not an object (code ``invalid_json``).
    """
    try:
        data = json.loads(message)
    except ValueError:
        raise BadRequest("text frame is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("text frame must be a JSON object", code="invalid_json")
    return data


def authorized(expected: str | None) -> bool:
    """Whether the handshake carried the API key (always True when no key is set)."""
    if expected is None:
        return True
    offered = [bearer_token() or "", request.args.get("api_key", "")]
    for protocol in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith(KEY_SUBPROTOCOL):
            offered.append(protocol[len(KEY_SUBPROTOCOL) :])
    return any(key_matches(key, expected) for key in offered if key)


def websocket_route(
    blueprint: ApiBlueprint,
    rule: str,
    *,
    subprotocols: tuple[str, ...] = (),
    max_message_bytes: int | None = None,
) -> Callable[[Callable[[Socket], None]], Callable[[Socket], None]]:
    """Register ``view(socket)`` as the WebSocket endpoint for ``rule`` on ``blueprint``.

    Args:
        subprotocols: preferred names to echo when offered (else the client's first offer is echoed).
        max_message_bytes: messages over this are refused by the library itself with close code 1009.
    """

    def decorator(view: Callable[[Socket], None]) -> Callable[[Socket], None]:
        @wraps(view)
        def endpoint() -> Response:
            socket = Socket(request.environ, subprotocols=list(subprotocols), max_message_size=max_message_bytes)
            try:
                view(socket)
            except ConnectionClosed:
                pass
            except Exception:
                log.exception("WebSocket %s failed", rule)
                socket.fail(ApiError("internal error; see the service log"))
            if socket.connected:
                with contextlib.suppress(ConnectionClosed):
                    socket.close(CLOSE_NORMAL)
            return _AfterWebSocket(socket.mode)

        blueprint.add_url_rule(rule, view_func=endpoint, websocket=True)
        blueprint.websocket_endpoints.add(f"{blueprint.name}.{endpoint.__name__}")
        return view

    return decorator


class _AfterWebSocket(Response):
    """What the WSGI server gets once the connection is over: nothing more to write."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self._mode = mode

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if self._mode == "gunicorn":
            raise StopIteration()  # gunicorn closes the connection without writing a response
        if self._mode == "werkzeug":
            return super().__call__(environ, start_response)
        return []
