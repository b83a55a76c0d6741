"""Hostile requests against every endpoint, each with its documented answer.

Every table row names one attack and states the answer the service gives: a status and a JSON
body shape (see /work/shared/CONTRACT.md). Attacks a WSGI test client cannot express (a lying
``Content-Length``, chunked bodies, repeated headers, bare CR/LF, huge headers) go over raw
sockets to a real ``serve.py`` on 127.0.0.1. Where waitress refuses a request before our app
sees it, the row says so; serve.py makes those answers JSON too, so every answer is JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support import FAST_HASH_ENV, PASSWORD, ServerProcess, http, login, register
from support.raw import exchange, parse, request

SECRET = "hostile-requests-test-secret-0123456789abcdef"
OTHER_SECRET = "some-other-services-secret-0123456789abcdef"
NOW = 1_800_000_000  # FakeClock's start
LIMIT = 65536  # Settings.max_body_size default

REGISTER = "/accounts/register/"
TOKEN = "/accounts/token/"
REFRESH = "/accounts/token/refresh/"
VERIFY = "/accounts/token/verify/"
BLACKLIST = "/accounts/token/blacklist/"
ME = "/accounts/me/"
JWKS = "/.well-known/jwks.json"
HEALTH = "/health"

INVALID = {"detail": "Token is invalid", "code": "token_not_valid"}
EXPIRED = {"detail": "Token is expired", "code": "token_not_valid"}
WRONG_TYPE = {"detail": "Token has wrong type", "code": "token_not_valid"}
BAD_CREDENTIALS = {"detail": "No active account found with the given credentials"}
NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}
BAD_HEADER = {
    "detail": "Authorization header must contain two space-delimited values",
    "code": "bad_authorization_header",
}
REQUIRED = "This field is required."
CYRILLIC_A_LICE = "\u0430lice"  # looks like alice
FULLWIDTH_ALICE = "\uff41\uff4c\uff49\uff43\uff45"  # NFKC: alice

# Each POST endpoint with a body its fields accept in form (the values may still be refused).
BODIES: dict[str, dict[str, Any]] = {
    REGISTER: {"username": "mallory", "password": PASSWORD, "email": "m@example.com"},
    TOKEN: {"username": "alice", "password": PASSWORD},
    REFRESH: {"refresh": "a.b.c"},
    VERIFY: {"token": "a.b.c"},
    BLACKLIST: {"refresh": "a.b.c"},
}
POST_ENDPOINTS = list(BODIES)
POST_IDS = ["register", "token", "refresh", "verify", "blacklist"]


# -- helpers ------------------------------------------------------------------------------------


def is_json(response: Any) -> bool:
    """Whether a webtest response declares a JSON body."""
    return str(response.headers.get("Content-Type", "")).startswith("application/json")


def answer(response: Any, status: int) -> Any:
    """Assert status and a JSON body; return the parsed body."""
    assert response.status_int == status, response.body[:300]
    assert is_json(response), response.headers
    return json.loads(response.body)


def b64(data: bytes) -> str:
    """Unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    """A token segment: bytes as they are, anything else as compact JSON."""
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return b64(raw)


def forge(header: Any, claims: Any, *, secret: str = SECRET, digest: str = "sha256") -> str:
    """A compact JWS over arbitrary header and claims, HMAC-signed with ``secret``."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), getattr(hashlib, digest)).digest()
    return f"{signing_input}.{b64(mac)}"


HS256 = {"alg": "HS256", "typ": "JWT"}


def claims(token_type: str, /, **changes: Any) -> dict[str, Any]:
    """The claims we issue, changed (a value of ``...`` removes the claim)."""
    base: dict[str, Any] = {
        "token_type": token_type,
        "exp": NOW + 10,
        "iat": NOW,
        "jti": "0123456789abcdef0123456789abcdef",
        "user_id": "1",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not ...}


@pytest.fixture
def app(make_client: Callable[..., Any]) -> Any:
    """A client signing with ``SECRET``, with alice registered."""
    client = make_client(secret_key=SECRET)
    register(client)
    return client


# -- wrong types and values for every field --------------------------------------------------

FIELD_VALUES = {
    # id: (value, the one message the field gets)
    "null": (None, "This field may not be null."),
    "true": (True, "Not a valid string."),
    "false": (False, "Not a valid string."),
    "list": (["alice"], "Not a valid string."),
    "empty-list": ([], "Not a valid string."),
    "object": ({"$ne": ""}, "Not a valid string."),
    "empty-string": ("", "This field may not be blank."),
    "nul-byte": ("ali\x00ce", "Null characters are not allowed."),
    "lone-surrogate": ("\ud800", "Surrogate characters are not allowed: U+D800."),
    "low-surrogate-inside": ("ab\udfffcd", "Surrogate characters are not allowed: U+DFFF."),
}
FIELDS = [
    (endpoint, name) for endpoint, body in BODIES.items() for name in body if name != "email"
] + [(REGISTER, "email")]


@pytest.mark.parametrize(("endpoint", "field"), FIELDS, ids=[f"{e}:{f}" for e, f in FIELDS])
@pytest.mark.parametrize(("value", "message"), list(FIELD_VALUES.values()), ids=list(FIELD_VALUES))
def test_wrong_value_for_a_field_is_400_naming_that_field(
    app: Any, endpoint: str, field: str, value: Any, message: str
) -> None:
    """400 ``{"<field>": ["<message>"]}``: only that field, never a 5xx, never a token."""
    if field == "email" and value == "":
        message = ""  # e-mail is optional: blank is allowed (answered below)
    response = app.post_json(endpoint, {**BODIES[endpoint], field: value}, expect_errors=True)
    if not message:
        assert answer(response, 201) == {"id": 2, "username": "mallory", "email": ""}
        return
    assert answer(response, 400) == {field: [message]}


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS, ids=POST_IDS)
def test_every_missing_field_is_reported_at_once(app: Any, endpoint: str) -> None:
    """An empty object: 400 with every required field listed."""
    body = answer(app.post_json(endpoint, {}, expect_errors=True), 400)
    required = {name for name in BODIES[endpoint] if name != "email"}
    assert body == {name: [REQUIRED] for name in required}


# -- the body itself ---------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    """``{"a":{"a":...}}`` nested ``depth`` deep."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON padded with trailing spaces to exactly ``size`` bytes."""
    raw = json.dumps(body).encode()
    return raw + b" " * (size - len(raw))


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

