"""Tests for jwtlite.web.cors: the CORS rules of CONTRACT.md on a tiny Falcon app."""

from __future__ import annotations

import warnings
from typing import Any

import falcon
import pytest

from jwtlite.service.errors import ConfigurationError
from jwtlite.web.cors import CORSMiddleware

with warnings.catch_warnings():
    # webob, under webtest, imports the deprecated cgi module; warnings are errors here.
    warnings.simplefilter("ignore", DeprecationWarning)
    import webtest

ALLOWED = "http://localhost:8001"
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class ItemsResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": []}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"created": True}
        resp.status = falcon.HTTP_201


class ProtectedResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPUnauthorized(
            title="Authentication credentials were not provided.",
            challenges=['Bearer realm="api"'],
        )


class FailingResource:
    """Each method fails the way a real endpoint might."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError("boom")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPContentTooLarge()

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPUnsupportedMediaType()


class VaryingResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {}
        resp.set_header("Vary", req.get_header("X-Vary") or "")


def make_app(**options: Any) -> webtest.TestApp:
    options.setdefault("allowed_origins", (ALLOWED,))
    app = falcon.App(middleware=[CORSMiddleware(**options)])
    app.add_route("/items", ItemsResource())
    app.add_route("/me", ProtectedResource())
    app.add_route("/fail", FailingResource())
    app.add_route("/vary", VaryingResource())
    return webtest.TestApp(app)


def send(
    app: webtest.TestApp, method: str, path: str, origin: str | None, **headers: str
) -> webtest.TestResponse:
    if origin is not None:
        headers["Origin"] = origin
    return app.request(path, method=method, headers=headers, expect_errors=True)


def preflight(app: webtest.TestApp, path: str, origin: str) -> webtest.TestResponse:
    return send(
        app,
        "OPTIONS",
        path,
        origin,
        **{
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )


def cors_headers(response: webtest.TestResponse) -> dict[str, str]:
    """Every Access-Control-* header, names lower-cased (Falcon sends them so)."""
    return {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def vary_tokens(response: webtest.TestResponse) -> list[str]:
    return [token.strip() for token in response.headers["Vary"].split(",")]


@pytest.fixture
def app() -> webtest.TestApp:
    return make_app()


# -- simple requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "echoed"),
    [
        (ALLOWED, ALLOWED),
        ("HTTP://LOCALHOST:8001", ALLOWED),
        ("http://LocalHost:8001", ALLOWED),
    ],
    ids=["exact", "upper-case", "mixed-case"],
)
def test_allowed_origin(app: webtest.TestApp, origin: str, echoed: str) -> None:
    response = send(app, "GET", "/items", origin)
    assert response.status_int == 200
    assert response.json == {"items": []}
    assert response.headers["Access-Control-Allow-Origin"] == echoed
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


@pytest.mark.parametrize(
    ("configured", "origin", "echoed"),
    [
        ("http://example.com", "http://example.com:80", "http://example.com"),
        ("http://example.com:80", "http://example.com", "http://example.com"),
        ("https://example.com:443", "https://EXAMPLE.com", "https://example.com"),
        ("http://[::1]:8001", "http://[0:0::1]:8001", "http://[::1]:8001"),
    ],
    ids=["request-default-port", "configured-default-port", "https-default-port", "ipv6"],
)
def test_default_port_normalised(configured: str, origin: str, echoed: str) -> None:
    response = send(make_app(allowed_origins=[configured]), "GET", "/items", origin)
    assert response.headers["Access-Control-Allow-Origin"] == echoed


HOSTILE = {
    "other-port": "http://localhost:8000",
    "https-instead-of-http": "https://localhost:8001",
    "suffix-domain": "http://localhost:8001.evil.com",
    "longer-port": "http://localhost:80011",
    "userinfo": "http://localhost:8001@evil.com",
    "trailing-slash": "http://localhost:8001/",
    "path": "http://localhost:8001/x",
    "null": "null",
    "star": "*",
    "empty": "",
    "comma-joined": "http://localhost:8001, http://evil.com",
    "comma-joined-reversed": "http://evil.com, http://localhost:8001",
    "crlf": "http://localhost:8001\r\nX-Injected: 1",
    "nul": "http://localhost:8001\x00",
    "tab": "http://localhost:8001\t",
    "space": " http://localhost:8001",
    "unicode": "http://localhost:8001\u00e4",
    "utf8-as-latin1": "http://l\u00c3\u00b6calhost:8001",
    "kelvin-sign": "http://\u212aocalhost:8001",
    "10-kib": ALLOWED + "a" * 10240,
    "10-kib-prefix": "a" * 10240 + ALLOWED,
    "sub-domain": "http://evil.localhost:8001",
}


@pytest.mark.parametrize("origin", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_origin_not_allowed(app: webtest.TestApp, origin: str) -> None:
    response = send(app, "GET", "/items", origin)
    assert response.status_int == 200  # still processed, as with django-cors-headers
    assert response.json == {"items": []}
    assert cors_headers(response) == {}
    assert response.headers["Vary"] == "Origin"
    assert "X-Injected" not in response.headers


@pytest.mark.parametrize("origin", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_origin_preflight_refused(app: webtest.TestApp, origin: str) -> None:
    response = preflight(app, "/items", origin)
    assert response.status_int == 200
    assert response.body == b""
    assert cors_headers(response) == {}


def test_no_origin_still_varies(app: webtest.TestApp) -> None:
    response = send(app, "GET", "/items", None)
    assert cors_headers(response) == {}
    assert response.headers["Vary"] == "Origin"


def test_post_from_allowed_origin(app: webtest.TestApp) -> None:
    response = app.post_json("/items", {}, headers={"Origin": ALLOWED})
    assert response.status_int == 201
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


# -- regexes ------------------------------------------------------------------------------

REGEX = r"https://[a-z]+\.example\.com"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://a.example.com", True),
        ("https://APP.example.com", True),
        ("https://app.example.com:443", True),
        ("https://a.example.com.evil.com", False),
        ("https://evil.com/?https://a.example.com", False),
        ("https://evil.com?https://a.example.com", False),
        ("https://a.example.com/", False),
        ("https://a.example.com:8443", False),
        ("http://a.example.com", False),
        ("https://a.b.example.com", False),
        ("xhttps://a.example.com", False),
        ("https://a.example.com\n", False),
    ],
    ids=[
        "match",
        "upper-case",
        "default-port",
        "suffix-domain",
        "query-smuggling",
        "query-no-slash",
        "trailing-slash",
        "other-port",
        "http",
        "nested-subdomain",
        "prefix",
        "trailing-newline",
    ],
)
def test_regex_is_fully_anchored(origin: str, allowed: bool) -> None:
    app = make_app(allowed_origins=(), allowed_origin_regexes=[REGEX])
    response = send(app, "GET", "/items", origin)
    expected = {"access-control-allow-origin": origin.lower().removesuffix(":443")}
    assert cors_headers(response) == (expected if allowed else {})


def test_regex_matches_raw_origin_form() -> None:
    # A pattern written with an explicit default port matches what it plainly says.
    app = make_app(allowed_origins=(), allowed_origin_regexes=[r"http://example\.com:80"])
    response = send(app, "GET", "/items", "http://example.com:80")
    assert response.headers["Access-Control-Allow-Origin"] == "http://example.com"


# -- allow-all and credentials ------------------------------------------------------------


def test_allow_all() -> None:
    app = make_app(allow_all_origins=True, allowed_origins=())
    for origin in ("https://anything.example", "null", None):
        response = send(app, "GET", "/items", origin)
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert "Vary" not in response.headers  # the answer does not depend on the origin


def test_allow_all_preflight() -> None:
    response = preflight(make_app(allow_all_origins=True), "/items", "https://x.example")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_credentials() -> None:
    app = make_app(allow_credentials=True)
    response = send(app, "GET", "/items", ALLOWED)
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert preflight(app, "/items", ALLOWED).headers["Access-Control-Allow-Credentials"] == "true"
    assert cors_headers(send(app, "GET", "/items", "http://evil.com")) == {}


def test_allow_all_with_credentials_refused() -> None:
    with pytest.raises(ConfigurationError, match="CORS_ALLOW_CREDENTIALS") as info:
        CORSMiddleware(allow_all_origins=True, allow_credentials=True)
    assert info.value.setting == "CORS_ALLOW_ALL_ORIGINS"


def test_expose_headers() -> None:
    app = make_app(expose_headers=["Retry-After", "X-Request-Id"])
    response = send(app, "GET", "/items", ALLOWED)
    assert response.headers["Access-Control-Expose-Headers"] == "Retry-After, X-Request-Id"
    assert "Access-Control-Expose-Headers" not in send(app, "GET", "/items", "http://evil.com")


# -- preflight ----------------------------------------------------------------------------


class JSONByDefault:
    """Gives every response a JSON body before routing, as an application's defaults may."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"default": True}


