"""The throttling model (``jwtlite.service.throttle``): per account, address and name.

Through the real application with an injected clock: registrations per address, logins per
(username, address) with a higher per-username bar and a per-address bar, IPv6 by /64, and
no username ever stored in clear. The races are in ``test_concurrency.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jwtlite.service.credentials.passwords import PasswordHasher
from jwtlite.service.throttle import address_group

from support import PASSWORD, FakeClock, register
from support.contract import NO_ACCOUNT, assert_error, assert_unauthorized

# Every test that builds a client runs on SQLite and on PostgreSQL (conftest).
pytestmark = pytest.mark.both_backends

REGISTER = "/accounts/register/"
LOGIN = "/accounts/token/"


def _from(address: str) -> dict[str, Any]:
    return {"extra_environ": {"REMOTE_ADDR": address}}


def _register(client: Any, name: str, address: str = "192.0.2.1", **extra: Any) -> Any:
    body = {"username": name, "password": PASSWORD, **extra}
    return client.post_json(REGISTER, body, expect_errors=True, **_from(address))


def _login(client: Any, name: str, password: str, address: str) -> Any:
    body = {"username": name, "password": password}
    return client.post_json(LOGIN, body, expect_errors=True, **_from(address))


def _assert_throttled(response: Any, retry_after: int) -> None:
    assert_error(
        response,
        429,
        {"detail": f"Request was throttled. Expected available in {retry_after} seconds."},
    )
    assert response.headers["Retry-After"] == str(retry_after)


# -- registrations (item 2) ------------------------------------------------------------------


def test_registrations_are_limited_per_address(
    make_client: Callable[..., Any], clock: FakeClock
) -> None:
    client = make_client(registration_max_per_address=3, registration_window=3600)
    for index in range(3):
        assert _register(client, f"user{index}").status_int == 201
        clock.advance(10)
    _assert_throttled(_register(client, "user3"), 3600 - 30)
    # A duplicate is refused too: "that username exists" is no longer an unlimited oracle.
    _assert_throttled(_register(client, "user0"), 3600 - 30)
    assert _register(client, "other", address="192.0.2.2").status_int == 201
    clock.advance(3600 - 30)
    assert _register(client, "user3").status_int == 201


def test_a_refused_registration_costs_no_hash(
    make_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(registration_max_per_address=1)
    assert _register(client, "first").status_int == 201
    calls: list[str] = []
    original = PasswordHasher.hash

    def counting(self: PasswordHasher, password: str) -> str:
        calls.append(password)
        return original(self, password)

    monkeypatch.setattr(PasswordHasher, "hash", counting)
    for index in range(5):
        assert _register(client, f"again{index}").status_int == 429
    assert calls == []
    assert _register(client, "elsewhere", address="192.0.2.99").status_int == 201
    assert len(calls) == 1  # the spy itself works


def test_invalid_registrations_are_not_counted(make_client: Callable[..., Any]) -> None:
    """A 400 costs no hash and reveals nothing, so it does not use up the allowance."""
    client = make_client(registration_max_per_address=2)
    for _ in range(10):
        assert _register(client, "weak", password="123").status_int == 400
    assert _register(client, "alice").status_int == 201
    assert _register(client, "alice").status_int == 400  # taken: counted, it hashed
    _assert_throttled(_register(client, "bob"), 3600)


def test_registration_throttle_follows_trusted_proxies(make_client: Callable[..., Any]) -> None:
    client = make_client(trusted_proxies=("127.0.0.1",), registration_max_per_address=1)

    def via_proxy(name: str, forwarded: str) -> Any:
        return client.post_json(
            REGISTER,
            {"username": name, "password": PASSWORD},
            headers={"X-Forwarded-For": forwarded},
            extra_environ={"REMOTE_ADDR": "127.0.0.1"},
            expect_errors=True,
        )

    assert via_proxy("a1", "203.0.113.1").status_int == 201
    assert via_proxy("a2", "203.0.113.1").status_int == 429
    assert via_proxy("b1", "203.0.113.2").status_int == 201


# -- logins (items 3 and 4) ------------------------------------------------------------------


def test_guesses_from_one_address_do_not_lock_the_owner_out(client: Any) -> None:
    register(client)
    for _ in range(5):
        assert_unauthorized(_login(client, "alice", "wrong", "198.51.100.66"), NO_ACCOUNT)
    _assert_throttled(_login(client, "alice", PASSWORD, "198.51.100.66"), 300)
    # The owner, elsewhere, is not locked out by a stranger's guesses.
    assert _login(client, "alice", PASSWORD, "192.0.2.10").status_int == 200


def test_guesses_spread_over_addresses_meet_the_per_username_bar(
    make_client: Callable[..., Any], clock: FakeClock
) -> None:
    client = make_client(login_max_failures=5, login_max_failures_per_username=12)
    register(client)
    for index in range(12):
        assert _login(client, "alice", "wrong", f"198.51.100.{index}").status_int == 401
    clock.advance(7)
    _assert_throttled(_login(client, "alice", "wrong", "198.51.100.200"), 300 - 7)
    _assert_throttled(_login(client, "alice", PASSWORD, "192.0.2.10"), 300 - 7)
    assert _login(client, "alice", "wrong", "198.51.100.200").status_int == 429
    clock.advance(300 - 7)
    assert _login(client, "alice", PASSWORD, "192.0.2.10").status_int == 200


def test_one_address_cannot_lock_many_accounts(make_client: Callable[..., Any]) -> None:
    """Before the fix one address could keep ~20 accounts locked; now it locks none."""
    client = make_client(login_max_failures_per_address=100)
    names = [f"user{index}" for index in range(20)]
    for name in names:
        register(client, name)
    for name in names:
        for _ in range(5):
            _login(client, name, "wrong", "198.51.100.66")
    for name in names:
        assert _login(client, name, PASSWORD, "192.0.2.10").status_int == 200


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:192.0.2.1", "192.0.2.1", True),
        ("192.0.2.1", "192.0.2.2", False),
    ],
    ids=["same-64", "other-64", "ipv4-mapped", "ipv4-exact"],
)
def test_addresses_are_grouped(
    make_client: Callable[..., Any], first: str, second: str, same: bool
) -> None:
    client = make_client(login_max_failures=2)
    register(client)
    for _ in range(2):
        assert _login(client, "alice", "wrong", first).status_int == 401
    answer = _login(client, "alice", PASSWORD, second)
    assert answer.status_int == (429 if same else 200)


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:DB8:0:0:1::1", "2001:db8::/64"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("10.0.0.1", "10.0.0.1"),
        ("unknown", "unknown"),
        ("", ""),
    ],
)
def test_address_group(address: str, group: str) -> None:
    assert address_group(address) == group


# -- what the counters keep on disk (item 9) -------------------------------------------------


@pytest.mark.sqlite_only  # reads the SQLite files; test_postgres_store checks the tables
def test_no_username_is_stored_in_clear(client: Any, db_path: Path) -> None:
    register(client)
    typed = "my-secret-passw0rd-in-the-username-field"
    assert _login(client, typed, "whatever", "192.0.2.1").status_int == 401
    assert _login(client, "alice", "wrong", "192.0.2.1").status_int == 401
    client.store.close()
    on_disk = b"".join(
        path.read_bytes() for path in db_path.parent.glob(db_path.name + "*") if path.is_file()
    )
    assert typed.encode() not in on_disk
    assert b"alice" in on_disk  # the users table, of course; the counters hold only hashes


def test_the_same_username_is_one_subject(make_client: Callable[..., Any]) -> None:
    client = make_client(login_max_failures=3)
    register(client)
    for name in ["alice", "ALICE", "\uff41\uff4c\uff49\uff43\uff45"]:
        assert _login(client, name, "wrong", "192.0.2.1").status_int == 401
    assert _login(client, "Alice", PASSWORD, "192.0.2.1").status_int == 429