NON_FIELD = "non_field_errors"
# id: (content type, raw body, status, expected body or the start of its "detail")
BODY_ATTACKS: dict[str, tuple[str, bytes, int, Any]] = {
    "list": (JSON, b"[]", 400, {NON_FIELD: ["Invalid data. Expected a dictionary, but got list."]}),
    "string": (
        JSON,
        b'"x"',
        400,
        {NON_FIELD: ["Invalid data. Expected a dictionary, but got str."]},
    ),
    "null": (
        JSON,
        b"null",
        400,
        {NON_FIELD: ["Invalid data. Expected a dictionary, but got NoneType."]},
    ),
    "number": (
        JSON,
        b"42",
        400,
        {NON_FIELD: ["Invalid data. Expected a dictionary, but got int."]},
    ),
    "true": (
        JSON,
        b"true",
        400,
        {NON_FIELD: ["Invalid data. Expected a dictionary, but got bool."]},
    ),
    "truncated": (JSON, b'{"username": "a', 400, "JSON parse error - "),
    "trailing-garbage": (JSON, b'{"username": "a"} x', 400, "JSON parse error - "),
    "single-quotes": (JSON, b"{'username': 'a'}", 400, "JSON parse error - "),
    "invalid-utf8": (JSON, b'{"username": "\xff\xfe"}', 400, "JSON parse error - "),
    "overlong-utf8": (JSON, b'{"username": "\xc0\xaf"}', 400, "JSON parse error - "),
    "utf8-bom": (JSON, b'\xef\xbb\xbf{"username": "a"}', 400, "JSON parse error - "),
    "raw-nul-in-string": (JSON, b'{"username": "a\x00b"}', 400, "JSON parse error - "),
    "nul-after-object": (JSON, b'{"username": "a"}\x00', 400, "JSON parse error - "),
    "nested-1000-objects": (JSON, nested(1000), 400, "JSON parse error - "),
    "nested-30000-arrays": (JSON, b"[" * 30000 + b"]" * 30000, 400, "JSON parse error - "),
    "duplicate-keys": (JSON, b'{"username": "a", "username": "b"}', 400, "JSON parse error - "),
    "nan": (JSON, b'{"username": NaN}', 400, "JSON parse error - "),
    "infinity": (JSON, b'{"username": Infinity}', 400, "JSON parse error - "),
    "huge-exponent": (JSON, b'{"username": 1e999}', 400, "JSON parse error - "),
    "5000-digit-integer": (JSON, b'{"username": ' + b"9" * 5000 + b"}", 400, "JSON parse error - "),
    "unknown-charset": (JSON + "; charset=x-klingon", b"{}", 400, "JSON parse error - "),
    "utf16-charset-utf8-body": (JSON + "; charset=utf-16", b'{"a": 1}', 400, "JSON parse error - "),
    "body-limit-plus-one": (JSON, padded({}, LIMIT + 1), 413, "Request body is larger than"),
    "text-plain": ("text/plain", b"{}", 415, 'Unsupported media type "text/plain" in request.'),
    "xml": ("application/xml", b"<a/>", 415, 'Unsupported media type "application/xml"'),
    "multipart": ("multipart/form-data; boundary=x", b"--x--", 415, "Unsupported media type"),
    "json-lookalike-type": ("application/json-patch+json", b"{}", 415, "Unsupported media type"),
    "form-invalid-utf8": (FORM, b"username=%ff%fe&password=\xff", 400, "Form parse error - "),
}


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS, ids=POST_IDS)
@pytest.mark.parametrize("attack", list(BODY_ATTACKS.values()), ids=list(BODY_ATTACKS))
def test_hostile_body_gets_its_documented_answer(
    app: Any, endpoint: str, attack: tuple[str, bytes, int, Any]
) -> None:
    """Each malformed body gets its 4xx JSON answer on every POST endpoint."""
    content_type, raw, status, expected = attack
    response = app.post(endpoint, raw, content_type=content_type, expect_errors=True)
    body = answer(response, status)
    if isinstance(expected, dict):
        assert body == expected
    else:
        assert set(body) == {"detail"}
        assert body["detail"].startswith(expected)


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS, ids=POST_IDS)
def test_body_exactly_at_the_limit_is_read(app: Any, endpoint: str) -> None:
    """Exactly ``max_body_size`` bytes is not 413: the fields are checked (400)."""
    response = app.post(endpoint, padded({"x": 1}, LIMIT), content_type=JSON, expect_errors=True)
    assert answer(response, 400) != {}
    assert response.status_int != 413


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/token/../register/",
        "/accounts//token/",
        "/%00",
        "/accounts/token/%ff",
        "/" + "a" * 8000,
        "/accounts/token;jsessionid=1",
        "/ACCOUNTS/TOKEN/",
    ],
    ids=[
        "dot-dot",
        "double-slash",
        "encoded-nul",
        "encoded-invalid-utf8",
        "8000-char-path",
        "matrix-parameter",
        "upper-case",
    ],
)
def test_unknown_or_mangled_path_is_json_404(app: Any, path: str) -> None:
    """404 ``{"detail": "Not found."}``: no redirect, no normalisation to a real route."""
    assert answer(app.post(path, b"{}", content_type=JSON, expect_errors=True), 404) == {
        "detail": "Not found."
    }