def test_preflight_body_is_empty_even_over_a_default_body() -> None:
    app = falcon.App(middleware=[JSONByDefault(), CORSMiddleware(allowed_origins=[ALLOWED])])
    response = preflight(webtest.TestApp(app), "/items", ALLOWED)
    assert response.status_int == 200
    assert response.body == b""


@pytest.mark.parametrize("path", ["/items", "/me", "/unknown", "/items/"], ids=str)
def test_preflight_allowed_on_any_path(app: webtest.TestApp, path: str) -> None:
    response = preflight(app, path, ALLOWED)
    assert response.status_int == 200
    assert response.body == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    methods = response.headers["Access-Control-Allow-Methods"].split(", ")
    assert methods == ["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"]
    allowed_headers = response.headers["Access-Control-Allow-Headers"].split(", ")
    assert {"content-type", "authorization"} <= set(allowed_headers)
    assert response.headers["Access-Control-Max-Age"] == "86400"
    assert response.headers["Vary"] == PREFLIGHT_VARY
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_preflight_disallowed(app: webtest.TestApp) -> None:
    response = preflight(app, "/items", "http://evil.com")
    assert response.status_int == 200
    assert response.body == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["Vary"] == PREFLIGHT_VARY
    assert cors_headers(response) == {}


@pytest.mark.parametrize("max_age", [0, 600], ids=str)
def test_preflight_max_age(max_age: int) -> None:
    response = preflight(make_app(max_age=max_age), "/items", ALLOWED)
    assert response.headers["Access-Control-Max-Age"] == str(max_age)


