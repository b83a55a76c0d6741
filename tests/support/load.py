"""Load helpers for the concurrency, crash and fault tests and the ``bench/`` scripts.

Real HTTP over ``http.client`` (one keep-alive connection per thread), requests released
together by a barrier, percentiles, and the write storm with its ledger of everything the
server acknowledged, used by ``tests/system/test_crash.py`` and ``bench/crash.py``.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from support import PASSWORD

_T = TypeVar("_T")

# What a dying server looks like from the client's side.
CONNECTION_ERRORS = (ConnectionError, http.client.HTTPException, TimeoutError, OSError)


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, headers (lower-cased names), raw body, elapsed seconds."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class Client:
    """One keep-alive HTTP/1.1 connection to the server at ``url``, for one thread.

    Connection errors are raised (the crash storm relies on that to notice a kill).
    ``source`` is the loopback address to connect from (127.x.y.z), so that one test can be
    many clients.
    """

    def __init__(self, url: str, *, timeout: float = 15.0, source: str | None = None) -> None:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1"  # loopback only
        assert source is None or source.startswith("127.")
        self._connection = http.client.HTTPConnection(
            parts.hostname,
            parts.port,
            timeout=timeout,
            source_address=None if source is None else (source, 0),
        )

    def connect(self) -> Client:
        """Open the TCP connection now (so a barrier releases requests, not handshakes)."""
        self._connection.connect()
        return self

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request and read the whole answer."""
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        all_headers.update(headers or {})
        began = time.perf_counter()
        self._connection.request(method, path, body=data, headers=all_headers)
        answer = self._connection.getresponse()
        payload = answer.read()
        elapsed = time.perf_counter() - began
        names = {name.lower(): value for name, value in answer.getheaders()}
        if answer.will_close:
            self._connection.close()  # reconnects on the next request
        return Reply(answer.status, names, payload, elapsed)

    def post(self, path: str, body: Any, *, headers: Mapping[str, str] | None = None) -> Reply:
        """POST ``body`` as JSON."""
        return self.request("POST", path, body, headers=headers)