# -- hostile field values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice' OR '1'='1", PASSWORD),
        ("alice'--", "x"),
        ('alice" OR 1=1 --', "x"),
        ("alice", "' OR '1'='1"),
        ("%", "x"),
        ("_", "x"),
        ("alic_", PASSWORD),
        ("ALIC%", PASSWORD),
        ("*", "x"),
        ("alice\\", PASSWORD),
        ("a" * 60000, "x"),
        ("alice", "p" * 60000),
        (CYRILLIC_A_LICE, PASSWORD),  # a different name, so unknown
        ("alice\u200b", PASSWORD),  # zero-width space
        ("\u202ealice", PASSWORD),  # right-to-left override
    ],
    ids=[
        "sql-or-true",
        "sql-comment",
        "sql-double-quote",
        "sql-in-password",
        "like-percent",
        "like-underscore",
        "like-underscore-suffix",
        "like-percent-upper",
        "glob-star",
        "trailing-backslash",
        "60k-username",
        "60k-password",
        "cyrillic-a",
        "zero-width-space",
        "rtl-override",
    ],
)
def test_hostile_credentials_are_401_and_issue_no_token(
    app: Any, username: str, password: str
) -> None:
    """401 with the one credentials message; the users table is intact afterwards."""
    response = app.post_json(
        TOKEN, {"username": username, "password": password}, expect_errors=True
    )
    assert answer(response, 401) == BAD_CREDENTIALS
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert set(login(app)) == {"refresh", "access"}  # alice still logs in


USERNAME_CHARS = (
    "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ "
    "characters."
)
MIXED_SCRIPTS = "Enter a valid username. Letters from more than one script are not allowed."
TAKEN = "A user with that username already exists."


@pytest.mark.parametrize(
    ("username", "messages"),
    [
        ("'; DROP TABLE users;--", [USERNAME_CHARS]),
        ("alice' OR '1'='1", [USERNAME_CHARS]),
        ("<script>alert(1)</script>", [USERNAME_CHARS]),
        (CYRILLIC_A_LICE, [MIXED_SCRIPTS]),  # Cyrillic a + Latin
        ("alic\u0435", [MIXED_SCRIPTS]),  # Latin + Cyrillic ie
        (FULLWIDTH_ALICE, [TAKEN]),  # fullwidth: NFKC makes it "alice"
        ("ALICE", [TAKEN]),
        ("Alice", [TAKEN]),
        ("ᴬlice", [TAKEN]),  # modifier capital A: NFKC "Alice"
        ("alice\u200b", [USERNAME_CHARS]),
        ("al\u200dice", [USERNAME_CHARS]),
        ("\u202ealice", [USERNAME_CHARS]),
        ("ali ce", [USERNAME_CHARS]),
        ("alice\n", [TAKEN]),  # surrounding whitespace is stripped, as DRF does
        ("a" * 151, ["Ensure this field has no more than 150 characters."]),
        ("a" * 60000, ["Ensure this field has no more than 150 characters."]),
    ],
    ids=[
        "sql-drop-table",
        "sql-or-true",
        "html-script",
        "cyrillic-a-mixed",
        "cyrillic-e-mixed",
        "fullwidth-nfkc",
        "upper-case",
        "title-case",
        "modifier-letter",
        "zero-width-space",
        "zero-width-joiner",
        "rtl-override",
        "inner-space",
        "trailing-newline",
        "151-chars",
        "60k-chars",
    ],
)
def test_hostile_username_cannot_register(app: Any, username: str, messages: list[str]) -> None:
    """400 ``{"username": [...]}``; no row is added."""
    response = app.post_json(
        REGISTER, {"username": username, "password": PASSWORD}, expect_errors=True
    )
    body = answer(response, 400)
    assert body == {"username": messages}
    assert app.store.get_user(2) is None


