"""The service's rules end to end through webtest: refresh and rotation, logout, token types,
expiry boundaries, issuer/audience, foreign keys, login throttling, rehash, purging.

Time moves only through the injected ``clock``; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import jwtlite

from support import PASSWORD, FakeClock, login, register
from support.contract import (
    NO_ACCOUNT,
    TOKEN_BLACKLISTED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_WRONG_TYPE,
    assert_error,
    assert_json,
    assert_unauthorized,
    bearer,
    claims,
    post,
)

# Every test that builds a client runs on SQLite and on PostgreSQL (conftest).
pytestmark = pytest.mark.both_backends

TOKEN = "/accounts/token/"
REFRESH = "/accounts/token/refresh/"
VERIFY = "/accounts/token/verify/"
BLACKLIST = "/accounts/token/blacklist/"
ME = "/accounts/me/"
WINDOW = 300


def _refresh(client: Any, token: str) -> Any:
    return post(client, REFRESH, {"refresh": token})


def _rotate(client: Any, token: str) -> str:
    """Refresh under rotation and return the new refresh token."""
    response = _refresh(client, token)
    assert response.status_int == 200, response.body
    body = assert_json(response)
    assert set(body) == {"access", "refresh"}
    new: str = body["refresh"]
    return new


def _state(client: Any, token: str) -> str | None:
    record = client.store.get_refresh_token(claims(token)["jti"])
    return None if record is None else str(record.state)


def _fail_login(client: Any, username: str, **kwargs: Any) -> Any:
    return post(client, TOKEN, {"username": username, "password": "not-the-password"}, **kwargs)


def _login(client: Any, username: str = "alice", **kwargs: Any) -> Any:
    return post(client, TOKEN, {"username": username, "password": PASSWORD}, **kwargs)


def _assert_throttled(response: Any, retry_after: int) -> None:
    message = f"Request was throttled. Expected available in {retry_after} seconds."
    assert_error(response, 429, {"detail": message})
    assert response.headers["Retry-After"] == str(retry_after)


# -- refresh without rotation ----------------------------------------------------------------


def test_same_refresh_token_refreshes_until_it_expires(client: Any, clock: FakeClock) -> None:
    register(client)
    pair = login(client)
    accesses = set()
    for _ in range(3):
        clock.advance(9)
        response = _refresh(client, pair["refresh"])
        assert response.status_int == 200
        body = assert_json(response)
        assert set(body) == {"access"}
        assert claims(body["access"])["iat"] == int(clock.now)
        accesses.add(body["access"])
    assert len(accesses) == 3
    assert _state(client, pair["refresh"]) == "active"
    clock.advance(3)  # now == exp
    assert_unauthorized(_refresh(client, pair["refresh"]), TOKEN_EXPIRED)


# -- rotation --------------------------------------------------------------------------------


@pytest.fixture
def rotating(make_client: Callable[..., Any]) -> Any:
    """A client with ``rotate_refresh_tokens=True`` and the user alice registered."""
    client = make_client(rotate_refresh_tokens=True)
    register(client)
    return client


def test_rotation_returns_a_new_refresh_token_and_spends_the_old(
    rotating: Any, clock: FakeClock
) -> None:
    first = login(rotating)["refresh"]
    clock.advance(4)
    second = _rotate(rotating, first)
    assert second != first
    old, new = claims(first), claims(second)
    assert new["jti"] != old["jti"]
    assert new["iat"] == int(clock.now)
    assert new["exp"] == new["iat"] + 30
    assert _state(rotating, first) == "spent"
    assert _state(rotating, second) == "active"
    family = {rotating.store.get_refresh_token(c["jti"]).family for c in (old, new)}
    assert len(family) == 1


@pytest.mark.parametrize("reused", [0, 1], ids=["first", "middle"])
def test_reusing_a_spent_token_revokes_the_family(rotating: Any, reused: int) -> None:
    chain = [login(rotating)["refresh"]]
    for _ in range(2):
        chain.append(_rotate(rotating, chain[-1]))
    other_session = login(rotating)["refresh"]
    assert_unauthorized(_refresh(rotating, chain[reused]), TOKEN_BLACKLISTED)
    newest = chain[-1]
    assert_unauthorized(_refresh(rotating, newest), TOKEN_BLACKLISTED)
    assert_unauthorized(post(rotating, VERIFY, {"token": newest}), TOKEN_BLACKLISTED)
    assert {_state(rotating, token) for token in chain} == {"blacklisted"}
    # Another login is another family: untouched.
    assert _rotate(rotating, other_session)


# -- logout (blacklist) ----------------------------------------------------------------------


def test_logout_refuses_the_token(client: Any) -> None:
    register(client)
    pair = login(client)
    other = login(client)
    assert assert_json(client.post_json(BLACKLIST, {"refresh": pair["refresh"]})) == {}
    assert _state(client, pair["refresh"]) == "blacklisted"
    assert_unauthorized(post(client, VERIFY, {"token": pair["refresh"]}), TOKEN_BLACKLISTED)
    assert_unauthorized(_refresh(client, pair["refresh"]), TOKEN_BLACKLISTED)
    # The access token is stateless and lives out its ten seconds; other sessions live on.
    assert assert_json(client.post_json(VERIFY, {"token": pair["access"]})) == {}
    assert _refresh(client, other["refresh"]).status_int == 200


def test_logout_with_rotation_revokes_the_family(rotating: Any) -> None:
    first = login(rotating)["refresh"]
    second = _rotate(rotating, first)
    other = login(rotating)["refresh"]
    rotating.post_json(BLACKLIST, {"refresh": second}, status=200)
    for token in (first, second):
        assert_unauthorized(_refresh(rotating, token), TOKEN_BLACKLISTED)
        assert_unauthorized(post(rotating, VERIFY, {"token": token}), TOKEN_BLACKLISTED)
    assert _state(rotating, first) == _state(rotating, second) == "blacklisted"
    assert _state(rotating, other) == "active"


@pytest.mark.parametrize("rotate", [False, True], ids=["no-rotation", "rotation"])
def test_blacklisting_twice(make_client: Callable[..., Any], rotate: bool) -> None:
    client = make_client(rotate_refresh_tokens=rotate)
    register(client)
    refresh = login(client)["refresh"]
    client.post_json(BLACKLIST, {"refresh": refresh}, status=200)
    assert_unauthorized(post(client, BLACKLIST, {"refresh": refresh}), TOKEN_BLACKLISTED)


# -- token types -----------------------------------------------------------------------------


def test_access_token_never_refreshes(client: Any) -> None:
    register(client)
    pair = login(client)
    assert_unauthorized(_refresh(client, pair["access"]), TOKEN_WRONG_TYPE)
    assert_unauthorized(post(client, BLACKLIST, {"refresh": pair["access"]}), TOKEN_WRONG_TYPE)


def test_refresh_token_never_authenticates(client: Any) -> None:
    register(client)
    pair = login(client)
    response = client.get(ME, headers=bearer(pair["refresh"]), expect_errors=True)
    assert response.status_int == 401
    assert response.json["code"] == "token_not_valid"
    assert client.get(ME, headers=bearer(pair["access"])).json["username"] == "alice"


@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_verify_accepts_valid_tokens(client: Any, kind: str) -> None:
    register(client)
    token = login(client)[kind]
    assert assert_json(client.post_json(VERIFY, {"token": token})) == {}


# -- expiry boundaries -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "lifetime"), [("access", 10), ("refresh", 30)], ids=["access", "refresh"]
)
def test_expired_exactly_at_exp(client: Any, clock: FakeClock, kind: str, lifetime: int) -> None:
    register(client)
    token = login(client)[kind]
    assert claims(token)["exp"] == int(clock.now) + lifetime
    clock.advance(lifetime - 1)
    assert client.post_json(VERIFY, {"token": token}).status_int == 200
    clock.advance(1)  # now == exp
    assert_unauthorized(post(client, VERIFY, {"token": token}), TOKEN_EXPIRED)


def test_access_expiry_boundary_on_me(client: Any, clock: FakeClock) -> None:
    register(client)
    access = login(client)["access"]
    clock.advance(9.999)
    assert client.get(ME, headers=bearer(access)).status_int == 200
    clock.advance(0.001)
    response = client.get(ME, headers=bearer(access), expect_errors=True)
    assert response.status_int == 401
    assert response.json["messages"][0]["message"] == "Token is expired"


def test_leeway_extends_acceptance(make_client: Callable[..., Any], clock: FakeClock) -> None:
    client = make_client(leeway=5)
    register(client)
    access = login(client)["access"]
    clock.advance(14)
    assert client.post_json(VERIFY, {"token": access}).status_int == 200
    clock.advance(1)
    assert_unauthorized(post(client, VERIFY, {"token": access}), TOKEN_EXPIRED)


# -- issuer, audience, foreign keys ----------------------------------------------------------

ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"


def test_issuer_and_audience_in_tokens(make_client: Callable[..., Any]) -> None:
    client = make_client(issuer=ISSUER, audience=AUDIENCE)
    register(client)
    pair = login(client)
    for kind in ("access", "refresh"):
        payload = claims(pair[kind])
        assert list(payload) == ["token_type", "exp", "iat", "jti", "user_id", "iss", "aud"]
        assert payload["iss"] == ISSUER
        assert payload["aud"] == AUDIENCE
        assert client.post_json(VERIFY, {"token": pair[kind]}).status_int == 200
    assert _refresh(client, pair["refresh"]).status_int == 200


@pytest.mark.parametrize(
    "foreign",
    [
        {"issuer": "https://evil.example.com", "audience": AUDIENCE},
        {"issuer": ISSUER, "audience": "https://other-api.example.com"},
        {},
    ],
    ids=["other-issuer", "other-audience", "no-claims"],
)
def test_tokens_from_another_issuer_refused(
    make_client: Callable[..., Any], foreign: dict[str, str]
) -> None:
    # Both services share the database and so the generated signing key: only the claims
    # tell the tokens apart.
    ours = make_client(issuer=ISSUER, audience=AUDIENCE)
    theirs = make_client(**foreign)
    register(ours)
    pair = login(theirs)
    assert claims(pair["access"]).get("iss") == foreign.get("issuer")
    for kind, path, field in [("access", VERIFY, "token"), ("refresh", REFRESH, "refresh")]:
        assert_unauthorized(post(ours, path, {field: pair[kind]}), TOKEN_INVALID)
    response = ours.get(ME, headers=bearer(pair["access"]), expect_errors=True)
    assert response.status_int == 401


def test_token_signed_by_another_key_refused(make_client: Callable[..., Any]) -> None:
    ours = make_client(secret_key="o" * 32)
    theirs = make_client(secret_key="t" * 32)
    register(ours)
    pair = login(theirs)
    assert_unauthorized(post(ours, VERIFY, {"token": pair["access"]}), TOKEN_INVALID)
    assert_unauthorized(_refresh(ours, pair["refresh"]), TOKEN_INVALID)
    forged = jwtlite.encode(claims(pair["access"]), jwtlite.Key(b"t" * 32, "HS256"))
    assert_unauthorized(post(ours, VERIFY, {"token": forged}), TOKEN_INVALID)


def test_deleted_users_id_is_not_reused(client: Any) -> None:
    """An unexpired access token of a deleted user must not authenticate the next user."""
    register(client)
    register(client, "bob")
    pair = login(client, "bob")
    assert client.store.delete_user(2)
    carol = register(client, "carol")
    assert carol["id"] != 2
    response = client.get(ME, headers=bearer(pair["access"]), expect_errors=True)
    assert response.status_int == 401
    assert response.json["code"] == "user_not_found"


# -- throttling ------------------------------------------------------------------------------


@pytest.mark.parametrize("exists", [True, False], ids=["existing-user", "unknown-user"])
def test_throttle_per_username(client: Any, clock: FakeClock, exists: bool) -> None:
    if exists:
        register(client)
    for _ in range(5):
        assert_unauthorized(_fail_login(client, "alice"), NO_ACCOUNT)
        clock.advance(1)
    # Failures at t0..t0+4, now t0+5: the oldest leaves the window at t0+300.
    _assert_throttled(_fail_login(client, "alice"), WINDOW - 5)
    _assert_throttled(_login(client), WINDOW - 5)
    clock.advance(WINDOW - 10)
    _assert_throttled(_login(client), 5)
    # Refused attempts are not failures: the window still ends at t0+300.
    clock.advance(5)
    answer = _login(client)
    if exists:
        assert answer.status_int == 200
    else:
        assert_unauthorized(answer, NO_ACCOUNT)


def test_throttle_ignores_username_case(client: Any, clock: FakeClock) -> None:
    register(client)
    fullwidth = "\uff41\uff4c\uff49\uff43\uff45"  # "alice" in fullwidth letters (NFKC)
    for name in ["alice", "Alice", "ALICE", "aLiCe", fullwidth]:
        assert_unauthorized(_fail_login(client, name), NO_ACCOUNT)
    _assert_throttled(_login(client, "ALICE"), WINDOW)
    clock.advance(WINDOW)
    assert _login(client, "Alice").status_int == 200


def test_other_usernames_unaffected(client: Any) -> None:
    register(client)
    register(client, "bob")
    for _ in range(5):
        _fail_login(client, "alice")
    _assert_throttled(_login(client), WINDOW)
    assert _login(client, "bob").status_int == 200


def test_throttle_per_address(make_client: Callable[..., Any], clock: FakeClock) -> None:
    client = make_client(login_max_failures_per_address=3)
    register(client)
    here = {"extra_environ": {"REMOTE_ADDR": "192.0.2.10"}}
    elsewhere = {"extra_environ": {"REMOTE_ADDR": "192.0.2.20"}}
    for name in ["u1", "u2", "u3"]:
        assert_unauthorized(_fail_login(client, name, **here), NO_ACCOUNT)
    _assert_throttled(_fail_login(client, "u4", **here), WINDOW)
    _assert_throttled(_login(client, **here), WINDOW)
    assert _login(client, **elsewhere).status_int == 200
    clock.advance(WINDOW)
    assert _login(client, **here).status_int == 200


def test_success_clears_the_username_counter(client: Any) -> None:
    register(client)
    for _ in range(4):
        assert_unauthorized(_fail_login(client, "alice"), NO_ACCOUNT)
    assert _login(client).status_int == 200
    for _ in range(4):
        assert_unauthorized(_fail_login(client, "alice"), NO_ACCOUNT)
    assert _login(client).status_int == 200
    for _ in range(5):
        _fail_login(client, "alice")
    _assert_throttled(_login(client), WINDOW)


PROXY = "127.0.0.1"
LOGIN_ADDRESSES = "SELECT DISTINCT address FROM attempts WHERE kind = 'login'"


def _via(peer: str, forwarded: str | None) -> dict[str, Any]:
    headers = {} if forwarded is None else {"X-Forwarded-For": forwarded}
    return {"extra_environ": {"REMOTE_ADDR": peer}, "headers": headers}


@pytest.mark.parametrize(
    "forwarded",
    ["203.0.113.5", "198.51.100.99, 203.0.113.5", "203.0.113.5, 127.0.0.1"],
    ids=["single", "chain", "chain-through-proxy"],
)
def test_trusted_proxy_forwarded_address_counts(
    db_rows: Callable[..., list[tuple[Any, ...]]], make_client: Callable[..., Any], forwarded: str
) -> None:
    client = make_client(trusted_proxies=(PROXY,), login_max_failures_per_address=3)
    register(client)
    for name in ["u1", "u2", "u3"]:
        assert_unauthorized(_fail_login(client, name, **_via(PROXY, forwarded)), NO_ACCOUNT)
    _assert_throttled(_login(client, **_via(PROXY, "203.0.113.5")), WINDOW)
    # Another client behind the same proxy is another address.
    assert _login(client, **_via(PROXY, "203.0.113.6")).status_int == 200
    addresses = db_rows("SELECT DISTINCT address FROM attempts WHERE kind = 'login'")
    assert addresses == [("203.0.113.5",)]


def test_untrusted_peer_forwarded_header_ignored(
    make_client: Callable[..., Any], db_rows: Callable[..., list[tuple[Any, ...]]]
) -> None:
    client = make_client(trusted_proxies=(PROXY,), login_max_failures_per_address=3)
    register(client)
    peer = "198.51.100.7"
    for index, name in enumerate(["u1", "u2", "u3"]):
        forged = f"203.0.113.{index}"
        assert_unauthorized(_fail_login(client, name, **_via(peer, forged)), NO_ACCOUNT)
    _assert_throttled(_login(client, **_via(peer, "203.0.113.200")), WINDOW)
    addresses = db_rows("SELECT DISTINCT address FROM attempts WHERE kind = 'login'")
    assert addresses == [(peer,)]


# -- passwords, purging, last_login ----------------------------------------------------------


def test_password_rehashed_when_parameters_change(make_client: Callable[..., Any]) -> None:
    small = make_client(password_hash_memory_kib=1024)
    large = make_client(password_hash_memory_kib=2048)
    register(small)
    before = small.store.get_user_by_key("alice").password_hash
    assert before.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    login(large)
    after = large.store.get_user_by_key("alice").password_hash
    assert after.startswith("$argon2id$v=19$m=2048,t=1,p=1$")
    login(large)
    assert large.store.get_user_by_key("alice").password_hash == after  # no needless rehash
    # The cheaper service still verifies the stronger string and leaves it alone: moving it
    # back made two instances of different costs rewrite each other's hashes at every login.
    login(small)
    assert small.store.get_user_by_key("alice").password_hash == after


def test_failed_login_does_not_rehash(make_client: Callable[..., Any]) -> None:
    small = make_client(password_hash_memory_kib=1024)
    large = make_client(password_hash_memory_kib=2048)
    register(small)
    before = small.store.get_user_by_key("alice").password_hash
    _fail_login(large, "alice")
    assert large.store.get_user_by_key("alice").password_hash == before


def test_expired_rows_are_purged(
    client: Any, clock: FakeClock, db_rows: Callable[..., list[tuple[Any, ...]]]
) -> None:
    register(client)
    old = login(client)
    _fail_login(client, "nobody")
    assert client.store.get_refresh_token(claims(old["refresh"])["jti"]) is not None
    clock.advance(30 + 60 + 1)
    new = login(client)
    assert client.store.get_refresh_token(claims(old["refresh"])["jti"]) is None
    assert client.store.get_refresh_token(claims(new["refresh"])["jti"]) is not None
    clock.advance(WINDOW)
    login(client)
    assert db_rows("SELECT count(*) FROM attempts WHERE kind = 'login'") == [(0,)]


def test_last_login_set_at_login(client: Any, clock: FakeClock) -> None:
    register(client)
    assert client.store.get_user_by_key("alice").last_login is None
    clock.advance(7)
    login(client)
    assert client.store.get_user_by_key("alice").last_login == clock.now
    clock.advance(3)
    _fail_login(client, "alice")
    assert client.store.get_user_by_key("alice").last_login == clock.now - 3


SHARED_SECRET = "a-secret-the-resource-servers-share-0123456789"


def test_a_refresh_token_re_signed_with_later_dates_is_not_on_record(
    make_client: Callable[..., Any], clock: FakeClock
) -> None:
    """The fourth outside attack: under SECRET_KEY the refresh-token key can be derived by
    anyone holding the secret (a resource server), and the refresh endpoint trusted the
    token's own dates, so a token re-signed with a later iat and exp (its lifetime kept)
    brought an expired session back, again and again."""
    from jwtlite.service.signing.directory import key_pepper
    from jwtlite.service.tokens import refresh_key

    client = make_client(secret_key=SHARED_SECRET)
    register(client)
    refresh = login(client)["refresh"]
    key = refresh_key(key_pepper(jwtlite.Key(SHARED_SECRET.encode(), "HS256")))
    claims = jwtlite.jwt.decode_unverified_claims(refresh)
    assert jwtlite.encode(claims, key) == refresh  # the derived key is the refresh key
    clock.advance(40)  # past its 30 s: expired
    assert client.post_json(REFRESH, {"refresh": refresh}, expect_errors=True).status_int == 401
    now = int(clock())
    revived = jwtlite.encode({**claims, "iat": now, "exp": now + 30}, key)
    reply = client.post_json(REFRESH, {"refresh": revived}, expect_errors=True)
    assert reply.status_int == 401, reply.json
