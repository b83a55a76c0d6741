"""Honest users are served through bursts and floods, and the throttle stays exact.

Real ``serve.py`` processes with the default password-hash cost and the default admission
(a fair queue with a deadline); every client connects from its own loopback address
(127.x.y.z), as distinct users do. Counts and shares are asserted, never speed.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from support import PASSWORD, ServerProcess, raw
from support.load import Client, Reply, post_together, run_threads

pytestmark = pytest.mark.slow

TOKEN = "/accounts/token/"
REGISTER = "/accounts/register/"
VERIFY = "/accounts/token/verify/"
# The default Argon2id cost (start_server makes hashes cheap unless told otherwise).
REAL_HASHES = {
    "JWTLITE_PASSWORD_HASH_MEMORY_KIB": "19456",
    "JWTLITE_PASSWORD_HASH_ITERATIONS": "2",
    "JWTLITE_REGISTRATION_MAX_PER_ADDRESS": "1000",
}

StartServer = Callable[..., ServerProcess]


@pytest.fixture
def server(start_server: StartServer) -> ServerProcess:
    return start_server(REAL_HASHES)


def credentials(name: str) -> dict[str, str]:
    return {"username": name, "password": PASSWORD}


def register_users(server: ServerProcess, names: list[str]) -> None:
    client = Client(server.url, source="127.0.0.250")
    try:
        for name in names:
            assert client.post(REGISTER, credentials(name)).status == 201
    finally:
        client.close()


def statuses(replies: list[Reply]) -> Counter[int]:
    return Counter(reply.status for reply in replies)


@pytest.mark.parametrize("size", [16, 32])
def test_a_burst_of_logins_from_as_many_addresses_is_served(
    server: ServerProcess, size: int
) -> None:
    names = [f"user{n}" for n in range(size)]
    register_users(server, names)
    replies = post_together(
        server.url,
        [(TOKEN, credentials(name)) for name in names],
        sources=[f"127.0.1.{n + 1}" for n in range(size)],
    )
    assert statuses(replies) == {200: size}


def test_an_office_behind_one_address_is_served(server: ServerProcess) -> None:
    names = [f"colleague{n}" for n in range(8)]
    register_users(server, names)
    replies = post_together(
        server.url, [(TOKEN, credentials(name)) for name in names], sources=["127.0.2.1"] * 8
    )
    assert statuses(replies) == {200: 8}


def test_one_user_logging_in_on_eight_devices_at_once_is_served(server: ServerProcess) -> None:
    # Eight right passwords for one account from one address: five are counted while they
    # are checked (LOGIN_MAX_FAILURES), and the other three wait for them rather than get
    # 429 with a Retry-After of minutes.
    register_users(server, ["alice"])
    replies = post_together(
        server.url, [(TOKEN, credentials("alice"))] * 8, sources=["127.0.2.9"] * 8
    )
    assert statuses(replies) == {200: 8}


def test_concurrent_wrong_passwords_are_counted_exactly(server: ServerProcess) -> None:
    register_users(server, ["alice"])
    wrong = {"username": "alice", "password": "not-her-password"}
    replies = post_together(server.url, [(TOKEN, wrong)] * 40, sources=["127.0.3.1"] * 40)
    assert statuses(replies) == {401: 5, 429: 35}
    assert all("retry-after" in reply.headers for reply in replies if reply.status == 429)


def test_concurrent_registrations_of_one_name_make_one_account(server: ServerProcess) -> None:
    variants = ["Alice", "alice", "ALICE", "aLiCe", "AlIcE"] * 10
    replies = post_together(
        server.url,
        [(REGISTER, credentials(name)) for name in variants],
        sources=[f"127.0.4.{n + 1}" for n in range(50)],
    )
    assert statuses(replies) == {201: 1, 400: 49}
    refused = [reply.json() for reply in replies if reply.status == 400]
    assert all(
        body == {"username": ["A user with that username already exists."]} for body in refused
    )


def loop_logins(
    url: str, source: str, body: dict[str, str], until: float, replies: list[Reply]
) -> None:
    """Log in again and again from ``source`` until ``until``, keeping every answer."""
    client = Client(url, source=source)
    try:
        while time.monotonic() < until:
            reply = client.post(TOKEN, body)
            replies.append(reply)
            if reply.status == 503:
                time.sleep(0.05)  # a shed client backs off a little, as real ones do
    finally:
        client.close()


def flood(
    server: ServerProcess, attackers: list[str], loops: int, seconds: float
) -> tuple[list[Reply], list[Reply], list[Reply]]:
    """``loops`` login loops from each attacker address (each with an account of its own)
    while six honest users log in one at a time from addresses of their own and a resource
    server verifies a token; the attackers', the honest users' and the verifications'
    answers."""
    accounts = [f"attacker{a}x{n}" for a in range(len(attackers)) for n in range(loops)]
    honest = [f"honest{n}" for n in range(6)]
    register_users(server, accounts + honest)
    first = Client(server.url, source="127.0.9.9")
    token = first.post(TOKEN, credentials("honest0")).json()
    first.close()
    until = time.monotonic() + seconds
    attacked: list[Reply] = []
    served: list[Reply] = []
    verified: list[Reply] = []
    threads = [
        threading.Thread(
            target=loop_logins,
            args=(server.url, address, credentials(f"attacker{a}x{n}"), until, attacked),
        )
        for a, address in enumerate(attackers)
        for n in range(loops)
    ]

    def honest_user(index: int) -> None:
        time.sleep(0.3)  # the flood is on
        loop_logins(server.url, f"127.0.6.{index + 1}", credentials(honest[index]), until, served)

    def resource_server() -> None:
        client = Client(server.url, source="127.0.7.1")
        time.sleep(0.3)
        while time.monotonic() < until:
            verified.append(client.post(VERIFY, {"token": token["access"]}))
            time.sleep(0.02)
        client.close()

    for thread in threads:
        thread.start()
    extra = [threading.Thread(target=resource_server)]
    extra[0].start()
    run_threads(len(honest), honest_user, timeout=seconds + 30)
    for thread in [*threads, *extra]:
        thread.join(seconds + 30)
    return attacked, served, verified


def assert_honest_users_served(served: list[Reply], verified: list[Reply]) -> None:
    counts = statuses(served)
    assert counts[200] >= 0.9 * len(served), counts
    assert counts[200] >= 12, counts  # six users, each a login at a time, for seconds
    assert statuses(verified) == {200: len(verified)}
    assert len(verified) >= 20


def test_a_flood_from_one_address_leaves_other_users_served(server: ServerProcess) -> None:
    attacked, served, verified = flood(server, ["127.0.5.1"], loops=24, seconds=4)
    assert_honest_users_served(served, verified)
    assert statuses(attacked)[503] > 0  # the flood is shed beyond its address's share


def test_a_flood_from_several_addresses_leaves_other_users_served(server: ServerProcess) -> None:
    attackers = [f"127.0.8.{n + 1}" for n in range(4)]
    attacked, served, verified = flood(server, attackers, loops=8, seconds=4)
    assert_honest_users_served(served, verified)
    attacker_logins = statuses(attacked)[200]
    honest_logins = statuses(served)[200]
    # Four addresses against six: round-robin gives each address a turn, so the attackers
    # cannot take much more than their addresses' share of the hashes.
    assert attacker_logins <= 2 * honest_logins, (attacker_logins, honest_logins)


def test_a_shed_login_is_not_counted_against_its_user(start_server: StartServer) -> None:
    server = start_server(
        {
            **REAL_HASHES,
            "JWTLITE_PASSWORD_HASH_CONCURRENCY": "1",
            "JWTLITE_PASSWORD_HASH_QUEUE": "0",
        }
    )
    register_users(server, ["alice", *(f"busy{n}" for n in range(12))])
    wrong = {"username": "alice", "password": "wrong-password"}
    requests: list[tuple[str, Any]] = [(TOKEN, credentials(f"busy{n}")) for n in range(12)]
    replies = post_together(
        server.url,
        [*requests, *[(TOKEN, wrong)] * 4],
        sources=[*(f"127.0.10.{n + 1}" for n in range(12)), *["127.0.10.13"] * 4],
    )
    assert statuses(replies)[503] > 0  # one slot, no waiting place: most are shed
    checked = sum(reply.status == 401 for reply in replies[12:])
    assert checked + sum(reply.status == 503 for reply in replies[12:]) == 4
    # Only the guesses that were checked count: alice's address has 5 - checked left.
    client = Client(server.url, source="127.0.10.13")
    answers = [client.post(TOKEN, wrong).status for _ in range(6)]
    client.close()
    assert answers == [401] * (5 - checked) + [429] * (1 + checked)


def abandon_logins(url: str, body: dict[str, str], sources: list[str]) -> None:
    """Send a login from each of ``sources`` and close the connection without reading."""
    port = int(url.rsplit(":", 1)[1])
    data = json.dumps(body).encode()
    request = raw.request(
        "POST", TOKEN, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    for source in sources:
        with socket.create_connection(("127.0.0.1", port), source_address=(source, 0)) as sock:
            sock.sendall(request + data)


def sessions_of(server: ServerProcess, username: str) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{server.database}?mode=ro", uri=True)) as db:
        query = "SELECT count(*) FROM sessions JOIN users ON users.id = user_id WHERE username = ?"
        return int(db.execute(query, (username,)).fetchone()[0])


def test_logins_abandoned_while_they_wait_are_not_hashed(start_server: StartServer) -> None:
    # One hashing slot, busy with six honest logins; eight logins of "eve" are sent behind
    # them and their connections closed at once. Nobody will read their answers: they give
    # their turns on without a hash, and start no session.
    server = start_server({**REAL_HASHES, "JWTLITE_PASSWORD_HASH_CONCURRENCY": "1"})
    register_users(server, ["eve", "carol", *(f"bob{n}" for n in range(6))])
    honest: list[list[Reply]] = []
    sender = threading.Thread(
        target=lambda: honest.append(
            post_together(
                server.url,
                [(TOKEN, credentials(f"bob{n}")) for n in range(6)],
                sources=[f"127.0.10.{n + 1}" for n in range(6)],
            )
        )
    )
    sender.start()
    time.sleep(0.05)  # the honest logins hold the slot and the line
    abandon_logins(server.url, credentials("eve"), [f"127.0.11.{n + 1}" for n in range(8)])
    # Behind all of them in the round-robin: when it is answered, each of eve's logins has
    # had its turn.
    late = Client(server.url, source="127.0.12.1")
    assert late.post(TOKEN, credentials("carol")).status == 200
    late.close()
    sender.join(30)
    assert statuses(honest[0]) == {200: 6}
    assert sessions_of(server, "eve") == 0
    assert sessions_of(server, "bob0") == 1  # the count sees sessions (bob0 logged in)