def test_nfkc_lookalike_logs_into_the_same_account_and_cyrillic_does_not(app: Any) -> None:
    """Fullwidth alice is alice after NFKC (200); alice with a Cyrillic a is nobody (401)."""
    tokens = login(app, FULLWIDTH_ALICE)
    me = app.get(ME, headers={"Authorization": f"Bearer {tokens['access']}"}).json
    assert me["username"] == "alice"
    response = app.post_json(
        TOKEN, {"username": CYRILLIC_A_LICE, "password": PASSWORD}, expect_errors=True
    )
    assert answer(response, 401) == BAD_CREDENTIALS


def test_huge_password_on_register_is_refused_before_hashing(app: Any) -> None:
    """A 60 000-byte password: 400 ``{"password": [...too long...]}``."""
    response = app.post_json(
        REGISTER, {"username": "bob", "password": "Zq9!" * 15000}, expect_errors=True
    )
    body = answer(response, 400)
    assert list(body) == ["password"]
    assert any("too long" in message for message in body["password"])


# -- headers ---------------------------------------------------------------------------------

ALLOWED = "http://localhost:8001"


@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "*",
        "http://localhost:8001.evil.com",
        "http://evil.com#http://localhost:8001",
        "http://localhost:8001@evil.com",
        "https://localhost:8001",
        "http://localhost:8000",
        "http://localhost:8001/",
        "http://localhost:80010",
        "http://localhost:08001",
        "javascript:alert(1)",
        "file://",
        "http://l\u043ecalhost:8001",
        "http://" + "a" * 10000,
        "http://localhost:8001, http://localhost:8001",
        " http://localhost:8001",
        "",
    ],
    ids=[
        "null",
        "star",
        "suffix-domain",
        "fragment",
        "userinfo",
        "other-scheme",
        "other-port",
        "trailing-slash",
        "port-suffix",
        "port-leading-zero",
        "javascript",
        "file",
        "cyrillic-o",
        "10k-host",
        "two-in-one",
        "leading-space",
        "empty",
    ],
)
def test_absurd_origin_gets_no_cors_headers_and_a_normal_answer(app: Any, origin: str) -> None:
    """The request is still served (200 JSON), but no ``Access-Control-*`` header is sent."""
    response = app.get(HEALTH, headers={"Origin": origin})
    assert answer(response, 200) == {"status": "ok"}
    assert not [name for name in response.headers if name.lower().startswith("access-control")]
    assert "Origin" in response.headers["Vary"]


