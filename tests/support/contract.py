"""Helpers for the HTTP contract, rules and registration tests (webtest, no real server).

Keeps protocol steps and the checks every response must pass out of the test bodies.
"""

from __future__ import annotations

import base64
import json
from typing import Any

WWW_AUTHENTICATE = 'Bearer realm="api"'
NO_ACCOUNT = {"detail": "No active account found with the given credentials"}
TOKEN_INVALID = {"detail": "Token is invalid", "code": "token_not_valid"}
TOKEN_EXPIRED = {"detail": "Token is expired", "code": "token_not_valid"}
TOKEN_WRONG_TYPE = {"detail": "Token has wrong type", "code": "token_not_valid"}
TOKEN_BLACKLISTED = {"detail": "Token is blacklisted", "code": "token_not_valid"}
USER_INACTIVE = {"detail": "No active account found for the given token.", "code": "user_inactive"}
REQUIRED = "This field is required."
USERNAME_TAKEN = {"username": ["A user with that username already exists."]}

# The registration rules' messages, in Django's wording.
BLANK = "This field may not be blank."
TOO_LONG = "Ensure this field has no more than 150 characters."
USERNAME_CHARACTERS = (
    "Enter a valid username. This value may contain only letters, numbers, "
    "and @/./+/-/_ characters."
)
USERNAME_MIXED_SCRIPTS = (
    "Enter a valid username. Letters from more than one script are not allowed."
)
BAD_EMAIL = "Enter a valid email address."
SHORT = "This password is too short. It must contain at least 8 characters."
LONG = "This password is too long. It must contain at most 4096 bytes."
LIKE_USERNAME = "The password is too similar to the username."
LIKE_EMAIL = "The password is too similar to the email address."
COMMON = "This password is too common."
NUMERIC = "This password is entirely numeric."


def segment(token: str, index: int) -> dict[str, Any]:
    """Decode one JSON segment of a compact JWT without verifying it (order preserved)."""
    part = token.split(".")[index]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value


def header(token: str) -> dict[str, Any]:
    """The unverified JOSE header of ``token``."""
    return segment(token, 0)


def claims(token: str) -> dict[str, Any]:
    """The unverified claims of ``token``, in the order they were written."""
    return segment(token, 1)


def b64url(data: bytes) -> str:
    """Unpadded base64url text of ``data``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assert_json(response: Any) -> Any:
    """Check the response is JSON (``Content-Type`` and body) and return the parsed body."""
    assert response.headers["Content-Type"] == "application/json", response.headers
    assert 200 <= response.status_int < 300 or response.body, "an error must have a body"
    return response.json


def assert_unauthorized(response: Any, body: dict[str, Any]) -> None:
    """Check a 401: the exact JSON body and ``WWW-Authenticate: Bearer realm="api"``."""
    assert response.status_int == 401, (response.status, response.body)
    got = assert_json(response)
    assert got == body, got
    assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE, response.headers


def assert_error(response: Any, status: int, body: dict[str, Any]) -> None:
    """Check an error response: its status and exact JSON body."""
    assert response.status_int == status, (response.status, response.body)
    got = assert_json(response)
    assert got == body, got


def post(client: Any, path: str, data: Any, **kwargs: Any) -> Any:
    """POST ``data`` as JSON, accepting any status (the test checks it)."""
    return client.post_json(path, data, expect_errors=True, **kwargs)


def bearer(token: str) -> dict[str, str]:
    """An ``Authorization: Bearer <token>`` header."""
    return {"Authorization": f"Bearer {token}"}
