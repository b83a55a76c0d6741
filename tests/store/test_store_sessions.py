"""The store's session methods (migration 3): what a second backend must do too.

Every state change is atomic: of concurrent calls on one session exactly one wins, and a
session's state and its refresh tokens' states never disagree. Runs on SQLite and on
PostgreSQL (``both_backends``); the migration of an SQLite file stays SQLite-only (the
PostgreSQL migration has its test in ``test_postgres_store.py``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from jwtlite.store import AttemptLimits, RefreshRecord, Session, Store, User, open_store
from jwtlite.store._sqlite_sql import MIGRATIONS
from jwtlite.store.sqlite import SQLiteStore

pytestmark = pytest.mark.both_backends

T = TypeVar("T")
NOW = 1_700_000_000.0
LATER = 2_000_000_000
Rows = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    store = open_store(database)
    yield store
    store.close()


def _user(store: Store, name: str = "alice") -> User:
    user = store.create_user(
        username=name,
        username_key=name,
        username_skeleton=name,
        email="",
        password_hash="h",
        now=NOW,
    )
    assert user is not None
    return user


def _session(user: User, sid: str, *, created: float = NOW, expires: int = LATER) -> Session:
    return Session(sid, user.id, created, created, expires, "agent", "10.0.0.1", "active")


def _record(user: User, sid: str, suffix: str, *, expires: int = LATER) -> RefreshRecord:
    return RefreshRecord(sid + suffix, user.id, sid, int(NOW), expires, "active")


def _login(store: Store, user: User, sid: str, **kwargs: object) -> RefreshRecord:
    record = _record(user, sid, "0" * 16)
    assert store.start_session(
        user.id,
        verified_hash=user.password_hash,
        subject="s",
        address="a",
        now=NOW,
        refresh=record,
        session=_session(user, sid, **kwargs),  # type: ignore[arg-type]
    )
    return record


def _states(db_rows: Rows) -> list[tuple[Any, ...]]:
    return db_rows(
        "SELECT s.id, s.state, t.state FROM sessions AS s"
        " JOIN refresh_tokens AS t ON t.family = s.id ORDER BY s.id, t.jti"
    )


def _together(count: int, work: Callable[[int], T]) -> list[T]:
    barrier = threading.Barrier(count)
    results: list[T] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        result = work(index)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_login_inserts_the_session_and_the_lookup_joins_it(store: Store) -> None:
    user = _user(store)
    record = _login(store, user, "a" * 16)
    found = store.get_refresh_token_and_user(record.jti)
    assert found is not None
    assert found[0] == record
    assert found[1].id == user.id
    assert found[2] == _session(user, "a" * 16)


def test_rotation_records_the_spend_and_the_use(store: Store) -> None:
    user = _user(store)
    old = _login(store, user, "a" * 16)
    new = RefreshRecord("a" * 16 + "1" * 16, user.id, "a" * 16, int(NOW) + 5, LATER + 5, "active")
    assert store.rotate_refresh_token(
        old.jti, new, now=NOW + 5, user_agent="two", address="10.0.0.2"
    )
    spent = store.get_refresh_token(old.jti)
    assert spent is not None
    assert (spent.state, spent.spent_at, spent.successor) == ("spent", NOW + 5, new.jti)
    found = store.get_refresh_token_and_user(new.jti)
    assert found is not None
    assert found[2] is not None
    session = found[2]
    assert (session.last_used_at, session.expires_at) == (NOW + 5, LATER + 5)
    assert (session.user_agent, session.address) == ("two", "10.0.0.2")
    assert store.rotate_refresh_token(old.jti, new, now=NOW + 6) is False


def test_touch_updates_only_an_active_session(store: Store) -> None:
    user = _user(store)
    record = _login(store, user, "a" * 16)
    store.touch_session("a" * 16, now=NOW + 61, user_agent="b", address="c")
    found = store.get_refresh_token_and_user(record.jti)
    assert found is not None
    assert found[2] is not None
    assert (found[2].last_used_at, found[2].user_agent, found[2].address) == (NOW + 61, "b", "c")
    assert store.end_session(user.id, "a" * 16, "ended")
    store.touch_session("a" * 16, now=NOW + 999, user_agent="x", address="y")
    found = store.get_refresh_token_and_user(record.jti)
    assert found is not None
    assert found[2] is not None
    assert found[2].last_used_at == NOW + 61


def test_list_is_live_sessions_of_the_user_newest_first(store: Store) -> None:
    alice, bob = _user(store), _user(store, "bob")
    _login(store, alice, "a" * 16, created=NOW)
    _login(store, alice, "b" * 16, created=NOW + 2)
    _login(store, alice, "c" * 16, created=NOW + 1, expires=int(NOW) + 10)
    _login(store, alice, "d" * 16, created=NOW + 3)
    _login(store, bob, "e" * 16)
    assert store.end_session(alice.id, "d" * 16, "ended")
    listed = store.list_sessions(alice.id, now=NOW + 10)
    assert [s.id for s in listed] == ["b" * 16, "a" * 16]


@pytest.mark.parametrize(
    ("first", "second", "second_changes"),
    [
        ("ended", "ended", False),
        ("ended", "revoked", True),
        ("revoked", "ended", False),
        ("revoked", "revoked", False),
    ],
)
def test_end_session_moves_only_forward(
    store: Store, db_rows: Rows, first: str, second: str, second_changes: bool
) -> None:
    user = _user(store)
    _login(store, user, "a" * 16)
    assert store.end_session(user.id, "a" * 16, first) is True
    assert store.end_session(user.id, "a" * 16, second) is second_changes
    expected = second if second_changes else first
    assert _states(db_rows) == [("a" * 16, expected, "blacklisted")]


def test_end_session_refuses_another_users_and_unknown_sessions(
    store: Store, db_rows: Rows
) -> None:
    alice, bob = _user(store), _user(store, "bob")
    _login(store, alice, "a" * 16)
    assert store.end_session(bob.id, "a" * 16, "revoked") is False
    assert store.end_session(alice.id, "f" * 16, "revoked") is False
    assert _states(db_rows) == [("a" * 16, "active", "active")]


def test_one_of_concurrent_ends_wins(store: Store) -> None:
    user = _user(store)
    _login(store, user, "a" * 16)
    results = _together(10, lambda i: store.end_session(user.id, "a" * 16, "revoked"))
    assert sorted(results) == [False] * 9 + [True]


def test_end_user_sessions_revokes_active_and_ended_only_of_that_user(
    store: Store, db_rows: Rows
) -> None:
    alice, bob = _user(store), _user(store, "bob")
    _login(store, alice, "a" * 16)
    _login(store, alice, "b" * 16)
    _login(store, bob, "c" * 16)
    assert store.end_session(alice.id, "b" * 16, "ended")
    assert store.end_user_sessions(alice.id) == 2
    assert store.end_user_sessions(alice.id) == 0
    assert _states(db_rows) == [
        ("a" * 16, "revoked", "blacklisted"),
        ("b" * 16, "revoked", "blacklisted"),
        ("c" * 16, "active", "active"),
    ]


def test_session_state_is_one_read_of_user_and_session(store: Store) -> None:
    alice, bob = _user(store), _user(store, "bob")
    _login(store, alice, "a" * 16)
    assert store.session_state(alice.id, "a" * 16) == (True, "active")
    assert store.session_state(bob.id, "a" * 16) == (True, None)  # not bob's
    assert store.session_state(alice.id, "f" * 16) == (True, None)
    assert store.session_state(999, "a" * 16) is None
    assert store.set_active("alice", False)
    assert store.session_state(alice.id, "a" * 16) == (False, "active")


def test_change_password_revokes_all_and_starts_the_callers_session(
    store: Store, db_rows: Rows
) -> None:
    user = _user(store)
    _login(store, user, "a" * 16)
    _login(store, user, "b" * 16)
    store.take_attempt(
        kind="login", subject="s", address="a", now=NOW, since=0, limits=AttemptLimits()
    )
    count = store.change_password(
        user.id,
        password_hash="new",
        session=_session(user, "c" * 16),
        refresh=_record(user, "c" * 16, "0" * 16),
        subject="s",
        address="a",
    )
    assert count == 2
    assert _states(db_rows) == [
        ("a" * 16, "revoked", "blacklisted"),
        ("b" * 16, "revoked", "blacklisted"),
        ("c" * 16, "active", "active"),
    ]
    reread = store.get_user(user.id)
    assert reread is not None
    assert reread.password_hash == "new"
    limits = AttemptLimits(per_pair=1)
    assert (
        store.take_attempt(kind="login", subject="s", address="a", now=NOW, since=0, limits=limits)
        is None
    )
    assert store.change_password(999, password_hash="x") is None


def test_change_password_is_atomic(store: Store, db_rows: Rows) -> None:
    """A failure in the middle (the new session's id taken) changes nothing."""
    user = _user(store)
    _login(store, user, "a" * 16)
    with pytest.raises(Exception, match=r"UNIQUE|unavailable"):
        store.change_password(user.id, password_hash="new", session=_session(user, "a" * 16))
    assert _states(db_rows) == [("a" * 16, "active", "active")]
    reread = store.get_user(user.id)
    assert reread is not None
    assert reread.password_hash == "h"


def test_reuse_revokes_the_session_with_its_family(store: Store, db_rows: Rows) -> None:
    user = _user(store)
    _login(store, user, "a" * 16)
    assert store.revoke_family("a" * 16) == 1
    assert _states(db_rows) == [("a" * 16, "revoked", "blacklisted")]


def test_deleting_the_user_deletes_the_sessions(store: Store) -> None:
    user = _user(store)
    _login(store, user, "a" * 16)
    assert store.delete_user(user.id)
    assert store.session_state(user.id, "a" * 16) is None
    assert store.list_sessions(user.id, now=0) == []


def test_purge_deletes_sessions_past_their_cut_off(store: Store) -> None:
    user = _user(store)
    _login(store, user, "a" * 16, expires=int(NOW) - 20)
    _login(store, user, "b" * 16, expires=int(NOW) - 5)
    deleted = store.purge_expired(tokens_before=NOW, sessions_before=NOW - 10, attempts_before={})
    assert deleted == 1 + 0  # the session past the cut-off; tokens expire LATER
    assert store.session_state(user.id, "a" * 16) == (True, None)
    assert store.session_state(user.id, "b" * 16) == (True, "active")


@pytest.mark.sqlite_only
def test_version_two_families_become_sessions(db_path: Path) -> None:
    connection = sqlite3.connect(db_path, isolation_level=None)
    for steps in MIGRATIONS[:2]:
        for statement in steps:
            connection.execute(statement)
    connection.execute(
        "INSERT INTO users (username, username_key, password_hash, date_joined)"
        " VALUES ('alice', 'alice', 'h', 1)"
    )
    rows = [
        ("1" * 32, "1" * 32, 10, 40, "spent"),
        ("2" * 32, "1" * 32, 20, 50, "active"),
        ("3" * 32, "3" * 32, 10, 40, "blacklisted"),
    ]
    for jti, family, issued, expires, state in rows:
        connection.execute(
            "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at, state)"
            " VALUES (?, 1, ?, ?, ?, ?)",
            (jti, family, issued, expires, state),
        )
    connection.execute("PRAGMA user_version = 2")
    connection.close()
    store = SQLiteStore(str(db_path))
    try:
        assert store.schema_version() == 3
        found = store.get_refresh_token_and_user("2" * 32)
        assert found is not None
        assert found[0].family == "1" * 16
        assert found[2] == Session("1" * 16, 1, 10, 20, 50, "", "", "active")
        assert store.session_state(1, "3" * 16) == (True, "ended")
    finally:
        store.close()