def post_together(
    url: str | Sequence[str],
    requests: Sequence[tuple[str, Any]],
    *,
    timeout: float = 60.0,
    sources: Sequence[str] | None = None,
) -> list[Reply]:
    """POST every ``(path, body)`` of ``requests`` at once, each from its own thread and
    connection, released together by a barrier; the replies in the same order.

    ``url`` may also be a sequence of base URLs: request ``i`` goes to ``url[i % len]``;
    request ``i`` comes from ``sources[i]`` when given (see :class:`Client`).
    """
    urls = [url] if isinstance(url, str) else list(url)
    barrier = threading.Barrier(len(requests))

    def one(index: int) -> Reply:
        source = None if sources is None else sources[index]
        client = Client(urls[index % len(urls)], source=source).connect()
        try:
            barrier.wait(timeout)
            path, body = requests[index]
            return client.post(path, body)
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(one, range(len(requests)), timeout=timeout))


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, without checking anything (to find a token's ``jti``)."""
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return claims


def run_threads(count: int, target: Callable[[int], _T], *, timeout: float) -> list[_T]:
    """Run ``target(i)`` for ``i`` in ``range(count)`` on ``count`` threads; the results."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(target, range(count), timeout=timeout))


# -- the crash storm --------------------------------------------------------------------------


@dataclass
class Ledger:
    """Everything a server acknowledged during write storms, and what must hold of it.

    ``users``: usernames answered 201. ``blacklisted``: refresh tokens whose blacklisting
    was answered 200. ``spent``: refresh tokens whose rotation was answered 200 (with
    rotation on, each can never refresh again).
    """

    users: list[str] = field(default_factory=list)
    blacklisted: list[str] = field(default_factory=list)
    spent: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, value: str) -> None:
        """Record one acknowledged fact (thread-safe)."""
        with self.lock:
            getattr(self, kind).append(value)


# The server settings the storm needs: rotation on (refresh writes), long-lived refresh
# tokens (so "refused" means revoked, not expired), no throttling in the way.
STORM_ENV = {
    # Every storm client registers from 127.0.0.1: the per-address limit is not the subject.
    "JWTLITE_REGISTRATION_MAX_PER_ADDRESS": "1000000",
    # ... nor is the shedding of concurrent logins from one client (see http_channel).
    "JWTLITE_PASSWORD_HASH_QUEUE": "1000",
    "JWTLITE_PASSWORD_HASH_PER_CLIENT": "1000",
    "JWTLITE_ROTATE_REFRESH_TOKENS": "true",
    "JWTLITE_ACCESS_TOKEN_LIFETIME": "3600",
    "JWTLITE_REFRESH_TOKEN_LIFETIME": "86400",
}


def write_storm(url: str, ledger: Ledger, *, tag: str, workers: int, deadline: float) -> int:
    """Register, log in, rotate and blacklist in a loop on ``workers`` threads until the
    server stops answering or ``time.monotonic()`` passes ``deadline``.

    Every acknowledged result goes into ``ledger``; any answer other than the expected one
    is noted in ``ledger.unexpected``. Returns the number of requests answered.
    """

    def worker(index: int) -> int:
        answered = 0
        client = Client(url, timeout=10.0)
        try:
            for number in range(100_000):
                if time.monotonic() >= deadline:
                    break
                name = f"{tag}w{index}n{number}"
                reply = client.post("/accounts/register/", {"username": name, "password": PASSWORD})
                answered += 1
                if reply.status != 201:
                    ledger.add("unexpected", f"register {name}: {reply.status} {reply.body!r}")
                    continue
                ledger.add("users", name)
                reply = client.post("/accounts/token/", {"username": name, "password": PASSWORD})
                answered += 1
                if reply.status != 200:
                    ledger.add("unexpected", f"login {name}: {reply.status} {reply.body!r}")
                    continue
                old = reply.json()["refresh"]
                reply = client.post("/accounts/token/refresh/", {"refresh": old})
                answered += 1
                if reply.status != 200:
                    ledger.add("unexpected", f"refresh {name}: {reply.status} {reply.body!r}")
                    continue
                ledger.add("spent", old)
                new = reply.json()["refresh"]
                reply = client.post("/accounts/token/blacklist/", {"refresh": new})
                answered += 1
                if reply.status != 200:
                    ledger.add("unexpected", f"blacklist {name}: {reply.status} {reply.body!r}")
                    continue
                ledger.add("blacklisted", new)
        except CONNECTION_ERRORS:
            pass  # the server was killed: whatever was in flight is not acknowledged
        finally:
            client.close()
        return answered

    return sum(run_threads(workers, worker, timeout=max(1.0, deadline - time.monotonic()) + 30))


@dataclass
class Audit:
    """What a restarted server and its database say about a :class:`Ledger`."""

    lost_users: list[str] = field(default_factory=list)
    revived_tokens: list[str] = field(default_factory=list)
    integrity: str = ""
    foreign_key_problems: int = 0

    @property
    def ok(self) -> bool:
        """Nothing acknowledged was lost and the file is sound."""
        return (
            not self.lost_users
            and not self.revived_tokens
            and self.integrity == "ok"
            and self.foreign_key_problems == 0
        )


def audit(url: str, database: Path, ledger: Ledger, *, workers: int = 4) -> Audit:
    """Check ``ledger`` against a running server and its database file.

    Every acknowledged user must log in (over HTTP) and have its row; every blacklisted or
    spent refresh token must be refused with "Token is blacklisted" and not be active in
    the database; ``PRAGMA integrity_check`` must say ``ok``.
    """
    result = audit_over_http(url, ledger, workers=workers)
    with ledger.lock:
        users = list(ledger.users)
        refused = list(ledger.blacklisted) + list(ledger.spent)
    with read_only(database) as connection:
        result.integrity = "; ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
        result.foreign_key_problems = len(connection.execute("PRAGMA foreign_key_check").fetchall())
        stored = {row[0] for row in connection.execute("SELECT username FROM users")}
        result.lost_users += [
            name for name in users if name not in stored and name not in result.lost_users
        ]
        for token in refused:
            jti = unverified_claims(token)["jti"]
            row = connection.execute(
                "SELECT state FROM refresh_tokens WHERE jti = ?", (jti,)
            ).fetchone()
            if (row is None or row[0] == "active") and token not in result.revived_tokens:
                result.revived_tokens.append(token)
    return result


def audit_over_http(url: str, ledger: Ledger, *, workers: int = 4) -> Audit:
    """The HTTP half of :func:`audit`, for any backend: every acknowledged user logs in,
    every blacklisted or spent refresh token is refused as blacklisted (``integrity`` is
    left empty: the database's own checks are the caller's)."""
    result = Audit()
    with ledger.lock:
        users = list(ledger.users)
        refused = list(ledger.blacklisted) + list(ledger.spent)

    def check_users(index: int) -> list[str]:
        client = Client(url)
        lost = []
        try:
            for name in users[index::workers]:
                body = {"username": name, "password": PASSWORD}
                if client.post("/accounts/token/", body).status != 200:
                    lost.append(name)
        finally:
            client.close()
        return lost

    def check_tokens(index: int) -> list[str]:
        client = Client(url)
        revived = []
        try:
            for token in refused[index::workers]:
                reply = client.post("/accounts/token/refresh/", {"refresh": token})
                if reply.status != 401 or reply.json().get("detail") != "Token is blacklisted":
                    revived.append(token)
        finally:
            client.close()
        return revived

    result.lost_users = [
        name for part in run_threads(workers, check_users, timeout=300) for name in part
    ]
    result.revived_tokens = [
        token for part in run_threads(workers, check_tokens, timeout=300) for token in part
    ]
    return result


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only stdlib sqlite3 connection to the database at ``path``, closed on exit."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def python_progress_during_hashes(hasher: Any, rounds: int = 3) -> list[int]:
    """Steps a pure-Python thread made during each hash, with a 100 s switch interval (so it
    can only run if the hash released the GIL)."""
    count = 0
    done = threading.Event()

    def spin() -> None:
        nonlocal count
        while not done.is_set():
            count += 1
            if count % 1000 == 0:
                time.sleep(0)  # a voluntary release, so the hashing thread gets back in

    progress = []
    previous = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    spinner = threading.Thread(target=spin)
    try:
        spinner.start()
        for _ in range(rounds):
            before = count
            hasher.hash(PASSWORD)
            progress.append(count - before)
    finally:
        done.set()
        spinner.join(30)
        sys.setswitchinterval(previous)
    return progress