def test_upper_case_origin_is_normalised_and_allowed(app: Any) -> None:
    """``HTTP://LOCALHOST:8001`` is the allowed origin after normalisation (answered in its
    normal form; browsers only ever send that form)."""
    response = app.get(HEALTH, headers={"Origin": "HTTP://LOCALHOST:8001"})
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, NOT_PROVIDED),
        ("", NOT_PROVIDED),
        ("Basic YWxpY2U6cGFzcw==", NOT_PROVIDED),
        ("Token abc", NOT_PROVIDED),
        ("Bearer", BAD_HEADER),
        ("Bearer a b", BAD_HEADER),
        ("Bearer\ta.b.c\textra", BAD_HEADER),
        ("Bearer " + "a" * 100 * 1024, None),
        ("bearer a.b.c", None),
        ("Bearer a.b.c", None),
        ("Bearer ../../etc/passwd", None),
    ],
    ids=[
        "missing",
        "empty",
        "basic",
        "token-scheme",
        "bearer-alone",
        "three-parts",
        "tabs-three-parts",
        "100k-token",
        "lower-case-scheme",
        "garbage-token",
        "path-traversal",
    ],
)
def test_authorization_header_variants_on_me(
    app: Any, authorization: str | None, expected: dict[str, str] | None
) -> None:
    """401 with the not-provided, bad-header or access-token-rejected body (``None`` here)."""
    headers = {} if authorization is None else {"Authorization": authorization}
    response = app.get(ME, headers=headers, expect_errors=True)
    body = answer(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    if expected is not None:
        assert body == expected
    else:
        assert body["code"] == "token_not_valid"
        assert body["messages"][0]["message"] == "Token is invalid"


# -- tokens of every malformed kind ------------------------------------------------------------


def _strip_last(text: str) -> str:
    return text[:-1]


def _tamper_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{head}.{payload}.{flipped}{signature[1:]}"


def _swap_payload(token: str, replacement: dict[str, Any]) -> str:
    head, _, signature = token.split(".")
    return f"{head}.{segment(replacement)}.{signature}"


def _rebuild(token: str, transform: Callable[[str], str]) -> str:
    return ".".join(transform(part) for part in token.split("."))


# id: builder (token_type -> token), the body verify/refresh/blacklist answer
TOKENS: dict[str, tuple[Callable[[str], str], dict[str, str]]] = {
    "garbage": (lambda t: "not-a-token", INVALID),
    "two-segments": (lambda t: "a.b", INVALID),
    "four-segments": (lambda t: forge(HS256, claims(t)) + ".x", INVALID),
    "five-segments-jwe": (lambda t: "a.b.c.d.e", INVALID),
    "only-dots": (lambda t: "..", INVALID),
    "alg-none": (
        lambda t: f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims(t))}.",
        INVALID,
    ),
    "alg-None-capitalised": (
        lambda t: f"{segment({'alg': 'None'})}.{segment(claims(t))}.",
        INVALID,
    ),
    "alg-missing": (lambda t: forge({"typ": "JWT"}, claims(t)), INVALID),
    "alg-hs512-same-secret": (
        lambda t: forge({"alg": "HS512"}, claims(t), digest="sha512"),
        INVALID,
    ),
    "alg-rs256-hmac-signed": (lambda t: forge({"alg": "RS256"}, claims(t)), INVALID),
    "alg-not-a-string": (lambda t: forge({"alg": ["HS256"]}, claims(t)), INVALID),
    "other-secret": (lambda t: forge(HS256, claims(t), secret=OTHER_SECRET), INVALID),
    "signature-stripped": (lambda t: forge(HS256, claims(t)).rsplit(".", 1)[0] + ".", INVALID),
    "signature-tampered": (lambda t: _tamper_signature(forge(HS256, claims(t))), INVALID),
    "signature-truncated": (lambda t: _strip_last(forge(HS256, claims(t))), INVALID),
    "payload-swapped": (
        lambda t: _swap_payload(forge(HS256, claims(t)), claims(t, user_id="2")),
        INVALID,
    ),
    "base64-padded": (lambda t: _rebuild(forge(HS256, claims(t)), lambda s: s + "=="), INVALID),
    "base64-standard-alphabet": (
        lambda t: forge(HS256, claims(t)).replace("-", "+").replace("_", "/") + "+/",
        INVALID,
    ),
    "space-inside": (lambda t: forge(HS256, claims(t)).replace(".", ". ", 1), INVALID),
    "non-ascii": (lambda t: "é.é.é", INVALID),
    "header-not-json": (lambda t: forge(b"not json", claims(t)), INVALID),
    "header-array": (lambda t: forge(b"[]", claims(t)), INVALID),
    "header-duplicate-alg": (lambda t: forge(b'{"alg":"none","alg":"HS256"}', claims(t)), INVALID),
    "header-crit": (lambda t: forge({"alg": "HS256", "crit": ["exp"]}, claims(t)), INVALID),
    "payload-not-json": (lambda t: forge(HS256, b"\xff\xfe"), INVALID),
    "payload-array": (lambda t: forge(HS256, [claims(t)]), INVALID),
    "payload-duplicate-user-id": (
        lambda t: forge(HS256, json.dumps(claims(t))[:-1].encode() + b', "user_id": "2"}'),
        INVALID,
    ),
    "token-type-admin": (lambda t: forge(HS256, claims("admin")), INVALID),
    "token-type-missing": (lambda t: forge(HS256, claims(t, token_type=...)), INVALID),
    "user-id-int": (lambda t: forge(HS256, claims(t, user_id=1)), INVALID),
    "user-id-negative": (lambda t: forge(HS256, claims(t, user_id="-1")), INVALID),
    "user-id-arabic-digit": (lambda t: forge(HS256, claims(t, user_id="\u0661")), INVALID),
    "user-id-beyond-int64": (lambda t: forge(HS256, claims(t, user_id="9" * 20)), INVALID),
    "user-id-5000-digits": (lambda t: forge(HS256, claims(t, user_id="9" * 5000)), INVALID),
    "user-id-missing": (lambda t: forge(HS256, claims(t, user_id=...)), INVALID),
    "jti-int": (lambda t: forge(HS256, claims(t, jti=7)), INVALID),
    "jti-missing": (lambda t: forge(HS256, claims(t, jti=...)), INVALID),
    "exp-missing": (lambda t: forge(HS256, claims(t, exp=...)), INVALID),
    "exp-string": (lambda t: forge(HS256, claims(t, exp=str(NOW + 10))), INVALID),
    "exp-bool": (lambda t: forge(HS256, claims(t, exp=True)), INVALID),
    "iat-in-the-future": (
        lambda t: forge(HS256, claims(t, iat=NOW + 3600, exp=NOW + 7200)),
        INVALID,
    ),
    "expired": (lambda t: forge(HS256, claims(t, iat=NOW - 100, exp=NOW)), EXPIRED),
    "oversized": (lambda t: forge(HS256, claims(t, pad="x" * 20000)), INVALID),
    "json-serialization": (lambda t: json.dumps({"payload": "x", "signature": "y"}), INVALID),
}
TOKEN_ENDPOINTS = [(VERIFY, "token"), (REFRESH, "refresh"), (BLACKLIST, "refresh")]


@pytest.mark.parametrize(
    ("endpoint", "field"), TOKEN_ENDPOINTS, ids=["verify", "refresh", "blacklist"]
)
@pytest.mark.parametrize(("build", "expected"), list(TOKENS.values()), ids=list(TOKENS))
def test_malformed_token_in_a_body_is_401(
    app: Any, endpoint: str, field: str, build: Callable[[str], str], expected: dict[str, str]
) -> None:
    """401 ``{"detail": "Token is invalid"|"Token is expired", "code": "token_not_valid"}``."""
    token_type = "access" if endpoint == VERIFY else "refresh"
    response = app.post_json(endpoint, {field: build(token_type)}, expect_errors=True)
    assert answer(response, 401) == expected
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(("build", "expected"), list(TOKENS.values()), ids=list(TOKENS))
def test_malformed_token_as_bearer_is_401(
    app: Any, build: Callable[[str], str], expected: dict[str, str]
) -> None:
    """401 with simplejwt's access-token-rejected body (or bad-header for a split token)."""
    token = build("access")
    response = app.get(ME, headers={"Authorization": f"Bearer {token}"}, expect_errors=True)
    body = answer(response, 401)
    if len(token.split()) != 1:
        assert body == BAD_HEADER
        return
    assert body == {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [
            {"token_class": "AccessToken", "token_type": "access", "message": expected["detail"]}
        ],
    }


