"""Concurrency against a real server: ``serve.py`` in a subprocess, real threads, real HTTP.

Races that must have exactly one winner (registering one name, spending one refresh token),
a login storm beside a verify/refresh load (no 5xx, no "database is locked", throttling by its
rules), and proof that Argon2id hashing releases the GIL. Loopback only. Every server test
runs on SQLite and on PostgreSQL (``both_backends``); more PostgreSQL instances at once are in
``test_postgres_instances.py``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from support import PASSWORD, ServerProcess, http
from support.load import (
    Client,
    Reply,
    percentile,
    post_together,
    python_progress_during_hashes,
)

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]
Rows = Callable[..., list[tuple[Any, ...]]]

TAKEN = {"username": ["A user with that username already exists."]}
BLACKLISTED = {"detail": "Token is blacklisted", "code": "token_not_valid"}
THROTTLED = re.compile(r"Request was throttled\. Expected available in [0-9]+ seconds\.")
# A generous bound for a shared two-core machine; bench/storm.py measures the real figures.
VERIFY_P99_BOUND = 1.0


def stop_and_read_log(server: ServerProcess) -> str:
    """Stop the server with SIGTERM and return what it wrote to stderr."""
    assert server.process is not None
    server.process.terminate()
    server.process.wait(15)
    log = server.stderr()
    server.stop()
    return log


def statuses(replies: list[Reply]) -> list[int]:
    """The sorted status codes of ``replies``."""
    return sorted(reply.status for reply in replies)


def mixed_case(name: str, number: int) -> str:
    """``name`` with letter ``i`` upper-cased when bit ``i`` of ``number`` is set."""
    return "".join(c.upper() if number >> i & 1 else c for i, c in enumerate(name))


# -- one name, fifty registrations ------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "processes"),
    [
        pytest.param("same", 1, id="same-case-one-process"),
        pytest.param("mixed", 1, id="mixed-case-one-process"),
        pytest.param("mixed", 2, id="mixed-case-two-processes"),
    ],
)
def test_fifty_registrations_of_one_name_make_one_user(
    serve: Callable[..., ServerProcess], db_rows: Rows, spelling: str, processes: int
) -> None:
    servers = [serve() for _ in range(processes)]
    names = ["alice" if spelling == "same" else mixed_case("alice", i) for i in range(50)]
    requests = [("/accounts/register/", {"username": n, "password": PASSWORD}) for n in names]

    replies = post_together([s.url for s in servers], requests)

    assert statuses(replies) == [201] + [400] * 49
    winner = next(i for i, reply in enumerate(replies) if reply.status == 201)
    assert all(reply.json() == TAKEN for reply in replies if reply.status == 400)
    for server in servers:
        assert "Traceback" not in stop_and_read_log(server)
    rows = db_rows("SELECT id, username, username_key FROM users")
    assert rows == [(replies[winner].json()["id"], names[winner], "alice")]
    # A PostgreSQL sequence may spend an id on a loser of the race (never reused, so never
    # a problem); SQLite hands out the first.
    assert replies[winner].json() == {"id": rows[0][0], "username": names[winner], "email": ""}


# -- one refresh token, twenty refreshes --------------------------------------------------------


def test_twenty_refreshes_of_one_token_with_rotation_one_wins_and_the_family_dies(
    serve: Callable[..., ServerProcess], db_rows: Rows
) -> None:
    server = serve(JWTLITE_ROTATE_REFRESH_TOKENS="true", JWTLITE_REFRESH_TOKEN_LIFETIME="600")
    credentials = {"username": "alice", "password": PASSWORD}
    assert http("POST", server.url + "/accounts/register/", credentials).status == 201
    refresh = http("POST", server.url + "/accounts/token/", credentials).json()["refresh"]

    replies = post_together(server.url, [("/accounts/token/refresh/", {"refresh": refresh})] * 20)

    assert statuses(replies) == [200] + [401] * 19
    assert all(reply.json() == BLACKLISTED for reply in replies if reply.status == 401)
    won = next(reply.json() for reply in replies if reply.status == 200)
    assert set(won) == {"access", "refresh"}
    # Reuse was detected, so the token the winner got is dead too.
    again = http("POST", server.url + "/accounts/token/refresh/", {"refresh": won["refresh"]})
    assert (again.status, again.json()) == (401, BLACKLISTED)
    verify = http("POST", server.url + "/accounts/token/verify/", {"token": won["refresh"]})
    assert (verify.status, verify.json()) == (401, BLACKLISTED)
    stop_and_read_log(server)
    states = db_rows("SELECT family, state FROM refresh_tokens")
    assert len(states) == 2  # the original and the winner's, nothing from the losers
    assert {family for family, _ in states} == {states[0][0]}
    assert {state for _, state in states} == {"blacklisted"}


def test_twenty_refreshes_of_one_token_without_rotation_all_succeed(
    serve: Callable[..., ServerProcess], db_rows: Rows
) -> None:
    server = serve()
    credentials = {"username": "alice", "password": PASSWORD}
    assert http("POST", server.url + "/accounts/register/", credentials).status == 201
    refresh = http("POST", server.url + "/accounts/token/", credentials).json()["refresh"]

    replies = post_together(server.url, [("/accounts/token/refresh/", {"refresh": refresh})] * 20)

    assert statuses(replies) == [200] * 20
    assert all(set(reply.json()) == {"access"} for reply in replies)
    stop_and_read_log(server)
    assert db_rows("SELECT state FROM refresh_tokens") == [("active",)]


# -- a login storm beside a verify/refresh load ------------------------------------------------

MAX_FAILURES = 5
MAX_PER_ADDRESS = 20
MAX_PER_USERNAME = 10
STORM_ENV = {
    "JWTLITE_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
    "JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS": str(MAX_PER_ADDRESS),
    "JWTLITE_LOGIN_MAX_FAILURES_PER_USERNAME": str(MAX_PER_USERNAME),
    # Requests come from 127.0.0.1, a trusted proxy, so X-Forwarded-For names the client:
    # each attacker and each user gets an address of its own.
    "JWTLITE_TRUSTED_PROXIES": "127.0.0.1",
    "JWTLITE_ACCESS_TOKEN_LIFETIME": "600",
    "JWTLITE_REFRESH_TOKEN_LIFETIME": "600",
}
VICTIMS = 3
LEGIT_USERS = 3
BURST_THREADS = 8
BURST_TRIES = 3


def login_as(client: Client, username: str, password: str, address: str) -> Reply:
    """POST accounts/token/ as the client at ``address``."""
    return client.post(
        "/accounts/token/",
        {"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


def test_login_storm_beside_verify_load_throttles_by_the_rules_and_never_fails(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve(**STORM_ENV)
    users = [f"victim{i}" for i in range(VICTIMS)] + [f"user{i}" for i in range(LEGIT_USERS)]
    for name in [*users, "burst", "reader"]:
        body = {"username": name, "password": PASSWORD}
        assert http("POST", server.url + "/accounts/register/", body).status == 201
    reader = http(
        "POST", server.url + "/accounts/token/", {"username": "reader", "password": PASSWORD}
    )
    tokens = reader.json()
    everything: list[Reply] = []
    record = threading.Lock()
    storm_over = threading.Event()
    # The storm's threads connect, then all send their first login together.
    start = threading.Barrier(VICTIMS + 1 + BURST_THREADS + LEGIT_USERS)

    def keep(reply: Reply) -> Reply:
        with record:
            everything.append(reply)
        return reply

    def victim(index: int) -> list[int]:
        # One thread per victim, so the order of its answers is exact.
        client = Client(server.url).connect()
        start.wait(60)
        seen = [
            keep(login_as(client, f"victim{index}", "wrong-password-1", f"10.0.1.{index}")).status
            for _ in range(2 * MAX_FAILURES)
        ]
        # Throttled per (username, address): from here even the right password waits.
        seen.append(keep(login_as(client, f"victim{index}", PASSWORD, f"10.0.1.{index}")).status)
        client.close()
        return seen

    def sprayer() -> list[int]:
        # One address, a different (unknown) username each time: the per-address rule.
        client = Client(server.url).connect()
        start.wait(60)
        seen = [
            keep(login_as(client, f"ghost{i}", "wrong-password-1", "10.0.2.1")).status
            for i in range(MAX_PER_ADDRESS + 5)
        ]
        client.close()
        return seen

    def burst(index: int) -> list[int]:
        # Many threads from many addresses, one victim: the per-username bar, exactly.
        client = Client(server.url).connect()
        start.wait(60)
        seen = [
            keep(login_as(client, "burst", "wrong-password-1", f"10.0.3.{index}")).status
            for _ in range(BURST_TRIES)
        ]
        client.close()
        return seen

    def legit(index: int) -> list[int]:
        client = Client(server.url).connect()
        start.wait(60)
        seen = [
            keep(login_as(client, f"user{index}", PASSWORD, f"10.0.4.{index}")).status
            for _ in range(5)
        ]
        client.close()
        return seen

    def reader_load(index: int) -> list[Reply]:
        client = Client(server.url)
        replies = []
        for number in range(2000):
            if storm_over.is_set() and number >= 20:
                break
            if number % 2:
                reply = client.post("/accounts/token/refresh/", {"refresh": tokens["refresh"]})
            else:
                reply = client.post("/accounts/token/verify/", {"token": tokens["access"]})
            replies.append(keep(reply))
        client.close()
        return replies

    def storm(_: int) -> dict[str, Any]:
        results: dict[str, Any] = {}
        with ThreadPoolExecutor(max_workers=VICTIMS + 1 + BURST_THREADS + LEGIT_USERS) as pool:
            victims = [pool.submit(victim, i) for i in range(VICTIMS)]
            spray = pool.submit(sprayer)
            bursts = [pool.submit(burst, i) for i in range(BURST_THREADS)]
            legits = [pool.submit(legit, i) for i in range(LEGIT_USERS)]
            results["victims"] = [f.result(120) for f in victims]
            results["sprayer"] = spray.result(120)
            results["burst"] = [s for f in bursts for s in f.result(120)]
            results["legit"] = [s for f in legits for s in f.result(120)]
        storm_over.set()
        return results

    with ThreadPoolExecutor(max_workers=3) as pool:
        readers = [pool.submit(reader_load, i) for i in range(2)]
        results = pool.submit(storm, 0).result(180)
        reads = [reply for f in readers for reply in f.result(180)]

    # Throttling by its rules.
    for seen in results["victims"]:
        assert seen == [401] * MAX_FAILURES + [429] * (MAX_FAILURES + 1)
    assert results["sprayer"] == [401] * MAX_PER_ADDRESS + [429] * 5
    assert sorted(results["burst"]) == [401] * MAX_PER_USERNAME + [429] * (
        BURST_THREADS * BURST_TRIES - MAX_PER_USERNAME
    )
    assert results["legit"] == [200] * (5 * LEGIT_USERS)
    for reply in everything:
        if reply.status == 429:
            assert THROTTLED.fullmatch(reply.json()["detail"])
            assert int(reply.headers["retry-after"]) >= 1
    # No failure of the server's own, and the verify/refresh load was all served.
    assert all(reply.status < 500 for reply in everything)
    assert not [reply for reply in everything if b"locked" in reply.body]
    assert {reply.status for reply in reads} == {200}
    verify_times = [reply.elapsed for reply in reads if set(reply.json()) == set()]
    assert percentile(verify_times, 99) < VERIFY_P99_BOUND
    log = stop_and_read_log(server)
    assert "Traceback" not in log
    assert "locked" not in log


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-processes"])
def test_fifty_concurrent_wrong_passwords_get_exactly_the_limit(
    serve: Callable[..., ServerProcess], db_rows: Rows, processes: int
) -> None:
    """The audit saw 6-8 answers of 401 before the 429s began: check and count raced."""
    servers = [serve() for _ in range(processes)]
    body = {"username": "alice", "password": PASSWORD}
    assert http("POST", servers[0].url + "/accounts/register/", body).status == 201
    wrong = {"username": "alice", "password": "wrong-password-1"}
    replies = post_together([s.url for s in servers], [("/accounts/token/", wrong)] * 50)
    assert statuses(replies) == [401] * 5 + [429] * 45
    right = http("POST", servers[-1].url + "/accounts/token/", body)
    assert right.status == 429  # the same (username, address): it waits too
    for server in servers:
        assert "Traceback" not in stop_and_read_log(server)
    assert db_rows("SELECT count(*) FROM attempts WHERE kind = 'login'") == [(5,)]


# -- Argon2id releases the GIL -----------------------------------------------------------------


def test_argon2id_hashing_releases_the_gil() -> None:
    """While one thread hashes with the default Argon2id cost, a pure-Python thread runs.

    The interpreter's switch interval is raised to 100 s for the test, so the only way the
    counting thread can run during the hash is that the hash released the GIL; no timing is
    compared.
    """
    from jwtlite.service.credentials.passwords import PasswordHasher

    progress = python_progress_during_hashes(PasswordHasher())  # default cost: 19 MiB, 2 passes
    assert min(progress) > 1000, progress


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        pytest.param("", [401] * 3 + [429] * 2, id="no-trusted-proxy-header-ignored"),
        pytest.param("127.0.0.1", [401] * 5, id="trusted-proxy-header-believed"),
    ],
)
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    serve: Callable[..., ServerProcess], trusted: str, expected: list[int]
) -> None:
    server = serve(
        JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS="3",
        JWTLITE_LOGIN_MAX_FAILURES="100",
        JWTLITE_TRUSTED_PROXIES=trusted,
    )
    client = Client(server.url)
    seen = [
        login_as(client, f"ghost{i}", "wrong-password-1", f"10.9.0.{i}").status for i in range(5)
    ]
    client.close()
    assert seen == expected
