"""Attacks from outside and what holds them off: expanding names, dribbling and flooding clients.

Each test names the finding. In-process where the finding is in the rules, against a real
``serve.py`` on loopback where it is in the server: slow clients, connection exhaustion.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import jwtlite
from jwtlite.cli import http_channel
from jwtlite.service.credentials import passwords
from jwtlite.service.throttle import address_group
from jwtlite.store.errors import StoreUnavailableError
from jwtlite.web.cors import CORSMiddleware

from support import FAST_HASH_ENV, PASSWORD, FakeClock, ServerProcess, http, login, register
from support.contract import NO_ACCOUNT, TOKEN_INVALID, assert_error, assert_unauthorized, claims

REGISTER = "/accounts/register/"
TOKEN = "/accounts/token/"
REFRESH = "/accounts/token/refresh/"
VERIFY = "/accounts/token/verify/"
# U+FDFA is one character that NFKC turns into eighteen: 21,000 of them (63 KB of UTF-8)
# became 378,000 characters and 1.8 s of CPU per registration.
EXPANDING = "\ufdfa" * 21000


def _post_utf8(client: Any, path: str, body: dict[str, str]) -> Any:
    """POST JSON as raw UTF-8 (not escapes), as the audit did: 63 KB, under the body limit."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert len(raw) < 65536
    return client.post(path, raw, content_type="application/json", expect_errors=True)


# -- 1. CPU through NFKC expansion --------------------------------------------------------------


def test_an_expanding_username_is_refused_in_microseconds_on_register(client: Any) -> None:
    started = time.perf_counter()
    response = _post_utf8(client, REGISTER, {"username": EXPANDING, "password": "x" * 39})
    elapsed = time.perf_counter() - started
    assert response.status_int == 400
    assert response.json["username"][0] == "Ensure this field has no more than 150 characters."
    assert elapsed < 0.1, elapsed


@pytest.mark.parametrize(
    "email", ["a." * 30000 + "x@example.com", "a@" + "b." * 30000 + "com"], ids=["local", "domain"]
)
def test_a_huge_email_is_not_compared_with_the_password(client: Any, email: str) -> None:
    started = time.perf_counter()
    response = client.post_json(
        REGISTER,
        {"username": "alice", "password": "a." * 20 + "Z9", "email": email},
        expect_errors=True,
    )
    assert response.status_int == 400
    assert list(response.json) == ["email"]
    assert time.perf_counter() - started < 0.1


def test_an_expanding_username_is_refused_at_once_on_login(client: Any, db_path: Path) -> None:
    started = time.perf_counter()
    response = _post_utf8(client, TOKEN, {"username": EXPANDING, "password": "x"})
    assert time.perf_counter() - started < 0.1
    assert_unauthorized(response, NO_ACCOUNT)
    connection = sqlite3.connect(db_path)  # and nothing was counted for it
    try:
        assert connection.execute("SELECT count(*) FROM attempts").fetchone() == (0,)
    finally:
        connection.close()


# -- 3. strangers cannot lock the owner out of an address the owner uses -----------------------


def _login_from(client: Any, password: str, address: str) -> Any:
    return client.post_json(
        TOKEN,
        {"username": "alice", "password": password},
        extra_environ={"REMOTE_ADDR": address},
        expect_errors=True,
    )


@pytest.mark.both_backends
def test_the_owners_address_stays_open_past_the_per_username_bar(
    make_client: Callable[..., Any], clock: FakeClock
) -> None:
    client = make_client(login_max_failures_per_username=20)
    register(client)
    assert _login_from(client, PASSWORD, "192.0.2.10").status_int == 200  # the owner's place
    clock.advance(3600)
    # 20 attackers' /64s, 5 guesses each, as the audit did.
    for index in range(20):
        for _ in range(5):
            _login_from(client, "wrong", f"2001:db8:0:{index:x}::1")
    # A new place waits out the window; the owner's own place does not.
    assert _login_from(client, PASSWORD, "198.51.100.77").status_int == 429
    assert _login_from(client, PASSWORD, "192.0.2.10").status_int == 200
    # ... and the owner's place is still held to its own per-(username, address) bar.
    for _ in range(5):
        assert _login_from(client, "wrong", "192.0.2.10").status_int == 401
    assert _login_from(client, PASSWORD, "192.0.2.10").status_int == 429


@pytest.mark.both_backends
def test_trust_expires_after_thirty_days(make_client: Callable[..., Any], clock: FakeClock) -> None:
    client = make_client(login_max_failures_per_username=3)
    register(client)
    assert _login_from(client, PASSWORD, "192.0.2.10").status_int == 200
    clock.advance(31 * 24 * 3600)
    for index in range(3):
        _login_from(client, "wrong", f"198.51.100.{index}")
    assert _login_from(client, PASSWORD, "192.0.2.10").status_int == 429


