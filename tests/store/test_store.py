"""The store contract, on every backend: users, refresh tokens, attempts, atomicity under
threads and processes. Then what only SQLite has: the file itself, its pragmas, its modes,
its migration from the first schema and its own failure modes (``sqlite_only``).

PostgreSQL's own matters (migrations table, advisory lock, pool, faults, masking) are in
``test_postgres_store.py``.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from jwtlite.store import AttemptLimits, RefreshRecord, Session, Store, User, open_store
from jwtlite.store._sqlite_sql import MIGRATIONS
from jwtlite.store.base import PURGE_BATCH
from jwtlite.store.errors import StoreUnavailableError
from jwtlite.store.sqlite import SCHEMA_VERSION, SQLiteStore

pytestmark = pytest.mark.both_backends

T = TypeVar("T")
NOW = 1_700_000_000.0
Rows = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    store = open_store(database)
    yield store
    store.close()


def _add_user(store: Store, name: str = "alice") -> User:
    user = store.create_user(
        username=name,
        username_key=name.casefold(),
        username_skeleton=name.casefold(),
        email="",
        password_hash="h",
        now=NOW,
    )
    assert user is not None
    return user


def _token(
    user: User, jti: str, *, family: str = "f1", expires_at: int = 2_000_000_000
) -> RefreshRecord:
    return RefreshRecord(jti, user.id, family, int(NOW), expires_at, "active")


def _session(user: User, session_id: str, *, expires_at: int = 2_000_000_000) -> Session:
    return Session(session_id, user.id, NOW, NOW, expires_at, "agent", "1.2.3.4", "active")


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


def test_reopening_is_idempotent_and_keeps_data(database: str) -> None:
    first = open_store(database)
    try:
        _add_user(first)
        version = first.schema_version()
    finally:
        first.close()
    second = open_store(database)
    try:
        assert second.schema_version() == version
        user = second.get_user_by_key("alice")
        assert user is not None
        assert user.username == "alice"
    finally:
        second.close()


def test_stores_open_one_database_concurrently(database: str) -> None:
    stores = _in_threads(8, lambda _: open_store(database, pool_size=1))
    try:
        assert len({store.schema_version() for store in stores}) == 1
        _add_user(stores[0])
        assert all(store.get_user_by_key("alice") is not None for store in stores)
    finally:
        for store in stores:
            store.close()


@pytest.mark.sqlite_only
def test_many_threads_opening_a_new_file_never_find_it_locked(tmp_path: Path) -> None:
    # Turning a new file to WAL answers SQLITE_BUSY at once, without the busy handler, while
    # other connections open it too: about one round in fifteen failed before the retry.
    for attempt in range(25):
        path = str(tmp_path / f"new-{attempt}.sqlite3")
        for store in _in_threads(8, lambda _, path=path: open_store(path)):
            store.close()


def test_ping(store: Store) -> None:
    assert store.ping() is None


def test_a_closed_store_is_unavailable(database: str) -> None:
    store = open_store(database)
    store.close()
    with pytest.raises(StoreUnavailableError, match="closed"):
        store.ping()
    with pytest.raises(StoreUnavailableError):
        store.get_user(1)


# -- users ----------------------------------------------------------------------------------


def test_create_and_read_user(store: Store) -> None:
    created = store.create_user(
        username="Alice",
        username_key="alice",
        username_skeleton="alice",
        email="a@example.com",
        password_hash="$h",
        now=NOW,
    )
    assert created == User(1, "Alice", "a@example.com", "$h", True, NOW, None)
    assert store.get_user(1) == created
    assert store.get_user_by_key("alice") == created
    assert store.get_user(2) is None
    assert store.get_user_by_key("Alice") is None


def test_usernames_are_unique_by_key(store: Store) -> None:
    _add_user(store, "alice")
    again = store.create_user(
        username="ALICE",
        username_key="alice",
        username_skeleton="alice",
        email="",
        password_hash="h",
        now=NOW,
    )
    assert again is None
    assert (
        store.create_user(
            username="bob",
            username_key="bob",
            username_skeleton="bob",
            email="",
            password_hash="h",
            now=NOW,
        )
        is not None
    )


def test_lookalike_usernames_collide_on_the_skeleton(store: Store) -> None:
    first = store.create_user(
        username="ace",
        username_key="ace",
        username_skeleton="ace",
        email="",
        password_hash="h",
        now=NOW,
    )
    assert first is not None
    lookalike = store.create_user(
        username="\u0430\u0441\u0435",
        username_key="\u0430\u0441\u0435",
        username_skeleton="ace",
        email="",
        password_hash="h",
        now=NOW,
    )
    assert lookalike is None


def test_fifty_threads_register_one_name(store: Store, db_rows: Rows) -> None:
    results = _in_threads(
        50,
        lambda i: store.create_user(
            username=f"Same{i}",
            username_key="same",
            username_skeleton="same",
            email="",
            password_hash="h",
            now=NOW,
        ),
    )
    assert len(results) == 50
    assert sum(user is not None for user in results) == 1
    assert db_rows("SELECT count(*) FROM users") == [(1,)]


def _create_in_process(path: str, index: int) -> bool:
    store = open_store(path, pool_size=1)
    try:
        created = store.create_user(
            username=f"Proc{index}",
            username_key="proc",
            username_skeleton="proc",
            email="",
            password_hash="h",
            now=NOW,
        )
    finally:
        store.close()
    return created is not None


def test_processes_register_one_name(store: Store, database: str, db_rows: Rows) -> None:
    # "spawn": a forked child of a threaded pytest process may inherit held locks.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(8, mp_context=context) as pool:
        results = list(pool.map(_create_in_process, [database] * 16, range(16)))
    assert sum(results) == 1
    assert db_rows("SELECT count(*) FROM users WHERE username_key = 'proc'") == [(1,)]


def test_start_session_update_hash_and_activation(store: Store) -> None:
    user = _add_user(store)
    _attempt(store, "alice", "1.2.3.4", NOW)
    assert store.start_session(
        user.id,
        verified_hash=user.password_hash,
        subject="alice",
        address="1.2.3.4",
        now=NOW + 5,
        refresh=_token(user, "j1"),
        session=_session(user, "f1"),
        password_hash="$new",
    )
    assert _attempt(store, "alice", "1.2.3.4", NOW, limit=AttemptLimits(per_pair=1)) is None
    assert store.get_refresh_token("j1") == _token(user, "j1")
    assert store.set_active("alice", False) is True
    assert store.set_active("nobody", False) is False
    reread = store.get_user(user.id)
    assert reread is not None
    assert (reread.last_login, reread.password_hash, reread.is_active) == (NOW + 5, "$new", False)
    assert store.set_active("alice", True) is True
    assert store.get_user(user.id) == User(user.id, "alice", "", "$new", True, NOW, NOW + 5)


@pytest.mark.parametrize("change", ["password", "deactivated", "deleted"])
def test_a_login_checked_against_a_hash_gone_since_starts_nothing(
    store: Store, db_rows: Rows, change: str
) -> None:
    """The login's password was right for hash "h"; meanwhile the user changed: no session."""
    user = _add_user(store)
    _attempt(store, "alice", "1.2.3.4", NOW)
    if change == "password":
        assert store.change_password(user.id, password_hash="$other") == 0
    elif change == "deactivated":
        assert store.set_active("alice", False)
    else:
        assert store.delete_user(user.id)
    started = store.start_session(
        user.id,
        verified_hash="h",
        subject="alice",
        address="1.2.3.4",
        now=NOW + 5,
        refresh=_token(user, "j1"),
        session=_session(user, "f1"),
        password_hash="$rehashed",
    )
    assert started is False
    assert store.get_refresh_token("j1") is None
    assert db_rows("SELECT count(*) FROM sessions") == [(0,)]
    # Nothing else was written either: the failure stays counted, no success remembered.
    assert db_rows("SELECT kind FROM attempts") == [("login",)]
    reread = store.get_user(user.id)
    if reread is not None:
        assert (reread.password_hash, reread.last_login) != ("$rehashed", NOW + 5)
        assert reread.last_login is None


