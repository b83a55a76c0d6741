"""``POST /accounts/password/``: the rules, the answers, and what the change ends.

"My old token still works after I changed my password" (simplejwt #700, #719, #927): here
every session of the user is revoked in the same transaction that sets the new hash, so every
access token issued before the change is refused on ``/me``, the session endpoints and
verify, and every refresh token at once; the caller gets a fresh pair in a new session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from support import PASSWORD, FakeClock, register
from support.contract import (
    NO_ACCOUNT,
    TOKEN_BLACKLISTED,
    assert_error,
    assert_unauthorized,
    claims,
)
from support.sessions import (
    NEW_PASSWORD,
    REVOKED_ACCESS,
    change_password,
    login_as,
    me,
    refresh,
    session_id,
    sessions,
    verify,
)

pytestmark = pytest.mark.both_backends

WRONG_OLD = {"old_password": ["Your old password was entered incorrectly. Please enter it again."]}
REQUIRED = "This field is required."


@pytest.fixture
def alice(client: Any) -> Any:
    register(client, email="alice@example.com")
    return client


def test_change_answers_a_fresh_pair_in_a_new_session(alice: Any) -> None:
    old = login_as(alice)
    response = change_password(alice, old["access"])
    assert response.status_int == 200
    assert response.headers["Cache-Control"] == "no-store"
    pair = response.json
    assert set(pair) == {"refresh", "access"}
    assert claims(pair["access"])["token_type"] == "access"
    assert session_id(pair["access"]) == session_id(pair["refresh"]) != session_id(old["access"])
    assert me(alice, pair["access"]).status_int == 200
    assert refresh(alice, pair["refresh"]).status_int == 200
    assert [s["current"] for s in sessions(alice, pair["access"]).json] == [True]


def test_change_ends_every_older_token_everywhere(alice: Any) -> None:
    others = [login_as(alice) for _ in range(2)]
    caller = login_as(alice)
    assert change_password(alice, caller["access"]).status_int == 200
    for pair in [*others, caller]:
        assert_unauthorized(me(alice, pair["access"]), REVOKED_ACCESS)
        assert_unauthorized(sessions(alice, pair["access"]), REVOKED_ACCESS)
        assert_unauthorized(verify(alice, pair["access"]), TOKEN_BLACKLISTED)
        assert_unauthorized(verify(alice, pair["refresh"]), TOKEN_BLACKLISTED)
        assert_unauthorized(refresh(alice, pair["refresh"]), TOKEN_BLACKLISTED)


def test_the_new_password_logs_in_and_the_old_does_not(alice: Any) -> None:
    assert change_password(alice, login_as(alice)["access"]).status_int == 200
    response = alice.post_json(
        "/accounts/token/", {"username": "alice", "password": PASSWORD}, expect_errors=True
    )
    assert_unauthorized(response, NO_ACCOUNT)
    login_as(alice, password=NEW_PASSWORD)


def test_another_process_refuses_old_access_tokens_within_the_bound(
    make_client: Callable[..., Any], clock: FakeClock
) -> None:
    here = make_client()
    there = make_client()
    register(here)
    pair = login_as(here)
    assert verify(there, pair["access"]).status_int == 200
    assert change_password(here, pair["access"]).status_int == 200
    clock.advance(1)
    assert_unauthorized(verify(there, pair["access"]), TOKEN_BLACKLISTED)


def test_wrong_old_password_is_400_and_changes_nothing(alice: Any) -> None:
    pair = login_as(alice)
    response = change_password(alice, pair["access"], old="not-the-password-1")
    assert_error(response, 400, WRONG_OLD)
    assert me(alice, pair["access"]).status_int == 200
    login_as(alice)


def test_wrong_old_passwords_count_toward_the_login_throttle(alice: Any) -> None:
    pair = login_as(alice, remote_addr="10.0.0.1")
    for _ in range(5):
        response = change_password(
            alice,
            pair["access"],
            old="not-the-password-1",
            extra_environ={"REMOTE_ADDR": "10.0.0.1"},
        )
        assert response.status_int == 400
    response = change_password(alice, pair["access"], extra_environ={"REMOTE_ADDR": "10.0.0.1"})
    assert response.status_int == 429
    assert int(response.headers["Retry-After"]) > 0
    # ... and so does a login from that address: they are one budget.
    blocked = alice.post_json(
        "/accounts/token/",
        {"username": "alice", "password": PASSWORD},
        extra_environ={"REMOTE_ADDR": "10.0.0.1"},
        expect_errors=True,
    )
    assert blocked.status_int == 429


def test_a_right_old_password_forgets_the_failed_attempts(alice: Any) -> None:
    pair = login_as(alice, remote_addr="10.0.0.1")
    environ = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(4):
        change_password(alice, pair["access"], old="nope-nope-nope-1", extra_environ=environ)
    fresh = change_password(alice, pair["access"], extra_environ=environ).json
    for _ in range(4):
        response = change_password(
            alice, fresh["access"], old="nope-nope-nope-1", extra_environ=environ
        )
        assert response.status_int == 400  # the budget was forgotten: not 429


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"old_password": [REQUIRED], "new_password": [REQUIRED]}),
        ({"old_password": PASSWORD}, {"new_password": [REQUIRED]}),
        ({"new_password": NEW_PASSWORD}, {"old_password": [REQUIRED]}),
        (
            {"old_password": PASSWORD, "new_password": "short"},
            {
                "new_password": [
                    "This password is too short. It must contain at least 8 characters."
                ]
            },
        ),
        (
            {"old_password": PASSWORD, "new_password": "password"},
            {"new_password": ["This password is too common."]},
        ),
        (
            {"old_password": PASSWORD, "new_password": "alice@example.com"},
            {"new_password": ["The password is too similar to the email address."]},
        ),
        (
            {"old_password": PASSWORD, "new_password": "84629175301"},
            {"new_password": ["This password is entirely numeric."]},
        ),
        (
            {"old_password": "wrong-and-weak", "new_password": "short"},
            {
                "new_password": [
                    "This password is too short. It must contain at least 8 characters."
                ]
            },
        ),
    ],
    ids=["empty", "no-new", "no-old", "short", "common", "like-email", "numeric", "weak-first"],
)
def test_field_errors(alice: Any, body: dict[str, str], errors: dict[str, list[str]]) -> None:
    pair = login_as(alice)
    response = alice.post_json(
        "/accounts/password/",
        body,
        headers={"Authorization": f"Bearer {pair['access']}"},
        expect_errors=True,
    )
    assert_error(response, 400, errors)
    assert me(alice, pair["access"]).status_int == 200


def test_a_weak_new_password_costs_no_throttle_attempt(alice: Any) -> None:
    pair = login_as(alice)
    for _ in range(6):
        assert change_password(alice, pair["access"], new="short").status_int == 400
    assert change_password(alice, pair["access"]).status_int == 200


def test_a_form_body_works_too(alice: Any) -> None:
    pair = login_as(alice)
    response = alice.post(
        "/accounts/password",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {pair['access']}"},
    )
    assert response.status_int == 200
