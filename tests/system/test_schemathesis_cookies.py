"""schemathesis against a live ``serve.py`` under the cookie transport.

The same checks as ``test_schemathesis.py``, on a server with ``TOKEN_TRANSPORT=cookie``:
every fuzzed request (random cookies and X-CSRF-TOKEN values included, since the document
declares them) must get a documented answer; then each cookie-authenticated operation is
called once with real cookies, with and without the CSRF value, so its 200 and 403 are checked
too.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from support import FAST_HASH_ENV, PASSWORD, ServerProcess, http
from support.cookies import parse_set_cookie

DOCUMENT = Path(__file__).resolve().parents[2] / "jwtlite" / "web" / "openapi.json"
MAX_EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# (The throttle's 429 is fuzzed by test_schemathesis.py; here logins must keep working.)
SERVER_ENV = {
    **FAST_HASH_ENV,
    "JWTLITE_TOKEN_TRANSPORT": "cookie",
    "JWTLITE_ACCESS_TOKEN_LIFETIME": "3600",
    "JWTLITE_REFRESH_TOKEN_LIFETIME": "7200",
}
USER = {"username": "fuzz-user", "password": PASSWORD}
REFRESH_COOKIE = "__Secure-refresh_token_cookie"
ACCESS_COOKIE = "__Host-access_token_cookie"
# Operations a cookie authenticates, and the cookie that does.
BY_COOKIE = {
    "/accounts/token/refresh/": REFRESH_COOKIE,
    "/accounts/token/verify/": REFRESH_COOKIE,
    "/accounts/token/blacklist/": REFRESH_COOKIE,
}

schema = schemathesis.openapi.from_path(DOCUMENT)


def log_in(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """Log the fuzz user in; return its cookies (name → value) and the answer's body."""
    request = urllib.request.Request(
        f"{url}/accounts/token/",
        data=json.dumps(USER).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        body: dict[str, str] = json.loads(reply.read())
        lines = reply.headers.get_all("Set-Cookie") or []
    cookies = {cookie.name: cookie.value for cookie in map(parse_set_cookie, lines)}
    return cookies, body


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A cookie-transport server with one user, logged in once for the shared session."""
    database = tmp_path_factory.mktemp("schemathesis-cookies") / "jwtlite.sqlite3"
    with ServerProcess(database=database, env=SERVER_ENV) as server:
        assert http("POST", f"{server.url}/accounts/register/", USER).status == 201
        cookies, body = log_in(server.url)
        yield {"url": server.url, "cookies": cookies, "body": body}


def _with_cookies(case: schemathesis.Case, live: dict[str, Any], *, csrf: bool) -> None:
    """Call the operation with an empty body and real cookies, with or without the CSRF
    value (a fresh session for a logout, so the shared one lives on)."""
    cookies, body = live["cookies"], live["body"]
    if case.operation.path == "/accounts/token/blacklist/":
        cookies, body = log_in(live["url"])
    headers = {"X-CSRF-TOKEN": body["csrf_refresh_token"]} if csrf else {}
    call = case.operation.Case(body={}, media_type="application/json", headers=headers)
    response = call.call_and_validate(
        base_url=live["url"], checks=CHECKS, cookies={REFRESH_COOKIE: cookies[REFRESH_COOKIE]}
    )
    assert response.status_code == (200 if csrf else 403), response.text


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_cookie_mode_response_is_documented(
    case: schemathesis.Case, live: dict[str, Any]
) -> None:
    case.call_and_validate(base_url=live["url"], checks=CHECKS)
    path = case.operation.path
    if path == "/accounts/me/" and case.method in ("GET", "HEAD"):
        # Only the access cookie: no Authorization header to take precedence.
        response = case.operation.Case().call_and_validate(
            base_url=live["url"],
            checks=CHECKS,
            cookies={ACCESS_COOKIE: live["cookies"][ACCESS_COOKIE]},
        )
        assert response.status_code == 200, response.text
    elif path in BY_COOKIE and case.method == "POST":
        _with_cookies(case, live, csrf=True)
        _with_cookies(case, live, csrf=False)