def test_a_change_or_deletion_proved_against_a_hash_gone_since_does_nothing(
    store: Store,
) -> None:
    user = _add_user(store)
    assert store.change_password(user.id, password_hash="$b", verified_hash="h") == 0
    # Two changes that both proved the password of "h": the second finds "$b" and stops.
    assert store.change_password(user.id, password_hash="$c", verified_hash="h") is None
    assert store.delete_user(user.id, verified_hash="h") is False
    reread = store.get_user(user.id)
    assert reread is not None
    assert reread.password_hash == "$b"
    assert store.delete_user(user.id, verified_hash="$b") is True


def test_delete_user_cascades_to_tokens(store: Store) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "j1"))
    assert store.delete_user(user.id) is True
    assert store.delete_user(user.id) is False
    assert store.get_user(user.id) is None
    assert store.get_refresh_token("j1") is None


# -- refresh tokens -------------------------------------------------------------------------


def test_add_and_get_refresh_token(store: Store) -> None:
    user = _add_user(store)
    record = _token(user, "j1")
    store.add_refresh_token(record)
    assert store.get_refresh_token("j1") == record
    assert store.get_refresh_token("nope") is None


def test_refresh_token_for_unknown_user_is_refused(store: Store) -> None:
    with pytest.raises(StoreUnavailableError):
        store.add_refresh_token(RefreshRecord("j1", 999, "f", 1, 2, "active"))


