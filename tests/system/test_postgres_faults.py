"""Faults between jwtlite and PostgreSQL, through a real ``serve.py``: a database that cannot
be used refuses start-up with one line that never shows the password; a database lost under
load answers 503 JSON with ``Retry-After`` (never a 500, never a hang past the timeouts, never
a revoked token let through), and the same process serves again once the database is back;
a write cut off mid-way never leaves a refresh token half-spent.

The server is never stopped (other people's tests use it): an outage is a TCP proxy between
jwtlite and PostgreSQL that drops every connection and refuses new ones, a restart is the
termination of this run's own backends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jwtlite.store._postgres_sql import SCHEMA_VERSION

from support import FAST_HASH_ENV, PASSWORD, SERVE, ServerProcess, http
from support.load import CONNECTION_ERRORS, Client, unverified_claims
from support.postgres import (
    SECRET,
    Proxy,
    create_database,
    database_name,
    drop_database,
    instance,
    rows,
    terminate_backends,
    through,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DB_PASSWORD = "Db-pa55word-never-shown"
UNAVAILABLE = {"detail": "Service temporarily unavailable."}
REVOKED = {"detail": "Token is blacklisted", "code": "token_not_valid"}
# Tight timeouts, so an outage shows in a few seconds.
TIMEOUTS = {"JWTLITE_DATABASE_CONNECT_TIMEOUT": "1", "JWTLITE_DATABASE_STATEMENT_TIMEOUT": "2"}
LOAD_ENV = {
    **TIMEOUTS,
    "JWTLITE_ROTATE_REFRESH_TOKENS": "true",
    "JWTLITE_ACCESS_TOKEN_LIFETIME": "600",
    "JWTLITE_REFRESH_TOKEN_LIFETIME": "3600",
    "JWTLITE_REGISTRATION_MAX_PER_ADDRESS": "1000000",
    "JWTLITE_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
}
WORKERS = 4
CREDENTIALS = {"username": "alice", "password": PASSWORD}


def with_password(url: str) -> str:
    """``url`` with a password in its user part (trust authentication ignores it)."""
    head, rest = url.split("://", 1)
    user, _, host = rest.rpartition("@")
    return f"{head}://{user or 'postgres'}:{DB_PASSWORD}@{host}"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- start-up refusals ------------------------------------------------------------------------


def start_up(database: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``serve.py`` expecting it to refuse to start (a timeout means it served)."""
    return subprocess.run(
        [sys.executable, str(SERVE), "--host", "127.0.0.1", "--port", "0"],
        env={**os.environ, **FAST_HASH_ENV, **TIMEOUTS, "JWTLITE_DATABASE": database, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def newer_database(postgres_admin: str) -> Iterator[str]:
    """A database migrated by a later jwtlite (schema version 99)."""
    from jwtlite.store import open_store

    name, url = create_database(postgres_admin)
    open_store(url).close()
    rows(url, "INSERT INTO jwtlite_migrations (version) VALUES (99) RETURNING version")
    yield url
    drop_database(postgres_admin, name)


REFUSALS: dict[str, tuple[Callable[[str, str], str], dict[str, str], tuple[str, ...]]] = {
    "unreachable": (
        lambda admin, _: with_password(through(admin, closed_port())),
        {"JWTLITE_SECRET_KEY": SECRET},
        ("DATABASE: postgresql://postgres:***@127.0.0.1:", "unavailable", "refused"),
    ),
    "no-such-database": (
        lambda admin, _: with_password(admin.rsplit("/", 1)[0] + "/jwtlite_no_such_database"),
        {"JWTLITE_SECRET_KEY": SECRET},
        ("DATABASE: postgresql://postgres:***@", "does not exist"),
    ),
    "newer-schema": (
        lambda _, newer: with_password(newer),
        {"JWTLITE_SECRET_KEY": SECRET},
        ("DATABASE: postgresql://postgres:***@", f"version 99, newer than the {SCHEMA_VERSION}"),
    ),
    "no-shared-key": (
        lambda admin, _: with_password(admin),
        {},
        ("DATABASE: a PostgreSQL database is shared", "SECRET_KEY or PRIVATE_KEY_FILE"),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_a_database_that_cannot_be_used_refuses_start_up_in_one_line(
    postgres_admin: str, newer_database: str, tmp_path: Path, case: str
) -> None:
    make_url, env, fragments = REFUSALS[case]
    began = time.monotonic()
    result = start_up(make_url(postgres_admin, newer_database), tmp_path, **env)
    assert time.monotonic() - began < 15
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jwtlite: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert DB_PASSWORD not in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # no key, no SQLite file made on the side


# -- faults under load ------------------------------------------------------------------------


@dataclass
class Outcome:
    """One answered (or failed) request of the load."""

    at: float
    op: str
    status: int
    body: bytes
    retry_after: str | None
    elapsed: float


class Load:
    """Client threads that each log in and then rotate their refresh token, verify it, and
    try a revoked token, until stopped; every answer is kept.

    A thread starts a new chain (a new login) after any answer but 200 to a rotation, so it
    never presents a token whose rotation may have happened: what is left in the database
    must then be, in every family, exactly one token that is not spent.
    """

    def __init__(self, url: str, revoked: str) -> None:
        self.url = url
        self.revoked = revoked
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(WORKERS)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self._threads)

    def since(self, moment: float) -> list[Outcome]:
        with self._lock:
            return [outcome for outcome in self.outcomes if outcome.at >= moment]

    def _call(self, client: Client, op: str, path: str, body: Any) -> Any:
        began = time.monotonic()
        try:
            reply = client.post(path, body)
        except CONNECTION_ERRORS as error:  # a client timeout would be a hang: recorded
            outcome = Outcome(began, op, 0, repr(error).encode(), None, time.monotonic() - began)
            client.close()
            with self._lock:
                self.outcomes.append(outcome)
            return None
        outcome = Outcome(
            began, op, reply.status, reply.body, reply.headers.get("retry-after"), reply.elapsed
        )
        with self._lock:
            self.outcomes.append(outcome)
        return reply

    def _work(self, index: int) -> None:
        client = Client(self.url, timeout=20)
        name = f"load{index}"
        credentials = {"username": name, "password": PASSWORD}
        self._call(client, "register", "/accounts/register/", credentials)
        refresh = None
        while not self._stop.is_set():
            if refresh is None:
                reply = self._call(client, "login", "/accounts/token/", credentials)
                refresh = reply.json()["refresh"] if reply and reply.status == 200 else None
                continue
            reply = self._call(client, "rotate", "/accounts/token/refresh/", {"refresh": refresh})
            refresh = reply.json()["refresh"] if reply and reply.status == 200 else None
            if refresh is not None:
                self._call(client, "verify", "/accounts/token/verify/", {"token": refresh})
            self._call(client, "revoked", "/accounts/token/refresh/", {"refresh": self.revoked})
        client.close()


def revoked_token(url: str) -> str:
    """A refresh token of a user made for the purpose, logged out (blacklisted) at once."""
    credentials = {"username": "revoked", "password": PASSWORD}
    assert http("POST", url + "/accounts/register/", credentials).status == 201
    token: str = http("POST", url + "/accounts/token/", credentials).json()["refresh"]
    assert http("POST", url + "/accounts/token/blacklist/", {"refresh": token}).status == 200
    return token


def check_answers(outcomes: list[Outcome], *, allowed: set[int]) -> None:
    """Only ``allowed`` statuses; a 503 is the JSON body with Retry-After; never a hang; the
    revoked token is never accepted; nothing shows the password."""
    for outcome in outcomes:
        assert outcome.status in allowed, outcome
        assert outcome.elapsed < 5, outcome  # bounded by the timeouts (1 s and 2 s)
        assert DB_PASSWORD.encode() not in outcome.body
        if outcome.status == 503:
            assert json.loads(outcome.body) == UNAVAILABLE, outcome
            assert outcome.retry_after is not None, outcome
            assert int(outcome.retry_after) >= 1
        if outcome.op == "revoked":
            assert outcome.status in {401, 503}, outcome
            if outcome.status == 401:
                assert json.loads(outcome.body) == REVOKED, outcome


def wait_for_recovery(load: Load, *, within: float, quiet: float = 1.5) -> float:
    """Seconds until every answer (the revoked token's 401 aside) was a success for
    ``quiet`` seconds running; fails after ``within``."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        time.sleep(0.25)
        recent = load.since(time.monotonic() - quiet)
        settled = recent and time.monotonic() - began >= quiet
        if settled and all(o.status in (200, 201) or o.op == "revoked" for o in recent):
            return time.monotonic() - began
    raise AssertionError(f"no recovery within {within} s: {load.since(began)[-5:]}")


def no_half_spent_token(url: str) -> None:
    """In every family of the load (none is ever revoked: no token is presented twice)
    exactly one token is active: no rotation spent a token without storing its successor."""
    families = rows(
        url,
        "SELECT family, count(*) FILTER (WHERE state = 'active') FROM refresh_tokens"
        " GROUP BY family HAVING bool_and(state <> 'blacklisted')",
    )
    assert families
    assert [family for family, active in families if active != 1] == []


@pytest.fixture
def proxied(postgres_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, Proxy]]:
    """``serve.py`` reaching the test's database through a proxy the test can cut."""
    with Proxy(postgres_url) as proxy:
        url = with_password(through(postgres_url, proxy.port))
        server = instance(url, tmp_path, threads=8, **LOAD_ENV)
        try:
            yield server, proxy
        finally:
            server.stop()


def test_database_outage_under_load_answers_503_and_the_same_process_recovers(
    proxied: tuple[ServerProcess, Proxy], postgres_url: str
) -> None:
    server, proxy = proxied
    assert server.process is not None
    pid = server.process.pid
    revoked = revoked_token(server.url)
    with Load(server.url, revoked) as load:
        time.sleep(1.5)
        cut = time.monotonic()
        proxy.stop()  # PostgreSQL is gone: connections reset, new ones refused
        time.sleep(3)
        proxy.start()
        back = time.monotonic()
        recovered_in = wait_for_recovery(load, within=20)
    before, during = load.since(0), load.since(cut)
    during = [o for o in during if o.at < back]
    assert {o.status for o in before if o.at + o.elapsed < cut} <= {200, 201, 401}
    assert 503 in {o.status for o in during}
    check_answers(load.outcomes, allowed={200, 201, 401, 503})
    assert recovered_in < 15
    assert server.process.poll() is None
    assert server.process.pid == pid
    log = server.stderr()
    assert "Traceback" not in log
    assert DB_PASSWORD not in log
    no_half_spent_token(postgres_url)


def test_terminated_backends_under_load_cost_at_most_a_few_503s(
    postgres_url: str, postgres_admin: str, tmp_path: Path
) -> None:
    """What a PostgreSQL restart does to its clients, three times over."""
    server = instance(with_password(postgres_url), tmp_path, threads=8, **LOAD_ENV)
    try:
        revoked = revoked_token(server.url)
        with Load(server.url, revoked) as load:
            time.sleep(1)
            for _ in range(3):
                assert terminate_backends(postgres_admin, database_name(postgres_url)) >= 1
                time.sleep(0.7)
            wait_for_recovery(load, within=15)
        check_answers(load.outcomes, allowed={200, 201, 401, 503})
        assert sum(o.status == 200 for o in load.outcomes) > 50
        assert server.process is not None
        assert server.process.poll() is None
        assert "Traceback" not in server.stderr()
    finally:
        server.stop()
    no_half_spent_token(postgres_url)


# -- a lost COMMIT acknowledgement ------------------------------------------------------------


def _rotation_case(server: ServerProcess) -> dict[str, str]:
    assert http("POST", server.url + "/accounts/register/", CREDENTIALS).status == 201
    reply = http("POST", server.url + "/accounts/token/", CREDENTIALS)
    assert reply.status == 200
    pair: dict[str, str] = reply.json()
    return pair


def _session_states(postgres_url: str) -> list[tuple[Any, ...]]:
    return rows(postgres_url, "SELECT state FROM sessions")


def test_a_lost_commit_acknowledgement_answers_the_successor(
    proxied: tuple[ServerProcess, Proxy], postgres_url: str
) -> None:
    """The third outside attack: the rotation committed, its acknowledgement was lost, jwtlite
    answered 503, and the client's retry with its only token was taken for reuse."""
    server, proxy = proxied
    pair = _rotation_case(server)
    proxy.lose_answer_to(b"COMMIT")
    reply = http("POST", server.url + "/accounts/token/refresh/", {"refresh": pair["refresh"]})
    assert proxy.answers_lost.is_set()  # the cut really came after the COMMIT
    assert reply.status == 200, reply.body
    successor = reply.json()["refresh"]
    [(landed,)] = rows(
        postgres_url,
        "SELECT count(*) FROM refresh_tokens WHERE successor = %s",
        [unverified_claims(successor)["jti"]],
    )
    assert landed == 1  # the answer is the successor the store holds
    again = http("POST", server.url + "/accounts/token/refresh/", {"refresh": successor})
    assert again.status == 200
    assert _session_states(postgres_url) == [("active",)]
    assert "reuse" not in server.stderr()


def test_a_retry_after_an_unconfirmed_rotation_is_not_reuse(
    proxied: tuple[ServerProcess, Proxy], postgres_url: str
) -> None:
    """When even the question "did it commit?" cannot be asked, the answer is 503; the
    client's retry with the same token then gets the successor, and the session lives."""
    server, proxy = proxied
    pair = _rotation_case(server)
    proxy.lose_answer_to(b"COMMIT", then_stop=True)
    reply = http("POST", server.url + "/accounts/token/refresh/", {"refresh": pair["refresh"]})
    assert proxy.answers_lost.is_set()
    assert reply.status == 503, reply.body
    proxy.start()
    [(spent,)] = rows(
        postgres_url, "SELECT successor FROM refresh_tokens WHERE state = 'spent'"
    )  # it did commit
    for _ in range(40):  # the pool finds its way back
        retry = http("POST", server.url + "/accounts/token/refresh/", {"refresh": pair["refresh"]})
        if retry.status != 503:
            break
        time.sleep(0.25)
    assert retry.status == 200, retry.body
    assert unverified_claims(retry.json()["refresh"])["jti"] == spent
    assert _session_states(postgres_url) == [("active",)]
    # Only that one retry: the same token once more is reuse, as always.
    reuse = http("POST", server.url + "/accounts/token/refresh/", {"refresh": pair["refresh"]})
    assert reuse.status == 401
    assert _session_states(postgres_url) == [("revoked",)]


def test_a_retry_that_fails_too_leaves_the_next_retry_its_successor(
    proxied: tuple[ServerProcess, Proxy], postgres_url: str
) -> None:
    """The fourth outside attack: the memory of the unanswered rotation was forgotten by the
    first retry before it had read the successor, so when that read failed too (the store
    still flapping) the second retry was taken for reuse and revoked the session."""
    server, proxy = proxied
    pair = _rotation_case(server)
    proxy.lose_answer_to(b"COMMIT", then_stop=True)
    refresh = server.url + "/accounts/token/refresh/"
    assert http("POST", refresh, {"refresh": pair["refresh"]}).status == 503
    # The successor's read (the only plain read by jti; ROTATION_LANDED adds a condition).
    # The server goes dark again with it, so that the read cannot simply be retried.
    proxy.lose_answer_to(b"FROM refresh_tokens WHERE jti = $1\x00", then_stop=True)
    proxy.start()
    for _ in range(40):
        retry = http("POST", refresh, {"refresh": pair["refresh"]})
        if proxy.answers_lost.is_set():
            break
        assert retry.status == 503, retry.body  # the pool finding its way back
        time.sleep(0.25)
    assert retry.status == 503, retry.body  # the retry whose successor read was lost
    proxy.start()
    for _ in range(40):
        retry = http("POST", refresh, {"refresh": pair["refresh"]})
        if retry.status != 503:
            break
        time.sleep(0.25)
    assert retry.status == 200, retry.body
    assert _session_states(postgres_url) == [("active",)]
    assert "reuse" not in server.stderr()