def test_tokens_used_in_the_wrong_place(app: Any) -> None:
    """Access for refresh/blacklist and refresh for /me: wrong type; unknown refresh: invalid."""
    tokens = login(app)
    refresh = app.post_json(REFRESH, {"refresh": tokens["access"]}, expect_errors=True)
    assert answer(refresh, 401) == WRONG_TYPE
    blacklist = app.post_json(BLACKLIST, {"refresh": tokens["access"]}, expect_errors=True)
    assert answer(blacklist, 401) == WRONG_TYPE
    me = app.get(ME, headers={"Authorization": f"Bearer {tokens['refresh']}"}, expect_errors=True)
    assert answer(me, 401)["messages"][0]["message"] == "Token has wrong type"
    # Well signed, well formed, but never issued: not on record.
    unknown = forge(HS256, claims("refresh"))
    for endpoint, field in TOKEN_ENDPOINTS:
        response = app.post_json(endpoint, {field: unknown}, expect_errors=True)
        assert answer(response, 401) == INVALID


# -- over real sockets ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``serve.py`` for the raw-socket rows (cheap hashing, a registered alice)."""
    directory: Path = tmp_path_factory.mktemp("hostile")
    with ServerProcess(database=directory / "jwtlite.sqlite3", env=FAST_HASH_ENV) as process:
        reply = http("POST", process.url + REGISTER, {"username": "alice", "password": PASSWORD})
        assert reply.status == 201
        yield process


def port_of(server: ServerProcess) -> int:
    """The port a ServerProcess listens on."""
    return int(server.url.rsplit(":", 1)[1])


CTYPE = ("Content-Type", JSON)
CREDENTIALS = b'{"username":"alice","password":"wrong-password-1"}'


def chunked(body: bytes, size: int = 7) -> bytes:
    """``body`` in chunked transfer coding, ``size`` bytes a chunk."""
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


# Beyond this size waitress refuses a body itself (serve.py's WAITRESS_BODY_LIMIT).
SERVER_LIMIT = 1024 * 1024

