"""Helpers shared by the service tests: a controllable clock, a served process, protocol steps.

Test modules import this as ``support`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "serve.py"
PASSWORD = "correct-horse-battery-7"
# Cheap Argon2id for tests where the cost is not the point (the defaults cost ~20 ms a hash).
FAST_HASH = {"password_hash_memory_kib": 1024, "password_hash_iterations": 1}
FAST_HASH_ENV = {
    "JWTLITE_PASSWORD_HASH_MEMORY_KIB": "1024",
    "JWTLITE_PASSWORD_HASH_ITERATIONS": "1",
}


class FakeClock:
    """A clock for ``create_app(clock=...)``: starts at a fixed time, moves when told."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def clean_environ() -> dict[str, str]:
    """``os.environ`` without any ``JWTLITE_*`` variable, so a test sets exactly what it means.

    The suite's own variables (``JWTLITE_TEST_POSTGRES_URL``) are not the service's settings:
    a server started with them would refuse them as unknown.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("JWTLITE_")}


@dataclass
class Response:
    """What a real HTTP request got back."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    raw: bytes | None = None,
    timeout: float = 10.0,
) -> Response:
    """One real HTTP request with urllib; errors are returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None and raw is None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return Response(reply.status, dict(reply.headers.items()), reply.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers.items()), error.read())


@dataclass
class ServerProcess:
    """``python serve.py`` in a subprocess on a free loopback port.

    ``command`` replaces ``python serve.py`` (e.g. another interpreter's ``-m jwtlite serve``).
    """

    database: Path
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=lambda: [sys.executable, str(SERVE)])
    process: subprocess.Popen[str] | None = None
    url: str = ""
    banner: str = ""
    started_in: float = 0.0
    error_output: str = ""
    _drain: threading.Thread | None = None

    def start(self, timeout: float = 15.0) -> ServerProcess:
        env = {**clean_environ(), "JWTLITE_DATABASE": str(self.database), **self.env}
        began = time.monotonic()
        self.process = subprocess.Popen(
            [*self.command, "--host", "127.0.0.1", "--port", "0", *self.args],
            cwd=self.database.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        # Drain stderr all along: a server that logs into a full pipe would block.
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        reader = threading.Thread(target=self._read_banner, daemon=True)
        reader.start()
        reader.join(timeout)
        if not self.banner:
            self.stop()
            raise RuntimeError(f"serve.py did not start: {self.error_output}")
        self.started_in = time.monotonic() - began
        port = int(self.banner.split("http://127.0.0.1:", 1)[1].split()[0])
        self.url = f"http://127.0.0.1:{port}"
        return self

    def _read_banner(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        self.banner = self.process.stdout.readline().strip()

    def _read_stderr(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.error_output += line

    def stderr(self) -> str:
        """What the server has written on stderr so far (all of it once it has stopped)."""
        if self.process is not None and self.process.poll() is not None and self._drain:
            self._drain.join(5)
        return self.error_output

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.stderr()  # wait for the drain to read everything before the pipes close
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def register(client: Any, username: str = "alice", password: str = PASSWORD, **extra: Any) -> Any:
    """POST accounts/register/ through a webtest client; returns the JSON body."""
    return client.post_json(
        "/accounts/register/", {"username": username, "password": password, **extra}, status=201
    ).json


def login(client: Any, username: str = "alice", password: str = PASSWORD) -> dict[str, str]:
    """POST accounts/token/ through a webtest client; returns {"refresh", "access"}."""
    result: dict[str, str] = client.post_json(
        "/accounts/token/", {"username": username, "password": password}, status=200
    ).json
    return result
