"""The request's body and connection: uploads kept in memory, chunked bodies, draining, TCP_NODELAY, a left client."""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
from collections.abc import Callable
from typing import IO

from flask import Request, request

from common.errors import PayloadTooLarge

# An unread request body makes the kernel reset the connection when the server closes it, which can
# destroy the 413 answer before the client reads it; discard up to this much first.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class SuiteRequest(Request):
    """Keeps uploaded files in memory (bounded by ``max_body_bytes``): no temp file can outlive a request."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


def disable_nagle() -> None:
    """Send small writes (stream chunks, a response body after its headers) at once.

    gunicorn leaves Nagle's algorithm on, so each small write after the first waits for the
    peer's delayed ACK (tens of ms on Linux): streamed tokens came out at ~20/s instead of
    the model's speed. asyncio servers (uvicorn, llama.cpp's own) set TCP_NODELAY by default.
    """
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # not TCP (a unix socket) or already closed
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def client_gone_check() -> Callable[[], bool] | None:
    """For the current request under gunicorn: a check whether its client has closed the connection.

    The check peeks at the socket without blocking: end of stream means the client left (a client
    that only half-closes looks the same). None where there is no plain socket to look at (the test
    client, TLS). Call it after the request body has been read.
    """
    sock = request.environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket):
        return None

    def gone() -> bool:
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    return gone


def buffer_chunked_body(limit: int) -> None:
    """Read a chunked body into memory (at most ``limit`` bytes) so it parses like a sized one.

    Werkzeug would cut a chunked body at ``MAX_CONTENT_LENGTH`` without saying so.

    Raises:
        PayloadTooLarge: the body is over the limit.
    """
    stream = request.environ["wsgi.input"]
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(65536):
        total += len(chunk)
        if total > limit:
            discard_request_body()
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    request.environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
    request.environ["CONTENT_LENGTH"] = str(total)
    del request.environ["wsgi.input_terminated"]


def discard_request_body() -> None:
    """Read and drop what is left of the request body (bounded by ``DRAIN_LIMIT_BYTES``)."""
    stream = request.environ.get("wsgi.input")
    if stream is None:
        return
    remaining = DRAIN_LIMIT_BYTES
    try:
        while remaining > 0:
            chunk = stream.read(min(65536, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
    except (OSError, ValueError):
        return
