"""Helpers for the cookie-transport tests: parse ``Set-Cookie`` lines, and a small browser jar
that keeps what they set and sends it back, with or without a CSRF header.

The webtest client's own cookie jar is switched off (see :func:`no_cookie_jar`) so that a
test sends exactly the cookies it means to.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from support import PASSWORD

# The names under the default settings (Secure, no Domain).
ACCESS_COOKIE = "__Host-access_token_cookie"
REFRESH_COOKIE = "__Secure-refresh_token_cookie"
CSRF_ACCESS_COOKIE = "__Host-csrf_access_token"
CSRF_REFRESH_COOKIE = "__Host-csrf_refresh_token"
DEFAULT_NAMES = {
    "access": ACCESS_COOKIE,
    "refresh": REFRESH_COOKIE,
    "csrf_access": CSRF_ACCESS_COOKIE,
    "csrf_refresh": CSRF_REFRESH_COOKIE,
}
CSRF_MISSING = {"detail": "CSRF Failed: CSRF token missing."}
CSRF_WRONG = {"detail": "CSRF Failed: CSRF token incorrect."}
ALLOWED = "http://localhost:8001"
EVIL = "https://evil.example"


def no_cookie_jar(client: Any) -> Any:
    """Stop webtest from keeping and resending cookies by itself; return the client."""
    client.cookiejar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client


def origin_refused(origin: str, source: str = "Origin") -> dict[str, str]:
    """The 403 body for a cookie-setting request from an untrusted ``origin``."""
    return {
        "detail": f"CSRF Failed: {source} checking failed - {origin} "
        "does not match any trusted origins."
    }


@dataclass(frozen=True)
class SetCookie:
    """One parsed ``Set-Cookie`` line: attribute names lower-cased, flags as a set."""

    line: str
    name: str
    value: str
    attributes: Mapping[str, str]
    flags: frozenset[str]


def parse_set_cookie(line: str) -> SetCookie:
    """Parse ``name=value; Attr=x; Flag`` (no quoting: our values never need it)."""
    pair, *parts = (part.strip() for part in line.split(";"))
    name, _, value = pair.partition("=")
    attributes: dict[str, str] = {}
    flags: set[str] = set()
    for part in parts:
        key, eq, attribute = part.partition("=")
        if eq:
            assert key.lower() not in attributes, f"{key} twice in {line!r}"
            attributes[key.lower()] = attribute
        else:
            flags.add(part.lower())
    return SetCookie(line, name, value, attributes, frozenset(flags))


def set_cookies(response: Any) -> dict[str, SetCookie]:
    """Every ``Set-Cookie`` of ``response`` by name (each name at most once)."""
    parsed = [parse_set_cookie(line) for line in response.headers.getall("Set-Cookie")]
    by_name = {cookie.name: cookie for cookie in parsed}
    assert len(by_name) == len(parsed), [cookie.line for cookie in parsed]
    return by_name


class Browser:
    """What a browser would keep of the ``Set-Cookie`` lines it got, and send back.

    Paths are not matched here (the tests check the ``Path`` attributes themselves): every
    kept cookie goes with every request, unless a test says which.
    """

    def __init__(self, client: Any, names: Mapping[str, str] = DEFAULT_NAMES) -> None:
        self.client = client
        self.names = dict(names)
        self.jar: dict[str, str] = {}

    def keep(self, response: Any) -> Any:
        """Apply the response's ``Set-Cookie`` lines (``Max-Age=0`` deletes); return it."""
        for cookie in set_cookies(response).values():
            if cookie.attributes.get("max-age") == "0":
                self.jar.pop(cookie.name, None)
            else:
                self.jar[cookie.name] = cookie.value
        return response

    def value(self, kind: str) -> str:
        """The kept value of cookie ``kind`` (``access``, ``refresh``, ``csrf_access``...)."""
        return self.jar[self.names[kind]]

    def csrf(self, kind: str) -> dict[str, str]:
        """An ``X-CSRF-TOKEN`` header with the kept CSRF value of ``access`` or ``refresh``."""
        return {"X-CSRF-TOKEN": self.value(f"csrf_{kind}")}

    def cookie_header(self, only: tuple[str, ...] | None = None) -> dict[str, str]:
        """A ``Cookie`` header with every kept cookie, or with those of the kinds ``only``."""
        names = self.jar if only is None else [self.names[kind] for kind in only]
        pairs = [f"{name}={self.jar[name]}" for name in names if name in self.jar]
        return {"Cookie": "; ".join(pairs)} if pairs else {}

    def login(self, username: str = "alice", **headers: str) -> Any:
        """Log in (JSON body) and keep the cookies; accepts any status."""
        return self.post(
            "/accounts/token/", {"username": username, "password": PASSWORD}, **headers
        )

    def post(
        self,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        only: tuple[str, ...] | None = None,
        **headers: str,
    ) -> Any:
        """POST JSON (``{}`` by default) with the kept cookies; keep what comes back."""
        response = self.client.post_json(
            path,
            dict(data or {}),
            headers={**self.cookie_header(only), **headers},
            expect_errors=True,
        )
        return self.keep(response)

    def get(self, path: str, *, only: tuple[str, ...] | None = None, **headers: str) -> Any:
        """GET with the kept cookies."""
        return self.client.get(
            path, headers={**self.cookie_header(only), **headers}, expect_errors=True
        )
