"""Generic resource servers of other ecosystems take jwtlite's access tokens and refuse its
refresh tokens: Auth0's ``express-oauth2-jwt-bearer`` on Node.js, configured by the issuer's
URL alone (discovery, JWKS) or with the shared secret, checks signature, ``iss``, ``aud`` and
``exp`` and knows nothing of a ``token_type`` claim."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from support import PASSWORD, ServerProcess, http, node
from support.server import free_port

StartServer = Callable[..., ServerProcess]
AUDIENCE = "https://orders.example.com"
SECRET = "resource-servers-share-this-secret-0123456789"


def _pair(server: ServerProcess) -> dict[str, str]:
    body = {"username": "alice", "password": PASSWORD}
    assert http("POST", server.url + "/accounts/register/", body).status == 201
    reply = http("POST", server.url + "/accounts/token/", body)
    assert reply.status == 200
    pair: dict[str, str] = reply.json()
    return pair


def _bearer(url: str, token: str) -> tuple[int, dict[str, str]]:
    reply = http("GET", url + "/api", headers={"Authorization": f"Bearer {token}"})
    return reply.status, reply.json()


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_express_by_issuer_url_takes_access_tokens_and_refuses_refresh_tokens(
    start_server: StartServer, algorithm: str
) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {"JWTLITE_ISSUER": issuer, "JWTLITE_AUDIENCE": AUDIENCE, "JWTLITE_ALGORITHM": algorithm}
    server = start_server(env, ["--port", str(port)])
    pair = _pair(server)
    options = {"issuerBaseURL": issuer, "audience": AUDIENCE, "tokenSigningAlg": algorithm}
    with node.server("resource-server.mjs", json.dumps(options)) as api:
        status, claims = _bearer(api, pair["access"])
        assert status == 200, claims
        assert claims["token_type"] == "access"
        status, refused = _bearer(api, pair["refresh"])
        assert status == 401, refused
        assert refused["error"] == "invalid_token"


def test_express_with_the_shared_secret_refuses_refresh_tokens(start_server: StartServer) -> None:
    issuer = "https://auth.example.com"
    env = {"JWTLITE_ISSUER": issuer, "JWTLITE_AUDIENCE": AUDIENCE, "JWTLITE_SECRET_KEY": SECRET}
    server = start_server(env)
    pair = _pair(server)
    options = {"issuer": issuer, "audience": AUDIENCE, "secret": SECRET, "tokenSigningAlg": "HS256"}
    with node.server("resource-server.mjs", json.dumps(options)) as api:
        status, claims = _bearer(api, pair["access"])
        assert status == 200, claims
        status, refused = _bearer(api, pair["refresh"])
        assert status == 401, refused
        assert refused["description"] == "signature verification failed"


def _strict_express(start_server: StartServer, **env: str) -> tuple[dict[str, str], Any]:
    """An ES256 issuer (``env`` added) with a pair of its tokens, and the options of an
    Express API that checks them by its URL in ``strict`` mode."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = {
        "JWTLITE_ISSUER": issuer,
        "JWTLITE_AUDIENCE": AUDIENCE,
        "JWTLITE_ALGORITHM": "ES256",
    }
    server = start_server({**settings, **env}, ["--port", str(port)])
    options = {"issuerBaseURL": issuer, "audience": AUDIENCE, "tokenSigningAlg": "ES256"}
    return _pair(server), {**options, "strict": True}


def test_express_in_strict_mode_takes_rfc_9068_access_tokens_only(
    start_server: StartServer,
) -> None:
    """``strict: true`` checks RFC 9068's profile (typ at+jwt, sub, client_id, iat, jti):
    jwtlite's access tokens pass it with ``ACCESS_TOKEN_FORMAT=rfc9068``, not without."""
    pair, options = _strict_express(
        start_server, JWTLITE_ACCESS_TOKEN_FORMAT="rfc9068", JWTLITE_CLIENT_ID="orders-spa"
    )
    with node.server("resource-server.mjs", json.dumps(options)) as api:
        status, claims = _bearer(api, pair["access"])
        assert status == 200, claims
        assert claims["client_id"] == "orders-spa"
        assert claims["sub"] == claims["user_id"]
        status, refused = _bearer(api, pair["refresh"])
        assert status == 401, refused


def test_express_in_strict_mode_refuses_the_seeds_format(start_server: StartServer) -> None:
    pair, options = _strict_express(start_server)
    with node.server("resource-server.mjs", json.dumps(options)) as api:
        status, refused = _bearer(api, pair["access"])
        assert status == 401, refused
        assert "typ" in refused["description"]
