"""Fixtures for the system tests: real ``serve.py`` processes on loopback ports.

Everything here runs the service as its users do -- a subprocess, real HTTP, a real database
file or server, real browsers and peers -- so these are the slowest tests; the layers below
(``tests/library`` ... ``tests/web``) check the same rules in process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from support import FAST_HASH_ENV, ServerProcess
from support import postgres as support_postgres


@pytest.fixture
def shared_key_env(backend: str) -> dict[str, str]:
    """The environment a served instance needs on this backend: on PostgreSQL a shared
    signing key (a generated one is refused there), on SQLite nothing."""
    return {"JWTLITE_SECRET_KEY": support_postgres.SECRET} if backend == "postgres" else {}


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def start_server(db_path: Path) -> Iterator[StartServer]:
    """``start_server(env, args=())`` starts ``serve.py`` on the test's SQLite file (cheap
    hashes, then ``env``; ``args`` beyond the host and port); every server it started is
    stopped at teardown."""
    servers: list[ServerProcess] = []

    def start(env: Mapping[str, str] | None = None, args: Sequence[str] = ()) -> ServerProcess:
        server = ServerProcess(database=db_path, env={**FAST_HASH_ENV, **(env or {})}, args=[*args])
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def serve(
    start_server: StartServer, database: str, shared_key_env: dict[str, str]
) -> Iterator[StartServer]:
    """``serve(**env)`` starts ``serve.py --threads 8`` on the test's database (cheap hashes,
    logins that wait for their hash instead of being shed); every instance is stopped at
    teardown, and none may have written a traceback."""
    servers: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        server = start_server(
            {
                **support_postgres.WAIT_FOR_HASHES,
                "JWTLITE_DATABASE": database,
                **shared_key_env,
                **env,
            },
            ["--threads", "8"],
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
        assert "Traceback" not in server.stderr()
