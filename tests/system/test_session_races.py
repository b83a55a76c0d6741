"""The account lifecycle's races against real ``serve.py`` processes.

* A password change during a storm of refreshes: after it, no refresh token issued before
  it refreshes, whatever won the race.
* Two concurrent "log out everywhere": both 200, every session revoked, no 5xx.
* A grace-period replay racing the legitimate refresh of one rotating token: both get the
  same successor; nothing is revoked.
* Logins with the old password racing a password change (made on another instance): none
  outlives the change. Logins racing an account deletion: 401, never a 503 or an error log.

Every test runs on SQLite and on PostgreSQL (``both_backends``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from support import PASSWORD, ServerProcess, http
from support.load import Client, post_together, run_threads

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]
Rows = Callable[..., list[tuple[Any, ...]]]

CREDENTIALS = {"username": "alice", "password": PASSWORD}
NEW_PASSWORD = "another-staple-horse-9"


def _login(url: str) -> dict[str, str]:
    reply = http("POST", url + "/accounts/token/", CREDENTIALS)
    assert reply.status == 200, reply.body
    result: dict[str, str] = reply.json()
    return result


def test_password_change_during_refreshes(
    serve: Callable[..., ServerProcess], db_rows: Rows
) -> None:
    server = serve(JWTLITE_REFRESH_TOKEN_LIFETIME="600")
    assert http("POST", server.url + "/accounts/register/", CREDENTIALS).status == 201
    pairs = [_login(server.url) for _ in range(8)]
    changer = _login(server.url)

    def work(index: int) -> list[int]:
        client = Client(server.url).connect()
        try:
            if index == 0:
                reply = client.post(
                    "/accounts/password/",
                    {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
                    headers={"Authorization": f"Bearer {changer['access']}"},
                )
                return [reply.status]
            pair = pairs[index - 1]
            return [
                client.post("/accounts/token/refresh/", {"refresh": pair["refresh"]}).status
                for _ in range(10)
            ]
        finally:
            client.close()

    results = run_threads(len(pairs) + 1, work, timeout=60)
    assert results[0] == [200]
    assert {status for statuses in results[1:] for status in statuses} <= {200, 401}
    for pair in [*pairs, changer]:
        after = http("POST", server.url + "/accounts/token/refresh/", {"refresh": pair["refresh"]})
        assert after.status == 401
        me = http(
            "GET",
            server.url + "/accounts/me/",
            headers={"Authorization": f"Bearer {pair['access']}"},
        )
        assert me.status == 401
    [(live,)] = db_rows("SELECT count(*) FROM sessions WHERE state = 'active'")
    [(active_tokens,)] = db_rows(
        "SELECT count(*) FROM refresh_tokens AS t JOIN sessions AS s ON s.id = t.family"
        " WHERE t.state = 'active' AND s.state <> 'active'"
    )
    assert live == 1  # the changer's new session only
    assert active_tokens == 0  # no refresh slipped a live token into a revoked session


def _logins_around(url: str, clients: int, action: Callable[[], int]) -> tuple[int, list[Any]]:
    """``clients`` log in with ``CREDENTIALS`` at ``url`` in a loop while ``action`` runs
    (0.5 s after they start) and for 0.3 s after it ended.

    Returns the action's status and every login's outcome: the refresh token of a 200, else
    the status."""
    done = threading.Event()

    def log_in(index: int) -> list[Any]:
        client = Client(url, source=f"127.0.3.{index + 1}").connect()
        found: list[Any] = []
        stopped_at: float | None = None
        try:
            while stopped_at is None or time.monotonic() < stopped_at + 0.3:
                reply = client.post("/accounts/token/", CREDENTIALS)
                found.append(reply.json()["refresh"] if reply.status == 200 else reply.status)
                if stopped_at is None and done.is_set():
                    stopped_at = time.monotonic()
        finally:
            client.close()
        return found

    def race(index: int) -> list[Any]:
        if index > 0:
            return log_in(index - 1)
        time.sleep(0.5)  # the logins are flowing
        try:
            return [action()]
        finally:
            done.set()

    results = run_threads(clients + 1, race, timeout=60)
    return results[0][0], [item for result in results[1:] for item in result]


def test_logins_racing_a_password_change_do_not_outlive_it(
    serve: Callable[..., ServerProcess], db_rows: Rows
) -> None:
    """16 clients log in with the old password on B while A changes it: every refresh token
    they got is dead afterwards (the third outside attack kept 4-10 alive)."""
    changer_side, login_side = serve(), serve()  # two processes on one database
    assert http("POST", changer_side.url + "/accounts/register/", CREDENTIALS).status == 201
    changer = _login(changer_side.url)

    def change() -> int:
        return http(
            "POST",
            changer_side.url + "/accounts/password/",
            {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers={"Authorization": f"Bearer {changer['access']}"},
        ).status

    status, outcomes = _logins_around(login_side.url, 16, change)
    assert status == 200
    refresh_tokens = [item for item in outcomes if isinstance(item, str)]
    # After the change the old password is a wrong one, soon throttled.
    assert {item for item in outcomes if not isinstance(item, str)} <= {401, 429}, outcomes
    assert len(refresh_tokens) >= 16  # logins were in flight around the change
    survivors = [
        token
        for token in refresh_tokens
        if http("POST", login_side.url + "/accounts/token/refresh/", {"refresh": token}).status
        != 401
    ]
    assert survivors == []
    [(live,)] = db_rows("SELECT count(*) FROM sessions WHERE state = 'active'")
    assert live == 1  # the changer's new session only


def test_logins_racing_an_account_deletion_are_refused_plainly(
    serve: Callable[..., ServerProcess],
) -> None:
    """A harmless race is a 401, not a 503 and a "store unavailable" in the log."""
    deleter_side = serve(JWTLITE_ALLOW_ACCOUNT_DELETION="true")
    login_side = serve(JWTLITE_METRICS="true")
    assert http("POST", deleter_side.url + "/accounts/register/", CREDENTIALS).status == 201
    deleter = _login(deleter_side.url)

    def delete() -> int:
        return http(
            "DELETE",
            deleter_side.url + "/accounts/me/",
            {"password": PASSWORD},
            headers={"Authorization": f"Bearer {deleter['access']}"},
        ).status

    status, outcomes = _logins_around(login_side.url, 8, delete)
    assert status == 204
    assert {item for item in outcomes if not isinstance(item, str)} <= {401, 429}, outcomes
    metrics = http("GET", login_side.url + "/metrics").body.decode()
    assert "store unavailable" not in login_side.stderr()
    assert not [
        line
        for line in metrics.splitlines()
        if line.startswith("jwtlite_store_errors_total") and not line.endswith(" 0.0")
    ], metrics


def test_two_concurrent_logout_alls(serve: Callable[..., ServerProcess], db_rows: Rows) -> None:
    servers = [serve(), serve()]  # two processes on one database
    assert http("POST", servers[0].url + "/accounts/register/", CREDENTIALS).status == 201
    pairs = [_login(servers[0].url) for _ in range(4)]

    def logout(index: int) -> int:
        client = Client(servers[index].url).connect()
        try:
            reply = client.post(
                "/accounts/logout-all/",
                None,
                headers={"Authorization": f"Bearer {pairs[index]['access']}"},
            )
            return reply.status
        finally:
            client.close()

    assert sorted(run_threads(2, logout, timeout=30)) in ([200, 200], [200, 401])
    states = db_rows("SELECT DISTINCT state FROM sessions")
    assert states == [("revoked",)]
    for pair in pairs:
        refreshed = http(
            "POST", servers[1].url + "/accounts/token/refresh/", {"refresh": pair["refresh"]}
        )
        assert refreshed.status == 401


@pytest.mark.parametrize("round_", range(3))
def test_grace_replay_racing_the_legitimate_refresh(
    serve: Callable[..., ServerProcess], db_rows: Rows, round_: int
) -> None:
    server = serve(
        JWTLITE_ROTATE_REFRESH_TOKENS="true",
        JWTLITE_ROTATION_GRACE_PERIOD="30",
        JWTLITE_REFRESH_TOKEN_LIFETIME="600",
    )
    assert http("POST", server.url + "/accounts/register/", CREDENTIALS).status == 201
    refresh = _login(server.url)["refresh"]

    replies = post_together(server.url, [("/accounts/token/refresh/", {"refresh": refresh})] * 2)

    assert [reply.status for reply in replies] == [200, 200]
    first, second = (reply.json() for reply in replies)
    assert first["refresh"] == second["refresh"]  # the same successor, the same bytes
    onward = http("POST", server.url + "/accounts/token/refresh/", {"refresh": first["refresh"]})
    assert onward.status == 200
    states = db_rows("SELECT state FROM sessions")
    [(tokens,)] = db_rows("SELECT count(*) FROM refresh_tokens")
    assert states == [("active",)]
    assert tokens == 3  # the original, one successor (not two), and the onward one
