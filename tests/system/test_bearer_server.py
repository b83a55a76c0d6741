"""A resource server verifying a real ``serve.py``'s tokens: ``BearerAuth`` + ``JWKSClient``.

The issuer is ``serve.py`` in a subprocess (its signing key made on first run beside its
database); the resource app runs in-process under webtest, and its ``JWKSClient`` fetches
``/.well-known/jwks.json`` from the issuer over real HTTP. Stopping the issuer shows the
cached keys keep verifying while a client with no cache answers 503.

A rotation of the issuer's key directory (``rotate-key``, then SIGHUP) is followed by the
resource server: the new ``kid`` makes its client fetch again, the retired key keeps
verifying the tokens it signed.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import webtest

import jwtlite
from jwtlite import CLAIMS_ENVIRON_KEY, BearerAuth, JWKSClient

from support import PASSWORD, ROOT, ServerProcess, clean_environ, http

ALGORITHMS = ["RS256", "EdDSA", "Ed25519"]

Issuer = Callable[..., ServerProcess]


@pytest.fixture
def issuer(start_server: Issuer) -> Issuer:
    """Start ``serve.py`` on the test's database with extra environment; stopped at teardown."""
    return lambda **env: start_server(env)


def tokens_from(server: ServerProcess) -> dict[str, str]:
    """Register alice on ``server`` and log her in; return the token pair."""
    account = {"username": "alice", "password": PASSWORD}
    assert http("POST", server.url + "/accounts/register/", account).status == 201
    reply = http("POST", server.url + "/accounts/token/", account)
    assert reply.status == 200, reply.body
    pair: dict[str, str] = reply.json()
    return pair


def resource(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    claims = environ[CLAIMS_ENVIRON_KEY]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"user_id": claims["user_id"]}).encode()]


def resource_server(server: ServerProcess, *algorithms: str) -> webtest.TestApp:
    client = JWKSClient(server.url + "/.well-known/jwks.json", timeout=3.0)
    return webtest.TestApp(BearerAuth(resource, client, algorithms=algorithms))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tokens_of_a_running_server_verify_until_it_stops(issuer: Issuer, algorithm: str) -> None:
    server = issuer(JWTLITE_ALGORITHM=algorithm)
    pair = tokens_from(server)
    assert jwtlite.get_unverified_header(pair["access"])["alg"] == algorithm
    app = resource_server(server, algorithm)

    user_id = app.get("/", headers=bearer(pair["access"])).json["user_id"]
    direct = JWKSClient(server.url + "/.well-known/jwks.json")
    assert jwtlite.decode(pair["access"], direct, [algorithm])["user_id"] == user_id

    # A refresh token is signed by no key the JWKS publishes (HS256 under a key of its own).
    refused = app.get("/", headers=bearer(pair["refresh"]), status=401)
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    header, _, signature = pair["access"].split(".")
    claims = {"user_id": "1", "token_type": "access", "exp": 4_102_444_800}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    app.get("/", headers=bearer(f"{header}.{forged}.{signature}"), status=401)

    assert server.stop() == 0
    # The issuer is gone: the cached keys keep verifying, a client without a cache cannot.
    assert app.get("/", headers=bearer(pair["access"])).json == {"user_id": user_id}
    cold = resource_server(server, algorithm)
    reply = cold.get("/", headers=bearer(pair["access"]), status=503)
    assert "Retry-After" in reply.headers


def test_an_ed25519_server_publishes_the_new_name_and_refuses_eddsa(issuer: Issuer) -> None:
    server = issuer(JWTLITE_ALGORITHM="Ed25519")
    jwks = http("GET", server.url + "/.well-known/jwks.json").json()
    assert [(jwk["alg"], jwk["crv"]) for jwk in jwks["keys"]] == [("Ed25519", "Ed25519")]
    pair = tokens_from(server)
    # A resource server still on the old name refuses the new tokens: the allowlist rules.
    resource_server(server, "EdDSA").get("/", headers=bearer(pair["access"]), status=401)