@pytest.mark.parametrize(
    ("address", "group"),
    [("64:ff9b::192.0.2.1", "192.0.2.1"), ("64:ff9b::c000:202", "192.0.2.2")],
    ids=["nat64-dotted", "nat64-hex"],
)
def test_nat64_addresses_count_as_the_ipv4_client(address: str, group: str) -> None:
    assert address_group(address) == group


# -- 4. the CORS cache holds no attacker-sized origin --------------------------------------------


def test_an_oversized_origin_is_not_cached() -> None:
    cors = CORSMiddleware(allowed_origins=["http://localhost:8001"])
    for index in range(50):
        assert cors.allowed_origin(f"http://{'a' * 250_000}{index}.example") is None
    assert cors._resolve_cached.cache_info().currsize == 0
    assert cors.allowed_origin("http://localhost:8001") == "http://localhost:8001"


def _hold_a_hash(
    monkeypatch: pytest.MonkeyPatch, release: threading.Event, work: Callable[[], object]
) -> threading.Thread:
    """Run ``work`` (a login) in a thread whose password hash waits for ``release``; return
    once that hash holds its hashing place."""
    inside = threading.Event()
    original = passwords._matches

    def slow(secret: bytes, encoded: str) -> bool:
        inside.set()
        release.wait(10)
        return original(secret, encoded)

    monkeypatch.setattr(passwords, "_matches", slow)
    worker = threading.Thread(target=work)
    worker.start()
    assert inside.wait(10)
    return worker


# -- 7. logins beyond the waiting places are shed at once, uncounted -----------------------------


