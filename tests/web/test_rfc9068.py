"""``ACCESS_TOKEN_FORMAT=rfc9068``: access tokens in RFC 9068's JWT profile, opt-in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jwtlite import get_unverified_header
from jwtlite.jwt import decode_unverified_claims
from jwtlite.service.errors import ConfigurationError

from support import login, register

ISSUER = "https://auth.example.com"
AUDIENCE = "https://orders.example.com"
PROFILE = {"access_token_format": "rfc9068", "issuer": ISSUER, "audience": AUDIENCE}


def test_access_tokens_carry_the_profile_and_the_seeds_claims(
    make_client: Callable[..., Any],
) -> None:
    client = make_client(**PROFILE, client_id="orders-spa", algorithm="ES256")
    register(client)
    pair = login(client)
    header = get_unverified_header(pair["access"])
    assert header["typ"] == "at+jwt"
    claims = decode_unverified_claims(pair["access"])
    # RFC 9068 §2.2's required claims...
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == claims["user_id"] == "1"
    assert claims["client_id"] == "orders-spa"
    assert {"exp", "iat", "jti"} <= set(claims)
    # ...beside the seed's, in the seed's order first.
    assert list(claims)[:5] == ["token_type", "exp", "iat", "jti", "user_id"]
    # The service takes them everywhere it takes access tokens.
    assert client.post_json("/accounts/token/verify/", {"token": pair["access"]}).json == {}
    me = client.get("/accounts/me/", headers={"Authorization": f"Bearer {pair['access']}"})
    assert me.json["username"] == "alice"
    refreshed = client.post_json("/accounts/token/refresh/", {"refresh": pair["refresh"]}).json
    assert get_unverified_header(refreshed["access"])["typ"] == "at+jwt"
    # Refresh tokens are no access tokens: no profile for them.
    assert get_unverified_header(pair["refresh"])["typ"] == "JWT"
    assert "sub" not in decode_unverified_claims(pair["refresh"])


def test_the_default_format_is_the_seeds(make_client: Callable[..., Any]) -> None:
    client = make_client(issuer=ISSUER, audience=AUDIENCE)
    register(client)
    access = login(client)["access"]
    assert get_unverified_header(access) == {"alg": "HS256", "typ": "JWT"}
    assert not {"sub", "client_id"} & set(decode_unverified_claims(access))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"access_token_format": "rfc9068", "audience": AUDIENCE}, "set ISSUER and AUDIENCE"),
        ({"access_token_format": "rfc9068", "issuer": ISSUER}, "set ISSUER and AUDIENCE"),
        ({"access_token_format": "jwt"}, "must be one of simplejwt, rfc9068"),
        ({**PROFILE, "client_id": "has space"}, "CLIENT_ID"),
        ({**PROFILE, "client_id": ""}, "CLIENT_ID"),
    ],
)
def test_a_profile_without_its_required_claims_stops_start_up(
    settings: dict[str, str], message: str
) -> None:
    from jwtlite.service.settings import Settings

    with pytest.raises(ConfigurationError, match=message):
        Settings(**settings)


def test_the_format_is_read_case_insensitively() -> None:
    from jwtlite.service.settings import Settings

    assert Settings(**{**PROFILE, "access_token_format": " RFC9068 "}).access_token_format == (
        "rfc9068"
    )


@pytest.mark.parametrize(
    "change", [{"sub": "999"}, {"sub": None}, {"client_id": "other"}, {"client_id": None}]
)
def test_an_access_token_whose_profile_claims_are_not_ours_is_refused(
    make_client: Callable[..., Any], db_path: Any, change: dict[str, Any]
) -> None:
    """The fourth outside attack: sub and user_id could disagree (a resource server reading
    sub saw another user than /me served) or client_id be another's, under our key."""
    from jwtlite import Key, encode

    client = make_client(**PROFILE, secret_key="s" * 64)
    register(client)
    access = login(client)["access"]
    claims = decode_unverified_claims(access)
    for name, value in change.items():
        if value is None:
            del claims[name]
        else:
            claims[name] = value
    forged = encode(claims, Key(("s" * 64).encode(), "HS256"), headers={"typ": "at+jwt"})
    headers = {"Authorization": f"Bearer {forged}"}
    assert client.get("/accounts/me/", headers=headers, expect_errors=True).status_int == 401
    verify = client.post_json("/accounts/token/verify/", {"token": forged}, expect_errors=True)
    assert verify.status_int == 401
    assert client.get("/accounts/me/", headers={"Authorization": f"Bearer {access}"}).json
