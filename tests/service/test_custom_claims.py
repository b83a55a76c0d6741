"""``create_app(settings, claims=...)``: extra claims for access tokens.

The function gets the user and returns claims; it runs at login and at every refresh (a role
change shows at the next refresh); reserved claims and values JSON cannot carry are refused
with an error that names the claim; refresh tokens never carry them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jwtlite.service import AuthService, Settings
from jwtlite.service.errors import ConfigurationError
from jwtlite.store import User
from jwtlite.store.sqlite import SQLiteStore
from jwtlite.web import create_app

from support import FAST_HASH, PASSWORD, FakeClock, register
from support.contract import claims
from support.sessions import login_as, refresh

ROLES: dict[str, list[str]] = {"alice": ["reader"]}


def roles(user: User) -> dict[str, Any]:
    """The README's example: roles from wherever the application keeps them."""
    return {"roles": ROLES.get(user.username, []), "name": user.username}


@pytest.fixture
def make(db_path: Path, clock: FakeClock) -> Iterator[Callable[..., Any]]:
    import webtest

    stores: list[SQLiteStore] = []

    def build(claims_function: Any, **overrides: Any) -> Any:
        settings = Settings(database=str(db_path), **FAST_HASH, **overrides)
        store = SQLiteStore(settings.database)
        stores.append(store)
        return webtest.TestApp(
            create_app(settings, store=store, clock=clock, claims=claims_function)
        )

    yield build
    for store in stores:
        store.close()


def test_access_tokens_carry_the_claims_after_the_standard_ones(make: Callable[..., Any]) -> None:
    client = make(roles, issuer="https://auth.example", audience="api")
    register(client)
    pair = login_as(client)
    access = claims(pair["access"])
    assert list(access) == [
        "token_type",
        "exp",
        "iat",
        "jti",
        "user_id",
        "iss",
        "aud",
        "roles",
        "name",
    ]
    assert (access["roles"], access["name"]) == (["reader"], "alice")
    assert list(claims(pair["refresh"])) == [
        "token_type",
        "exp",
        "iat",
        "jti",
        "user_id",
        "iss",
        "aud",
    ]


def test_a_role_change_shows_at_the_next_refresh(
    make: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make(roles)
    register(client)
    pair = login_as(client)
    monkeypatch.setitem(ROLES, "alice", ["reader", "editor"])
    fresh = refresh(client, pair["refresh"]).json["access"]
    assert claims(fresh)["roles"] == ["reader", "editor"]
    assert client.post_json("/accounts/token/verify/", {"token": fresh}).json == {}


@pytest.mark.parametrize(
    "reserved", ["token_type", "exp", "iat", "jti", "user_id", "iss", "aud", "sid", "nbf"]
)
def test_reserved_claims_are_refused_naming_the_claim(
    make: Callable[..., Any], reserved: str
) -> None:
    client = make(lambda user: {"roles": [], reserved: "x"})
    register(client)
    response = client.post_json(
        "/accounts/token/", {"username": "alice", "password": PASSWORD}, expect_errors=True
    )
    assert response.status_int == 500
    assert response.json == {"detail": "A server error occurred."}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"exp": 1}, 'reserved claim "exp"'),
        ({"score": math.nan}, 'claim "score" cannot be JSON'),
        ({"when": object()}, 'claim "when" cannot be JSON'),
        ([("roles", [])], "must return a mapping"),
    ],
    ids=["reserved", "nan", "object", "not-a-mapping"],
)
def test_the_service_says_what_is_wrong(db_path: Path, extra: Any, message: str) -> None:
    settings = Settings(database=str(db_path), **FAST_HASH)
    service = AuthService.from_settings(settings, claims=lambda user: extra)
    try:
        service.register({"username": "alice", "password": PASSWORD}, address=None)
        with pytest.raises(ConfigurationError, match=message):
            service.login({"username": "alice", "password": PASSWORD}, address="10.0.0.1")
    finally:
        service.store.close()


def test_no_function_no_extra_claims(client: Any) -> None:
    register(client)
    assert list(claims(login_as(client)["access"])) == [
        "token_type",
        "exp",
        "iat",
        "jti",
        "user_id",
    ]
