"""Several ``serve.py`` processes on one PostgreSQL database, as instances behind a load
balancer: what one does, the others see; races between them have exactly one winner; the
throttles count across them; killing one mid-write loses nothing it acknowledged and the
others keep serving. Real processes, real HTTP, loopback only.

Two processes racing one registration, and fifty wrong passwords over two processes, are in
``test_concurrency.py`` (run on PostgreSQL too); a change seen by another instance within
``USER_STATE_CACHE_SECONDS`` is in ``test_verify_rules.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import PASSWORD, ServerProcess, http
from support.load import (
    STORM_ENV,
    Ledger,
    Reply,
    audit_over_http,
    post_together,
    unverified_claims,
    write_storm,
)
from support.postgres import instance, rows

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BLACKLISTED = {"detail": "Token is blacklisted", "code": "token_not_valid"}
CREDENTIALS = {"username": "alice", "password": PASSWORD}


@pytest.fixture
def instances(postgres_url: str, tmp_path: Path) -> Iterator[Callable[..., list[ServerProcess]]]:
    """``instances(n, **env)``: n ``serve.py`` processes on this test's database."""
    started: list[ServerProcess] = []

    def start(count: int, **env: str) -> list[ServerProcess]:
        servers = [instance(postgres_url, tmp_path, **env) for _ in range(count)]
        started.extend(servers)
        return servers

    yield start
    for server in started:
        server.stop()


def statuses(replies: list[Reply]) -> list[int]:
    return sorted(reply.status for reply in replies)


def clean_log(server: ServerProcess) -> str:
    server.stop()
    log = server.stderr()
    assert "Traceback" not in log
    return log


def test_what_one_instance_does_the_other_sees(
    instances: Callable[..., list[ServerProcess]],
) -> None:
    a, b = instances(2, JWTLITE_ROTATE_REFRESH_TOKENS="true")
    assert http("POST", a.url + "/accounts/register/", CREDENTIALS).status == 201
    pair = http("POST", b.url + "/accounts/token/", CREDENTIALS).json()
    me = http("GET", a.url + "/accounts/me/", headers={"Authorization": f"Bearer {pair['access']}"})
    assert (me.status, me.json()["username"]) == (200, "alice")
    rotated = http("POST", a.url + "/accounts/token/refresh/", {"refresh": pair["refresh"]})
    assert rotated.status == 200
    new = rotated.json()["refresh"]
    assert http("POST", b.url + "/accounts/token/verify/", {"token": new}).status == 200
    # The spent token is spent everywhere: its reuse on B revokes the family, seen by A.
    reuse = http("POST", b.url + "/accounts/token/refresh/", {"refresh": pair["refresh"]})
    assert (reuse.status, reuse.json()) == (401, BLACKLISTED)
    after = http("POST", a.url + "/accounts/token/refresh/", {"refresh": new})
    assert (after.status, after.json()) == (401, BLACKLISTED)
    # A logout on one instance holds on the other.
    again = http("POST", a.url + "/accounts/token/", CREDENTIALS).json()
    assert http("POST", a.url + "/accounts/token/blacklist/", {"refresh": again["refresh"]})
    refused = http("POST", b.url + "/accounts/token/refresh/", {"refresh": again["refresh"]})
    assert (refused.status, refused.json()) == (401, BLACKLISTED)
    for server in (a, b):
        clean_log(server)


def test_twenty_refreshes_spread_over_three_instances_one_wins(
    instances: Callable[..., list[ServerProcess]], postgres_url: str
) -> None:
    servers = instances(
        3, JWTLITE_ROTATE_REFRESH_TOKENS="true", JWTLITE_REFRESH_TOKEN_LIFETIME="600"
    )
    assert http("POST", servers[0].url + "/accounts/register/", CREDENTIALS).status == 201
    refresh = http("POST", servers[1].url + "/accounts/token/", CREDENTIALS).json()["refresh"]

    replies = post_together(
        [s.url for s in servers], [("/accounts/token/refresh/", {"refresh": refresh})] * 20
    )

    assert statuses(replies) == [200] + [401] * 19
    assert all(reply.json() == BLACKLISTED for reply in replies if reply.status == 401)
    won = next(reply.json() for reply in replies if reply.status == 200)
    for server in servers:  # the winner's token is dead on every instance
        again = http("POST", server.url + "/accounts/token/refresh/", {"refresh": won["refresh"]})
        assert (again.status, again.json()) == (401, BLACKLISTED)
    assert rows(postgres_url, "SELECT state, count(*) FROM refresh_tokens GROUP BY state") == [
        ("blacklisted", 2)
    ]
    for server in servers:
        clean_log(server)


def test_throttles_count_across_three_instances(
    instances: Callable[..., list[ServerProcess]], postgres_url: str
) -> None:
    servers = instances(3, JWTLITE_REGISTRATION_MAX_PER_ADDRESS="10")
    urls = [s.url for s in servers]
    assert http("POST", urls[0] + "/accounts/register/", CREDENTIALS).status == 201
    wrong = {"username": "alice", "password": "wrong-password-1"}
    replies = post_together(urls, [("/accounts/token/", wrong)] * 50)
    assert statuses(replies) == [401] * 5 + [429] * 45
    assert rows(postgres_url, "SELECT count(*) FROM attempts WHERE kind = 'login'") == [(5,)]
    # Registrations from one address: the limit (10, one used above) holds over the three.
    requests = [
        ("/accounts/register/", {"username": f"user{i}", "password": PASSWORD}) for i in range(30)
    ]
    replies = post_together(urls, requests)
    assert statuses(replies) == [201] * 9 + [429] * 21
    for server in servers:
        clean_log(server)


def test_kill_9_of_one_instance_during_a_write_storm_loses_nothing_acknowledged(
    instances: Callable[..., list[ServerProcess]], postgres_url: str
) -> None:
    doomed, survivor = instances(2, **STORM_ENV)
    ledger = Ledger()
    answered: dict[str, int] = {}
    deadline = time.monotonic() + 4

    def storm(server: ServerProcess, tag: str) -> None:
        answered[tag] = write_storm(server.url, ledger, tag=tag, workers=3, deadline=deadline)

    storms = [
        threading.Thread(target=storm, args=(doomed, "doomed")),
        threading.Thread(target=storm, args=(survivor, "survivor")),
    ]
    for thread in storms:
        thread.start()
    time.sleep(1.5)
    doomed.kill()
    at_kill = survivors_users(ledger)
    for thread in storms:
        thread.join(60)
    # The survivor kept serving after the kill, and answered only what it should.
    assert answered["doomed"] > 0
    assert survivors_users(ledger) > at_kill > 0
    assert ledger.unexpected == []
    result = audit_over_http(survivor.url, ledger)
    assert result.lost_users == []
    assert result.revived_tokens == []
    stored = {row[0] for row in rows(postgres_url, "SELECT username FROM users")}
    assert set(ledger.users) <= stored
    revoked = [unverified_claims(t)["jti"] for t in ledger.blacklisted + ledger.spent]
    states = dict(
        rows(postgres_url, "SELECT jti, state FROM refresh_tokens WHERE jti = ANY(%s)", (revoked,))
    )
    assert len(states) == len(revoked)
    assert "active" not in states.values()
    clean_log(survivor)


def survivors_users(ledger: Ledger) -> int:
    with ledger.lock:
        return sum(name.startswith("survivor") for name in ledger.users)