def test_rotation_spends_old_and_stores_new(store: Store) -> None:
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
def test_rotation_of_inactive_token_fails(store: Store, state: str) -> None:
    user = _add_user(store)
    store.add_refresh_token(RefreshRecord("j1", user.id, "f1", 1, 2_000_000_000, state))
    assert store.rotate_refresh_token("j1", _token(user, "j2")) is False
    assert store.get_refresh_token("j2") is None


def test_rotation_of_unknown_token_fails(store: Store) -> None:
    user = _add_user(store)
    assert store.rotate_refresh_token("ghost", _token(user, "j2")) is False
    assert store.get_refresh_token("j2") is None


def test_failed_insert_rolls_back_the_spend(store: Store, db_rows: Rows) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "j1"))
    store.add_refresh_token(_token(user, "taken"))
    with pytest.raises(StoreUnavailableError):
        store.rotate_refresh_token("j1", _token(user, "taken"))
    record = store.get_refresh_token("j1")
    assert record is not None
    assert record.state == "active"
    assert db_rows("SELECT count(*) FROM refresh_tokens") == [(2,)]
    # The store is still usable: nothing was left half-done on its connection.
    assert store.rotate_refresh_token("j1", _token(user, "j2")) is True


def test_twenty_threads_rotate_one_token(store: Store, db_rows: Rows) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "j0"))
    results = _in_threads(20, lambda i: store.rotate_refresh_token("j0", _token(user, f"n{i}")))
    assert sorted(results) == [False] * 19 + [True]
    rows = db_rows("SELECT state, count(*) FROM refresh_tokens GROUP BY state")
    assert dict(rows) == {"spent": 1, "active": 1}


def test_revoke_family(store: Store) -> None:
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


def test_blacklist_refresh_token(store: Store) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "j1"))
    assert store.blacklist_refresh_token("j1") is True
    assert store.blacklist_refresh_token("missing") is False
    record = store.get_refresh_token("j1")
    assert record is not None
    assert record.state == "blacklisted"
    assert store.rotate_refresh_token("j1", _token(user, "j2")) is False


def _attempt(
    store: Store,
    subject: str,
    address: str,
    now: float,
    *,
    limit: AttemptLimits | None = None,
    since: float = 0,
    kind: str = "login",
) -> float | None:
    return store.take_attempt(
        kind=kind,
        subject=subject,
        address=address,
        now=now,
        since=since,
        limits=limit or AttemptLimits(),
    )


def _attempt_count(db_rows: Rows) -> int:
    return int(db_rows("SELECT count(*) FROM attempts")[0][0])


def test_purge_expired(store: Store, db_rows: Rows) -> None:
    user = _add_user(store)
    store.add_refresh_token(_token(user, "old", expires_at=int(NOW) - 1))
    store.add_refresh_token(_token(user, "edge", expires_at=int(NOW)))
    store.add_refresh_token(_token(user, "live", expires_at=int(NOW) + 1))
    for at in (NOW - 301, NOW - 300, NOW - 299):
        _attempt(store, "alice", "a", at)
    assert store.purge_expired(tokens_before=NOW, attempts_before={"login": NOW - 300}) == 4
    assert store.get_refresh_token("old") is None
    assert store.get_refresh_token("edge") is None
    assert store.get_refresh_token("live") is not None
    assert db_rows("SELECT at FROM attempts") == [(NOW - 299,)]
    _attempt(store, "alice", "a", NOW - 1000, kind="register")
    assert store.purge_expired(tokens_before=NOW, attempts_before={"login": NOW - 300}) == 0
    assert store.purge_expired(tokens_before=NOW, attempts_before={"register": NOW - 999}) == 1


