"""CORS through the real application (``create_app``), every case of CONTRACT.md "CORS".

``tests/web/test_cors.py`` checks the middleware on a toy app; here the same rules are checked on
the service's own routes and error responses (401, 404, 405, 413, 415, 400, 500), where a
browser must still be able to read the body. Header names are compared case-insensitively
(Falcon emits them in lower case).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import webtest

from jwtlite.service.errors import ConfigurationError
from jwtlite.service.settings import Settings
from jwtlite.store.sqlite import SQLiteStore
from jwtlite.web.app import create_app

from support import FAST_HASH, PASSWORD, FakeClock, login, register

ALLOWED = "http://localhost:8001"
PREFLIGHT_VARY = {"origin", "access-control-request-method", "access-control-request-headers"}
TOKEN_URL = "/accounts/token/"

Client = Any  # webtest.TestApp with .store and .settings (see conftest.make_client)


# -- helpers ---------------------------------------------------------------------------------


def header(response: Any, name: str) -> str | None:
    """The value of header ``name`` (compared case-insensitively), or None."""
    wanted = name.lower()
    values = [value for key, value in response.headerlist if key.lower() == wanted]
    assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
    return values[0] if values else None


def cors_headers(response: Any) -> dict[str, str]:
    """Every ``Access-Control-*`` header of ``response``, names lower-cased."""
    return {
        key.lower(): value
        for key, value in response.headerlist
        if key.lower().startswith("access-control-")
    }


def vary_names(response: Any) -> set[str]:
    """The lower-cased names listed in ``Vary``."""
    value = header(response, "Vary") or ""
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def assert_allowed(response: Any, origin: str = ALLOWED) -> None:
    """``response`` lets a page from ``origin`` read it."""
    assert header(response, "Access-Control-Allow-Origin") == origin
    assert "origin" in vary_names(response)


def assert_refused(response: Any) -> None:
    """``response`` carries no ``Access-Control-*`` header at all."""
    assert cors_headers(response) == {}


def preflight(client: Client, path: str, origin: str, method: str = "POST") -> Any:
    """Send a CORS preflight for ``method`` on ``path``."""
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type, authorization",
        },
        status="*",
    )


def post_login(client: Client, origin: str, password: str = PASSWORD, status: int = 200) -> Any:
    """POST the login form of alice with an ``Origin`` header."""
    return client.post_json(
        TOKEN_URL,
        {"username": "alice", "password": password},
        headers={"Origin": origin},
        status=status,
    )


@pytest.fixture
def user_client(client: Client) -> Client:
    """The default client with alice registered."""
    register(client)
    return client


# -- allowed origins, on success and on every error ------------------------------------------


def test_allowed_origin_on_login(user_client: Client) -> None:
    response = post_login(user_client, ALLOWED)
    assert set(response.json) == {"refresh", "access"}
    assert_allowed(response)
    assert header(response, "Access-Control-Allow-Credentials") is None


def test_allowed_origin_on_protected_get(user_client: Client) -> None:
    tokens = login(user_client)
    response = user_client.get(
        "/accounts/me/",
        headers={"Origin": ALLOWED, "Authorization": f"Bearer {tokens['access']}"},
        status=200,
    )
    assert response.json["username"] == "alice"
    assert_allowed(response)


def _bad_login(client: Client, origin: str) -> Any:
    return post_login(client, origin, password="wrong-password-1234", status=401)


def _not_found(client: Client, origin: str) -> Any:
    return client.get("/accounts/nowhere/", headers={"Origin": origin}, status=404)


def _wrong_method(client: Client, origin: str) -> Any:
    return client.get(TOKEN_URL, headers={"Origin": origin}, status=405)


def _too_large(client: Client, origin: str) -> Any:
    body = json.dumps({"username": "alice", "password": "x" * 70_000})
    return client.post(
        TOKEN_URL, body, content_type="application/json", headers={"Origin": origin}, status=413
    )


def _wrong_media_type(client: Client, origin: str) -> Any:
    return client.post(
        TOKEN_URL, "username=alice", content_type="text/plain", headers={"Origin": origin},
        status=415,
    )  # fmt: skip


def _malformed_json(client: Client, origin: str) -> Any:
    return client.post(
        TOKEN_URL, "{not json", content_type="application/json", headers={"Origin": origin},
        status=400,
    )  # fmt: skip


def _missing_fields(client: Client, origin: str) -> Any:
    return client.post_json(TOKEN_URL, {}, headers={"Origin": origin}, status=400)


def _bad_token(client: Client, origin: str) -> Any:
    return client.get(
        "/accounts/me/",
        headers={"Origin": origin, "Authorization": "Bearer not.a.token"},
        status=401,
    )


ERRORS: dict[str, tuple[Callable[[Client, str], Any], int]] = {
    "401-bad-login": (_bad_login, 401),
    "401-bad-bearer": (_bad_token, 401),
    "404-unknown-path": (_not_found, 404),
    "405-wrong-method": (_wrong_method, 405),
    "413-too-large": (_too_large, 413),
    "415-media-type": (_wrong_media_type, 415),
    "400-malformed-json": (_malformed_json, 400),
    "400-missing-fields": (_missing_fields, 400),
}


@pytest.mark.parametrize("case", list(ERRORS.values()), ids=list(ERRORS))
def test_error_responses_carry_cors_for_allowed_origin(
    user_client: Client, case: tuple[Callable[[Client, str], Any], int]
) -> None:
    send, status = case
    response = send(user_client, ALLOWED)
    assert response.status_int == status
    assert response.content_type == "application/json"
    assert "detail" in response.json or status == 400
    assert_allowed(response)


@pytest.mark.parametrize("case", list(ERRORS.values()), ids=list(ERRORS))
def test_error_responses_have_no_cors_for_other_origin(
    user_client: Client, case: tuple[Callable[[Client, str], Any], int]
) -> None:
    send, status = case
    response = send(user_client, "http://localhost:8000")
    assert response.status_int == status
    assert_refused(response)
    assert "origin" in vary_names(response)


def test_unauthorized_keeps_its_challenge_with_cors(user_client: Client) -> None:
    response = _bad_login(user_client, ALLOWED)
    assert header(response, "WWW-Authenticate") == 'Bearer realm="api"'
    assert response.json == {"detail": "No active account found with the given credentials"}
    assert_allowed(response)


def test_server_error_carries_cors(db_path: Path, clock: FakeClock) -> None:
    class BrokenStore(SQLiteStore):
        def ping(self) -> None:
            raise RuntimeError("disk on fire")

    store = BrokenStore(str(db_path))
    try:
        app = create_app(Settings(database=str(db_path), **FAST_HASH), store=store, clock=clock)
        response = webtest.TestApp(app).get("/health", headers={"Origin": ALLOWED}, status=500)
    finally:
        store.close()
    assert response.json == {"detail": "A server error occurred."}
    assert_allowed(response)


# -- normalisation and look-alikes -----------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["HTTP://LOCALHOST:8001", "http://LocalHost:8001", "Http://localhost:8001"],
    ids=["upper-case", "mixed-case-host", "mixed-case-scheme"],
)
def test_normalised_variants_allowed(user_client: Client, origin: str) -> None:
    response = post_login(user_client, origin)
    assert set(response.json) == {"refresh", "access"}
    assert_allowed(response, ALLOWED)


@pytest.mark.parametrize(
    ("configured", "origin", "echoed"),
    [
        ("https://x.com", "https://x.com:443", "https://x.com"),
        ("https://x.com:443", "https://x.com", "https://x.com"),
        ("http://x.com:80", "http://x.com", "http://x.com"),
        ("http://x.com", "http://x.com:80", "http://x.com"),
    ],
    ids=["https-explicit-port", "https-configured-port", "http-configured-port", "http-explicit"],
)
def test_default_port_variants_allowed(
    make_client: Callable[..., Client], configured: str, origin: str, echoed: str
) -> None:
    client = make_client(cors_allowed_origins=(configured,))
    response = client.get("/health", headers={"Origin": origin}, status=200)
    assert_allowed(response, echoed)


LOOK_ALIKES = {
    "other-scheme": "https://localhost:8001",
    "other-port": "http://localhost:8000",
    "default-port": "http://localhost",
    "null": "null",
    "suffix-domain": "http://localhost:8001.evil.com",
    "longer-port": "http://localhost:80011",
    "embedded-in-path": "http://evil.com/http://localhost:8001",
    "trailing-slash": "http://localhost:8001/",
    "userinfo": "http://localhost:8001@evil.com",
    "subdomain": "http://evil.localhost:8001",
    "empty": "",
    "10-kib": "http://localhost:8001" + "a" * 10 * 1024,
    "10-kib-valid-host": "http://" + "a" * 10 * 1024 + ".com",
}


@pytest.mark.parametrize("origin", list(LOOK_ALIKES.values()), ids=list(LOOK_ALIKES))
def test_look_alikes_refused_but_request_processed(user_client: Client, origin: str) -> None:
    response = post_login(user_client, origin)
    assert set(response.json) == {"refresh", "access"}  # the server does not enforce CORS
    assert_refused(response)


@pytest.mark.parametrize(
    "origin",
    [ALLOWED + "\r\nX-Injected: 1", ALLOWED + "\n", "\r\n" + ALLOWED, ALLOWED + "\x00"],
    ids=["crlf-header", "trailing-lf", "leading-crlf", "nul"],
)
def test_control_characters_in_origin_refused(user_client: Client, origin: str) -> None:
    response = post_login(user_client, origin)
    assert set(response.json) == {"refresh", "access"}
    assert_refused(response)
    assert header(response, "X-Injected") is None


@pytest.mark.parametrize("origin", list(LOOK_ALIKES.values()), ids=list(LOOK_ALIKES))
def test_look_alikes_get_no_preflight(client: Client, origin: str) -> None:
    response = preflight(client, TOKEN_URL, origin)
    assert response.status_int == 200
    assert response.body == b""
    assert_refused(response)


# -- preflight ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method"),
    [
        (TOKEN_URL, "POST"),
        ("/accounts/token", "POST"),
        ("/accounts/token/refresh/", "POST"),
        ("/accounts/me/", "GET"),
        ("/accounts/nowhere/", "POST"),
        ("/", "DELETE"),
    ],
    ids=["token", "token-no-slash", "refresh", "me", "unknown-path", "root"],
)
def test_preflight_from_allowed_origin(client: Client, path: str, method: str) -> None:
    response = preflight(client, path, ALLOWED, method)
    assert response.status_int == 200
    assert response.body == b""
    assert header(response, "Access-Control-Allow-Origin") == ALLOWED
    methods = {
        m.strip() for m in (header(response, "Access-Control-Allow-Methods") or "").split(",")
    }
    assert "POST" in methods
    assert method in methods
    allowed_headers = {
        h.strip().lower()
        for h in (header(response, "Access-Control-Allow-Headers") or "").split(",")
    }
    assert {"content-type", "authorization"} <= allowed_headers
    assert header(response, "Access-Control-Max-Age") == "86400"
    assert vary_names(response) >= PREFLIGHT_VARY
    assert header(response, "Access-Control-Allow-Credentials") is None


def test_preflight_from_disallowed_origin(client: Client) -> None:
    response = preflight(client, TOKEN_URL, "https://evil.com")
    assert response.status_int == 200
    assert response.body == b""
    assert_refused(response)


def test_preflight_max_age_configurable(make_client: Callable[..., Client]) -> None:
    client = make_client(cors_preflight_max_age=600)
    response = preflight(client, TOKEN_URL, ALLOWED)
    assert header(response, "Access-Control-Max-Age") == "600"


def test_preflight_creates_nothing(client: Client) -> None:
    # Answered before routing: the register responder must not run.
    response = preflight(client, "/accounts/register/", ALLOWED)
    assert response.status_int == 200
    assert client.store.get_user_by_key("alice") is None


# -- regexes, allow-all, credentials ---------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("https://a-b.example.com", True),
        ("https://APP.EXAMPLE.COM", True),
        ("https://app.example.com:443", True),
        ("https://app.example.com.evil.com", False),
        ("https://evil.com/https://app.example.com", False),
        ("http://app.example.com", False),
        ("https://example.com", False),
        ("https://appXexample.com", False),
        ("https://app.example.com:8443", False),
    ],
    ids=[
        "match",
        "match-dash",
        "match-normalised",
        "match-default-port",
        "suffix",
        "in-path",
        "other-scheme",
        "no-subdomain",
        "dot-is-literal",
        "other-port",
    ],
)
def test_regexes_fully_anchored(
    make_client: Callable[..., Client], origin: str, allowed: bool
) -> None:
    client = make_client(
        cors_allowed_origins=(), cors_allowed_origin_regexes=(r"https://[a-z-]+\.example\.com",)
    )
    response = client.get("/health", headers={"Origin": origin}, status=200)
    if allowed:
        assert_allowed(response, origin.lower().removesuffix(":443"))
    else:
        assert_refused(response)


def test_unanchored_looking_regex_still_anchored(make_client: Callable[..., Client]) -> None:
    # No ^ or $ written: the pattern must still match only whole origins.
    client = make_client(cors_allowed_origins=(), cors_allowed_origin_regexes=(r"good\.com",))
    for origin in ("https://good.com", "http://good.com.evil.com", "https://evilgood.com"):
        assert_refused(client.get("/health", headers={"Origin": origin}, status=200))


def test_allow_all(make_client: Callable[..., Client]) -> None:
    client = make_client(cors_allow_all_origins=True)
    register(client)
    for origin in ("https://anything.example", ALLOWED):
        response = post_login(client, origin)
        assert header(response, "Access-Control-Allow-Origin") == "*"
        assert header(response, "Access-Control-Allow-Credentials") is None
    response = _not_found(client, "https://anything.example")
    assert header(response, "Access-Control-Allow-Origin") == "*"
    response = preflight(client, TOKEN_URL, "https://anything.example")
    assert header(response, "Access-Control-Allow-Origin") == "*"
    assert header(response, "Access-Control-Allow-Credentials") is None


@pytest.mark.parametrize("configured", [True, False], ids=["configured", "not-configured"])
def test_credentials_header_only_when_configured(
    make_client: Callable[..., Client], configured: bool
) -> None:
    client = make_client(cors_allow_credentials=configured)
    expected = "true" if configured else None
    simple = client.get("/health", headers={"Origin": ALLOWED}, status=200)
    assert header(simple, "Access-Control-Allow-Credentials") == expected
    error = _not_found(client, ALLOWED)
    assert header(error, "Access-Control-Allow-Credentials") == expected
    flight = preflight(client, TOKEN_URL, ALLOWED)
    assert header(flight, "Access-Control-Allow-Credentials") == expected
    # Never for an origin that is not allowed.
    assert_refused(client.get("/health", headers={"Origin": "http://evil.com"}, status=200))
    assert_refused(preflight(client, TOKEN_URL, "http://evil.com"))


def test_allow_all_with_credentials_refused_by_settings(db_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings(database=str(db_path), cors_allow_all_origins=True, cors_allow_credentials=True)
    assert caught.value.setting == "CORS_ALLOW_ALL_ORIGINS"
    assert "CORS_ALLOW_CREDENTIALS" in str(caught.value)


def test_allow_all_with_credentials_refused_from_env(db_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(
            {
                "JWTLITE_DATABASE": str(db_path),
                "JWTLITE_CORS_ALLOW_ALL_ORIGINS": "true",
                "JWTLITE_CORS_ALLOW_CREDENTIALS": "true",
            }
        )
    assert caught.value.setting == "CORS_ALLOW_ALL_ORIGINS"


def test_no_origin_header_gets_no_cors(user_client: Client) -> None:
    response = user_client.post_json(
        TOKEN_URL, {"username": "alice", "password": PASSWORD}, status=200
    )
    assert_refused(response)
    assert "origin" in vary_names(response)
