"""The token library's tests (``jwtlite/`` root: codec, keys, algorithms): pure and in process.

``pytest tests/library`` is the inner loop while working on the codec: no server, no database,
and no network -- a test here that opens a socket fails, so the loop stays seconds long and
cannot depend on the machine it runs on.
"""

from __future__ import annotations

import socket
from typing import Any, NoReturn

import pytest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every outgoing connection: the library speaks no network."""

    def refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise AssertionError("a library test opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
