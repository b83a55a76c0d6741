"""The rotation grace period (``ROTATION_GRACE_PERIOD``; Ory Hydra #1831).

Two tabs refresh with one token at once, or a retried request lost its answer: within the
period the spent token gets the same successor again (rebuilt from its record: the same
bytes with HS256) and a fresh access token of the same session, instead of revoking the
family. Outside the period, or once the successor was spent or revoked, it is reuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from support import FakeClock, register
from support.contract import TOKEN_BLACKLISTED, assert_unauthorized, claims
from support.sessions import (
    BLACKLIST,
    REVOKED_ACCESS,
    login_as,
    me,
    refresh,
    session_id,
    sessions,
    verify,
)

pytestmark = pytest.mark.both_backends


@pytest.fixture
def graceful(make_client: Callable[..., Any]) -> Any:
    client = make_client(rotate_refresh_tokens=True, rotation_grace_period=5)
    register(client)
    return client


def test_a_replay_within_the_period_gets_the_same_successor(
    graceful: Any, clock: FakeClock
) -> None:
    first = login_as(graceful)
    clock.advance(1)
    won = refresh(graceful, first["refresh"]).json
    clock.advance(5)  # the last second of the period
    again = refresh(graceful, first["refresh"])
    assert again.status_int == 200
    assert again.json["refresh"] == won["refresh"]  # HS256: the very same bytes
    assert again.json["access"] != won["access"]
    assert session_id(again.json["access"]) == session_id(won["access"])
    assert claims(again.json["access"])["iat"] == int(clock.now)
    # Nothing was revoked: both access tokens and the successor still work.
    assert me(graceful, won["access"]).status_int == 200
    assert refresh(graceful, won["refresh"]).status_int == 200
    assert len(sessions(graceful, again.json["access"]).json) == 1  # no new session


def test_a_replay_after_the_period_is_reuse(graceful: Any, clock: FakeClock) -> None:
    first = login_as(graceful)
    won = refresh(graceful, first["refresh"]).json
    clock.advance(6)
    assert_unauthorized(refresh(graceful, first["refresh"]), TOKEN_BLACKLISTED)
    assert_unauthorized(refresh(graceful, won["refresh"]), TOKEN_BLACKLISTED)
    assert_unauthorized(me(graceful, won["access"]), REVOKED_ACCESS)


def test_a_replay_once_the_successor_was_spent_is_reuse(graceful: Any) -> None:
    first = login_as(graceful)
    second = refresh(graceful, first["refresh"]).json
    third = refresh(graceful, second["refresh"]).json
    assert_unauthorized(refresh(graceful, first["refresh"]), TOKEN_BLACKLISTED)
    assert_unauthorized(refresh(graceful, third["refresh"]), TOKEN_BLACKLISTED)


def test_a_replay_after_the_session_was_revoked_is_refused(graceful: Any) -> None:
    first = login_as(graceful)
    won = refresh(graceful, first["refresh"]).json
    graceful.post("/accounts/logout-all/", headers={"Authorization": f"Bearer {won['access']}"})
    assert_unauthorized(refresh(graceful, first["refresh"]), TOKEN_BLACKLISTED)


def test_a_replay_after_logout_is_refused(graceful: Any) -> None:
    first = login_as(graceful)
    won = refresh(graceful, first["refresh"]).json
    graceful.post_json(BLACKLIST, {"refresh": won["refresh"]}, status=200)
    assert_unauthorized(refresh(graceful, first["refresh"]), TOKEN_BLACKLISTED)


def test_without_a_period_a_replay_is_reuse_as_before(make_client: Callable[..., Any]) -> None:
    client = make_client(rotate_refresh_tokens=True)
    register(client)
    first = login_as(client)
    won = refresh(client, first["refresh"]).json
    assert_unauthorized(refresh(client, first["refresh"]), TOKEN_BLACKLISTED)
    assert_unauthorized(refresh(client, won["refresh"]), TOKEN_BLACKLISTED)


def test_verify_of_a_just_spent_token_refuses_without_revoking(graceful: Any) -> None:
    first = login_as(graceful)
    won = refresh(graceful, first["refresh"]).json
    assert_unauthorized(verify(graceful, first["refresh"]), TOKEN_BLACKLISTED)
    assert refresh(graceful, won["refresh"]).status_int == 200


def test_logout_with_a_just_spent_token_ends_the_session(graceful: Any) -> None:
    first = login_as(graceful)
    won = refresh(graceful, first["refresh"]).json
    graceful.post_json(BLACKLIST, {"refresh": first["refresh"]}, status=200)
    assert_unauthorized(refresh(graceful, won["refresh"]), TOKEN_BLACKLISTED)
    assert me(graceful, won["access"]).status_int == 200  # ended, not revoked


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_asymmetric_successors_are_the_same_token(
    make_client: Callable[..., Any], algorithm: str
) -> None:
    client = make_client(rotate_refresh_tokens=True, rotation_grace_period=5, algorithm=algorithm)
    register(client)
    first = login_as(client)
    won = refresh(client, first["refresh"]).json["refresh"]
    again = refresh(client, first["refresh"]).json["refresh"]
    if algorithm == "RS256":
        assert again == won  # PKCS#1 v1.5 signatures are deterministic
    assert again.rsplit(".", 1)[0] == won.rsplit(".", 1)[0]  # same header and claims
    assert refresh(client, again).status_int == 200
