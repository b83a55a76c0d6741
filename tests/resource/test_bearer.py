"""``BearerAuth``: the WSGI guard of a resource server, answer by answer (RFC 6750 §3).

A tiny WSGI app echoes the claims it was given; webtest drives it through the middleware.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import webtest

import jwtlite
from jwtlite import CLAIMS_ENVIRON_KEY, BearerAuth, JWKSClient, Key

from support import FakeClock
from support.jwks import JWKSServer

KEY = Key.generate("ES256", kid="es-1")
STRANGER = Key.generate("ES256", kid="es-1")
NOW = int(time.time())
ACCESS = {"token_type": "access", "user_id": "7", "exp": NOW + 300, "iat": NOW}


def resource(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = json.dumps({"claims": environ[CLAIMS_ENVIRON_KEY]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture(autouse=True)
def _the_clock_reads_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The codec's clock reads NOW: the tokens here are made at import, and a parallel suite
    may run this module minutes later, past their short lifetimes."""
    monkeypatch.setattr("jwtlite.jwt.time", SimpleNamespace(time=lambda: float(NOW)))


def guarded(keys: Any = KEY, **options: Any) -> webtest.TestApp:
    options = {"algorithms": ["ES256"], **options}
    return webtest.TestApp(BearerAuth(resource, keys, **options))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def access(**claims: Any) -> str:
    return jwtlite.encode({**ACCESS, **claims}, KEY)


def challenge(response: Any) -> str:
    value: str = response.headers["WWW-Authenticate"]
    return value


