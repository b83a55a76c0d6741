"""What verify, refresh and the purge must refuse: ended users, spent tokens, malformed claims.

* Verify accepted the tokens of deactivated and deleted users while ``/me`` and refresh
  refused them; now it refuses what they refuse, within the documented staleness bound of
  the per-process user-state cache.
* With a leeway and rotation, the purge deleted a spent token that the leeway still let
  through, so its reuse answered "invalid" instead of revoking the family.
* A correctly signed token whose ``jti`` is a lone surrogate answered 500; ``user_id`` "01"
  authenticated as user 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import jwtlite

from support import FakeClock, login, register
from support.contract import (
    TOKEN_BLACKLISTED,
    TOKEN_INVALID,
    USER_INACTIVE,
    assert_json,
    assert_unauthorized,
    bearer,
    claims,
    post,
)

# Every test that builds a client runs on SQLite and on PostgreSQL (conftest).
pytestmark = pytest.mark.both_backends

SECRET = "s" * 32
VERIFY = "/accounts/token/verify/"
REFRESH = "/accounts/token/refresh/"
BLACKLIST = "/accounts/token/blacklist/"
ME = "/accounts/me/"


def _verify(client: Any, token: str) -> Any:
    return post(client, VERIFY, {"token": token})


# -- item 6: verify refuses what /me and refresh refuse ---------------------------------------


@pytest.mark.parametrize("kind", ["access", "refresh"])
@pytest.mark.parametrize("change", ["deactivated", "deleted"])
def test_verify_refuses_tokens_of_users_who_are_gone(
    client: Any, clock: FakeClock, kind: str, change: str
) -> None:
    user = register(client)
    pair = login(client)
    assert _verify(client, pair[kind]).status_int == 200  # now cached as active
    if change == "deactivated":
        assert client.store.set_active("alice", False)
    else:
        assert client.store.delete_user(user["id"])
    # Changed behind the service's back (as another process would): seen within the bound.
    clock.advance(1)
    assert_unauthorized(_verify(client, pair[kind]), USER_INACTIVE)
    if kind == "access":
        me = client.get(ME, headers=bearer(pair["access"]), expect_errors=True)
        assert me.status_int == 401


def test_verify_of_a_refresh_token_is_never_stale(client: Any) -> None:
    """A refresh token is checked against its record on every verify: no cache delay."""
    register(client)
    pair = login(client)
    assert _verify(client, pair["refresh"]).status_int == 200
    assert client.store.set_active("alice", False)
    assert_unauthorized(_verify(client, pair["refresh"]), USER_INACTIVE)


def test_verify_refuses_a_revoked_family(make_client: Callable[..., Any]) -> None:
    client = make_client(rotate_refresh_tokens=True)
    register(client)
    first = login(client)["refresh"]
    second = client.post_json(REFRESH, {"refresh": first}).json["refresh"]
    assert_unauthorized(post(client, REFRESH, {"refresh": first}), TOKEN_BLACKLISTED)  # reuse
    assert_unauthorized(_verify(client, second), TOKEN_BLACKLISTED)


def test_cache_bound_is_the_setting(make_client: Callable[..., Any], clock: FakeClock) -> None:
    client = make_client(user_state_cache_seconds=30)
    register(client)
    access = login(client)["access"]
    assert _verify(client, access).status_int == 200
    assert client.store.set_active("alice", False)
    clock.advance(9)  # still inside the access token's 10 s and the 30 s bound
    assert _verify(client, access).status_int == 200
    client2 = make_client(user_state_cache_seconds=0)  # no cache: every verify reads
    assert_unauthorized(_verify(client2, access), USER_INACTIVE)


def test_two_processes_agree_within_the_bound(
    make_client: Callable[..., Any], clock: FakeClock
) -> None:
    """Two apps on one database (as two instances): each sees the other's change in time."""
    here = make_client()
    there = make_client()
    register(here)
    access = login(here)["access"]
    assert _verify(here, access).status_int == 200
    assert _verify(there, access).status_int == 200
    assert there.store.set_active("alice", False)
    clock.advance(1)
    assert_unauthorized(_verify(here, access), USER_INACTIVE)
    assert_unauthorized(_verify(there, access), USER_INACTIVE)


