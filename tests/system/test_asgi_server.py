"""The ASGI guard in real ASGI apps: FastAPI and Starlette under uvicorn, verifying the tokens
of a real ``serve.py`` through its JWKS."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import PASSWORD, ServerProcess, http
from support.server import free_port

StartServer = Callable[..., ServerProcess]

APPS = {
    "fastapi": """
        from fastapi import Depends, FastAPI, Request

        from jwtlite import JWKSClient
        from jwtlite.asgi import CLAIMS_SCOPE_KEY, BearerAuth

        app = FastAPI()
        app.add_middleware(BearerAuth, keys=JWKSClient(JWKS), algorithms=["ES256"])


        def claims(request: Request) -> dict:
            return request.scope[CLAIMS_SCOPE_KEY]


        @app.get("/orders")
        def orders(claims: dict = Depends(claims)) -> dict:
            return {"user_id": claims["user_id"], "orders": []}
    """,
    "starlette": """
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        from jwtlite import JWKSClient
        from jwtlite.asgi import CLAIMS_SCOPE_KEY, BearerAuth


        async def orders(request):
            claims = request.scope[CLAIMS_SCOPE_KEY]
            return JSONResponse({"user_id": claims["user_id"], "orders": []})


        app = Starlette(
            routes=[Route("/orders", orders)],
            middleware=[
                Middleware(BearerAuth, keys=JWKSClient(JWKS), algorithms=["ES256"])
            ],
        )
    """,
}


@pytest.fixture
def uvicorn(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """``uvicorn(kind, jwks_url)`` serves the ``kind`` app on a free port; its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(kind: str, jwks: str) -> str:
        module = tmp_path / f"{kind}_app.py"
        module.write_text(f"JWKS = {jwks!r}\n" + textwrap.dedent(APPS[kind]))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", f"{kind}_app:app", "--port", str(port)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                http("GET", url + "/orders", timeout=1)
                return url
            except OSError:
                assert process.poll() is None, process.communicate()[1].decode()[-2000:]
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)

    yield start
    for process in processes:
        process.terminate()
        process.communicate(timeout=10)


@pytest.mark.parametrize("kind", list(APPS))
def test_an_asgi_app_takes_the_issuers_access_tokens_only(
    start_server: StartServer, uvicorn: Callable[[str, str], str], kind: str
) -> None:
    server = start_server({"JWTLITE_ALGORITHM": "ES256"})
    body = {"username": "alice", "password": PASSWORD}
    assert http("POST", server.url + "/accounts/register/", body).status == 201
    pair = http("POST", server.url + "/accounts/token/", body).json()
    api = uvicorn(kind, server.url + "/.well-known/jwks.json")
    served = http("GET", api + "/orders", headers={"Authorization": f"Bearer {pair['access']}"})
    assert served.status == 200, served.body
    assert served.json() == {"user_id": "1", "orders": []}
    for headers, status in (
        ({}, 401),
        ({"Authorization": f"Bearer {pair['refresh']}"}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        ({"Authorization": "Bearer\tx"}, 400),
    ):
        refused = http("GET", api + "/orders", headers=headers)
        assert refused.status == status, (headers, refused.body)
        assert refused.headers["www-authenticate"].startswith('Bearer realm="api"')
        assert refused.headers["cache-control"] == "no-store"
