"""Discovery as clients of other ecosystems do it, against a real ``serve.py``: panva's
``oauth4webapi`` on Node.js takes the issuer's URL alone and checks what it finds."""

from __future__ import annotations

from collections.abc import Callable

from support import ServerProcess, node
from support.server import free_port

StartServer = Callable[..., ServerProcess]


def test_oauth4webapi_discovers_the_issuer_by_its_url(start_server: StartServer) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    server = start_server(
        {"JWTLITE_ISSUER": issuer, "JWTLITE_ALGORITHM": "ES256"}, ["--port", str(port)]
    )
    for algorithm in ("oidc", "oauth2"):
        found = node.run("discovery.mjs", issuer, algorithm)
        metadata = found["metadata"]
        assert metadata["issuer"] == issuer
        assert metadata["jwks_uri"] == f"{server.url}/.well-known/jwks.json"
        assert metadata["token_endpoint"] == f"{server.url}/accounts/token/"


def test_oauth4webapi_finds_an_issuer_with_a_path_by_rfc_8414_insertion(
    start_server: StartServer,
) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/tenant"
    start_server({"JWTLITE_ISSUER": issuer}, ["--port", str(port)])
    found = node.run("discovery.mjs", issuer, "oauth2")
    assert (
        found["requested"]
        == f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server/tenant"
    )
    assert found["metadata"]["issuer"] == issuer


def test_oauth4webapi_refuses_metadata_of_another_issuer(start_server: StartServer) -> None:
    """The check that makes discovery safe holds against jwtlite too: a client configured
    with one issuer does not take another's document."""
    port = free_port()
    start_server({"JWTLITE_ISSUER": f"http://127.0.0.1:{port}/tenant"}, ["--port", str(port)])
    error = node.fails("discovery.mjs", f"http://127.0.0.1:{port}", "oidc")
    assert "issuer" in error
