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
    try:
        yield from events
    except ApiError as exc:
        yield error_event(exc.message, exc.code)
    except Exception:
        log.exception("stream failed midway (request id %s)", request_id)
        yield error_event(f"internal error (request id {request_id}); see the service log", "internal_error")


class _Body:
    """A response body that closes its source when the server closes it: finished, failed, or the
    client left. Unlike a generator's ``finally``, this also runs if not a single byte was sent."""

    def __init__(self, frames: Iterator[bytes], close_source: Callable[[], None] | None) -> None:
        self._frames = frames
        self._close_source = close_source

    def __iter__(self) -> Iterator[bytes]:
        return self._frames

    def close(self) -> None:
        close_source, self._close_source = self._close_source, None
        try:
            self._frames.close()  # type: ignore[attr-defined]
        finally:
            if close_source is not None:
                close_source()


def ndjson_response(
    events: Iterable[dict[str, Any]], *, close: Callable[[], None] | None = None, error_event: ErrorEvent | None = None
) -> Response:
    """One JSON object per line (``application/x-ndjson``); errors end it with ``{"event": "error", ...}``.

    ``close`` stops the source (e.g. a model stream); it runs however the response ends.
    """
    error_event = error_event or (lambda message, code: {"event": "error", "message": message, "code": code})
    lines = (jsonio.dumps(e) + b"\n" for e in _guarded(events, error_event, g.get("request_id", "-")))
    return Response(_Body(lines, close), mimetype="application/x-ndjson", headers={"X-Accel-Buffering": "no"})


def sse_response(
    events: Iterable[dict[str, Any]],
    error_event: ErrorEvent,
    *,
    close: Callable[[], None] | None = None,
    done_marker: bool = False,
) -> Response:
    """Server-sent events, ``data: {json}`` per event (``text/event-stream``); optional ``data: [DONE]``.

    ``close`` stops the source; it runs however the response ends.
    """
    request_id = g.get("request_id", "-")  # the generator runs after the request context is gone

    def frames() -> Iterator[bytes]:
        for event in _guarded(events, error_event, request_id):
            yield b"data: " + jsonio.dumps(event) + b"\n\n"
        if done_marker:
            yield b"data: [DONE]\n\n"

    return Response(
        _Body(frames(), close),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def bytes_response(
    chunks: Iterable[bytes],
    mimetype: str,
    *,
    close: Callable[[], None] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A streamed binary body (audio). A failure midway is logged and cuts the stream short,
    as binary formats have no error event; ``close`` stops the source however the response ends.
    """
    request_id = g.get("request_id", "-")

    def frames() -> Iterator[bytes]:
        try:
            yield from chunks
        except Exception:
            log.exception("binary stream failed midway (request id %s); response cut short", request_id)

    return Response(_Body(frames(), close), mimetype=mimetype, headers={"X-Accel-Buffering": "no", **(headers or {})})
