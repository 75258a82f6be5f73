"""Streamed responses every service uses: NDJSON lines and server-sent events.

A stream that fails midway ends with an error event instead of a silent cut, and closing the
response (the client left, or it finished) closes the source so the work stops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Response, g

from common import jsonio
from common.errors import ApiError

log = logging.getLogger("suite.stream")

ErrorEvent = Callable[[str, str], dict[str, Any]]


def _guarded(events: Iterable[dict[str, Any]], error_event: ErrorEvent, request_id: str) -> Iterator[dict[str, Any]]:
    iterator = iter(events)
    try:
        yield from iterator
    except ApiError as exc:
        yield error_event(exc.message, exc.code)
    except Exception:
        log.exception("stream failed midway (request id %s)", request_id)
        yield error_event(f"internal error (request id {request_id}); see the service log", "internal_error")
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def ndjson_response(events: Iterable[dict[str, Any]], error_event: ErrorEvent | None = None) -> Response:
    """One JSON object per line (``application/x-ndjson``); errors end it with ``{"event": "error", ...}``."""
    error_event = error_event or (lambda message, code: {"event": "error", "message": message, "code": code})
    lines = (jsonio.dumps(e) + b"\n" for e in _guarded(events, error_event, g.get("request_id", "-")))
    return Response(lines, mimetype="application/x-ndjson", headers={"X-Accel-Buffering": "no"})


def sse_response(events: Iterable[dict[str, Any]], error_event: ErrorEvent, done_marker: bool = False) -> Response:
    """Server-sent events, ``data: {json}`` per event (``text/event-stream``); optional ``data: [DONE]``."""

    request_id = g.get("request_id", "-")  # the generator runs after the request context is gone

    def frames() -> Iterator[bytes]:
        for event in _guarded(events, error_event, request_id):
            yield b"data: " + jsonio.dumps(event) + b"\n\n"
        if done_marker:
            yield b"data: [DONE]\n\n"

    return Response(
        frames(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