def test_logins_beyond_the_hash_queue_get_503_at_once(
    make_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    client = make_client(password_hash_concurrency=1, password_hash_queue=0)
    register(client)
    release = threading.Event()
    first: dict[str, Any] = {}
    worker = _hold_a_hash(monkeypatch, release, lambda: first.update(r=login(client)))
    started = time.perf_counter()
    shed = client.post_json(TOKEN, {"username": "alice", "password": PASSWORD}, expect_errors=True)
    assert time.perf_counter() - started < 1.0
    assert_error(shed, 503, {"detail": "Service temporarily unavailable."})
    assert shed.headers["Retry-After"] == "1"
    release.set()
    worker.join(10)
    assert "access" in first["r"]
    # The shed attempt was not counted against alice.
    for _ in range(4):
        assert _login_from(client, "wrong", "127.0.0.1").status_int == 401
    assert login(client)["access"]


# -- 8. a failing purge never fails a request whose work committed -------------------------------


def test_a_failing_purge_does_not_fail_a_committed_rotation(
    make_client: Callable[..., Any], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(rotate_refresh_tokens=True, refresh_token_lifetime=600)
    register(client)
    first = login(client)["refresh"]
    clock.advance(61)  # the next request runs a purge

    def locked(**_: Any) -> int:
        raise StoreUnavailableError("database is locked")

    monkeypatch.setattr(client.store, "purge_expired", locked)
    second = client.post_json(REFRESH, {"refresh": first}, status=200).json["refresh"]
    assert client.post_json(REFRESH, {"refresh": second}, status=200).json["refresh"]


# -- 10. dates in our tokens are whole seconds we could have written -----------------------------


@pytest.mark.parametrize(
    "exp",
    [1_800_000_100.5, 1e308, 2**63, 10**4000, True, 95_000_000_000],
    ids=["float", "1e308", "2-to-63", "4000-digits", "bool", "year-5000"],
)
def test_foreign_dates_are_invalid(make_client: Callable[..., Any], exp: Any) -> None:
    client = make_client(secret_key="s" * 32)
    register(client)
    access = login(client)["access"]
    forged = jwtlite.encode({**claims(access), "exp": exp}, jwtlite.Key(b"s" * 32, "HS256"))
    assert_unauthorized(
        client.post_json(VERIFY, {"token": forged}, expect_errors=True), TOKEN_INVALID
    )


# -- 2. slow clients and connection exhaustion, against a real server ----------------------------


@pytest.fixture
def server(db_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(database=db_path, env=FAST_HASH_ENV) as running:
        yield running


def _port(server: ServerProcess) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _closed(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.slow
def test_a_client_dribbling_its_headers_is_cut_off(server: ServerProcess) -> None:
    sock = _connect(_port(server))
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        began = time.monotonic()
        closed = False
        # One header byte a second, as slowloris does: waitress alone reset its timer on
        # every byte and kept the connection for ever.
        while time.monotonic() - began < http_channel.REQUEST_READ_SECONDS + 8:
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            if _closed(sock, 1.0):
                closed = True
                break
        assert closed
        assert time.monotonic() - began < http_channel.REQUEST_READ_SECONDS + 8
    finally:
        sock.close()
    assert http("GET", server.url + "/health").status == 200


def test_one_client_cannot_take_every_connection(server: ServerProcess) -> None:
    port = _port(server)
    held = [_connect(port) for _ in range(http_channel.MAX_CONNECTIONS_PER_CLIENT)]
    try:
        # Every one of them is open and served...
        for sock in held[:3]:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        # ...and the next one from the same client is closed at once.
        extra = _connect(port)
        try:
            assert _closed(extra, 5.0)
        finally:
            extra.close()
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, the client is served again.
    _wait_until_healthy(server, within=10)


def _wait_until_healthy(server: ServerProcess, *, within: float) -> None:
    deadline = time.monotonic() + within
    while not _healthy(server):
        assert time.monotonic() < deadline, f"no healthy answer within {within} s"
        time.sleep(0.1)


def _healthy(server: ServerProcess) -> bool:
    try:
        return http("GET", server.url + "/health", timeout=2).status == 200
    except OSError:
        return False


# -- the second attack -------------------------------------------------------------------------


def test_a_thousand_connections_do_not_stop_the_server(db_path: Path) -> None:
    """waitress's select() could not watch a file number past 1023: ~1,000 idle connections
    from sixteen addresses (64 each, under the per-client cap) made serve.py exit."""
    with ServerProcess(database=db_path, env=FAST_HASH_ENV, args=["--threads", "32"]) as server:
        _thousand_connections(server)


def _thousand_connections(server: ServerProcess) -> None:
    port = _port(server)
    # Warm the worker threads first, as the attack did: each opens its own database
    # connection, so with 32 of them the server's own files are ~80, and the connections it
    # accepts (up to its limit of 1,000) take file numbers past 1023.
    warm = [
        threading.Thread(target=lambda: [_healthy(server) for _ in range(20)]) for _ in range(64)
    ]
    for thread in warm:
        thread.start()
    for thread in warm:
        thread.join(60)
    held: list[socket.socket] = []
    try:
        for source in range(2, 18):
            held += _silent(port, f"127.0.0.{source}", http_channel.MAX_CONNECTIONS_PER_CLIENT)
        time.sleep(3)  # let the server accept what it will and loop over them
        assert server.process is not None
        assert server.process.poll() is None, server.stderr()[-2000:]
    finally:
        for sock in held:
            sock.close()
    _wait_until_healthy(server, within=15)
    assert "Traceback" not in server.stderr()


def test_the_connection_cap_is_logged_once_a_minute(server: ServerProcess) -> None:
    port = _port(server)
    held = [_connect(port) for _ in range(http_channel.MAX_CONNECTIONS_PER_CLIENT)]
    try:
        for _ in range(100):
            extra = _connect(port)
            _closed(extra, 2.0)
            extra.close()
    finally:
        for sock in held:
            sock.close()
    _wait_until_healthy(server, within=10)
    assert server.stderr().count("holds 64 connections") == 1


@pytest.mark.slow
def test_a_request_completed_after_the_deadline_is_not_served(server: ServerProcess) -> None:
    sock = _connect(_port(server))
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(http_channel.REQUEST_READ_SECONDS + 1)
        with contextlib.suppress(OSError):
            sock.sendall(b"\r\n")  # the last byte, too late
        assert _closed(sock, 5.0)
    finally:
        sock.close()


def test_one_client_holds_only_its_share_of_the_hashing_places(
    make_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client looping over correct logins (never throttled) kept everyone else out: now it
    holds at most its share, and another client still gets a hash."""
    client = make_client(
        password_hash_concurrency=2, password_hash_queue=2, password_hash_per_client=1
    )
    register(client)
    register(client, "bob")
    release = threading.Event()
    first: dict[str, Any] = {}
    worker = _hold_a_hash(
        monkeypatch,
        release,
        lambda: first.update(r=_login_from(client, PASSWORD, "198.51.100.1")),
    )
    same_client = _login_from(client, PASSWORD, "198.51.100.1")
    assert_error(same_client, 503, {"detail": "Service temporarily unavailable."})
    monkeypatch.undo()  # hashes are fast again for the other client
    other = client.post_json(
        TOKEN,
        {"username": "bob", "password": PASSWORD},
        extra_environ={"REMOTE_ADDR": "192.0.2.50"},
        expect_errors=True,
    )
    assert other.status_int == 200
    release.set()
    worker.join(10)
    assert first["r"].status_int == 200


def test_a_long_internationalised_email_label_is_refused_cheaply(client: Any) -> None:
    email = "a@" + "\ufdfa" * 248 + ".com"
    started = time.perf_counter()
    response = _post_utf8(
        client, REGISTER, {"username": "alice", "password": PASSWORD, "email": email}
    )
    assert time.perf_counter() - started < 0.02
    assert response.json == {"email": ["Enter a valid email address."]}


def test_a_form_with_too_many_fields_is_refused(client: Any) -> None:
    response = client.post(
        VERIFY,
        "a=&" * 21600,
        content_type="application/x-www-form-urlencoded",
        expect_errors=True,
    )
    assert_error(response, 400, {"detail": "Form parse error - invalid form data"})


# -- the fourth attack -------------------------------------------------------------------------


def test_silent_connections_of_a_few_addresses_leave_room_for_everyone_else(
    db_path: Path,
) -> None:
    """Sixteen addresses holding 64 silent connections each (each under the per-client cap)
    went past the server's connection limit: waitress stopped accepting, and honest
    clients waited in the listen backlog until the attackers' connections timed out."""
    with ServerProcess(database=db_path, env=FAST_HASH_ENV, args=["--threads", "8"]) as server:
        port = _port(server)
        held: list[socket.socket] = []
        try:
            for source in range(2, 18):
                held += _silent(port, f"127.0.7.{source}", http_channel.MAX_CONNECTIONS_PER_CLIENT)
            time.sleep(1)  # the server has accepted what it will
            for _ in range(5):  # honest clients from other addresses, one after another
                began = time.monotonic()
                assert http("GET", server.url + "/health", timeout=3).status == 200
                assert time.monotonic() - began < 1.5
            # Those closed to make room were the attackers'; the server held the limit.
            closed = 0
            for sock in held:
                sock.setblocking(False)
                try:
                    closed += sock.recv(1) == b""
                except BlockingIOError:
                    pass  # open, silent
                except OSError:
                    closed += 1  # reset
            assert closed >= len(held) - http_channel.FAIR_SHARE_AT
        finally:
            for sock in held:
                sock.close()
        assert "closing the quietest waiting ones" in server.stderr()
        assert "Traceback" not in server.stderr()


def test_an_address_that_uses_its_connections_keeps_them_past_the_share(db_path: Path) -> None:
    """The fourth attack's second round: eviction took the address holding the most, so an
    attacker spread over 140 addresses of 7 silent connections each made an honest office
    with 8 the one evicted, its keep-alive connections and every new one reset."""
    with ServerProcess(database=db_path, env=FAST_HASH_ENV, args=["--threads", "8"]) as server:
        port = _port(server)
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        office = [_connect(port) for _ in range(8)]
        held: list[socket.socket] = []
        try:
            for sock in office:
                assert _exchange(sock, request).startswith(b"HTTP/1.1 200")
            for source in range(140):
                held += _silent(port, f"127.0.10.{source + 1}", 7)
                if source % 20 == 0:  # the office goes on working meanwhile
                    for sock in office:
                        assert _exchange(sock, request).startswith(b"HTTP/1.1 200")
            time.sleep(0.5)
            for sock in office:
                assert _exchange(sock, request).startswith(b"HTTP/1.1 200")
            for _ in range(5):  # and so do its new connections
                assert http("GET", server.url + "/health", timeout=3).status == 200
        finally:
            for sock in office + held:
                sock.close()
        assert "Traceback" not in server.stderr()


def test_a_trusted_proxys_connections_count_toward_the_share(db_path: Path) -> None:
    """The fourth attack's second round: a trusted proxy's connections were left out of the
    count, so with its keep-alive pool of 100 the direct attackers filled waitress's limit
    before the share was reached, and nothing was ever evicted."""
    env = {**FAST_HASH_ENV, "JWTLITE_TRUSTED_PROXIES": "127.0.0.2"}
    with ServerProcess(database=db_path, env=env, args=["--threads", "8"]) as server:
        port = _port(server)
        held = _silent(port, "127.0.0.2", 100)  # the proxy's idle upstream pool
        try:
            for source in range(2, 17):  # 960 more: past the limit of 1,000 in all
                held += _silent(port, f"127.0.8.{source}", http_channel.MAX_CONNECTIONS_PER_CLIENT)
            time.sleep(1)
            for _ in range(3):
                assert http("GET", server.url + "/health", timeout=3).status == 200
        finally:
            for sock in held:
                sock.close()
        assert "Traceback" not in server.stderr()


def _silent(port: int, source: str, count: int) -> list[socket.socket]:
    """``count`` connections from the address ``source`` that send nothing."""
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(5)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        held.append(sock)
    return held


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send ``request`` on a kept-alive connection and read its whole answer."""
    sock.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, "closed"
        answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    while len(rest) < length:
        chunk = sock.recv(4096)
        assert chunk, "closed"
        rest += chunk
    return head