def hs256_forged_with(key: Key) -> str:
    """The algorithm-confusion forgery: HS256 keyed with the public key's PEM."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    signing_input = header + "." + b64(json.dumps(ACCESS).encode())
    mac = hmac.new(key.public_pem(), signing_input.encode(), "sha256").digest()
    return signing_input + "." + b64(mac)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- accepted ---------------------------------------------------------------------------------


def test_a_valid_access_token_reaches_the_app_with_its_claims() -> None:
    response = guarded().get("/", headers=bearer(access()))
    assert response.json == {"claims": ACCESS}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_scheme_is_case_insensitive(scheme: str) -> None:
    guarded().get("/", headers={"Authorization": f"{scheme} {access()}"}, status=200)


def test_a_token_without_token_type_is_accepted() -> None:
    token = jwtlite.encode({"sub": "x", "exp": NOW + 60}, KEY)
    assert guarded().get("/", headers=bearer(token)).json == {
        "claims": {"sub": "x", "exp": NOW + 60}
    }


# -- no credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic YWxpY2U6cHc="},
        {"Authorization": ""},
        {"Authorization": "   "},
        {"Authorization": "\t"},
        {"Authorization": "Bearerx a.b.c"},
    ],
    ids=["none", "basic", "empty", "spaces", "tab", "other-scheme"],
)
def test_missing_bearer_credentials_get_a_bare_challenge(headers: dict[str, str]) -> None:
    response = guarded(realm="orders").get("/", headers=headers, status=401)
    assert challenge(response) == 'Bearer realm="orders"'
    assert response.json == {"detail": "Authentication credentials were not provided."}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content_type == "application/json"


def test_allow_anonymous_lets_requests_without_a_header_through() -> None:
    app = guarded(allow_anonymous=True)
    assert app.get("/").json == {"claims": None}
    assert app.get("/", headers=bearer(access())).json == {"claims": ACCESS}
    response = app.get("/", headers=bearer(access(exp=NOW - 10)), status=401)
    assert 'error="invalid_token"' in challenge(response)
    app.get("/", headers={"Authorization": "Bearer"}, status=400)


@pytest.mark.parametrize("header", ["", "   ", "\t "], ids=["empty", "spaces", "blank"])
def test_allow_anonymous_treats_an_empty_header_as_absent(header: str) -> None:
    # Audit F11: an empty Authorization header got 401 even with allow_anonymous=True.
    app = guarded(allow_anonymous=True)
    assert app.get("/", headers={"Authorization": header}).json == {"claims": None}


# -- malformed --------------------------------------------------------------------------------

MALFORMED = {
    "no-token": "Bearer",
    "only-space": "Bearer ",
    "two-tokens": "Bearer a.b.c d.e.f",
    "comma": "Bearer a.b.c, Bearer d.e.f",
    "quoted": 'Bearer "a.b.c"',
    "non-token68": "Bearer a.b.c!",
    "tab-inside": "Bearer a.b\tc",
    "equals-inside": "Bearer a=b.c",
    # Audit F11: a tab after the scheme was answered 401 "no credentials".
    "tab-after-scheme": "Bearer\ta.b.c",
    "tab-then-space": "Bearer\t a.b.c",
}


@pytest.mark.parametrize("header", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_bearer_header_is_an_invalid_request(header: str) -> None:
    response = guarded().get("/", headers={"Authorization": header}, status=400)
    assert challenge(response).startswith('Bearer realm="api", error="invalid_request"')
    assert set(response.json) == {"detail"}


# -- invalid tokens ---------------------------------------------------------------------------

INVALID = {
    "expired": (lambda: access(exp=NOW - 60), "The access token expired"),
    "not-yet-valid": (lambda: access(nbf=NOW + 600), "The access token is not valid yet"),
    "wrong-audience": (lambda: access(aud="other"), "The access token is for another audience"),
    "refresh-token": (lambda: access(token_type="refresh"), "The token is not an access token"),
    "token-type-not-a-string": (
        lambda: access(token_type=["access"]),
        "The token is not an access token",
    ),
    "no-exp": (
        lambda: jwtlite.encode({"token_type": "access"}, KEY),
        "The access token lacks a required claim",
    ),
    "other-key": (lambda: jwtlite.encode(ACCESS, STRANGER), "The access token is invalid"),
    "tampered": (
        lambda: access().rsplit(".", 1)[0] + "." + "A" * 86,
        "The access token is invalid",
    ),
    "hs256-with-public-key": (lambda: hs256_forged_with(KEY), "The access token is invalid"),
    "garbage": (lambda: "abc.def.ghi", "The access token is invalid"),
    "huge": (lambda: "a" * 20_000 + ".b.c", "The access token is invalid"),
}


@pytest.mark.parametrize(("make", "description"), INVALID.values(), ids=INVALID.keys())
def test_a_bad_token_is_invalid_token(make: Any, description: str) -> None:
    token = make()
    response = guarded().get("/", headers=bearer(token), status=401)
    assert challenge(response) == (
        f'Bearer realm="api", error="invalid_token", error_description="{description}"'
    )
    assert response.json == {"detail": description}
    assert token[:20] not in response.text


@pytest.mark.parametrize(("make", "description"), INVALID.values(), ids=INVALID.keys())
def test_a_refusal_logs_its_reason_but_never_the_token(
    make: Any, description: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = make()
    with caplog.at_level("INFO", logger="jwtlite.resource.bearer"):
        guarded().get("/", headers=bearer(token), status=401)
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert logged.startswith("bearer token refused: ")
    assert description in logged or "token_type" in logged
    for part in token.split("."):
        assert len(part) < 8 or part[:16] not in logged


def test_a_missing_scope_is_logged_by_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="jwtlite.resource.bearer"):
        guarded(scopes=["orders:write"]).get(
            "/", headers=bearer(access(scope="orders:read")), status=403
        )
    assert [r.getMessage() for r in caplog.records] == [
        "bearer token refused: scopes missing: orders:write"
    ]


def test_audience_issuer_and_leeway_are_applied() -> None:
    app = guarded(audience="orders", issuer="https://auth.example", leeway=120)
    good = access(aud="orders", iss="https://auth.example", exp=NOW - 60)
    assert app.get("/", headers=bearer(good)).json["claims"]["aud"] == "orders"
    wrong_issuer = access(aud="orders", iss="https://evil.example")
    response = app.get("/", headers=bearer(wrong_issuer), status=401)
    assert "another issuer" in challenge(response)
    app.get("/", headers=bearer(access(iss="https://auth.example")), status=401)  # no aud


def test_token_types_can_be_widened_or_ignored() -> None:
    refresh = access(token_type="refresh")
    guarded(token_types=("access", "refresh")).get("/", headers=bearer(refresh), status=200)
    guarded(token_types=None).get("/", headers=bearer(refresh), status=200)


def test_required_claims() -> None:
    app = guarded(require=["user_id", "jti"])
    response = app.get("/", headers=bearer(access()), status=401)
    assert "lacks a required claim" in challenge(response)
    app.get("/", headers=bearer(access(jti="j1")), status=200)


def test_the_algorithm_allowlist_rules() -> None:
    ed = Key.generate("Ed25519", kid="ed")
    token = jwtlite.encode(ACCESS, ed)
    guarded(ed, algorithms=["EdDSA"]).get("/", headers=bearer(token), status=401)
    guarded(ed, algorithms=["Ed25519"]).get("/", headers=bearer(token), status=200)


# -- scopes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"scope": "orders:read orders:write"}, 200),
        ({"scp": ["orders:read", "orders:write", "x"]}, 200),
        ({"scope": "orders:read"}, 403),
        ({"scp": "orders:read orders:write"}, 403),  # scp must be a list
        ({}, 403),
        # Audit F9: only U+0020 separates scope tokens (RFC 6749 §3.3).
        ({"scope": "orders:read\u00a0orders:write"}, 403),
        ({"scope": "orders:read\u2003orders:write"}, 403),
        ({"scope": "orders:read\u3000orders:write"}, 403),
        ({"scope": "orders:read\torders:write"}, 403),
        ({"scope": "orders:read\norders:write"}, 403),
        ({"scope": "  orders:read   orders:write "}, 200),  # empty tokens are ignored
        # A scope claim, whatever its value, means scp is not consulted.
        ({"scope": None, "scp": ["orders:read", "orders:write"]}, 403),
        ({"scope": "", "scp": ["orders:read", "orders:write"]}, 403),
        ({"scope": ["orders:read", "orders:write"]}, 403),
    ],
    ids=[
        "scope-string",
        "scp-list",
        "missing-one",
        "scp-string",
        "none",
        "nbsp",
        "em-space",
        "ideographic-space",
        "tab",
        "newline",
        "repeated-spaces",
        "scope-null-scp-list",
        "scope-empty-scp-list",
        "scope-list",
    ],
)
def test_required_scopes(claims: dict[str, Any], status: int) -> None:
    app = guarded(scopes=["orders:write", "orders:read"])
    response = app.get("/", headers=bearer(access(**claims)), status=status)
    if status == 403:
        assert challenge(response) == (
            'Bearer realm="api", error="insufficient_scope", scope="orders:read orders:write"'
        )


# -- keys that cannot be fetched --------------------------------------------------------------


def test_a_jwks_that_cannot_be_fetched_is_503_not_401() -> None:
    server = JWKSServer()
    try:
        server.status = 500
        clock = FakeClock()
        app = guarded(JWKSClient(server.url, timeout=2.0, clock=clock), retry_after=7)
        response = app.get("/", headers=bearer(access()), status=503)
        assert response.headers["Retry-After"] == "7"
        assert "WWW-Authenticate" not in response.headers
        assert set(response.json) == {"detail"}
        # The JWKS comes back: once the cooldown has passed, the same token passes.
        server.serve_jwks({"keys": [KEY.public_jwk()]})
        app.get("/", headers=bearer(access()), status=503)
        clock.advance(10)
        app.get("/", headers=bearer(access()), status=200)
    finally:
        server.close()


# -- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithms", [[], "ES256", ()], ids=["empty", "string", "tuple"])
def test_algorithms_are_required(algorithms: Any) -> None:
    with pytest.raises(TypeError):
        BearerAuth(resource, KEY, algorithms=algorithms)


BAD_OPTIONS = {
    # Audit F9, F10: a string where a list is expected became a set of characters.
    "scopes-str": ({"scopes": "admin"}, TypeError),
    "token-types-str": ({"token_types": "access"}, TypeError),
    "require-str": ({"require": "sub"}, TypeError),
    "retry-after-crlf": ({"retry_after": "30\r\nX-Injected: 1"}, TypeError),
    "retry-after-float": ({"retry_after": 1.5}, TypeError),
    "retry-after-bool": ({"retry_after": True}, TypeError),
    "retry-after-negative": ({"retry_after": -1}, ValueError),
    "scope-not-a-string": ({"scopes": [1]}, ValueError),
}


@pytest.mark.parametrize(("options", "error"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_unusable_options_are_refused(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        BearerAuth(resource, KEY, algorithms=["ES256"], **options)


@pytest.mark.parametrize("scope", ['a"b', "a b", "a\\b", "", "é"])
def test_a_scope_that_is_not_a_scope_token_is_refused(scope: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        BearerAuth(resource, KEY, algorithms=["ES256"], scopes=[scope])


@pytest.mark.parametrize("realm", ['a"b', "a\\b", "é", "a\nb"])
def test_a_realm_that_cannot_be_quoted_is_refused(realm: str) -> None:
    with pytest.raises(ValueError, match="realm"):
        BearerAuth(resource, KEY, algorithms=["ES256"], realm=realm)


# -- the guide's example ----------------------------------------------------------------------


def test_the_resource_server_guide_example_builds_a_guarded_app() -> None:
    guide = Path(__file__).resolve().parents[2] / "docs" / "guides" / "resource-servers.md"
    text = guide.read_text(encoding="utf-8")
    block = text.split("# orders.py -- gunicorn orders:app\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(block, str(guide), "exec"), namespace)  # noqa: S102 (our own docs)
    app = webtest.TestApp(namespace["app"])
    response = app.get("/", status=401)  # no credentials: answered without fetching the JWKS
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert isinstance(namespace["keys"], JWKSClient)
