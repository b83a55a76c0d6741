"""Helpers for the real-server and embedding tests (``test_server.py``, ``test_embedding.py``)."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

from support import Response


def header(response: Response, name: str) -> str:
    """Header ``name`` of a real HTTP response, compared case-insensitively ("" if absent)."""
    wanted = name.lower()
    return next((v for k, v in response.headers.items() if k.lower() == wanted), "")


def free_port() -> int:
    """A loopback port that was free a moment ago (for servers that need a fixed one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def unverified_segment(token: str, index: int) -> Any:
    """Decode segment ``index`` (0 header, 1 claims) of a compact JWT without verifying it."""
    segment = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
