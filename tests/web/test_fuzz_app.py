"""Property-based fuzzing of the WSGI app (hypothesis through webtest).

Whatever the body or token, the service answers below 500, in JSON, in one of the documented
shapes, and issues tokens only for the right credentials. One app serves every example of a
property (a module-scoped client with one real user, alice); throttling limits are raised so
that the credential checks themselves are exercised.
"""

from __future__ import annotations

import json
import string
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import FAST_HASH, PASSWORD, FakeClock, login, register

with warnings.catch_warnings():  # webob imports the deprecated cgi module on Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import webtest

REGISTER = "/accounts/register/"
TOKEN = "/accounts/token/"
REFRESH = "/accounts/token/refresh/"
VERIFY = "/accounts/token/verify/"
BLACKLIST = "/accounts/token/blacklist/"
ME = "/accounts/me/"
POST_ENDPOINTS = [REGISTER, TOKEN, REFRESH, VERIFY, BLACKLIST]

# The documented success bodies, by endpoint: the exact key sets.
SUCCESS_KEYS: dict[str, list[set[str]]] = {
    REGISTER: [{"id", "username", "email"}],
    TOKEN: [{"refresh", "access"}],
    REFRESH: [{"access"}, {"access", "refresh"}],
    VERIFY: [set()],
    BLACKLIST: [set()],
    ME: [{"id", "username", "email", "date_joined", "last_login"}],
}
ERROR_KEYS = {"detail", "code", "messages"}
TOKEN_KEYS = {"access", "refresh"}

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # no state shared between runs or engineers: each run is its own search
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One app for every example: cheap hashing, generous throttling, alice registered."""
    from jwtlite.service.settings import Settings
    from jwtlite.store.sqlite import SQLiteStore
    from jwtlite.web.app import create_app

    directory: Path = tmp_path_factory.mktemp("fuzz")
    options: dict[str, Any] = {
        "database": str(directory / "jwtlite.sqlite3"),
        "login_max_failures": 1_000_000,
        "login_max_failures_per_address": 1_000_000,
        **FAST_HASH,
    }
    app_settings = Settings(**options)
    store = SQLiteStore(app_settings.database)
    test_app = webtest.TestApp(create_app(app_settings, store=store, clock=FakeClock()))
    register(test_app)
    yield test_app
    store.close()


@pytest.fixture(scope="module")
def tokens(client: Any) -> list[str]:
    """A few real tokens (access and refresh) for the mutation strategies."""
    pairs = [login(client) for _ in range(3)]
    return [pair[kind] for pair in pairs for kind in ("access", "refresh")]


def check_documented(response: Any, endpoint: str) -> dict[str, Any]:
    """Assert the response is below 500, JSON, and in a documented shape; return the body."""
    assert response.status_int < 500, response.body[:500]
    assert str(response.headers["Content-Type"]).startswith("application/json")
    body = json.loads(response.body)
    assert isinstance(body, dict), body
    if response.status_int < 400:
        assert set(body) in SUCCESS_KEYS[endpoint], body
        return body
    for name in set(body) & TOKEN_KEYS:  # only ever the field's messages, never a token
        assert isinstance(body[name], list), body
    if "detail" in body:
        assert set(body) <= ERROR_KEYS, body
        assert isinstance(body["detail"], str)
        assert isinstance(body.get("code", ""), str)
        assert isinstance(body.get("messages", []), list)
    else:  # one list of messages per field
        assert body, "an error body is never empty"
        for name, messages in body.items():
            assert isinstance(name, str)
            assert isinstance(messages, list)
            assert messages
            assert all(isinstance(message, str) for message in messages)
    if response.status_int == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    return body


# -- strategies ------------------------------------------------------------------------------

FIELD_NAMES = ["username", "password", "email", "token", "refresh"]

# Characters that have broken services before: NUL, lone surrogates (legal in JSON as
# "\ud800" escapes), look-alikes, invisible and bidi controls, CR/LF.
SPECIAL_CHARACTERS = [
    "\x00",
    "\ud800",
    "\udfff",
    "\uff41",
    "\u0430",
    "\u200b",
    "\u202e",
    "\r",
    "\n",
]
# Joined from a list because st.text() never yields a surrogate, whatever its alphabet.
texts = st.lists(st.characters() | st.sampled_from(SPECIAL_CHARACTERS), max_size=40).map("".join)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Mostly the names the endpoints read, sometimes others; values of any JSON type.
field_values = texts | json_values | st.sampled_from(["alice", "ALICE", PASSWORD, "", " "])
# Each endpoint's field names, each present about half the time (so that often every field
# an endpoint needs is there and the values reach the service), plus any other keys.
field_dicts = st.builds(
    lambda known, other: {**other, **known},
    st.fixed_dictionaries({}, optional=dict.fromkeys(FIELD_NAMES, field_values)),
    st.dictionaries(texts, json_values, max_size=2),
)
bodies = field_dicts | json_values


@given(endpoint=st.sampled_from(POST_ENDPOINTS), body=bodies)
@FUZZ
def test_any_json_body_gets_a_documented_answer(client: Any, endpoint: str, body: Any) -> None:
    """Any JSON value on any POST endpoint: < 500, JSON, documented shape; tokens only from a
    login with alice's real password."""
    response = client.post_json(endpoint, body, expect_errors=True)
    answer = check_documented(response, endpoint)
    if response.status_int < 400 and set(answer) & TOKEN_KEYS:
        assert endpoint == TOKEN
        assert isinstance(body, dict)
        assert body.get("password") == PASSWORD


CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "application/json; charset=utf-16",
    "application/x-www-form-urlencoded",
    "text/plain",
    "",
]


@given(
    endpoint=st.sampled_from(POST_ENDPOINTS),
    content_type=st.sampled_from(CONTENT_TYPES),
    raw=st.binary(max_size=300)
    | st.text(max_size=200).map(str.encode)
    | bodies.map(lambda value: json.dumps(value).encode()),
)
@FUZZ
def test_any_raw_body_gets_a_documented_answer(
    client: Any, endpoint: str, content_type: str, raw: bytes
) -> None:
    """Arbitrary bytes under any content type: < 500, JSON, documented shape, no token."""
    response = client.post(endpoint, raw, content_type=content_type, expect_errors=True)
    answer = check_documented(response, endpoint)
    if response.status_int < 400 and set(answer) & TOKEN_KEYS:
        assert endpoint == TOKEN
        assert PASSWORD.encode() in raw


# Spellings that all name alice (case, NFKC, surrounding whitespace) and some that do not.
ALICE_SPELLINGS = ["alice", "ALICE", "Alice", " alice ", "\uff41lice", "\u0430lice", "alice\x00"]


@given(
    username=st.sampled_from(ALICE_SPELLINGS) | texts,
    password=texts.filter(lambda value: value != PASSWORD)
    | st.sampled_from([PASSWORD + " ", " " + PASSWORD, PASSWORD.upper(), PASSWORD[:-1]]),
)
@FUZZ
def test_wrong_password_never_yields_a_token(client: Any, username: str, password: str) -> None:
    """A login with any password but alice's real one never returns a token."""
    response = client.post_json(
        TOKEN, {"username": username, "password": password}, expect_errors=True
    )
    answer = check_documented(response, TOKEN)
    assert response.status_int in (400, 401)
    assert "access" not in answer or isinstance(answer["access"], list)


B64URL = string.ascii_letters + string.digits + "-_"


@st.composite
def mutated_tokens(draw: st.DrawFn, originals: list[str]) -> str:
    """A real token with one small edit: a character changed, inserted or removed, segments
    swapped, duplicated or dropped."""
    token = draw(st.sampled_from(originals))
    parts = token.split(".")
    edit = draw(st.sampled_from(["change", "insert", "delete", "swap", "duplicate", "drop"]))
    if edit in ("change", "insert", "delete"):
        index = draw(st.integers(min_value=0, max_value=len(token) - 1))
        char = draw(st.sampled_from(B64URL + ".=+/ "))
        if edit == "change":
            return token[:index] + char + token[index + 1 :]
        if edit == "insert":
            return token[:index] + char + token[index:]
        return token[:index] + token[index + 1 :]
    i = draw(st.integers(min_value=0, max_value=2))
    j = draw(st.integers(min_value=0, max_value=2))
    if edit == "swap":
        parts[i], parts[j] = parts[j], parts[i]
    elif edit == "duplicate":
        parts.insert(i, parts[j])
    else:
        del parts[i]
    return ".".join(parts)


def token_strings(originals: list[str]) -> st.SearchStrategy[str]:
    """Random text, dotted base64url segments, and mutations of real tokens."""
    segments = st.lists(st.text(alphabet=B64URL, max_size=60), min_size=1, max_size=5).map(".".join)
    return texts | segments | mutated_tokens(originals)


TOKEN_FIELDS = {VERIFY: "token", REFRESH: "refresh", BLACKLIST: "refresh"}


@given(data=st.data(), endpoint=st.sampled_from(list(TOKEN_FIELDS)))
@FUZZ
def test_any_token_in_a_body_gets_a_documented_answer(
    client: Any, tokens: list[str], data: st.DataObject, endpoint: str
) -> None:
    """Random and mutated tokens on verify/refresh/blacklist: < 500, JSON, documented shape;
    a success only ever for an unmodified real token."""
    token = data.draw(token_strings(tokens))
    response = client.post_json(endpoint, {TOKEN_FIELDS[endpoint]: token}, expect_errors=True)
    check_documented(response, endpoint)
    if response.status_int < 400:
        assert token in tokens


PRINTABLE_ASCII = "".join(chr(code) for code in range(0x20, 0x7F))


@given(data=st.data())
@FUZZ
def test_any_bearer_token_on_me_gets_a_documented_answer(
    client: Any, tokens: list[str], data: st.DataObject
) -> None:
    """Random and mutated Bearer tokens on /me: < 500, JSON, documented shape; 200 only for an
    unmodified real access token."""
    token = data.draw(
        st.text(alphabet=PRINTABLE_ASCII, max_size=80)
        | st.lists(st.text(alphabet=B64URL, max_size=60), min_size=1, max_size=5).map(".".join)
        | mutated_tokens(tokens)
    )
    scheme = data.draw(st.sampled_from(["Bearer ", "bearer ", "Bearer  ", "JWT ", ""]))
    response = client.get(ME, headers={"Authorization": scheme + token}, expect_errors=True)
    check_documented(response, ME)
    if response.status_int < 400:
        assert token in tokens
