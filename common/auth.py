"""The optional API key: a bearer token compared in constant time."""

from __future__ import annotations

import hmac

from flask import request

from common.errors import Unauthorized


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer`` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def key_matches(offered: str, expected: str) -> bool:
    """Whether ``offered`` is the API key, in time independent of where they differ (equal-type bytes)."""
    return hmac.compare_digest(offered.encode(), expected.encode())


def check_api_key(expected: str) -> None:
    """Refuse the request unless it carries ``Authorization: Bearer <expected>``.

    Raises:
        Unauthorized: the header is missing or the key is wrong.
    """
    token = bearer_token()
    if token is None or not key_matches(token, expected):
        raise Unauthorized()