# -- throttling -------------------------------------------------------------------------------


def test_attempts_are_counted_per_bucket(store: Store) -> None:
    limits = AttemptLimits(per_pair=2, per_subject=3, per_address=4)
    assert _attempt(store, "alice", "1.1.1.1", NOW, limit=limits) is None
    assert _attempt(store, "alice", "1.1.1.1", NOW + 1, limit=limits) is None
    # The pair is full; the oldest of its attempts says when it frees up.
    assert _attempt(store, "alice", "1.1.1.1", NOW + 2, limit=limits) == NOW
    # Another address may still try alice, until the subject's own bar.
    assert _attempt(store, "alice", "2.2.2.2", NOW + 3, limit=limits) is None
    assert _attempt(store, "alice", "3.3.3.3", NOW + 4, limit=limits) == NOW
    # The address's bar counts every subject.
    assert _attempt(store, "bob", "1.1.1.1", NOW + 5, limit=limits) is None
    assert _attempt(store, "carol", "1.1.1.1", NOW + 6, limit=limits) is None
    assert _attempt(store, "dave", "1.1.1.1", NOW + 7, limit=limits) == NOW
    # Kinds never mix, and only attempts after ``since`` count.
    assert _attempt(store, "alice", "1.1.1.1", NOW, limit=limits, kind="register") is None
    assert _attempt(store, "alice", "1.1.1.1", NOW + 8, limit=limits, since=NOW) is None


def test_refused_attempts_are_not_counted(store: Store, db_rows: Rows) -> None:
    limits = AttemptLimits(per_pair=1)
    assert _attempt(store, "alice", "a", NOW, limit=limits) is None
    for offset in range(1, 10):
        assert _attempt(store, "alice", "a", NOW + offset, limit=limits) == NOW
    assert _attempt_count(db_rows) == 1


def test_a_username_is_taken_by_its_key_or_its_skeleton(store: Store) -> None:
    assert store.username_taken("alice", "alice") is False
    _add_user(store)
    assert store.username_taken("alice", "other") is True
    assert store.username_taken("other", "alice") is True
    assert store.username_taken("bob", "bob") is False


def test_a_returned_attempt_frees_its_place_once(store: Store, db_rows: Rows) -> None:
    limits = AttemptLimits(per_pair=2)
    assert _attempt(store, "alice", "a", NOW, limit=limits) is None
    assert _attempt(store, "alice", "a", NOW, limit=limits) is None  # the same instant twice
    assert _attempt(store, "alice", "a", NOW + 1, limit=limits) == NOW
    store.return_attempt(kind="login", subject="alice", address="a", at=NOW)
    assert _attempt_count(db_rows) == 1  # one of the two, not both
    assert _attempt(store, "alice", "a", NOW + 1, limit=limits) is None
    # Nothing matches: other kind, subject, address or time.
    for kind, subject, address, at in [
        ("register", "alice", "a", NOW),
        ("login", "bob", "a", NOW),
        ("login", "alice", "b", NOW),
        ("login", "alice", "a", NOW + 5),
    ]:
        store.return_attempt(kind=kind, subject=subject, address=address, at=at)
    assert _attempt_count(db_rows) == 2


def test_fifty_threads_take_exactly_the_limit(store: Store, db_rows: Rows) -> None:
    limits = AttemptLimits(per_pair=5, per_subject=100, per_address=100)
    results = _in_threads(50, lambda i: _attempt(store, "alice", "a", NOW + i / 100, limit=limits))
    assert sum(result is None for result in results) == 5
    assert _attempt_count(db_rows) == 5


def _take_in_process(path: str, index: int) -> bool:
    store = open_store(path, pool_size=1)
    try:
        taken = _attempt(store, "alice", "a", NOW + index, limit=AttemptLimits(per_pair=5))
    finally:
        store.close()
    return taken is None