# id: (raw request, status, JSON body expected: members compared exactly, "detail" by prefix)
RAW_ATTACKS: dict[str, tuple[bytes, int, dict[str, Any]]] = {
    # Fewer bytes than the body: the app reads 5 bytes, which are not JSON.
    "content-length-too-small": (
        request("POST", TOKEN, [CTYPE, ("Content-Length", "5")], CREDENTIALS),
        400,
        {"detail": "JSON parse error - "},
    ),
    "content-length-limit-plus-one": (
        request("POST", TOKEN, [CTYPE, ("Content-Length", str(LIMIT + 1))], padded({}, LIMIT + 1)),
        413,
        {"detail": "Request body is larger than the limit of 65536 bytes."},
    ),
    "authorization-20k": (
        request("GET", ME, [("Authorization", "Bearer " + "a" * 20 * 1024)]),
        401,
        {"detail": "Given token not valid for any token type", "code": "token_not_valid"},
    ),
    "authorization-100k": (
        request("GET", ME, [("Authorization", "Bearer " + "a" * 100 * 1024)]),
        431,
        {"detail": "Request Header Fields Too Large: exceeds max_header of 32768"},
    ),
    "authorization-not-utf8": (
        request("GET", ME, []).replace(b"\r\n\r\n", b"\r\nAuthorization: Bearer \xff\xfe\r\n\r\n"),
        401,
        {"detail": "Given token not valid for any token type", "code": "token_not_valid"},
    ),
    "origin-not-utf8": (
        request("GET", HEALTH, []).replace(b"\r\n\r\n", b"\r\nOrigin: http://\xff\r\n\r\n"),
        200,
        {"status": "ok"},
    ),
    # waitress answers these itself, before the app is called (serve.py makes them JSON).
    # Chunked request bodies are refused (411): waitress parses chunk framing in Python on
    # its one I/O thread, and a megabyte of one-byte chunks held it for half a second.
    "chunked-body": (
        request("POST", TOKEN, [CTYPE, ("Transfer-Encoding", "chunked")], chunked(CREDENTIALS)),
        411,
        {"detail": "Length Required: send Content-Length; chunked bodies are refused"},
    ),
    "chunked-limit-plus-one": (
        request(
            "POST",
            TOKEN,
            [CTYPE, ("Transfer-Encoding", "chunked")],
            chunked(padded({}, LIMIT + 1), 4096),
        ),
        411,
        {"detail": "Length Required: send Content-Length; chunked bodies are refused"},
    ),
    "invalid-chunk-size": (
        request("POST", TOKEN, [CTYPE, ("Transfer-Encoding", "chunked")], b"zz\r\n{}\r\n0\r\n\r\n"),
        411,
        {"detail": "Length Required: send Content-Length; chunked bodies are refused"},
    ),
    "one-byte-chunks": (
        request("POST", TOKEN, [CTYPE, ("Transfer-Encoding", "chunked")], chunked(b"x" * 4096, 1)),
        411,
        {"detail": "Length Required: send Content-Length; chunked bodies are refused"},
    ),
    "folded-transfer-encoding": (
        request("POST", TOKEN, [CTYPE, ("Content-Length", "2")]).replace(
            b"Content-Length: 2\r\n", b"Content-Length: 2\r\n Transfer-Encoding: chunked\r\n"
        )
        + b"{}",
        400,
        {"detail": "Bad Request: obsolete line folding"},
    ),
    "two-content-lengths": (
        request("POST", TOKEN, [CTYPE, ("Content-Length", "2"), ("Content-Length", "3")], b"{} "),
        400,
        {"detail": "Bad Request: Content-Length is invalid"},
    ),
    "negative-content-length": (
        request("POST", TOKEN, [CTYPE, ("Content-Length", "-1")], b"{}"),
        400,
        {"detail": "Bad Request: Content-Length is invalid"},
    ),
    # Both framings (RFC 9112 §6.1): refused, where waitress alone would follow the chunks.
    "content-length-and-chunked": (
        request(
            "POST",
            TOKEN,
            [CTYPE, ("Content-Length", "40"), ("Transfer-Encoding", "chunked")],
            b"0\r\n\r\n",
        ),
        400,
        {"detail": "Bad Request: Content-Length and Transfer-Encoding together"},
    ),
    "chunked-in-http-1.0": (
        request("POST", TOKEN, [CTYPE, ("Transfer-Encoding", "chunked")], b"0\r\n\r\n").replace(
            b"HTTP/1.1", b"HTTP/1.0", 1
        ),
        400,
        {"detail": "Bad Request: Transfer-Encoding in an HTTP/1.0 request"},
    ),
    "unsupported-transfer-encoding": (
        request("POST", TOKEN, [CTYPE, ("Transfer-Encoding", "gzip, chunked")], b"0\r\n\r\n"),
        501,
        {"detail": "Not Implemented: Transfer-Encoding requested is not supported."},
    ),
    "content-length-over-server-limit": (  # refused before a byte of the body is read
        request("POST", TOKEN, [CTYPE, ("Content-Length", str(SERVER_LIMIT))]),
        413,
        {"detail": f"Request Entity Too Large: exceeds max_body of {SERVER_LIMIT}"},
    ),
    "chunked-over-server-limit": (  # one chunk of exactly the limit, no last chunk
        request("POST", TOKEN, [CTYPE, ("Transfer-Encoding", "chunked")], b"100000\r\n")
        + b" " * SERVER_LIMIT,
        411,
        {"detail": "Length Required: send Content-Length; chunked bodies are refused"},
    ),
    "bare-cr-in-header-value": (
        request("GET", HEALTH, [("Origin", f"{ALLOWED}\rX-Injected: 1")]),
        400,
        {"detail": "Bad Request: Bare CR or LF found in header line"},
    ),
    "bare-lf-in-header-value": (
        request("GET", HEALTH, [("Origin", f"{ALLOWED}\nX-Injected: 1")]),
        400,
        {"detail": "Bad Request: Bare CR or LF found in header line"},
    ),
    "nul-in-header-value": (
        request("GET", HEALTH, [("Origin", f"{ALLOWED}\x00")]),
        400,
        {"detail": "Bad Request: Invalid header"},
    ),
    "header-lines-40k": (
        request("GET", ME, [("X-A", "1")] * 5000),
        431,
        {"detail": "Request Header Fields Too Large: exceeds max_header of 32768"},
    ),
    "invalid-utf8-in-path": (
        b"GET /accounts/\xff/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        400,
        {"detail": "Bad Request: Bad URI"},
    ),
}
# The rows above that waitress answers itself, before the app.
WAITRESS_ANSWERS = [
    "invalid-chunk-size",
    "two-content-lengths",
    "negative-content-length",
    "content-length-and-chunked",
    "chunked-in-http-1.0",
    "unsupported-transfer-encoding",
    "content-length-over-server-limit",
    "chunked-over-server-limit",
    "chunked-body",
    "one-byte-chunks",
    "folded-transfer-encoding",
    "bare-cr-in-header-value",
    "bare-lf-in-header-value",
    "nul-in-header-value",
    "header-lines-40k",
    "authorization-100k",
    "invalid-utf8-in-path",
]


@pytest.mark.parametrize(
    ("raw", "status", "expected"), list(RAW_ATTACKS.values()), ids=list(RAW_ATTACKS)
)
def test_raw_hostile_request_gets_its_documented_answer(
    server: ServerProcess, raw: bytes, status: int, expected: dict[str, Any]
) -> None:
    """Every answer is JSON, waitress's own refusals included (compared key by key, ``detail``
    by prefix), and the server keeps serving."""
    got_status, headers, body = parse(exchange(port_of(server), raw))
    assert got_status == status, body[:300]
    assert headers["content-type"] == JSON
    document = json.loads(body)
    for name, value in expected.items():
        if name == "detail":
            assert document[name].startswith(value)
        else:
            assert document[name] == value
    assert "x-injected" not in headers
    assert_still_serving(server)


