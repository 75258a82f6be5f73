"""CORS for browser pages on another origin (the voice console on port 7200 calls every service).

Allowed origins come from ``server.cors_origins`` (``"*"`` allows any). A preflight (``OPTIONS`` with
``Access-Control-Request-Method``) from an allowed origin is answered here, before the API-key check
(browsers never send credentials on a preflight); every other answer to an allowed origin carries
``Access-Control-Allow-Origin`` and exposes ``X-Request-ID``. Other origins get no CORS headers, so
the browser refuses to hand them the answer.
"""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-ID"
PREFLIGHT_MAX_AGE_S = 600


def install_cors(app: Flask, origins: list[str]) -> None:
    """Answer preflights and label responses for ``origins``; registers before any other request hook."""
    allowed = frozenset(origin.rstrip("/") for origin in origins)

    def allowed_origin() -> str | None:
        origin = request.headers.get("Origin")
        if origin and ("*" in allowed or origin in allowed):
            return origin
        return None

    def preflight() -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        origin = allowed_origin()
        if origin is None:
            return None
        response = Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
        return response

    def label(response: Response) -> Response:
        origin = allowed_origin()
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "X-Request-ID"
        response.vary.add("Origin")
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, preflight)
    app.after_request(label)