def test_processes_take_exactly_the_limit(store: Store, database: str, db_rows: Rows) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(8, mp_context=context) as pool:
        results = list(pool.map(_take_in_process, [database] * 24, range(24)))
    assert sum(results) == 5
    assert _attempt_count(db_rows) == 5


def test_a_login_forgets_only_its_own_pair(store: Store, db_rows: Rows) -> None:
    user = _add_user(store)
    for subject, address in [("alice", "a"), ("alice", "a"), ("alice", "b"), ("bob", "a")]:
        _attempt(store, subject, address, NOW)
    assert store.start_session(
        user.id,
        verified_hash=user.password_hash,
        subject="alice",
        address="a",
        now=NOW,
        refresh=_token(user, "j"),
        session=_session(user, "f1"),
    )
    rows = db_rows("SELECT kind, subject, address FROM attempts ORDER BY kind, subject, address")
    # The pair's attempts are gone and its success is remembered (one row per pair).
    assert rows == [("login", "alice", "b"), ("login", "bob", "a"), ("login-ok", "alice", "a")]


def test_a_pair_with_a_recent_success_skips_only_the_per_subject_bucket(store: Store) -> None:
    """``trusted_since``: a (subject, address) pair with a login success after it is not held
    to ``per_subject`` (strangers cannot lock the owner out of a place they used), but still
    to ``per_pair`` and ``per_address``; an older success, or none, trusts nothing."""
    user = _add_user(store)
    assert store.start_session(
        user.id,
        verified_hash=user.password_hash,
        subject="alice",
        address="home",
        now=NOW,
        refresh=_token(user, "j"),
        session=_session(user, "f1"),
    )
    for index in range(3):
        assert _attempt(store, "alice", f"elsewhere{index}", NOW + 10) is None
    limits = AttemptLimits(per_pair=2, per_subject=3, per_address=10, trusted_since=NOW - 1)
    assert _attempt(store, "alice", "new-place", NOW + 20, limit=limits) is not None
    assert _attempt(store, "alice", "home", NOW + 20, limit=limits) is None
    assert _attempt(store, "alice", "home", NOW + 20, limit=limits) is None
    assert _attempt(store, "alice", "home", NOW + 20, limit=limits) is not None  # per_pair
    stale = AttemptLimits(per_subject=3, trusted_since=NOW)  # the success is not after it
    assert _attempt(store, "alice", "home", NOW + 20, limit=stale) is not None
    untrusted = AttemptLimits(per_subject=3)
    assert _attempt(store, "alice", "home", NOW + 20, limit=untrusted) is not None
    by_address = AttemptLimits(per_subject=3, per_address=2, trusted_since=NOW - 1)
    assert _attempt(store, "alice", "home", NOW + 20, limit=by_address) is not None


# -- SQLite only: the file itself, its pragmas, its schema history, its failure modes -----


@pytest.fixture
def sqlite_path(db_path: Path) -> str:
    return str(db_path)


