"""The HTTP contract of /work/shared/CONTRACT.md, row by row, through webtest (no server).

Each endpoint's success shape (with and without its trailing slash), the accepted body
encodings, and every error row: status, exact JSON body, and the headers every response must
carry (``Content-Type: application/json``, ``WWW-Authenticate`` on 401, ``Cache-Control:
no-store`` where tokens travel).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import jwtlite
from jwtlite._encoding import b64url_decode

from support import PASSWORD, FakeClock, login, register
from support.contract import (
    NO_ACCOUNT,
    REQUIRED,
    TOKEN_BLACKLISTED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_WRONG_TYPE,
    USER_INACTIVE,
    USERNAME_TAKEN,
    assert_error,
    assert_json,
    assert_unauthorized,
    b64url,
    bearer,
    claims,
    header,
    post,
)

# Every test that builds a client runs on SQLite and on PostgreSQL (conftest).
pytestmark = pytest.mark.both_backends

REGISTER = "/accounts/register"
TOKEN = "/accounts/token"
REFRESH = "/accounts/token/refresh"
VERIFY = "/accounts/token/verify"
BLACKLIST = "/accounts/token/blacklist"
ME = "/accounts/me"
JWKS = "/.well-known/jwks.json"
HEALTH = "/health"

SECRET = "contract-test-secret-0123456789-abcdefghijklmnop"
CLAIM_ORDER = ["token_type", "exp", "iat", "jti", "user_id"]
HEX32 = re.compile(r"[0-9a-f]{32}")
LIMIT = 65536

SLASH = pytest.mark.parametrize("slash", ["/", ""], ids=["slash", "no-slash"])

# The required string fields of each POST endpoint.
POST_FIELDS = {
    "register": (REGISTER, ("username", "password")),
    "token": (TOKEN, ("username", "password")),
    "refresh": (REFRESH, ("refresh",)),
    "verify": (VERIFY, ("token",)),
    "blacklist": (BLACKLIST, ("refresh",)),
}
POST_IDS = list(POST_FIELDS)
POST_PATHS = [path for path, _ in POST_FIELDS.values()]


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def _signed_up(client: Any) -> dict[str, str]:
    register(client)
    return login(client)


def _assert_token_response(response: Any, keys: set[str]) -> dict[str, str]:
    assert response.status_int == 200
    body: dict[str, str] = assert_json(response)
    assert set(body) == keys
    assert all(isinstance(value, str) and value.count(".") == 2 for value in body.values())
    assert response.headers["Cache-Control"] == "no-store"
    return body


def _assert_standard_claims(token: str, token_type: str, user_id: int) -> dict[str, Any]:
    assert list(header(token).items()) == [("alg", "HS256"), ("typ", "JWT")]
    payload = claims(token)
    assert list(payload) == CLAIM_ORDER
    assert payload["token_type"] == token_type
    assert HEX32.fullmatch(payload["jti"])
    assert payload["user_id"] == str(user_id)
    assert type(payload["exp"]) is int
    assert type(payload["iat"]) is int
    return payload


# -- success shapes, with and without the trailing slash -------------------------------------


@SLASH
def test_register_success(client: Any, slash: str) -> None:
    response = client.post_json(
        REGISTER + slash, {"username": "alice", "password": PASSWORD}, status=201
    )
    body = assert_json(response)
    assert body == {"id": 1, "username": "alice", "email": ""}
    assert type(body["id"]) is int
    assert PASSWORD not in response.text
    assert "$argon2id$" not in response.text


def test_register_echoes_normalised_email(client: Any) -> None:
    body = register(client, email=" Alice@Example.COM ")
    assert body == {"id": 1, "username": "alice", "email": "Alice@example.com"}


@SLASH
def test_login_success(client: Any, clock: FakeClock, slash: str) -> None:
    user = register(client)
    response = client.post_json(TOKEN + slash, {"username": "alice", "password": PASSWORD})
    pair = _assert_token_response(response, {"refresh", "access"})
    access = _assert_standard_claims(pair["access"], "access", user["id"])
    refresh = _assert_standard_claims(pair["refresh"], "refresh", user["id"])
    assert access["iat"] == refresh["iat"] == int(clock.now)
    assert access["exp"] == access["iat"] + 10
    assert refresh["exp"] == refresh["iat"] + 30
    assert access["jti"] != refresh["jti"]


@SLASH
def test_refresh_success(client: Any, clock: FakeClock, slash: str) -> None:
    pair = _signed_up(client)
    clock.advance(3)
    response = client.post_json(REFRESH + slash, {"refresh": pair["refresh"]})
    body = _assert_token_response(response, {"access"})
    fresh = _assert_standard_claims(body["access"], "access", 1)
    first = claims(pair["access"])
    assert fresh["iat"] == first["iat"] + 3 == int(clock.now)
    assert fresh["exp"] == fresh["iat"] + 10
    assert fresh["jti"] not in (first["jti"], claims(pair["refresh"])["jti"])


@SLASH
@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_verify_success(client: Any, slash: str, kind: str) -> None:
    pair = _signed_up(client)
    response = client.post_json(VERIFY + slash, {"token": pair[kind]})
    assert response.status_int == 200
    assert assert_json(response) == {}


@SLASH
def test_blacklist_success(client: Any, slash: str) -> None:
    pair = _signed_up(client)
    response = client.post_json(BLACKLIST + slash, {"refresh": pair["refresh"]})
    assert response.status_int == 200
    assert assert_json(response) == {}


@SLASH
def test_me_success(client: Any, clock: FakeClock, slash: str) -> None:
    joined = clock.now
    register(client, email="alice@example.com")
    clock.advance(5)
    pair = login(client)
    response = client.get(ME + slash, headers=bearer(pair["access"]))
    assert response.status_int == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert assert_json(response) == {
        "id": 1,
        "username": "alice",
        "email": "alice@example.com",
        "date_joined": _iso(joined),
        "last_login": _iso(clock.now),
    }


@SLASH
def test_jwks_empty_for_hmac(client: Any, slash: str) -> None:
    response = client.get(JWKS + slash)
    assert response.status_int == 200
    assert assert_json(response) == {"keys": []}


@SLASH
def test_health(client: Any, slash: str) -> None:
    response = client.get(HEALTH + slash)
    assert response.status_int == 200
    assert assert_json(response) == {"status": "ok"}


@pytest.mark.parametrize(
    ("algorithm", "kty"),
    [("ES256", "EC"), ("RS256", "RSA"), ("EdDSA", "OKP")],
    ids=["ES256", "RS256", "EdDSA"],
)
def test_jwks_publishes_the_signing_key(
    make_client: Callable[..., Any], db_path: Path, clock: FakeClock, algorithm: str, kty: str
) -> None:
    client = make_client(algorithm=algorithm)
    assert db_path.with_suffix(".key").exists()
    body = assert_json(client.get(JWKS + "/"))
    assert len(body["keys"]) == 1
    jwk = body["keys"][0]
    assert jwk["kty"] == kty
    assert jwk["alg"] == algorithm
    assert isinstance(jwk["kid"], str)
    assert jwk["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk), "private members published"
    public = jwtlite.Key.from_jwk(jwk)
    pair = _signed_up(client)
    access = pair["access"]
    assert header(access) == {"alg": algorithm, "typ": "JWT", "kid": jwk["kid"]}
    verified = jwtlite.decode(access, public, [algorithm], now=clock.now)
    assert verified == claims(access)
    assert verified["token_type"] == "access"
    # A refresh token verifies under no published key: a resource server checking only the
    # signature, iss, aud and exp cannot take it for an access token.
    assert header(pair["refresh"]) == {"alg": "HS256", "typ": "JWT"}
    with pytest.raises(jwtlite.JWTError):
        jwtlite.decode(pair["refresh"], public, [algorithm], now=clock.now)


# -- request bodies: JSON (any charset) and forms --------------------------------------------


def _json_body(data: dict[str, str]) -> bytes:
    return json.dumps(data).encode()


def _form_body(data: dict[str, str]) -> bytes:
    return urlencode(data).encode()


ENCODINGS = {
    "json": ("application/json", _json_body),
    "json-charset": ("application/json; charset=utf-8", _json_body),
    "json-charset-upper": ("application/json;charset=UTF-8", _json_body),
    "form": ("application/x-www-form-urlencoded", _form_body),
    "form-charset": ("application/x-www-form-urlencoded; charset=utf-8", _form_body),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS), ids=list(ENCODINGS))
@pytest.mark.parametrize("endpoint", POST_IDS, ids=POST_IDS)
def test_body_encodings(client: Any, endpoint: str, encoding: str) -> None:
    content_type, encode = ENCODINGS[encoding]

    def send(path: str, data: dict[str, str]) -> Any:
        return client.post(path + "/", encode(data), content_type=content_type)

    credentials = {"username": "zoë", "password": PASSWORD}
    if endpoint == "register":
        response = send(REGISTER, credentials)
        assert response.status_int == 201
        assert assert_json(response) == {"id": 1, "username": "zoë", "email": ""}
        return
    register(client, "zoë")
    if endpoint == "token":
        _assert_token_response(send(TOKEN, credentials), {"refresh", "access"})
        return
    pair = login(client, "zoë")
    if endpoint == "refresh":
        _assert_token_response(send(REFRESH, {"refresh": pair["refresh"]}), {"access"})
    elif endpoint == "verify":
        assert assert_json(send(VERIFY, {"token": pair["access"]})) == {}
    else:
        assert assert_json(send(BLACKLIST, {"refresh": pair["refresh"]})) == {}


# -- field errors ----------------------------------------------------------------------------

FIELD_CASES = {
    "missing": (None, REQUIRED),
    "blank": ("", "This field may not be blank."),
    "whitespace": ("   ", "This field may not be blank."),
    "null": (None, "This field may not be null."),
    "list": (["x"], "Not a valid string."),
    "object": ({"x": 1}, "Not a valid string."),
    "boolean": (True, "Not a valid string."),
}


@pytest.mark.parametrize("case", list(FIELD_CASES), ids=list(FIELD_CASES))
@pytest.mark.parametrize("endpoint", POST_IDS, ids=POST_IDS)
def test_field_errors_reported_for_all_fields(client: Any, endpoint: str, case: str) -> None:
    path, names = POST_FIELDS[endpoint]
    value, message = FIELD_CASES[case]
    data = {} if case == "missing" else dict.fromkeys(names, value)
    if case == "whitespace" and "password" in names:
        # jwtlite keeps a password's spaces (at registration and login alike).
        names = ("username",)
        data["password"] = PASSWORD
    response = post(client, path + "/", data)
    assert_error(response, 400, {name: [message] for name in names})


@pytest.mark.parametrize("endpoint", POST_IDS, ids=POST_IDS)
@pytest.mark.parametrize(
    ("content_type", "body"),
    [(None, b""), ("application/json", b""), ("application/x-www-form-urlencoded", b"")],
    ids=["no-content-type", "empty-json", "empty-form"],
)
def test_empty_body_reports_required_fields(
    client: Any, endpoint: str, content_type: str | None, body: bytes
) -> None:
    path, names = POST_FIELDS[endpoint]
    response = client.post(path + "/", body, content_type=content_type, expect_errors=True)
    assert_error(response, 400, {name: [REQUIRED] for name in names})


def test_form_missing_field(client: Any) -> None:
    response = client.post(
        TOKEN + "/",
        "username=alice",
        content_type="application/x-www-form-urlencoded",
        expect_errors=True,
    )
    assert_error(response, 400, {"password": [REQUIRED]})


def test_registration_rules_reported_at_once(client: Any) -> None:
    response = post(
        client, REGISTER + "/", {"username": "bad name", "password": "1234567", "email": "nope"}
    )
    assert_error(
        response,
        400,
        {
            "username": [
                "Enter a valid username. This value may contain only letters, numbers, "
                "and @/./+/-/_ characters."
            ],
            "email": ["Enter a valid email address."],
            "password": [
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ],
        },
    )


def test_duplicate_username(client: Any) -> None:
    register(client)
    assert_error(
        post(client, REGISTER + "/", {"username": "alice", "password": PASSWORD}),
        400,
        USERNAME_TAKEN,
    )


# -- bodies that are not JSON objects, not JSON, not UTF-8 -----------------------------------

NON_OBJECTS = {
    "list": (b"[]", "list"),
    "string": (b'"x"', "str"),
    "null": (b"null", "NoneType"),
    "integer": (b"5", "int"),
    "float": (b"1.5", "float"),
    "boolean": (b"true", "bool"),
}


@pytest.mark.parametrize("kind", list(NON_OBJECTS), ids=list(NON_OBJECTS))
@pytest.mark.parametrize("endpoint", POST_IDS, ids=POST_IDS)
def test_non_object_json(client: Any, endpoint: str, kind: str) -> None:
    body, name = NON_OBJECTS[kind]
    path, _ = POST_FIELDS[endpoint]
    response = client.post(path + "/", body, content_type="application/json", expect_errors=True)
    message = f"Invalid data. Expected a dictionary, but got {name}."
    assert_error(response, 400, {"non_field_errors": [message]})


MALFORMED = {
    "truncated": (b'{"username": "alice"', "application/json"),
    "single-quotes": (b"{'username': 'alice'}", "application/json"),
    "trailing-garbage": (b'{"username": "alice"} x', "application/json"),
    "duplicate-keys": (b'{"username": "a", "username": "b"}', "application/json"),
    "nan": (b'{"username": NaN}', "application/json"),
    "not-utf8": (b'{"username": "\xff\xfe"}', "application/json"),
    "not-utf8-declared": (b'{"username": "\xff"}', "application/json; charset=utf-8"),
    "unknown-charset": (b'{"username": "a"}', "application/json; charset=klingon"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_json(client: Any, case: str) -> None:
    body, content_type = MALFORMED[case]
    response = client.post(TOKEN + "/", body, content_type=content_type, expect_errors=True)
    assert response.status_int == 400
    detail = assert_json(response)
    assert list(detail) == ["detail"]
    assert detail["detail"].startswith("JSON parse error - ")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/jsonx",
        "application/json-patch+json",
    ],
    ids=["text", "text-charset", "multipart", "xml", "jsonx", "json-patch"],
)
@pytest.mark.parametrize("endpoint", POST_IDS, ids=POST_IDS)
def test_unsupported_media_type(client: Any, endpoint: str, content_type: str) -> None:
    path, _ = POST_FIELDS[endpoint]
    # client.request sends the header as given (client.post rewrites a multipart boundary).
    response = client.request(
        path + "/",
        method="POST",
        body=b"{}",
        headers={"Content-Type": content_type},
        expect_errors=True,
    )
    assert_error(response, 415, {"detail": f'Unsupported media type "{content_type}" in request.'})


@pytest.mark.parametrize("endpoint", POST_IDS, ids=POST_IDS)
def test_body_over_limit(client: Any, endpoint: str) -> None:
    path, _ = POST_FIELDS[endpoint]
    body = b'{"token": "' + b"x" * LIMIT + b'"}'
    response = client.post(path + "/", body, content_type="application/json", expect_errors=True)
    assert response.status_int == 413
    detail = assert_json(response)
    assert list(detail) == ["detail"]
    assert isinstance(detail["detail"], str)
    assert detail["detail"]


def test_body_exactly_at_limit_is_read(client: Any) -> None:
    start = b'{"token": "not-a-token"}'
    body = start + b" " * (LIMIT - len(start))
    assert len(body) == LIMIT
    response = client.post(VERIFY + "/", body, content_type="application/json", expect_errors=True)
    assert_unauthorized(response, TOKEN_INVALID)


# -- routing: 405 and 404 --------------------------------------------------------------------

WRONG_METHODS = [
    ("GET", REGISTER, "POST"),
    ("GET", TOKEN, "POST"),
    ("PUT", TOKEN, "POST"),
    ("DELETE", REFRESH, "POST"),
    ("PATCH", VERIFY, "POST"),
    ("GET", BLACKLIST, "POST"),
    ("POST", ME, "GET"),
    ("DELETE", ME, "GET"),
    ("POST", JWKS, "GET"),
    ("DELETE", JWKS, "GET"),
    ("POST", HEALTH, "GET"),
]


@SLASH
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    WRONG_METHODS,
    ids=[f"{method}-{path.strip('/')}" for method, path, _ in WRONG_METHODS],
)
def test_method_not_allowed(client: Any, method: str, path: str, allowed: str, slash: str) -> None:
    response = client.request(path + slash, method=method, expect_errors=True)
    assert_error(response, 405, {"detail": f'Method "{method}" not allowed.'})
    allow = {part.strip() for part in response.headers["Allow"].split(",")}
    assert allowed in allow
    assert method not in allow


NOT_FOUND = [
    "/",
    "/accounts/",
    "/accounts/tokens/",
    "/accounts/token/refresh/x",
    "/Health",
    "/health/x",
    "/.well-known/",
    "/accounts/me/extra",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", NOT_FOUND, ids=NOT_FOUND)
def test_not_found(client: Any, path: str, method: str) -> None:
    response = client.request(path, method=method, expect_errors=True)
    assert_error(response, 404, {"detail": "Not found."})


# -- 401: credentials ------------------------------------------------------------------------


def _wrong_password(client: Any) -> Any:
    register(client)
    return post(client, TOKEN + "/", {"username": "alice", "password": PASSWORD + "x"})


def _unknown_user(client: Any) -> Any:
    register(client)
    return post(client, TOKEN + "/", {"username": "bob", "password": PASSWORD})


def _inactive_user(client: Any) -> Any:
    register(client)
    assert client.store.set_active("alice", False)
    return post(client, TOKEN + "/", {"username": "alice", "password": PASSWORD})


CREDENTIAL_FAILURES = {
    "wrong-password": _wrong_password,
    "unknown-user": _unknown_user,
    "inactive-user": _inactive_user,
}


@pytest.mark.parametrize("case", list(CREDENTIAL_FAILURES), ids=list(CREDENTIAL_FAILURES))
def test_bad_credentials(client: Any, case: str) -> None:
    assert_unauthorized(CREDENTIAL_FAILURES[case](client), NO_ACCOUNT)


def test_bad_credentials_are_indistinguishable(client: Any) -> None:
    register(client)
    register(client, "bob")
    assert client.store.set_active("bob", False)
    attempts = [
        {"username": "alice", "password": PASSWORD + "x"},
        {"username": "carol", "password": PASSWORD},
        {"username": "bob", "password": PASSWORD},
    ]
    answers = []
    for credentials in attempts:
        response = post(client, TOKEN + "/", credentials)
        # Every header but the request's own id (random, and the same for any outcome).
        headers = sorted(h for h in response.headers.items() if h[0].lower() != "x-request-id")
        answers.append((response.status, response.body, headers))
    assert answers[0] == answers[1] == answers[2]


# -- 401: tokens -----------------------------------------------------------------------------


def _secret_key() -> jwtlite.Key:
    return jwtlite.Key(SECRET.encode(), "HS256")


def _resign(token: str, key: jwtlite.Key, **changes: Any) -> str:
    payload = {**claims(token), **changes}
    for name in [name for name, value in changes.items() if value is None]:
        del payload[name]
    return jwtlite.encode(payload, key)


TokenMaker = Callable[[str], str]

FORGED: dict[str, TokenMaker] = {
    "garbage": lambda token: "not-a-token",
    "three-garbage-segments": lambda token: "a.b.c",
    "empty-segments": lambda token: "..",
    "bad-signature": lambda token: token.rsplit(".", 1)[0] + "." + b64url(b"x" * 32),
    "no-signature": lambda token: token.rsplit(".", 1)[0] + ".",
    "tampered-claims": lambda token: ".".join(
        [
            token.split(".")[0],
            b64url(json.dumps({**claims(token), "user_id": "2"}).encode()),
            token.split(".")[2],
        ]
    ),
    "alg-none": lambda token: ".".join(
        [b64url(b'{"alg":"none","typ":"JWT"}'), token.split(".")[1], ""]
    ),
    "other-key": lambda token: _resign(token, jwtlite.Key(b"k" * 32, "HS256")),
    "other-algorithm": lambda token: _resign(token, jwtlite.Key(SECRET.encode() * 2, "HS512")),
    "missing-jti": lambda token: _resign(token, _secret_key(), jti=None),
    "missing-exp": lambda token: _resign(token, _secret_key(), exp=None),
    "integer-user-id": lambda token: _resign(token, _secret_key(), user_id=1),
    "unknown-token-type": lambda token: _resign(token, _secret_key(), token_type="id"),
    "audience-unasked": lambda token: _resign(token, _secret_key(), aud="someone"),
}
TOKEN_ENDPOINTS = {
    "verify-access": (VERIFY, "token", "access"),
    "verify-refresh": (VERIFY, "token", "refresh"),
    "refresh": (REFRESH, "refresh", "refresh"),
    "blacklist": (BLACKLIST, "refresh", "refresh"),
}


@pytest.mark.parametrize("forgery", list(FORGED), ids=list(FORGED))
@pytest.mark.parametrize("endpoint", list(TOKEN_ENDPOINTS), ids=list(TOKEN_ENDPOINTS))
def test_invalid_token(make_client: Callable[..., Any], endpoint: str, forgery: str) -> None:
    client = make_client(secret_key=SECRET)
    pair = _signed_up(client)
    path, field, kind = TOKEN_ENDPOINTS[endpoint]
    forged = FORGED[forgery](pair[kind])
    assert forged != pair[kind]
    assert_unauthorized(post(client, path + "/", {field: forged}), TOKEN_INVALID)


def test_resigned_token_is_accepted_as_control(make_client: Callable[..., Any]) -> None:
    """The forgeries above fail for their one change, not because re-signing is broken."""
    client = make_client(secret_key=SECRET)
    pair = _signed_up(client)
    resigned = _resign(pair["access"], _secret_key())
    assert assert_json(client.post_json(VERIFY + "/", {"token": resigned})) == {}


@pytest.mark.parametrize("endpoint", list(TOKEN_ENDPOINTS), ids=list(TOKEN_ENDPOINTS))
def test_expired_token(client: Any, clock: FakeClock, endpoint: str) -> None:
    pair = _signed_up(client)
    path, field, kind = TOKEN_ENDPOINTS[endpoint]
    clock.advance(10 if kind == "access" else 30)
    assert_unauthorized(post(client, path + "/", {field: pair[kind]}), TOKEN_EXPIRED)


@pytest.mark.parametrize("path", [REFRESH, BLACKLIST], ids=["refresh", "blacklist"])
def test_access_token_where_refresh_expected(client: Any, path: str) -> None:
    pair = _signed_up(client)
    assert_unauthorized(post(client, path + "/", {"refresh": pair["access"]}), TOKEN_WRONG_TYPE)


@pytest.mark.parametrize("endpoint", ["verify-refresh", "refresh", "blacklist"])
def test_blacklisted_token(client: Any, endpoint: str) -> None:
    pair = _signed_up(client)
    client.post_json(BLACKLIST + "/", {"refresh": pair["refresh"]}, status=200)
    path, field, kind = TOKEN_ENDPOINTS[endpoint]
    assert_unauthorized(post(client, path + "/", {field: pair[kind]}), TOKEN_BLACKLISTED)


def _delete(client: Any) -> None:
    assert client.store.delete_user(1)


def _deactivate(client: Any) -> None:
    assert client.store.set_active("alice", False)


@pytest.mark.parametrize("rotate", [False, True], ids=["no-rotation", "rotation"])
@pytest.mark.parametrize("change", [_delete, _deactivate], ids=["deleted", "inactive"])
def test_refresh_token_of_gone_user(
    make_client: Callable[..., Any], change: Callable[[Any], None], rotate: bool
) -> None:
    client = make_client(rotate_refresh_tokens=rotate)
    pair = _signed_up(client)
    change(client)
    assert_unauthorized(post(client, REFRESH + "/", {"refresh": pair["refresh"]}), USER_INACTIVE)


# -- 401 on the protected resource -----------------------------------------------------------

NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}
BAD_HEADER = {
    "detail": "Authorization header must contain two space-delimited values",
    "code": "bad_authorization_header",
}


@pytest.mark.parametrize(
    ("authorization", "body"),
    [
        (None, NOT_PROVIDED),
        ("", NOT_PROVIDED),
        ("Basic YWxpY2U6cGFzcw==", NOT_PROVIDED),
        ("Token abc", NOT_PROVIDED),
        ("Bearer", BAD_HEADER),
        ("Bearer a b", BAD_HEADER),
    ],
    ids=["missing", "empty", "basic", "other-scheme", "bearer-alone", "three-values"],
)
def test_me_authorization_header(client: Any, authorization: str | None, body: Any) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_unauthorized(client.get(ME + "/", headers=headers, expect_errors=True), body)


def _rejected(message: str) -> dict[str, Any]:
    return {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
    }


def test_me_refuses_refresh_token(client: Any) -> None:
    pair = _signed_up(client)
    response = client.get(ME + "/", headers=bearer(pair["refresh"]), expect_errors=True)
    assert_unauthorized(response, _rejected("Token has wrong type"))


def test_me_refuses_invalid_token(client: Any) -> None:
    response = client.get(ME + "/", headers=bearer("a.b.c"), expect_errors=True)
    assert_unauthorized(response, _rejected("Token is invalid"))


def test_me_refuses_expired_token(client: Any, clock: FakeClock) -> None:
    pair = _signed_up(client)
    clock.advance(10)
    response = client.get(ME + "/", headers=bearer(pair["access"]), expect_errors=True)
    assert_unauthorized(response, _rejected("Token is expired"))


@pytest.mark.parametrize(
    ("change", "code"),
    [(_delete, "user_not_found"), (_deactivate, "user_inactive")],
    ids=["deleted", "inactive"],
)
def test_me_with_gone_user(client: Any, change: Callable[[Any], None], code: str) -> None:
    pair = _signed_up(client)
    change(client)
    response = client.get(ME + "/", headers=bearer(pair["access"]), expect_errors=True)
    assert_unauthorized(
        response, {"detail": "No active account found for the given token.", "code": code}
    )


# -- 429 -------------------------------------------------------------------------------------


def test_throttled(client: Any, clock: FakeClock) -> None:
    register(client)
    for _ in range(5):
        wrong = post(client, TOKEN + "/", {"username": "alice", "password": "wrong-password"})
        assert_unauthorized(wrong, NO_ACCOUNT)
    clock.advance(100)
    response = post(client, TOKEN + "/", {"username": "alice", "password": PASSWORD})
    assert_error(
        response, 429, {"detail": "Request was throttled. Expected available in 200 seconds."}
    )
    assert response.headers["Retry-After"] == "200"


# -- what no response may contain ------------------------------------------------------------


def _leak_samples(client: Any) -> list[Any]:
    """A sample of responses, successes and failures, that see the password or the key."""
    register(client)
    samples = [
        post(client, REGISTER + "/", {"username": "alice", "password": PASSWORD}),
        post(client, REGISTER + "/", {"username": "bob", "password": PASSWORD[:5]}),
        post(client, REGISTER + "/", {"username": "bob b", "password": "password"}),
        post(client, TOKEN + "/", {"username": "alice", "password": PASSWORD + "x"}),
        post(client, TOKEN + "/", {"username": "nobody", "password": PASSWORD}),
        post(client, TOKEN + "/", {"username": "alice", "password": [PASSWORD]}),
        client.post(
            TOKEN + "/",
            '{"username": "alice", "password": "' + PASSWORD,
            content_type="application/json",
            expect_errors=True,
        ),
        client.post(
            TOKEN + "/",
            '{"password": "' + PASSWORD + '"} x',
            content_type="application/json",
            expect_errors=True,
        ),
        client.post(
            TOKEN + "/", "password=" + PASSWORD, content_type="text/plain", expect_errors=True
        ),
        client.post(
            TOKEN + "/",
            ("password=" + PASSWORD) * 5000,
            content_type="application/x-www-form-urlencoded",
            expect_errors=True,
        ),
    ]
    pair = login(client)
    samples += [
        post(client, REFRESH + "/", {"refresh": pair["access"]}),
        post(client, VERIFY + "/", {"token": pair["access"][:-3]}),
        client.get(ME + "/", headers=bearer(pair["access"])),
        client.get(ME + "/", headers=bearer(pair["refresh"]), expect_errors=True),
        client.get(JWKS),
        client.get("/nowhere", expect_errors=True),
        client.get(TOKEN, expect_errors=True),
    ]
    return samples


@pytest.mark.parametrize("configured", [True, False], ids=["secret-key", "generated-key-file"])
def test_no_response_leaks_secrets(make_client: Callable[..., Any], configured: bool) -> None:
    client = make_client(secret_key=SECRET) if configured else make_client()
    if configured:
        secrets = [SECRET, b64url(SECRET.encode())]
    else:
        text = Path(client.settings.key_path).read_text().strip()
        secrets = [text, b64url_decode(text.encode()).hex()]
    samples = _leak_samples(client)
    stored = client.store.get_user_by_key("alice").password_hash
    assert stored.startswith("$argon2id$")
    for response in samples:
        assert response.headers["Content-Type"] == "application/json"
        text = response.text
        for forbidden in [PASSWORD, "$argon2id$", stored.rsplit("$", 1)[1], "Traceback", *secrets]:
            assert forbidden not in text, (response.status, text)


# -- OPTIONS without a preflight: JSON like every other answer ---------------------------------

PLAIN_OPTIONS = [
    (REGISTER, ["OPTIONS", "POST"]),
    (TOKEN, ["OPTIONS", "POST"]),
    (REFRESH, ["OPTIONS", "POST"]),
    (VERIFY, ["OPTIONS", "POST"]),
    (BLACKLIST, ["OPTIONS", "POST"]),
    (ME, ["GET", "HEAD", "OPTIONS"]),
    (JWKS, ["GET", "HEAD", "OPTIONS"]),
    (HEALTH, ["GET", "HEAD", "OPTIONS"]),
    ("/openapi.json", ["GET", "HEAD", "OPTIONS"]),
]


@pytest.mark.parametrize(("path", "allowed"), PLAIN_OPTIONS, ids=[p for p, _ in PLAIN_OPTIONS])
def test_plain_options_answers_json_with_allow(client: Any, path: str, allowed: list[str]) -> None:
    response = client.options(path + "/" if path.startswith("/accounts") else path)
    assert response.status_int == 200
    assert response.content_type == "application/json"
    assert response.json == {
        "allow": allowed,
        "renders": ["application/json"],
        "parses": ["application/json", "application/x-www-form-urlencoded"],
    }
    assert response.headers["Allow"] == ", ".join(allowed)


def test_preflight_still_answered_by_cors_with_an_empty_body(client: Any) -> None:
    headers = {"Origin": "http://localhost:8001", "Access-Control-Request-Method": "POST"}
    response = client.options(TOKEN + "/", headers=headers)
    assert response.status_int == 200
    assert response.body == b""
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8001"