def test_a_refresh_through_the_server_gives_a_token_the_resource_accepts(
    issuer: Issuer,
) -> None:
    server = issuer(JWTLITE_ALGORITHM="Ed448")
    pair = tokens_from(server)
    refreshed = http("POST", server.url + "/accounts/token/refresh/", {"refresh": pair["refresh"]})
    assert refreshed.status == 200, refreshed.body
    app = resource_server(server, "Ed448")
    app.get("/", headers=bearer(refreshed.json()["access"]), status=200)


def test_switching_the_service_from_eddsa_to_ed25519_keeps_its_tokens(issuer: Issuer) -> None:
    before = issuer(JWTLITE_ALGORITHM="EdDSA")
    pair = tokens_from(before)
    assert before.stop() == 0
    after = issuer(JWTLITE_ALGORITHM="Ed25519")  # the same database, so the same key file
    verified = http("POST", after.url + "/accounts/token/verify/", {"token": pair["access"]})
    assert verified.status == 200, verified.body
    refreshed = http("POST", after.url + "/accounts/token/refresh/", {"refresh": pair["refresh"]})
    assert refreshed.status == 200, refreshed.body
    new_access = refreshed.json()["access"]
    assert jwtlite.get_unverified_header(new_access)["alg"] == "Ed25519"
    assert (
        jwtlite.get_unverified_header(new_access)["kid"]
        == (jwtlite.get_unverified_header(pair["access"])["kid"])
    )
    # A resource server allowing both names accepts the old and the new access tokens.
    app = resource_server(after, "Ed25519", "EdDSA")
    app.get("/", headers=bearer(pair["access"]), status=200)
    app.get("/", headers=bearer(new_access), status=200)


@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_a_resource_server_follows_the_issuers_key_rotation(
    issuer: Issuer, tmp_path: Path, algorithm: str
) -> None:
    keys_dir = tmp_path / "keys"
    env = {"JWTLITE_KEYS_DIR": str(keys_dir), "JWTLITE_ALGORITHM": algorithm}
    server = issuer(**env, JWTLITE_KEYS_RELOAD_INTERVAL="3600")
    old = tokens_from(server)
    old_kid = jwtlite.get_unverified_header(old["access"])["kid"]
    client = JWKSClient(server.url + "/.well-known/jwks.json", timeout=3.0, refetch_cooldown=1.0)
    app = webtest.TestApp(BearerAuth(resource, client, algorithms=[algorithm]))
    app.get("/", headers=bearer(old["access"]), status=200)

    rotated = subprocess.run(
        [sys.executable, "-m", "jwtlite", "rotate-key"],
        capture_output=True,
        text=True,
        env={**clean_environ(), "PYTHONPATH": str(ROOT), **env},
        timeout=60,
        check=True,
    )
    new_kid = json.loads(rotated.stdout)["kid"]
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)  # the reload interval is an hour
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        jwks = http("GET", server.url + "/.well-known/jwks.json").json()
        if jwks["keys"][0]["kid"] == new_kid:
            break
        time.sleep(0.05)
    assert [jwk["kid"] for jwk in jwks["keys"]] == [new_kid, old_kid]

    account = {"username": "alice", "password": PASSWORD}
    new = http("POST", server.url + "/accounts/token/", account).json()
    assert jwtlite.get_unverified_header(new["access"])["kid"] == new_kid
    # The client knew only the old key: the new kid makes it fetch again (past its cooldown),
    # and the retired key keeps verifying the tokens it signed.
    time.sleep(1.1)
    app.get("/", headers=bearer(new["access"]), status=200)
    app.get("/", headers=bearer(old["access"]), status=200)
    assert server.stop() == 0
    # Both keys stay cached with the issuer gone.
    app.get("/", headers=bearer(new["access"]), status=200)
    app.get("/", headers=bearer(old["access"]), status=200)
