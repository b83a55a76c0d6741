"""``jwtlite.asgi.BearerAuth``: the ASGI guard answers as the WSGI one, and never blocks the
event loop while a key is fetched."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
import webtest

import jwtlite
from jwtlite import JWKSClient, Key
from jwtlite.asgi import CLAIMS_SCOPE_KEY, BearerAuth

from support import FakeClock
from support.jwks import JWKSServer, black_holed_port

KEY = Key.generate("ES256", kid="es-1")
OTHER = Key.generate("ES256", kid="es-2")
NOW = int(time.time())
ACCESS = {"token_type": "access", "user_id": "7", "exp": NOW + 300, "iat": NOW}


@pytest.fixture(autouse=True)
def _the_clock_reads_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("jwtlite.jwt.time", SimpleNamespace(time=lambda: float(NOW)))


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that answers the claims it was given."""
    body = json.dumps({"claims": scope.get(CLAIMS_SCOPE_KEY)}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def wsgi_echo(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [json.dumps({"claims": environ.get(jwtlite.CLAIMS_ENVIRON_KEY)}).encode()]


async def call(app: Any, headers: list[tuple[bytes, bytes]], kind: str = "http") -> dict[str, Any]:
    """One request through ``app``: status, headers (lower-case names) and body."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": kind, "method": "GET", "path": "/", "headers": headers}
    await app(scope, receive, send)
    if kind == "websocket":
        return {"messages": sent}
    start, body = sent[0], sent[1]
    return {
        "status": start["status"],
        "headers": {k.decode(): v.decode() for k, v in start["headers"]},
        "body": body["body"],
    }


def token(**claims: Any) -> str:
    return jwtlite.encode({**ACCESS, **claims}, KEY)


CASES = {
    "valid": [(b"authorization", f"Bearer {token()}".encode())],
    "none": [],
    "blank": [(b"authorization", b"  ")],
    "basic": [(b"authorization", b"Basic YTpi")],
    "tab": [(b"authorization", f"Bearer\t{token()}".encode())],
    "two-headers": [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
    "expired": [(b"authorization", f"Bearer {token(exp=NOW - 1)}".encode())],
    "refresh": [(b"authorization", f"Bearer {token(token_type='refresh')}".encode())],
    "wrong-key": [(b"authorization", f"Bearer {jwtlite.encode(ACCESS, OTHER)}".encode())],
    "no-scope": [(b"authorization", f"Bearer {token(scope='read')}".encode())],
    "latin-1": [(b"authorization", "Bearer caf\u00e9".encode("latin-1"))],
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("options", [{}, {"scopes": ["write"]}, {"allow_anonymous": True}])
def test_every_answer_is_the_wsgi_guards(case: str, options: dict[str, Any]) -> None:
    keys = jwtlite.KeySet([KEY])
    asgi = BearerAuth(echo, keys, algorithms=["ES256"], **options)
    wsgi = webtest.TestApp(jwtlite.BearerAuth(wsgi_echo, keys, algorithms=["ES256"], **options))
    got = asyncio.run(call(asgi, CASES[case]))
    environ = (
        {"HTTP_AUTHORIZATION": ", ".join(v.decode("latin-1") for _, v in CASES[case])}
        if CASES[case]
        else {}
    )
    expected = wsgi.get("/", extra_environ=environ, expect_errors=True)
    assert got["status"] == expected.status_int
    assert got["body"] == expected.body
    for name in ("www-authenticate", "cache-control", "retry-after", "content-type"):
        assert got["headers"].get(name) == expected.headers.get(name), name


def test_a_refused_websocket_is_closed_before_it_is_accepted() -> None:
    guard = BearerAuth(echo, KEY, algorithms=["ES256"])
    got = asyncio.run(call(guard, [], kind="websocket"))
    assert got["messages"] == [{"type": "websocket.close", "code": 1008}]


def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def nothing() -> dict[str, Any]:
        return {}

    async def ignore(message: dict[str, Any]) -> None:
        return None

    asyncio.run(BearerAuth(app, KEY, algorithms=["ES256"])({"type": "lifespan"}, nothing, ignore))
    assert seen == ["lifespan"]


def test_a_cold_fetch_waits_in_a_thread_while_the_loop_answers_others() -> None:
    """The issuer takes 1.5 s to answer; meanwhile an anonymous request and one whose key is
    cached are answered at once, and the waiting one gets its answer when the keys arrive."""
    server = JWKSServer()
    try:
        server.serve_jwks({"keys": [KEY.public_jwk()]})
        clock = FakeClock()
        client = JWKSClient(server.url, timeout=5.0, clock=clock)
        client.key_for("es-1")  # es-1 cached
        guard = BearerAuth(echo, client, algorithms=["ES256"], allow_anonymous=True)
        server.serve_jwks({"keys": [KEY.public_jwk(), OTHER.public_jwk(), NEW.public_jwk()]})
        clock.advance(60)  # past the refetch cooldown: a kid not cached may be fetched
        server.delay = 1.5

        async def scenario() -> dict[str, float]:
            began = time.monotonic()
            times: dict[str, float] = {}

            async def timed(name: str, headers: list[tuple[bytes, bytes]]) -> None:
                reply = await call(guard, headers)
                assert reply["status"] == 200, reply
                times[name] = time.monotonic() - began

            cold = asyncio.create_task(
                timed(
                    "cold", [(b"authorization", f"Bearer {jwtlite.encode(ACCESS, NEW)}".encode())]
                )
            )
            await asyncio.sleep(0.05)  # the cold one is waiting for the fetch
            await timed("anonymous", [])
            await timed("cached", [(b"authorization", f"Bearer {token()}".encode())])
            await cold
            return times

        times = asyncio.run(scenario())
        assert times["anonymous"] < 0.5
        assert times["cached"] < 0.5
        assert times["cold"] >= 1.4
    finally:
        server.close()


NEW = Key.generate("ES256", kid="es-3")


class _SlowKeys(jwtlite.KeySource):
    """A key source of the caller's own that takes its time."""

    def key_for(self, kid: str) -> Key:
        time.sleep(1.0)
        return KEY


def test_a_key_source_of_ones_own_is_asked_off_the_loop() -> None:
    """The fourth outside attack: only a JWKSClient was kept off the loop; any other key
    source was asked inline, and one slow lookup stalled every request."""
    guard = BearerAuth(echo, _SlowKeys(), algorithms=["ES256"], allow_anonymous=True)

    async def scenario() -> tuple[float, list[int]]:
        began = time.monotonic()
        headers = [(b"authorization", f"Bearer {token()}".encode())]
        slow = [asyncio.create_task(call(guard, headers)) for _ in range(4)]
        await asyncio.sleep(0.05)
        # Its threads are all taken, yet a request that needs no key is answered at once.
        assert (await call(guard, []))["status"] == 200
        quick = time.monotonic() - began
        return quick, sorted(reply["status"] for reply in await asyncio.gather(*slow))

    quick, statuses = asyncio.run(scenario())
    assert quick < 0.5
    assert statuses == [200, 200, 200, 503]  # three threads, the fourth told to try later


def test_dead_issuers_take_their_guards_threads_only_and_then_503() -> None:
    """The fourth outside attack: fetches waited in the loop's default pool (6 threads on
    this machine, shared with name resolution and every other guard), so three guards of
    dead issuers parked all of it, and a healthy guard's first fetch waited seconds."""
    with black_holed_port() as port:
        guards = [
            BearerAuth(
                echo,
                JWKSClient(f"http://127.0.0.1:{port}/{n}/jwks.json", timeout=1.5),
                algorithms=["ES256"],
            )
            for n in range(3)
        ]

        async def scenario() -> tuple[list[int], float]:
            loop = asyncio.get_running_loop()
            headers = [(b"authorization", f"Bearer {token()}".encode())]
            cold = [asyncio.create_task(call(g, headers)) for g in guards for _ in range(5)]
            await asyncio.sleep(0.2)
            began = time.monotonic()
            await loop.run_in_executor(None, lambda: None)  # the default pool is free
            free_in = time.monotonic() - began
            return [reply["status"] for reply in await asyncio.gather(*cold)], free_in

        statuses, free_in = asyncio.run(scenario())
    assert free_in < 0.5
    assert statuses == [503] * 15  # past each guard's three threads at once, the rest later


def test_a_stale_key_never_makes_the_loop_fetch_when_no_thread_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fourth outside attack: with no thread to start, a stale key's refresh ran in the
    caller's thread, the event loop."""
    server = JWKSServer()
    try:
        server.serve_jwks({"keys": [KEY.public_jwk()]})
        clock = FakeClock()
        client = JWKSClient(server.url, clock=clock)
        client.key_for("es-1")
        fetched = server.requests
        clock.advance(10_000)  # stale, past the cooldown

        def no_thread(self: threading.Thread) -> None:
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(threading.Thread, "start", no_thread)
        assert client.cached_key("es-1") is not None  # served stale, at once
        assert server.requests == fetched  # nothing fetched in this thread
        monkeypatch.undo()
        assert client.cached_key("es-1") is not None  # the next caller starts the refresh
        assert client.wait_for_refresh(5)
        assert server.requests == fetched + 1
    finally:
        server.close()


def test_no_signature_algorithm_is_a_mistake_found_at_once() -> None:
    with pytest.raises(ValueError, match="none"):
        BearerAuth(echo, KEY, algorithms=["none"])
    with pytest.raises(ValueError, match="none"):
        jwtlite.BearerAuth(wsgi_echo, KEY, algorithms=["ES256", "none"])
