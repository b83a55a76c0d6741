"""Authorization server metadata: what ``/.well-known/openid-configuration`` and RFC 8414's
``/.well-known/oauth-authorization-server`` serve, and when they are not served at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jwtlite.service.errors import ConfigurationError

OPENID = "/.well-known/openid-configuration"
OAUTH = "/.well-known/oauth-authorization-server"
ISSUER = "https://id.example.com"


def test_both_documents_describe_the_issuer_from_its_url_alone(
    make_client: Callable[..., Any],
) -> None:
    client = make_client(issuer=ISSUER, algorithm="ES256")
    openid = client.get(OPENID)
    oauth = client.get(OAUTH)
    assert (
        openid.json
        == oauth.json
        == {
            "issuer": ISSUER,
            "token_endpoint": f"{ISSUER}/accounts/token/",
            "token_endpoint_auth_methods_supported": ["none"],
            "grant_types_supported": ["password", "refresh_token"],
            "response_types_supported": [],
            "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["ES256"],
        }
    )
    assert openid.headers["Cache-Control"] == "public, max-age=3600"
    assert openid.headers["Content-Type"] == "application/json"
    # The keys it points at are the ones that verify the tokens it issues.
    assert client.get("/.well-known/jwks.json").json["keys"][0]["alg"] == "ES256"
    assert client.head(OPENID).status_int == 200


def test_urls_come_from_the_issuer_setting_never_from_the_request(
    make_client: Callable[..., Any],
) -> None:
    client = make_client(issuer=ISSUER, algorithm="ES256")
    for headers in (
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
        {"Forwarded": "host=evil.example;proto=http"},
    ):
        document = client.get(OPENID, headers=headers).json
        assert all(
            value.startswith(ISSUER + "/")
            for name, value in document.items()
            if name.endswith(("_endpoint", "_uri"))
        ), document


def test_an_issuer_with_a_path_is_served_appended_and_inserted(
    make_client: Callable[..., Any],
) -> None:
    """OpenID Connect Discovery appends the well-known path to the issuer (the service's
    own mount point); RFC 8414 §3.1 inserts it before the issuer's path."""
    issuer = "https://example.com/tenants/a"
    client = make_client(issuer=issuer)
    assert client.get(OPENID).json["issuer"] == issuer
    assert client.get(f"{OAUTH}/tenants/a").json["issuer"] == issuer
    assert client.get(f"{OAUTH}/tenants/a").json["token_endpoint"] == (
        "https://example.com/tenants/a/accounts/token/"
    )
    # The document of another issuer (the bare host, another tenant) is not this one.
    for path in (OAUTH, f"{OAUTH}/tenants", f"{OAUTH}/tenants/b", f"{OAUTH}/tenants/a/x"):
        assert client.get(path, expect_errors=True).status_int == 404, path


def test_a_symmetric_key_publishes_no_jwks_uri(make_client: Callable[..., Any]) -> None:
    document = make_client(issuer=ISSUER).get(OPENID).json
    assert "jwks_uri" not in document
    assert document["id_token_signing_alg_values_supported"] == ["HS256"]


def test_a_trailing_slash_is_kept_in_the_issuer_and_not_doubled_in_urls(
    make_client: Callable[..., Any],
) -> None:
    document = make_client(issuer=ISSUER + "/").get(OPENID).json
    assert document["issuer"] == ISSUER + "/"
    assert document["token_endpoint"] == f"{ISSUER}/accounts/token/"


@pytest.mark.parametrize(
    "issuer",
    [
        "https://",
        "https://a.example/?x=1",
        "https://a.example/#top",
        "http://127.0.0.1:abc/x",
        "http://h:99999/",
        "http://h/x y",
        "http://h/%zz",
        "https://a.example/a%2Fb",
        " http://h/",
        "http://u:p@h/t",
        "http://h/t/../u",
        "http://[::1",
        "http:///x",
        "http://h/x?",
        "HTTPS://h\r\nX: y",
    ],
)
def test_an_issuer_that_starts_as_a_url_but_is_not_a_clean_one_stops_start_up(
    make_client: Callable[..., Any], issuer: str
) -> None:
    """The fourth outside attack: such values were published as they were (a token endpoint
    with a leading space, userinfo, a port of 99999) or silently served no metadata."""
    with pytest.raises(ConfigurationError, match=r"^ISSUER: "):
        make_client(issuer=issuer)


@pytest.mark.parametrize(
    "issuer",
    ["https://a.example:8443/t-1/v2/", "http://[::1]:8000", "https://a.example/~x/!$&'()*+,;=:@"],
)
def test_a_clean_issuer_url_is_published_as_it_is(
    make_client: Callable[..., Any], issuer: str
) -> None:
    assert make_client(issuer=issuer).get(OPENID).json["issuer"] == issuer


@pytest.mark.parametrize("issuer", [None, "my-service", "urn:example:issuer"])
def test_nothing_is_served_without_an_issuer_url(
    make_client: Callable[..., Any], issuer: str | None
) -> None:
    """Any string is a valid ``iss`` claim; only an http(s) URL without query or fragment
    can be a metadata document's issuer (RFC 8414 §2)."""
    client = make_client(**({"issuer": issuer} if issuer else {}))
    for path in (OPENID, OAUTH):
        response = client.get(path, expect_errors=True)
        assert response.status_int == 404
        assert response.json == {"detail": "Not found."}


def test_the_metadata_follows_a_rotation_to_another_family(
    make_client: Callable[..., Any], tmp_path: Any, clock: Any
) -> None:
    """The fourth outside attack: whether jwks_uri was listed was decided at start-up from
    ALGORITHM, so after rotating an HMAC key directory to RS256 the document named RS256 and
    no keys, and resource servers configured by the issuer's URL refused every token."""
    from jwtlite.service.signing.directory import KeyDirectory
    from jwtlite.service.signing.keyring import request_reload

    keys = tmp_path / "keys"
    client = make_client(issuer=ISSUER, keys_dir=str(keys), algorithm="HS256")
    assert "jwks_uri" not in client.get(OPENID).json
    KeyDirectory(str(keys)).rotate("RS256", now=int(clock()), keep_seconds=3600)
    request_reload()
    document = client.get(OPENID).json
    assert document["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert "RS256" in document["id_token_signing_alg_values_supported"]
