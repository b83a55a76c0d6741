"""The session list, ending one session, log out everywhere, account deletion.

A session is a refresh-token family; its access tokens name it in the first half of their
``jti``. Revoking a session (from the list, by "log out everywhere", by reuse detection)
refuses its access tokens on ``/me``, on the session endpoints and on verify; logging out
with the blacklist endpoint only ends it (its access tokens live out their lives, as with
simplejwt).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from support import PASSWORD, FakeClock, register
from support.contract import (
    TOKEN_BLACKLISTED,
    TOKEN_INVALID,
    USER_INACTIVE,
    assert_error,
    assert_unauthorized,
    bearer,
    claims,
)
from support.sessions import (
    BLACKLIST,
    ME,
    NOT_FOUND,
    REVOKED_ACCESS,
    SESSIONS,
    end_session,
    login_as,
    logout_all,
    me,
    refresh,
    session_id,
    sessions,
    verify,
)

pytestmark = pytest.mark.both_backends

NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}


@pytest.fixture
def alice(client: Any) -> Any:
    register(client)
    return client


# -- tokens carry their session -----------------------------------------------------------------


def test_every_token_of_a_session_starts_its_jti_with_the_session_id(alice: Any) -> None:
    pair = login_as(alice)
    fresh = refresh(alice, pair["refresh"]).json["access"]
    ids = {session_id(token) for token in (pair["access"], pair["refresh"], fresh)}
    assert len(ids) == 1
    jtis = {claims(token)["jti"] for token in (pair["access"], pair["refresh"], fresh)}
    assert len(jtis) == 3  # unique per token all the same
    # The claims stay exactly the contract's: no extra claim names the session.
    assert list(claims(pair["access"])) == ["token_type", "exp", "iat", "jti", "user_id"]


def test_a_token_of_no_session_is_not_ours(make_client: Callable[..., Any]) -> None:
    """A correctly signed token whose jti names no session (one issued before sessions
    existed) is refused: fail closed."""
    import jwtlite

    client = make_client(secret_key="s" * 32)
    register(client)
    pair = login_as(client)
    forged = jwtlite.encode(
        {**claims(pair["access"]), "jti": "0" * 32}, jwtlite.Key(b"s" * 32, "HS256")
    )
    assert_unauthorized(verify(client, forged), TOKEN_INVALID)
    assert me(client, forged).status_int == 401
    assert sessions(client, forged).status_int == 401


# -- the list -----------------------------------------------------------------------------------


def test_list_shows_live_sessions_newest_first_and_marks_the_current(
    alice: Any, clock: FakeClock
) -> None:
    first = login_as(alice, user_agent="Firefox", remote_addr="10.0.0.1")
    clock.advance(2)
    second = login_as(alice, user_agent="Chromium", remote_addr="10.0.0.2")
    response = sessions(alice, first["access"])
    assert response.status_int == 200
    assert response.headers["Cache-Control"] == "no-store"
    listed = response.json
    assert [s["id"] for s in listed] == [session_id(second["access"]), session_id(first["access"])]
    assert [s["current"] for s in listed] == [False, True]
    assert listed[1] == {
        "id": session_id(first["access"]),
        "created": "2027-01-15T08:00:00Z",
        "last_used": "2027-01-15T08:00:00Z",
        "expires": "2027-01-15T08:00:30Z",
        "user_agent": "Firefox",
        "address": "10.0.0.1",
        "current": True,
    }
    assert listed[0]["user_agent"] == "Chromium"
    assert listed[0]["address"] == "10.0.0.2"


def test_list_omits_ended_revoked_and_expired_sessions(alice: Any, clock: FakeClock) -> None:
    ended = login_as(alice)
    alice.post_json(BLACKLIST, {"refresh": ended["refresh"]}, status=200)
    revoked = login_as(alice)
    current = login_as(alice)
    assert end_session(alice, current["access"], session_id(revoked["access"])).status_int == 204
    assert [s["id"] for s in sessions(alice, current["access"]).json] == [
        session_id(current["access"])
    ]
    clock.advance(29)
    fresh = refresh(alice, current["refresh"]).json["access"]
    clock.advance(1)  # the session's refresh token has expired
    assert sessions(alice, fresh).json == []


def test_other_users_sessions_are_not_listed(client: Any) -> None:
    register(client)
    register(client, "bob")
    login_as(client, "bob")
    alices = login_as(client)
    assert [s["id"] for s in sessions(client, alices["access"]).json] == [
        session_id(alices["access"])
    ]


def test_user_agent_is_cleaned_and_truncated(alice: Any) -> None:
    pair = login_as(alice, user_agent="A\tB" + "x" * 500)
    listed = sessions(alice, pair["access"]).json
    assert listed[0]["user_agent"] == "AB" + "x" * 254


def test_address_is_the_one_the_throttle_sees(make_client: Callable[..., Any]) -> None:
    client = make_client(trusted_proxies=("10.9.9.9",))
    register(client)
    pair = client.post_json(
        "/accounts/token/",
        {"username": "alice", "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.7"},
        extra_environ={"REMOTE_ADDR": "10.9.9.9"},
    ).json
    assert sessions(client, pair["access"]).json[0]["address"] == "203.0.113.7"


def test_refresh_updates_agent_and_address_and_last_used_with_minute_precision(
    alice: Any, clock: FakeClock
) -> None:
    pair = login_as(alice, user_agent="one", remote_addr="10.0.0.1")
    clock.advance(20)
    access = alice.post_json(
        "/accounts/token/refresh/",
        {"refresh": pair["refresh"]},
        headers={"User-Agent": "one"},
        extra_environ={"REMOTE_ADDR": "10.0.0.1"},
    ).json["access"]
    listed = sessions(alice, access).json[0]
    assert listed["last_used"] == "2027-01-15T08:00:00Z"  # unchanged: under a minute
    alice.post_json(
        "/accounts/token/refresh/",
        {"refresh": pair["refresh"]},
        headers={"User-Agent": "two"},
        extra_environ={"REMOTE_ADDR": "10.0.0.3"},
    )
    listed = sessions(alice, access).json[0]
    assert (listed["user_agent"], listed["address"]) == ("two", "10.0.0.3")
    assert listed["last_used"] == "2027-01-15T08:00:20Z"


def test_rotation_extends_the_session_and_records_its_use(
    make_client: Callable[..., Any], clock: FakeClock
) -> None:
    client = make_client(rotate_refresh_tokens=True)
    register(client)
    pair = login_as(client)
    clock.advance(5)
    rotated = refresh(client, pair["refresh"]).json
    listed = sessions(client, rotated["access"]).json
    assert len(listed) == 1
    assert listed[0]["last_used"] == "2027-01-15T08:00:05Z"
    assert listed[0]["expires"] == "2027-01-15T08:00:35Z"


# -- ending one session -------------------------------------------------------------------------


def test_ending_a_session_refuses_its_tokens_everywhere(alice: Any) -> None:
    phone = login_as(alice)
    laptop = login_as(alice)
    response = end_session(alice, laptop["access"], session_id(phone["access"]))
    assert response.status_int == 204
    assert response.body == b""
    assert_unauthorized(me(alice, phone["access"]), REVOKED_ACCESS)
    assert_unauthorized(sessions(alice, phone["access"]), REVOKED_ACCESS)
    assert_unauthorized(verify(alice, phone["access"]), TOKEN_BLACKLISTED)
    assert_unauthorized(verify(alice, phone["refresh"]), TOKEN_BLACKLISTED)
    assert_unauthorized(refresh(alice, phone["refresh"]), TOKEN_BLACKLISTED)
    assert me(alice, laptop["access"]).status_int == 200


def test_a_session_may_end_itself(alice: Any) -> None:
    pair = login_as(alice)
    assert end_session(alice, pair["access"], session_id(pair["access"])).status_int == 204
    assert_unauthorized(me(alice, pair["access"]), REVOKED_ACCESS)


@pytest.mark.parametrize(
    "target",
    ["unknown", "other-users", "already-ended", "malformed", "too-long", "upper-case"],
)
def test_ending_what_is_not_ones_own_live_session_is_404(client: Any, target: str) -> None:
    register(client)
    register(client, "bob")
    mine = login_as(client)
    bobs = session_id(login_as(client, "bob")["access"])
    ids = {
        "unknown": "0123456789abcdef",
        "other-users": bobs,
        "already-ended": session_id(mine["access"]),
        "malformed": "not-a-session",
        "too-long": bobs + "00",
        "upper-case": bobs.upper(),
    }
    if target == "already-ended":
        other = login_as(client)
        assert end_session(client, other["access"], ids[target]).status_int == 204
        mine = other
    assert_error(end_session(client, mine["access"], ids[target]), 404, NOT_FOUND)
    if target == "other-users":
        assert len(sessions(client, login_as(client, "bob")["access"]).json) == 2


def test_a_malformed_id_never_reaches_the_store(
    alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = login_as(alice)

    def refuse(*_: Any) -> bool:
        raise AssertionError("the store was asked")

    monkeypatch.setattr(alice.store, "end_session", refuse)
    assert_error(end_session(alice, pair["access"], "zz" * 8), 404, NOT_FOUND)


# -- log out everywhere -------------------------------------------------------------------------


def test_logout_all_ends_every_session_and_every_access_token(alice: Any) -> None:
    pairs = [login_as(alice) for _ in range(3)]
    response = logout_all(alice, pairs[0]["access"])
    assert (response.status_int, response.json) == (200, {})
    for pair in pairs:
        assert_unauthorized(me(alice, pair["access"]), REVOKED_ACCESS)
        assert_unauthorized(verify(alice, pair["access"]), TOKEN_BLACKLISTED)
        assert_unauthorized(refresh(alice, pair["refresh"]), TOKEN_BLACKLISTED)
    fresh = login_as(alice)  # a new login is a new session
    assert [s["current"] for s in sessions(alice, fresh["access"]).json] == [True]


def test_logout_all_also_ends_access_tokens_of_logged_out_sessions(alice: Any) -> None:
    ended = login_as(alice)
    alice.post_json(BLACKLIST, {"refresh": ended["refresh"]}, status=200)
    assert me(alice, ended["access"]).status_int == 200  # logged out: lives out its life
    assert logout_all(alice, login_as(alice)["access"]).status_int == 200
    assert_unauthorized(me(alice, ended["access"]), REVOKED_ACCESS)


def test_logout_all_spares_other_users(client: Any) -> None:
    register(client)
    register(client, "bob")
    bob = login_as(client, "bob")
    assert logout_all(client, login_as(client)["access"]).status_int == 200
    assert me(client, bob["access"]).status_int == 200


def test_another_process_sees_a_revocation_within_the_bound(
    make_client: Callable[..., Any], clock: FakeClock
) -> None:
    here = make_client()
    there = make_client()
    register(here)
    pair = login_as(here)
    assert verify(there, pair["access"]).status_int == 200  # cached there as live
    assert logout_all(here, pair["access"]).status_int == 200
    assert_unauthorized(verify(here, pair["access"]), TOKEN_BLACKLISTED)  # at once here
    assert verify(there, pair["access"]).status_int == 200  # within USER_STATE_CACHE_SECONDS
    clock.advance(1)
    assert_unauthorized(verify(there, pair["access"]), TOKEN_BLACKLISTED)
    assert_unauthorized(me(there, pair["access"]), REVOKED_ACCESS)


# -- logging out and reuse ----------------------------------------------------------------------


def test_blacklist_ends_the_session_but_its_access_token_lives_on(alice: Any) -> None:
    pair = login_as(alice)
    alice.post_json(BLACKLIST, {"refresh": pair["refresh"]}, status=200)
    assert me(alice, pair["access"]).status_int == 200
    assert verify(alice, pair["access"]).status_int == 200
    assert sessions(alice, pair["access"]).json == []


def test_reuse_detection_revokes_the_sessions_access_tokens(
    make_client: Callable[..., Any],
) -> None:
    client = make_client(rotate_refresh_tokens=True)
    register(client)
    pair = login_as(client)
    rotated = refresh(client, pair["refresh"]).json
    assert_unauthorized(refresh(client, pair["refresh"]), TOKEN_BLACKLISTED)  # reuse
    for access in (pair["access"], rotated["access"]):
        assert_unauthorized(me(client, access), REVOKED_ACCESS)


# -- authentication and routing -----------------------------------------------------------------


@pytest.mark.parametrize("slash", ["/", ""], ids=["slash", "no-slash"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", SESSIONS),
        ("POST", "/accounts/logout-all/"),
        ("POST", "/accounts/password/"),
        ("DELETE", SESSIONS + "0123456789abcdef/"),
    ],
    ids=["list", "logout-all", "password", "end"],
)
def test_every_endpoint_needs_an_access_token(
    alice: Any, method: str, path: str, slash: str
) -> None:
    target = path.rstrip("/") + slash
    response = alice.request(target, method=method, expect_errors=True)
    assert_unauthorized(response, NOT_PROVIDED)
    pair = login_as(alice)
    response = alice.request(
        target, method=method, headers=bearer(pair["refresh"]), expect_errors=True
    )
    assert response.status_int == 401
    assert response.json["messages"][0]["message"] == "Token has wrong type"


def test_tokens_of_a_deactivated_user_are_refused(alice: Any) -> None:
    pair = login_as(alice)
    assert alice.store.set_active("alice", False)
    assert_unauthorized(sessions(alice, pair["access"]), USER_INACTIVE)
    assert_unauthorized(logout_all(alice, pair["access"]), USER_INACTIVE)


def test_cors_preflight_allows_delete(client: Any) -> None:
    response = client.options(
        SESSIONS + "0123456789abcdef/",
        headers={
            "Origin": "http://localhost:8001",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]


# -- account deletion ---------------------------------------------------------------------------


def test_account_deletion_is_off_by_default(alice: Any) -> None:
    pair = login_as(alice)
    response = alice.delete_json(
        ME, {"password": PASSWORD}, headers=bearer(pair["access"]), expect_errors=True
    )
    assert response.status_int == 405
    assert me(alice, pair["access"]).status_int == 200


@pytest.fixture
def deletable(make_client: Callable[..., Any]) -> Any:
    client = make_client(allow_account_deletion=True)
    register(client)
    return client


def test_account_deletion_removes_the_user_and_every_session(deletable: Any) -> None:
    other = login_as(deletable)
    pair = login_as(deletable)
    response = deletable.delete_json(ME, {"password": PASSWORD}, headers=bearer(pair["access"]))
    assert response.status_int == 204
    assert response.body == b""
    for tokens in (pair, other):
        assert me(deletable, tokens["access"]).json["code"] == "user_not_found"
        assert_unauthorized(refresh(deletable, tokens["refresh"]), USER_INACTIVE)
    assert deletable.store.get_user(1) is None
    assert deletable.store.list_sessions(1, now=0) == []


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"password": ["This field is required."]}),
        ({"password": ""}, {"password": ["This field may not be blank."]}),
        (
            {"password": "wrong-password-1"},
            {"password": ["Your password was entered incorrectly. Please enter it again."]},
        ),
    ],
    ids=["missing", "blank", "wrong"],
)
def test_account_deletion_needs_the_password(
    deletable: Any, body: dict[str, str], errors: dict[str, list[str]]
) -> None:
    pair = login_as(deletable)
    response = deletable.delete_json(ME, body, headers=bearer(pair["access"]), expect_errors=True)
    assert_error(response, 400, errors)
    assert me(deletable, pair["access"]).status_int == 200


def test_wrong_passwords_at_deletion_count_toward_the_login_throttle(deletable: Any) -> None:
    pair = login_as(deletable)
    for _ in range(5):
        deletable.delete_json(
            ME, {"password": "wrong-password-1"}, headers=bearer(pair["access"]), status=400
        )
    response = deletable.delete_json(
        ME, {"password": PASSWORD}, headers=bearer(pair["access"]), expect_errors=True
    )
    assert response.status_int == 429
    assert deletable.store.get_user(1) is not None


def test_account_deletion_checks_the_token_before_the_body(deletable: Any) -> None:
    response = deletable.delete(
        ME, params=b"{not json", content_type="application/json", expect_errors=True
    )
    assert_unauthorized(response, NOT_PROVIDED)


def test_plain_options_on_a_session_path(client: Any) -> None:
    response = client.options(SESSIONS + "0123456789abcdef/")
    assert response.json["allow"] == ["DELETE", "OPTIONS"]
