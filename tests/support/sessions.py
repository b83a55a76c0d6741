"""Helpers for the session and account-lifecycle tests (webtest clients, no real server)."""

from __future__ import annotations

from typing import Any

from support import PASSWORD
from support.contract import bearer

SESSIONS = "/accounts/sessions/"
PASSWORD_CHANGE = "/accounts/password/"
LOGOUT_ALL = "/accounts/logout-all/"
ME = "/accounts/me/"
VERIFY = "/accounts/token/verify/"
REFRESH = "/accounts/token/refresh/"
BLACKLIST = "/accounts/token/blacklist/"
NEW_PASSWORD = "another-staple-horse-9"
NOT_FOUND = {"detail": "Not found."}
REVOKED_ACCESS = {
    "detail": "Given token not valid for any token type",
    "code": "token_not_valid",
    "messages": [
        {"token_class": "AccessToken", "token_type": "access", "message": "Token is blacklisted"}
    ],
}


def login_as(
    client: Any,
    username: str = "alice",
    password: str = PASSWORD,
    *,
    user_agent: str = "test-agent",
    remote_addr: str = "10.0.0.1",
) -> dict[str, str]:
    """Log in from a given user agent and address; returns ``{"refresh", "access"}``."""
    result: dict[str, str] = client.post_json(
        "/accounts/token/",
        {"username": username, "password": password},
        headers={"User-Agent": user_agent},
        extra_environ={"REMOTE_ADDR": remote_addr},
        status=200,
    ).json
    return result


def sessions(client: Any, access: str, **kwargs: Any) -> Any:
    """GET the session list with ``access`` (any status)."""
    return client.get(SESSIONS, headers=bearer(access), expect_errors=True, **kwargs)


def end_session(client: Any, access: str, session_id: str) -> Any:
    """DELETE one session with ``access`` (any status)."""
    return client.delete(SESSIONS + session_id + "/", headers=bearer(access), expect_errors=True)


def logout_all(client: Any, access: str) -> Any:
    """POST log out everywhere with ``access`` (any status)."""
    return client.post(LOGOUT_ALL, headers=bearer(access), expect_errors=True)


def change_password(
    client: Any, access: str, old: str = PASSWORD, new: str = NEW_PASSWORD, **kwargs: Any
) -> Any:
    """POST a password change with ``access`` (any status)."""
    return client.post_json(
        PASSWORD_CHANGE,
        {"old_password": old, "new_password": new},
        headers=bearer(access),
        expect_errors=True,
        **kwargs,
    )


def me(client: Any, access: str) -> Any:
    """GET accounts/me/ with ``access`` (any status)."""
    return client.get(ME, headers=bearer(access), expect_errors=True)


def verify(client: Any, token: str) -> Any:
    """POST verify (any status)."""
    return client.post_json(VERIFY, {"token": token}, expect_errors=True)


def refresh(client: Any, token: str) -> Any:
    """POST refresh (any status)."""
    return client.post_json(REFRESH, {"refresh": token}, expect_errors=True)


def session_id(token: str) -> str:
    """The session a token of ours belongs to: the first 16 hex digits of its jti."""
    from support.contract import claims

    jti: str = claims(token)["jti"]
    return jti[:16]