def test_options_without_request_method_is_not_a_preflight(app: webtest.TestApp) -> None:
    response = send(app, "OPTIONS", "/items", ALLOWED)
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Access-Control-Allow-Methods" not in response.headers
    assert "GET" in response.headers["Allow"]  # Falcon's own OPTIONS answer


def test_preflight_without_origin_is_routed(app: webtest.TestApp) -> None:
    response = send(app, "OPTIONS", "/unknown", None, **{"Access-Control-Request-Method": "GET"})
    assert response.status_int == 404
    assert cors_headers(response) == {}


def test_custom_methods_and_headers() -> None:
    app = make_app(allow_methods=["get", "post"], allow_headers=["content-type"])
    response = preflight(app, "/items", ALLOWED)
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert response.headers["Access-Control-Allow-Headers"] == "content-type"


# -- error responses ----------------------------------------------------------------------

ERRORS = [
    ("GET", "/me", 401),
    ("GET", "/nowhere", 404),
    ("DELETE", "/items", 405),
    ("POST", "/fail", 413),
    ("PUT", "/fail", 415),
    ("GET", "/fail", 500),
]


@pytest.mark.parametrize(
    ("method", "path", "status"), ERRORS, ids=[str(status) for _, _, status in ERRORS]
)
def test_error_responses_carry_cors(
    app: webtest.TestApp, method: str, path: str, status: int
) -> None:
    response = send(app, method, path, ALLOWED)
    assert response.status_int == status
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    # Falcon's error serializer varies on Accept; ours is appended, not overwritten.
    assert "Origin" in vary_tokens(response)
    disallowed = send(app, method, path, "http://evil.com")
    assert disallowed.status_int == status
    assert cors_headers(disallowed) == {}
    assert "Origin" in vary_tokens(disallowed)


