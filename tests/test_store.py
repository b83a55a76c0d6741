"""Tests for jwtlite.store.sqlite: schema, users, refresh tokens, login failures, failure modes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from jwtlite.errors import StoreUnavailableError
from jwtlite.store import RefreshRecord, User
from jwtlite.store.sqlite import SCHEMA_VERSION, SQLiteStore

T = TypeVar("T")
NOW = 1_700_000_000.0


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "jwtlite.sqlite3")


@pytest.fixture
def store(db_path: str) -> Iterator[SQLiteStore]:
    store = SQLiteStore(db_path)
    yield store
    store.close()


def _add_user(store: SQLiteStore, name: str = "alice") -> User:
    user = store.create_user(
        username=name, username_key=name.casefold(), email="", password_hash="h", now=NOW
    )
    assert user is not None
    return user


def _token(
    user: User, jti: str, *, family: str = "f1", expires_at: int = 2_000_000_000
) -> RefreshRecord:
    return RefreshRecord(jti, user.id, family, int(NOW), expires_at, "active")


def _in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` in ``count`` threads released together; return the results."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            result = work(i)
        except BaseException as error:
            with lock:
                errors.append(error)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def _query(path: str, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


# -- schema and connections -----------------------------------------------------------------


def test_fresh_file_is_migrated(store: SQLiteStore, db_path: str) -> None:
    assert store.schema_version() == SCHEMA_VERSION == 1
    assert _query(db_path, "PRAGMA user_version") == [(1,)]
    tables = {
        row[0] for row in _query(db_path, "SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert {"users", "refresh_tokens", "login_failures"} <= tables
    indexes = {
        row[0] for row in _query(db_path, "SELECT name FROM sqlite_master WHERE type='index'")
    }
    assert {
        "refresh_tokens_family",
        "refresh_tokens_expires_at",
        "login_failures_username_at",
        "login_failures_address_at",
        "login_failures_at",
    } <= indexes


def test_pragmas(store: SQLiteStore, db_path: str) -> None:
    connection = store._connection()
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert connection.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    assert connection.isolation_level is None


def test_reopening_is_idempotent_and_keeps_data(db_path: str) -> None:
    first = SQLiteStore(db_path)
    try:
        _add_user(first)
    finally:
        first.close()
    second = SQLiteStore(db_path)
    try:
        assert second.schema_version() == 1
        user = second.get_user_by_key("alice")
        assert user is not None
        assert user.username == "alice"
    finally:
        second.close()


def test_two_stores_open_a_fresh_file_concurrently(db_path: str) -> None:
    stores = _in_threads(8, lambda _: SQLiteStore(db_path))
    try:
        assert {store.schema_version() for store in stores} == {1}
    finally:
        for store in stores:
            store.close()


def test_newer_schema_is_refused(db_path: str) -> None:
    SQLiteStore(db_path).close()
    connection = sqlite3.connect(db_path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(StoreUnavailableError, match="newer"):
        SQLiteStore(db_path)


def test_integrity_check_ok(store: SQLiteStore, db_path: str) -> None:
    _add_user(store)
    assert _query(db_path, "PRAGMA integrity_check") == [("ok",)]
    assert _query(db_path, "PRAGMA foreign_key_check") == []


def test_ping(store: SQLiteStore) -> None:
    assert store.ping() is None


def test_close_closes_every_threads_connection(store: SQLiteStore) -> None:
    connections = _in_threads(5, lambda _: store._connection())
    assert len({id(c) for c in connections}) == 5
    store.close()
    for connection in connections:
        with pytest.raises(sqlite3.ProgrammingError):
            connection.execute("SELECT 1")
    with pytest.raises(StoreUnavailableError):
        store.ping()

    def ping_in_new_thread(_: int) -> None:
        with pytest.raises(StoreUnavailableError, match="closed"):
            store.ping()

    _in_threads(2, ping_in_new_thread)


# -- failure modes --------------------------------------------------------------------------


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    return str(path)


@pytest.mark.parametrize(
    "make_path",
    [
        lambda tmp: str(tmp / "missing" / "dir" / "db.sqlite3"),
        str,
        _not_a_database,
    ],
    ids=["missing-directory", "path-is-a-directory", "not-a-database"],
)
def test_unopenable_database(tmp_path: Path, make_path: Callable[[Path], str]) -> None:
    with pytest.raises(StoreUnavailableError, match="unavailable") as info:
        SQLiteStore(make_path(tmp_path))
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_read_only_file_through_uri_is_unavailable(db_path: str) -> None:
    # Works as root too: SQLite itself refuses to write through a read-only open, and the
    # store finds out at construction although no migration is pending.
    SQLiteStore(db_path).close()
    with pytest.raises(StoreUnavailableError, match="readonly"):
        SQLiteStore(f"file:{db_path}?mode=ro")


def test_disk_full_is_unavailable(store: SQLiteStore) -> None:
    _add_user(store)
    # Cap the file at its current size: the next page allocation fails like a full disk.
    connection = store._connection()
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")

    def fill() -> None:
        for i in range(1000):
            store.record_login_failure(username_key="x" * 500, address=f"10.0.0.{i}", now=NOW)

    with pytest.raises(StoreUnavailableError, match="full") as info:
        fill()
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert store.get_user_by_key("alice") is not None


# -- users ----------------------------------------------------------------------------------


def test_create_and_read_user(store: SQLiteStore) -> None:
    created = store.create_user(
        username="Alice", username_key="alice", email="a@example.com", password_hash="$h", now=NOW
    )
    assert created == User(1, "Alice", "a@example.com", "$h", True, NOW, None)
    assert store.get_user(1) == created
    assert store.get_user_by_key("alice") == created
    assert store.get_user(2) is None
    assert store.get_user_by_key("Alice") is None


def test_usernames_are_unique_by_key(store: SQLiteStore) -> None:
    _add_user(store, "alice")
    again = store.create_user(
        username="ALICE", username_key="alice", email="", password_hash="h", now=NOW
    )
    assert again is None
    assert (
        store.create_user(username="bob", username_key="bob", email="", password_hash="h", now=NOW)
        is not None
    )


def test_fifty_threads_register_one_name(store: SQLiteStore, db_path: str) -> None:
    results = _in_threads(
        50,
        lambda i: store.create_user(
            username=f"Same{i}", username_key="same", email="", password_hash="h", now=NOW
        ),
    )
    assert len(results) == 50
    assert sum(user is not None for user in results) == 1
    assert _query(db_path, "SELECT count(*) FROM users") == [(1,)]


def _create_in_process(path: str, index: int) -> bool:
    store = SQLiteStore(path)
    try:
        created = store.create_user(
            username=f"Proc{index}", username_key="proc", email="", password_hash="h", now=NOW
        )
    finally:
        store.close()
    return created is not None


def test_processes_register_one_name(store: SQLiteStore, db_path: str) -> None:
    # "spawn": a forked child of a threaded pytest process may inherit held locks.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(8, mp_context=context) as pool:
        results = list(pool.map(_create_in_process, [db_path] * 16, range(16)))
    assert sum(results) == 1
    assert _query(db_path, "SELECT count(*) FROM users WHERE username_key = 'proc'") == [(1,)]


def test_start_session_update_hash_and_activation(store: SQLiteStore) -> None:
    user = _add_user(store)
    store.record_login_failure(username_key="alice", address="1.2.3.4", now=NOW)
    store.start_session(
        user.id,
        username_key="alice",
        now=NOW + 5,
        refresh=_token(user, "j1"),
        password_hash="$new",
    )
    assert store.login_failures_since(username_key="alice", address="1.2.3.4", since=0)[0] == 0
    assert store.get_refresh_token("j1") == _token(user, "j1")
    assert store.set_active("alice", False) is True
    assert store.set_active("nobody", False) is False
    reread = store.get_user(user.id)
    assert reread is not None
    assert (reread.last_login, reread.password_hash, reread.is_active) == (NOW + 5, "$new", False)
    assert store.set_active("alice", True) is True
    assert store.get_user(user.id) == User(user.id, "alice", "", "$new", True, NOW, NOW + 5)


def test_delete_user_cascades_to_tokens(store: SQLiteStore) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "j1"))
    assert store.delete_user(user.id) is True
    assert store.delete_user(user.id) is False
    assert store.get_user(user.id) is None
    assert store.get_refresh_token("j1") is None


# -- refresh tokens -------------------------------------------------------------------------


def test_add_and_get_refresh_token(store: SQLiteStore) -> None:
    user = _add_user(store)
    record = _token(user, "j1")
    store.add_refresh_token(record)
    assert store.get_refresh_token("j1") == record
    assert store.get_refresh_token("nope") is None


def test_refresh_token_for_unknown_user_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(StoreUnavailableError):
        store.add_refresh_token(RefreshRecord("j1", 999, "f", 1, 2, "active"))


def test_rotation_spends_old_and_stores_new(store: SQLiteStore) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "j1"))
    assert store.rotate_refresh_token("j1", _token(user, "j2")) is True
    spent = store.get_refresh_token("j1")
    assert spent is not None
    assert spent.state == "spent"
    assert store.get_refresh_token("j2") == _token(user, "j2")
    # Reuse of the spent token changes nothing.
    assert store.rotate_refresh_token("j1", _token(user, "j3")) is False
    assert store.get_refresh_token("j3") is None


@pytest.mark.parametrize("state", ["spent", "blacklisted"], ids=["spent", "blacklisted"])
def test_rotation_of_inactive_token_fails(store: SQLiteStore, state: str) -> None:
    user = _add_user(store)
    store.add_refresh_token(RefreshRecord("j1", user.id, "f1", 1, 2_000_000_000, state))
    assert store.rotate_refresh_token("j1", _token(user, "j2")) is False
    assert store.get_refresh_token("j2") is None


def test_rotation_of_unknown_token_fails(store: SQLiteStore) -> None:
    user = _add_user(store)
    assert store.rotate_refresh_token("ghost", _token(user, "j2")) is False
    assert store.get_refresh_token("j2") is None


def test_failed_insert_rolls_back_the_spend(store: SQLiteStore) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "j1"))
    store.add_refresh_token(_token(user, "taken"))
    with pytest.raises(StoreUnavailableError):
        store.rotate_refresh_token("j1", _token(user, "taken"))
    record = store.get_refresh_token("j1")
    assert record is not None
    assert record.state == "active"
    assert not store._connection().in_transaction


def test_twenty_threads_rotate_one_token(store: SQLiteStore) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "j0"))
    results = _in_threads(20, lambda i: store.rotate_refresh_token("j0", _token(user, f"n{i}")))
    assert sorted(results) == [False] * 19 + [True]
    rows = store._connection().execute("SELECT state, count(*) FROM refresh_tokens GROUP BY state")
    assert dict(rows.fetchall()) == {"spent": 1, "active": 1}


def test_revoke_family(store: SQLiteStore) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "a1", family="A"))
    store.add_refresh_token(_token(user, "b1", family="B"))
    assert store.rotate_refresh_token("a1", _token(user, "a2", family="A"))
    assert store.revoke_family("A") == 2
    assert store.revoke_family("A") == 0
    states = {jti: store.get_refresh_token(jti) for jti in ("a1", "a2", "b1")}
    assert {jti: r.state for jti, r in states.items() if r} == {
        "a1": "blacklisted",
        "a2": "blacklisted",
        "b1": "active",
    }


def test_blacklist_refresh_token(store: SQLiteStore) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "j1"))
    assert store.blacklist_refresh_token("j1") is True
    assert store.blacklist_refresh_token("missing") is False
    record = store.get_refresh_token("j1")
    assert record is not None
    assert record.state == "blacklisted"
    assert store.rotate_refresh_token("j1", _token(user, "j2")) is False


def test_purge_expired(store: SQLiteStore) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "old", expires_at=int(NOW) - 1))
    store.add_refresh_token(_token(user, "edge", expires_at=int(NOW)))
    store.add_refresh_token(_token(user, "live", expires_at=int(NOW) + 1))
    store.record_login_failure(username_key="alice", address="a", now=NOW - 301)
    store.record_login_failure(username_key="alice", address="a", now=NOW - 300)
    store.record_login_failure(username_key="alice", address="a", now=NOW - 299)
    assert store.purge_expired(NOW, failure_window=300) == 4
    assert store.get_refresh_token("old") is None
    assert store.get_refresh_token("edge") is None
    assert store.get_refresh_token("live") is not None
    assert store.login_failures_since(username_key="alice", address="a", since=0) == (
        1,
        NOW - 299,
        1,
        NOW - 299,
    )
    assert store.purge_expired(NOW, failure_window=300) == 0


# -- login failures -------------------------------------------------------------------------


def test_login_failure_counters(store: SQLiteStore) -> None:
    empty = store.login_failures_since(username_key="alice", address="1.2.3.4", since=0)
    assert empty == (0, None, 0, None)
    store.record_login_failure(username_key="alice", address="1.2.3.4", now=NOW)
    store.record_login_failure(username_key="alice", address="5.6.7.8", now=NOW + 1)
    store.record_login_failure(username_key="bob", address="1.2.3.4", now=NOW + 2)
    store.record_login_failure(username_key="alice", address="1.2.3.4", now=NOW + 3)
    assert store.login_failures_since(username_key="alice", address="1.2.3.4", since=NOW - 1) == (
        3,
        NOW,
        3,
        NOW,
    )
    # Strictly after ``since``: the failure at exactly NOW has left the window.
    assert store.login_failures_since(username_key="alice", address="1.2.3.4", since=NOW) == (
        2,
        NOW + 1,
        2,
        NOW + 2,
    )
    user = _add_user(store)
    store.start_session(user.id, username_key="alice", now=NOW + 3, refresh=_token(user, "j1"))
    assert store.login_failures_since(username_key="alice", address="1.2.3.4", since=0) == (
        0,
        None,
        1,
        NOW + 2,
    )


def test_login_failure_queries_use_indexes(store: SQLiteStore) -> None:
    plan = store._connection().execute(
        "EXPLAIN QUERY PLAN SELECT count(*), min(at) FROM login_failures"
        " WHERE username_key = ? AND at > ?",
        ("a", 0),
    )
    assert "login_failures_username_at" in " ".join(str(row) for row in plan.fetchall())