@pytest.mark.parametrize("name", WAITRESS_ANSWERS)
def test_waitress_answers_like_the_app_and_closes_the_connection(
    server: ServerProcess, name: str
) -> None:
    """waitress's own refusals keep its status, are JSON that must not be stored, say
    ``Connection: close`` and close: the client need not close first (close_write=False)."""
    raw, status, _ = RAW_ATTACKS[name]
    got_status, headers, body = parse(exchange(port_of(server), raw, close_write=False))
    assert got_status == status
    assert (headers["content-type"], headers["cache-control"]) == (JSON, "no-store")
    assert headers["connection"] == "close"
    assert set(json.loads(body)) == {"detail"}


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read exactly one response (with a ``Content-Length``) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole response: {data!r}"
        data += chunk
    status, headers, body = parse(data)
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "closed inside a body"
        body += chunk
    return status, headers, body


def kept_alive(method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """A raw HTTP/1.1 request without ``Connection: close`` (keep-alive is the default)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


SMUGGLED = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(
    server: ServerProcess,
) -> None:
    """The classic smuggling shape: a front end that believes Content-Length forwards the
    whole body; waitress alone would end the body at the last chunk and answer the request
    hidden after it on the same connection. Now: one 400, then the server closes."""
    body = b"0\r\n\r\n" + SMUGGLED
    raw = kept_alive(
        "POST",
        VERIFY,
        [CTYPE, ("Content-Length", str(len(body))), ("Transfer-Encoding", "chunked")],
        body,
    )
    answer = exchange(port_of(server), raw, close_write=False, timeout=5.0)
    assert answer.count(b"HTTP/1.1 ") == 1, answer  # the hidden request got no answer
    status, headers, document = parse(answer)
    assert (status, headers["connection"]) == (400, "close")
    assert json.loads(document) == {
        "detail": "Bad Request: Content-Length and Transfer-Encoding together"
    }


def test_plain_length_requests_keep_the_connection_alive(
    server: ServerProcess,
) -> None:
    """The refusal is narrow: Content-Length framing is served, several on one connection."""
    token = b'{"token":"a.b.c"}'
    requests = [
        kept_alive("POST", VERIFY, [CTYPE, ("Content-Length", str(len(token)))], token),
        kept_alive("POST", VERIFY, [CTYPE, ("Content-Length", str(len(token)))], token),
        kept_alive("GET", HEALTH, [], b""),
    ]
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
        answers = []
        for raw in requests:
            sock.sendall(raw)
            status, headers, body = read_response(sock)
            assert "connection" not in headers
            answers.append((status, json.loads(body)))
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):  # still open: nothing to read, no end of stream
            sock.recv(1)
    assert answers == [(401, INVALID), (401, INVALID), (200, {"status": "ok"})]


def assert_still_serving(server: ServerProcess) -> None:
    """The process is alive and answers a fresh connection."""
    assert server.process is not None
    assert server.process.poll() is None
    status, _, body = parse(exchange(port_of(server), request("GET", HEALTH, [])))
    assert (status, json.loads(body)) == (200, {"status": "ok"})


@pytest.mark.parametrize("count", [2, 50], ids=["two-origins", "fifty-origins"])
def test_repeated_origin_headers_are_not_allowed(server: ServerProcess, count: int) -> None:
    """Repeated ``Origin`` headers arrive joined ("a, a"), which is no origin: 200, no CORS."""
    raw = request("GET", HEALTH, [("Origin", ALLOWED)] * count)
    status, headers, body = parse(exchange(port_of(server), raw))
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert not [name for name in headers if name.startswith("access-control")]


def test_repeated_mixed_origins_are_not_allowed(server: ServerProcess) -> None:
    """An allowed and an evil origin together: no CORS header for either."""
    raw = request("GET", HEALTH, [("Origin", "http://evil.com"), ("Origin", ALLOWED)])
    status, headers, _ = parse(exchange(port_of(server), raw))
    assert status == 200
    assert "access-control-allow-origin" not in headers


def test_content_length_larger_than_the_body_neither_hangs_nor_crashes(
    server: ServerProcess,
) -> None:
    """A body shorter than its ``Content-Length``: waitress waits for the rest. Once the client
    closes its side the connection ends without an app response, and the server still
    answers the next connection."""
    raw = request("POST", TOKEN, [CTYPE, ("Content-Length", "1000")], CREDENTIALS)
    assert exchange(port_of(server), raw, close_write=True, timeout=15.0) == b""
    # And a client that goes silent without closing: we give up, the server lives on.
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
        sock.sendall(raw)
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    assert_still_serving(server)


def test_crlf_in_a_body_value_is_not_reflected_into_headers(app: Any) -> None:
    """CR/LF inside JSON strings stays data: no header is ever built from it."""
    response = app.post_json(
        TOKEN,
        {"username": "alice\r\nSet-Cookie: x=1", "password": "x\r\nX-A: b"},
        expect_errors=True,
    )
    assert answer(response, 401) == BAD_CREDENTIALS
    assert "Set-Cookie" not in response.headers
    assert "X-A" not in response.headers