def test_unauthorized_keeps_its_challenge(app: webtest.TestApp) -> None:
    response = send(app, "GET", "/me", ALLOWED)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


# -- Vary merging -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "merged"),
    [
        ("Accept-Encoding", "Accept-Encoding, Origin"),
        ("Accept-Encoding, Cookie", "Accept-Encoding, Cookie, Origin"),
        ("origin", "origin"),
        ("Accept, Origin", "Accept, Origin"),
        ("Accept,Origin", "Accept,Origin"),
        ("*", "*"),
        ("", "Origin"),
    ],
    ids=[
        "one",
        "two",
        "already-lower-case",
        "already-present",
        "already-present-no-space",
        "star",
        "empty",
    ],
)
def test_vary_is_merged(app: webtest.TestApp, existing: str, merged: str) -> None:
    response = send(app, "GET", "/vary", ALLOWED, **{"X-Vary": existing})
    assert response.headers["Vary"] == merged
    assert len(response.headers.getall("Vary")) == 1


# -- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"allowed_origins": ["http://a.com/x"]}, "CORS_ALLOWED_ORIGINS"),
        ({"allowed_origins": ["null"]}, "CORS_ALLOWED_ORIGINS"),
        ({"allowed_origins": ["*"]}, "CORS_ALLOWED_ORIGINS"),
        ({"allowed_origins": "http://a.com"}, "CORS_ALLOWED_ORIGINS"),
        ({"allowed_origin_regexes": "https://a.com"}, "CORS_ALLOWED_ORIGIN_REGEXES"),
        ({"allow_methods": "GET"}, "CORS_ALLOW_METHODS"),
        ({"allow_headers": "authorization"}, "CORS_ALLOW_HEADERS"),
        ({"expose_headers": "x-total"}, "CORS_EXPOSE_HEADERS"),
        ({"allowed_origin_regexes": ["("]}, "CORS_ALLOWED_ORIGIN_REGEXES"),
        ({"max_age": -1}, "CORS_PREFLIGHT_MAX_AGE"),
        ({"max_age": True}, "CORS_PREFLIGHT_MAX_AGE"),
        ({"allow_headers": ["x-ok\r\nX-Evil: 1"]}, "CORS_ALLOW_HEADERS"),
        ({"allow_methods": ["GET POST"]}, "CORS_ALLOW_METHODS"),
        ({"expose_headers": [""]}, "CORS_EXPOSE_HEADERS"),
    ],
    ids=[
        "origin-with-path",
        "null-origin",
        "star-origin",
        "bare-string-origins",
        "bare-string-origin-regexes",
        "bare-string-methods",
        "bare-string-headers",
        "bare-string-expose-headers",
        "bad-regex",
        "negative-max-age",
        "bool-max-age",
        "crlf-header-name",
        "space-in-method",
        "empty-expose",
    ],
)
def test_invalid_configuration_refused(options: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CORSMiddleware(**options)
    assert info.value.setting == setting


@pytest.mark.parametrize(
    "option", ["allowed_origins", "allowed_origin_regexes", "allow_methods", "allow_headers"]
)
def test_a_bare_string_is_not_taken_for_its_characters(option: str) -> None:
    """A str is iterable too: "GET" must not become the methods G, E and T (or one-letter
    headers, regexes or origins); the guard names the mistake."""
    with pytest.raises(ConfigurationError, match="give a list"):
        CORSMiddleware(**{option: "GET"})


def test_allowed_origin_lookup() -> None:
    cors = CORSMiddleware(allowed_origins=[ALLOWED])
    assert cors.allowed_origin("HTTP://localhost:8001") == ALLOWED
    assert cors.allowed_origin("http://localhost:8002") is None
    assert cors.allowed_origin(None) is None
    assert CORSMiddleware().allowed_origin(ALLOWED) is None  # deny by default
