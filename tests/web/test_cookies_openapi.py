"""The OpenAPI document under the cookie transport: the cookie security scheme, the refresh
cookie and CSRF header parameters, and every real cookie-mode answer (200s with cookies, 401s
from cookies, every 403) matching what the document says."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import jwtlite
from jwtlite.web.cookies import CSRF_HEADER, cookie_names

from support import PASSWORD, FakeClock, register
from support.cookies import EVIL, Browser, no_cookie_jar

DOC: dict[str, Any] = json.loads(
    (Path(jwtlite.__file__).parent / "web" / "openapi.json").read_text()
)
TOKEN = "/accounts/token/"
REFRESH = "/accounts/token/refresh/"
VERIFY = "/accounts/token/verify/"
BLACKLIST = "/accounts/token/blacklist/"
ME = "/accounts/me/"
COOKIE_ENDPOINTS = [REFRESH, VERIFY, BLACKLIST]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s to the object they name."""
    while "$ref" in node:
        target: Any = DOC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def assert_documented(method: str, path: str, response: Any) -> None:
    """``response`` has a documented status, and its body and headers match the document."""
    responses = DOC["paths"][path][method]["responses"]
    status = str(response.status_int)
    assert status in responses, f"{method.upper()} {path} answered undocumented {status}"
    spec = resolve(responses[status])
    schema = spec["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": DOC["components"]})
    errors = [error.message for error in validator.iter_errors(response.json)]
    assert not errors, (response.json, errors)
    for name, header in spec.get("headers", {}).items():
        if resolve(header).get("required"):
            assert response.headers.get(name) is not None, f"missing {name}"
    if response.headers.getall("Set-Cookie"):
        assert "Set-Cookie" in spec.get("headers", {}), f"undocumented Set-Cookie on {status}"


@pytest.fixture
def make(make_client: Callable[..., Any]) -> Callable[..., Browser]:
    """A logged-in browser on a cookie-transport app (alice registered once)."""

    def build(**overrides: Any) -> Browser:
        client = no_cookie_jar(make_client(**{"token_transport": "cookie", **overrides}))
        if client.store.get_user_by_key("alice") is None:
            register(client)
        browser = Browser(client)
        assert browser.login().status_int == 200
        return browser

    return build


# -- the document -----------------------------------------------------------------------------


def test_cookie_scheme_names_the_default_access_cookie() -> None:
    scheme = DOC["components"]["securitySchemes"]["cookieAuth"]
    assert scheme["type"] == "apiKey"
    assert scheme["in"] == "cookie"
    assert scheme["name"] == cookie_names(secure=True, domain=None).access


def test_me_accepts_either_scheme() -> None:
    for method in ("get", "head"):
        assert DOC["paths"][ME][method]["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]


@pytest.mark.parametrize("path", COOKIE_ENDPOINTS)
def test_refresh_cookie_and_csrf_header_are_parameters(path: str) -> None:
    parameters = {
        (p["in"], p["name"]): p for p in map(resolve, DOC["paths"][path]["post"]["parameters"])
    }
    refresh_name = cookie_names(secure=True, domain=None).refresh
    assert set(parameters) == {("cookie", refresh_name), ("header", CSRF_HEADER)}
    assert not any(p["required"] for p in parameters.values())


@pytest.mark.parametrize("path", [TOKEN, *COOKIE_ENDPOINTS])
def test_every_cookie_endpoint_documents_the_403(path: str) -> None:
    response = resolve(DOC["paths"][path]["post"]["responses"]["403"])
    assert "Cache-Control" in response["headers"]
    assert "WWW-Authenticate" not in response["headers"]


# -- real answers conform ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["cookie", "both"])
@pytest.mark.parametrize("rotate", [False, True], ids=["no-rotation", "rotation"])
def test_token_answers_conform(make: Callable[..., Browser], transport: str, rotate: bool) -> None:
    browser = make(token_transport=transport, rotate_refresh_tokens=rotate)
    assert_documented("post", TOKEN, browser.login())
    assert_documented("post", REFRESH, browser.post(REFRESH, **browser.csrf("refresh")))
    assert_documented("post", VERIFY, browser.post(VERIFY, **browser.csrf("refresh")))
    assert_documented("get", ME, browser.get(ME))
    assert_documented("post", BLACKLIST, browser.post(BLACKLIST, **browser.csrf("refresh")))


def test_cookie_401s_conform(make: Callable[..., Browser], clock: FakeClock) -> None:
    browser = make()
    clock.advance(30)
    assert_documented("get", ME, browser.get(ME))
    for path in COOKIE_ENDPOINTS:
        assert_documented("post", path, browser.post(path, **browser.csrf("refresh")))


FORBIDDEN: dict[str, Callable[[Browser], tuple[str, Any]]] = {
    "login-origin": lambda b: (
        TOKEN,
        b.post(TOKEN, {"username": "alice", "password": PASSWORD}, Origin=EVIL),
    ),
    "refresh-missing": lambda b: (REFRESH, b.post(REFRESH)),
    "refresh-origin": lambda b: (
        REFRESH,
        b.post(REFRESH, {"refresh": b.value("refresh")}, Origin=EVIL),
    ),
    "verify-wrong": lambda b: (VERIFY, b.post(VERIFY, **b.csrf("access"))),
    "blacklist-missing": lambda b: (BLACKLIST, b.post(BLACKLIST)),
}


@pytest.mark.parametrize("case", list(FORBIDDEN), ids=list(FORBIDDEN))
def test_403s_conform(make: Callable[..., Browser], case: str) -> None:
    browser = make()
    path, response = FORBIDDEN[case](browser)
    assert response.status_int == 403
    assert_documented("post", path, response)