@pytest.mark.sqlite_only
def test_fresh_file_is_migrated(store: Any, sqlite_path: str) -> None:
    assert store.schema_version() == SCHEMA_VERSION == 3
    assert _query(sqlite_path, "PRAGMA user_version") == [(3,)]
    tables = {
        row[0] for row in _query(sqlite_path, "SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert {"users", "refresh_tokens", "attempts", "sessions"} <= tables
    assert "login_failures" not in tables  # it kept usernames in clear
    indexes = {
        row[0] for row in _query(sqlite_path, "SELECT name FROM sqlite_master WHERE type='index'")
    }
    assert {
        "refresh_tokens_family",
        "refresh_tokens_expires_at",
        "attempts_pair",
        "attempts_subject",
        "attempts_address",
        "attempts_at",
        "users_username_skeleton",
        "sessions_user_state",
        "sessions_expires_at",
    } <= indexes


@pytest.mark.sqlite_only
def test_version_one_database_is_migrated(sqlite_path: str) -> None:
    """A database of the first schema keeps its users and loses its clear-text counters."""
    connection = sqlite3.connect(sqlite_path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        connection.execute(statement)
    connection.execute(
        "INSERT INTO users (username, username_key, password_hash, date_joined)"
        " VALUES ('alice', 'alice', 'h', 1)"
    )
    connection.execute(
        "INSERT INTO login_failures (username_key, address, at) VALUES ('hunter2', 'a', 1)"
    )
    connection.execute("PRAGMA user_version = 1")
    connection.close()
    store = SQLiteStore(sqlite_path)
    try:
        assert store.schema_version() == 3
        user = store.get_user_by_key("alice")
        assert user is not None
        assert user.username == "alice"
        # Its skeleton is unknown (NULL), so it blocks nothing and nothing blocks it.
        assert _add_user(store, "bob").id == user.id + 1
    finally:
        store.close()
    tables = {row[0] for row in _query(sqlite_path, "SELECT name FROM sqlite_master")}
    assert "login_failures" not in tables


@pytest.mark.sqlite_only
def test_pragmas(store: Any, sqlite_path: str) -> None:
    connection = store._connection()
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert connection.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    assert connection.isolation_level is None


@pytest.mark.sqlite_only
def test_newer_schema_is_refused(sqlite_path: str) -> None:
    SQLiteStore(sqlite_path).close()
    connection = sqlite3.connect(sqlite_path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(StoreUnavailableError, match="newer"):
        SQLiteStore(sqlite_path)


@pytest.mark.sqlite_only
def test_integrity_check_ok(store: Any, sqlite_path: str) -> None:
    _add_user(store)
    assert _query(sqlite_path, "PRAGMA integrity_check") == [("ok",)]
    assert _query(sqlite_path, "PRAGMA foreign_key_check") == []


@pytest.mark.sqlite_only
def test_close_closes_every_threads_connection(store: Any) -> None:
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


def _not_a_database(tmp_path: Path) -> str:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    return str(path)


@pytest.mark.sqlite_only
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


@pytest.mark.sqlite_only
def test_read_only_file_through_uri_is_unavailable(sqlite_path: str) -> None:
    # Works as root too: SQLite itself refuses to write through a read-only open, and the
    # store finds out at construction although no migration is pending.
    SQLiteStore(sqlite_path).close()
    with pytest.raises(StoreUnavailableError, match="readonly"):
        SQLiteStore(f"file:{sqlite_path}?mode=ro")


@pytest.mark.sqlite_only
def test_disk_full_is_unavailable(store: Any) -> None:
    _add_user(store)
    # Cap the file at its current size: the next page allocation fails like a full disk.
    connection = store._connection()
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")

    def fill() -> None:
        for i in range(1000):
            store.take_attempt(
                kind="login",
                subject="x" * 500,
                address=f"10.0.0.{i}",
                now=NOW,
                since=0,
                limits=AttemptLimits(),
            )

    with pytest.raises(StoreUnavailableError, match="full") as info:
        fill()
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert store.get_user_by_key("alice") is not None


@pytest.mark.sqlite_only
def test_purge_works_in_batches(store: Any, sqlite_path: str) -> None:
    user = _add_user(store)
    total = 2 * PURGE_BATCH + 7
    for i in range(total):
        store.add_refresh_token(_token(user, f"t{i}", expires_at=int(NOW) - 1))
    traced: list[str] = []
    store._connection().set_trace_callback(traced.append)
    try:
        assert store.purge_expired(tokens_before=NOW, attempts_before={}) == total
    finally:
        store._connection().set_trace_callback(None)
    commits = [sql for sql in traced if sql == "COMMIT"]
    assert len(commits) >= 3  # one short transaction per batch, never one long lock
    assert _query(sqlite_path, "SELECT count(*) FROM refresh_tokens") == [(0,)]


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("condition", "params", "index"),
    [
        ("subject = ? AND address = ?", ("s", "a"), "attempts_pair"),
        ("subject = ?", ("s",), "attempts_subject"),
        ("address = ?", ("a",), "attempts_address"),
    ],
    ids=["pair", "subject", "address"],
)
def test_throttle_queries_use_indexes(
    store: Any, condition: str, params: tuple[str, ...], index: str
) -> None:
    plan = store._connection().execute(
        "EXPLAIN QUERY PLAN SELECT count(*), min(at) FROM attempts"  # noqa: S608
        f" WHERE kind = ? AND {condition} AND at > ?",
        ("login", *params, 0),
    )
    assert index in " ".join(str(row) for row in plan.fetchall())


@pytest.mark.sqlite_only
def test_file_uri_database_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "uri.sqlite3"
    store = SQLiteStore(f"file:{path}?mode=rwc")
    try:
        _add_user(store)
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }
    finally:
        store.close()
