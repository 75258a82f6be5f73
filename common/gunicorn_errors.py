"""Make gunicorn's own error answers (request line too long, malformed HTTP) JSON like ours.

gunicorn writes these before the app sees the request, as an HTML page. Its workers call
``gunicorn.util.write_error``; :func:`install` swaps that one function for a JSON writer.
"""

from __future__ import annotations

import socket

from gunicorn import util

from common import jsonio
from common.errors import error_body


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Send ``{"error": ...}`` with gunicorn's status and message, then let gunicorn close."""
    body = jsonio.dumps(error_body(mesg or reason, "invalid_request_error", "bad_http_request"))
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


def install() -> None:
    """Replace gunicorn's HTML error writer (call from the gunicorn config)."""
    util.write_error = write_json_error