def test_store_failure_during_verify_fails_closed(
    client: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jwtlite.store.errors import StoreUnavailableError

    register(client)
    access = login(client)["access"]
    clock.advance(1)

    def broken(*_: Any) -> None:
        raise StoreUnavailableError("disk I/O error")

    monkeypatch.setattr(client.store, "get_user", broken)
    monkeypatch.setattr(client.store, "session_state", broken)  # what verify reads
    response = _verify(client, access)
    assert response.status_int == 503
    assert assert_json(response) == {"detail": "Service temporarily unavailable."}


# -- item 5: the purge keeps what the leeway still accepts ------------------------------------


def test_purge_respects_the_leeway(make_client: Callable[..., Any], clock: FakeClock) -> None:
    client = make_client(rotate_refresh_tokens=True, leeway=3)
    register(client)
    victim = login(client)["refresh"]
    clock.advance(30 + 2)  # expired, but inside the leeway
    thief = client.post_json(REFRESH, {"refresh": victim}).json["refresh"]
    # Another instance purges now (its first login does), while R1 is still acceptable.
    login(make_client(rotate_refresh_tokens=True, leeway=3))
    assert client.store.get_refresh_token(claims(victim)["jti"]) is not None
    # The victim presents R1 again inside the leeway: reuse, and the family is revoked.
    assert_unauthorized(post(client, REFRESH, {"refresh": victim}), TOKEN_BLACKLISTED)
    assert_unauthorized(post(client, REFRESH, {"refresh": thief}), TOKEN_BLACKLISTED)


def test_purge_deletes_once_the_leeway_has_passed(
    make_client: Callable[..., Any], clock: FakeClock
) -> None:
    client = make_client(leeway=3)
    register(client)
    jti = claims(login(client)["refresh"])["jti"]
    clock.advance(30 + 2)
    login(make_client(leeway=3))  # a purge inside the leeway keeps it
    assert client.store.get_refresh_token(jti) is not None
    clock.advance(1)
    login(make_client(leeway=3))  # a purge at expiry + leeway deletes it
    assert client.store.get_refresh_token(jti) is None


# -- item 8: only our exact claim forms -------------------------------------------------------


def _signed(client: Any, **changes: Any) -> str:
    pair = login(client)
    payload = {**claims(pair["refresh"]), **changes}
    return jwtlite.encode(payload, jwtlite.Key(SECRET.encode(), "HS256"))


@pytest.mark.parametrize(
    "jti",
    [
        chr(0xD800),
        chr(0xDFFF),
        "A" * 32,
        "0" * 31,
        "0" * 33,
        "g" * 32,
        " " + "0" * 31,
        "\u0660" * 32,
    ],
    ids=[
        "lone-high-surrogate",
        "lone-low-surrogate",
        "upper-case",
        "short",
        "long",
        "not-hex",
        "space",
        "arabic-indic-digits",
    ],
)
@pytest.mark.parametrize("path", [VERIFY, REFRESH, BLACKLIST])
def test_foreign_jti_is_invalid_not_a_500(
    make_client: Callable[..., Any], jti: str, path: str
) -> None:
    client = make_client(secret_key=SECRET)
    register(client)
    token = _signed(client, jti=jti)
    field = "token" if path == VERIFY else "refresh"
    assert_unauthorized(post(client, path, {field: token}), TOKEN_INVALID)


@pytest.mark.parametrize(
    "user_id",
    ["01", "001", "+1", " 1", "1 ", "1.0", "0", "-1", "\u0661", "1" * 19],
    ids=[
        "leading-zero",
        "two-leading-zeros",
        "plus",
        "space-before",
        "space-after",
        "decimal",
        "zero",
        "negative",
        "arabic-indic-one",
        "nineteen-digits",
    ],
)
@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_only_canonical_user_ids(make_client: Callable[..., Any], user_id: str, kind: str) -> None:
    client = make_client(secret_key=SECRET)
    register(client)
    pair = login(client)
    token = jwtlite.encode(
        {**claims(pair[kind]), "user_id": user_id}, jwtlite.Key(SECRET.encode(), "HS256")
    )
    assert_unauthorized(_verify(client, token), TOKEN_INVALID)
    if kind == "access":
        response = client.get(ME, headers=bearer(token), expect_errors=True)
        assert response.status_int == 401
        assert response.json["code"] == "token_not_valid"
    else:
        assert_unauthorized(post(client, REFRESH, {"refresh": token}), TOKEN_INVALID)
