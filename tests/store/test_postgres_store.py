"""What only the PostgreSQL store has: its migrations table and advisory lock, its indexes
under a real plan, its pool and timeouts, its recovery after the server drops it, and a URL
password that never shows. The contract both backends share is ``test_store.py``.

Against a real server (``support.postgres``); faults are made by terminating this run's own
backends, by holding a lock, or through a TCP proxy that can be cut, never by stopping the
server.
"""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from jwtlite.service.settings import Settings
from jwtlite.store import (
    AttemptLimits,
    RefreshRecord,
    Session,
    masked_url,
    open_store,
    postgres,
)
from jwtlite.store import _postgres_sql as sql
from jwtlite.store import base as store_base
from jwtlite.store.errors import StoreUnavailableError
from jwtlite.store.postgres import SCHEMA_VERSION, PostgresStore

from support import postgres as support_postgres
from support.postgres import Proxy

pytestmark = pytest.mark.postgres

NOW = 1_700_000_000.0
PASSWORD = "pg-Secret-pa55word"


@pytest.fixture
def fresh_database(postgres_admin: str) -> Iterator[str]:
    """A database of its own for this test, never migrated; dropped afterwards."""
    name, url = support_postgres.create_database(postgres_admin)
    yield url
    support_postgres.drop_database(postgres_admin, name)


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_url, pool_size=4)
    yield opened
    opened.close()


def _add_user(store: Any, name: str = "alice") -> int:
    user = store.create_user(
        username=name,
        username_key=name,
        username_skeleton=name,
        email="",
        password_hash="h",
        now=NOW,
    )
    assert user is not None
    return int(user.id)


def _with_password(url: str, password: str = PASSWORD) -> str:
    """``url`` carrying ``password`` in its user part (trust auth ignores it)."""
    head, rest = url.split("://", 1)
    user_and_host = rest.split("@", 1)
    user, host = user_and_host if len(user_and_host) == 2 else ("postgres", rest)
    return f"{head}://{user.split(':')[0]}:{password}@{host}"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- migrations -------------------------------------------------------------------------------


def test_a_fresh_database_is_migrated_and_the_version_recorded(fresh_database: str) -> None:
    store = open_store(fresh_database)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 2
    finally:
        store.close()
    recorded = support_postgres.rows(
        fresh_database, "SELECT version, applied_at IS NOT NULL FROM jwtlite_migrations"
    )
    assert recorded == [(1, True), (2, True)]
    tables = support_postgres.rows(
        fresh_database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    )
    assert {row[0] for row in tables} == {"jwtlite_migrations", *sql.TABLES}
    indexes = {
        row[0]
        for row in support_postgres.rows(
            fresh_database, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
        )
    }
    assert {
        "users_username_key",
        "users_username_skeleton",
        "refresh_tokens_family",
        "refresh_tokens_expires_at",
        "refresh_tokens_user_id",
        "attempts_pair",
        "attempts_subject",
        "attempts_address",
        "attempts_at",
    } <= indexes


OPEN_AT = """
import sys, time
from jwtlite.store import open_store
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
store = open_store(sys.argv[1], pool_size=1)
print(store.schema_version())
store.close()
"""


def test_ten_instances_starting_together_migrate_once(fresh_database: str) -> None:
    """Each would fail on "relation already exists" (and the version's primary key) if it
    migrated a second time; the advisory lock makes the nine others find the work done."""
    start_at = time.time() + 2  # every process started and waiting by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, fresh_database, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(10)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0] * 10, outputs
    assert [out.strip() for out, _ in outputs] == [str(SCHEMA_VERSION)] * 10
    assert support_postgres.rows(fresh_database, "SELECT version FROM jwtlite_migrations") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)
    ]


def test_version_one_families_become_sessions(fresh_database: str) -> None:
    """Migration 2 (SQLite's 3): each existing family becomes a session named by the first
    half of its id, active while one of its tokens is; the tokens follow the new name."""
    import psycopg

    with psycopg.connect(fresh_database, autocommit=True) as connection:
        connection.execute(sql.CREATE_MIGRATIONS_TABLE)
        for statement in sql.MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute(sql.RECORD_MIGRATION, (1,))
        connection.execute(
            "INSERT INTO users (username, username_key, password_hash, date_joined)"
            " VALUES ('alice', 'alice', 'h', 1)"
        )
        rows = [
            ("1" * 32, "1" * 32, 10, 40, "spent"),
            ("2" * 32, "1" * 32, 20, 50, "active"),
            ("3" * 32, "3" * 32, 10, 40, "blacklisted"),
        ]
        for row in rows:
            connection.execute(
                "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at, state)"
                " VALUES (%s, 1, %s, %s, %s, %s)",
                row,
            )
    store = open_store(fresh_database)
    try:
        assert store.schema_version() == 2
        found = store.get_refresh_token_and_user("2" * 32)
        assert found is not None
        assert found[0].family == "1" * 16
        assert (found[0].spent_at, found[0].successor) == (None, None)
        assert found[2] == Session("1" * 16, 1, 10, 20, 50, "", "", "active")
        assert store.session_state(1, "3" * 16) == (True, "ended")
    finally:
        store.close()


def test_a_newer_schema_is_refused(fresh_database: str) -> None:
    open_store(fresh_database).close()
    support_postgres.rows(
        fresh_database, "INSERT INTO jwtlite_migrations (version) VALUES (99) RETURNING version"
    )
    with pytest.raises(
        StoreUnavailableError, match=f"version 99, newer than the {SCHEMA_VERSION}"
    ) as info:
        open_store(fresh_database)
    assert "\n" not in str(info.value)


def test_a_failed_migration_changes_nothing(
    fresh_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All pending migrations run in one transaction: a failing step leaves no half schema."""
    broken = (*sql.MIGRATIONS, ("CREATE TABLE half_done (x integer)", "SELECT 1 / 0"))
    monkeypatch.setattr(sql, "MIGRATIONS", broken)
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", len(broken))
    with pytest.raises(StoreUnavailableError, match="division by zero"):
        open_store(fresh_database)
    tables = support_postgres.rows(
        fresh_database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    )
    assert tables == []


def test_migrate_command_reports_the_version(fresh_database: str) -> None:
    from jwtlite.cli import main

    environ = {"JWTLITE_DATABASE": _with_password(fresh_database), "JWTLITE_SECRET_KEY": "k" * 32}
    assert main(["migrate"], environ) == 0
    assert support_postgres.rows(fresh_database, "SELECT version FROM jwtlite_migrations") == [
        (1,),
        (2,),
    ]


# -- the plan of every request-path statement uses an index -----------------------------------

ROWS = 10_000


def _fill(url: str) -> None:
    """ROWS users, 2 * ROWS sessions and refresh tokens and ROWS attempts, then ANALYZE."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        with connection.cursor().copy(
            "COPY users (username, username_key, username_skeleton, password_hash, date_joined)"
            " FROM STDIN"
        ) as copy:
            for i in range(ROWS):
                copy.write_row((f"u{i}", f"u{i}", f"u{i}", "h", NOW))
        with connection.cursor().copy(
            "COPY refresh_tokens (jti, user_id, family, issued_at, expires_at, state) FROM STDIN"
        ) as copy:
            for i in range(2 * ROWS):
                jti = f"{i:032x}"
                copy.write_row(
                    (jti, i % ROWS + 1, f"{i:016x}", int(NOW), int(NOW) + 3600, "active")
                )
        with connection.cursor().copy(
            "COPY sessions (id, user_id, created_at, last_used_at, expires_at, state) FROM STDIN"
        ) as copy:
            for i in range(2 * ROWS):
                row = (f"{i:016x}", i % ROWS + 1, NOW, NOW, int(NOW) + 3600, "active")
                copy.write_row(row)
        with connection.cursor().copy(
            "COPY attempts (kind, subject, address, at) FROM STDIN"
        ) as copy:
            for i in range(ROWS):
                copy.write_row(("login", f"s{i % 997}", f"10.0.{i % 251}.1", NOW + i))
        connection.execute("ANALYZE")


PLANS: dict[str, tuple[str, tuple[Any, ...] | dict[str, Any]]] = {
    "user-by-id": (sql.USER_BY_ID, (7,)),
    "user-by-key": (sql.USER_BY_KEY, ("u7",)),
    "token": (sql.TOKEN_BY_JTI, (f"{7:032x}",)),
    "token-user-session": (sql.TOKEN_USER_SESSION_BY_JTI, (f"{7:032x}",)),
    "register": (
        sql.CREATE_USER,
        {"username": "n", "key": "n", "skeleton": "n", "email": "", "hash": "h", "now": NOW},
    ),
    "lock-session": (sql.LOCK_SESSION, (f"{7:016x}",)),
    "rotate": (
        sql.ROTATE,
        {
            "old": f"{7:032x}",
            "at": NOW,
            "agent": None,
            "address": None,
            "jti": "n" * 32,
            "token_user": 8,
            "family": f"{7:016x}",
            "issued_at": 1,
            "expires_at": 2,
            "state": "active",
            "spent_at": None,
            "successor": None,
        },
    ),
    "login": (
        sql.START_SESSION,
        {
            "attempt": "login",
            "success": "login-ok",
            "subject": "s1",
            "address": "10.0.1.1",
            "now": NOW,
            "hash": None,
            "verified": "h8",
            "user_id": 8,
            "s_id": "n" * 16,
            "s_user": 8,
            "s_created": NOW,
            "s_used": NOW,
            "s_expires": 2,
            "s_agent": "",
            "s_address": "",
            "s_state": "active",
            "jti": "n" * 32,
            "token_user": 8,
            "family": "n" * 16,
            "issued_at": 1,
            "expires_at": 2,
            "state": "active",
            "spent_at": None,
            "successor": None,
        },
    ),
    "revoke-family": (sql.BLACKLIST_FAMILY, ("f",)),
    "revoke-session": (sql.REVOKE_SESSION, ("f",)),
    "end-session": (
        sql.END_SESSION,
        {"state": "ended", "id": "f", "user_id": 7, "allowed": ["active"]},
    ),
    "end-user-sessions": (sql.END_USER_SESSIONS, ("revoked", 7, ["active", "ended"])),
    "blacklist-user": (sql.BLACKLIST_USER, (7,)),
    "touch-session": (sql.TOUCH_SESSION, (NOW, "agent", "10.0.1.1", "f")),
    "list-sessions": (sql.LIST_SESSIONS, (7, NOW)),
    "session-state": (sql.SESSION_STATE, ("f", 7)),
    "purge-sessions": (sql.PURGE_SESSIONS, (int(NOW), 500)),
    "purge-tokens": (sql.PURGE_TOKENS, (int(NOW), 500)),
    "purge-attempts": (sql.PURGE_ATTEMPTS, ("login", NOW + 10, 500)),
    "delete-user": ("DELETE FROM users WHERE id = %s", (7,)),
}


@pytest.fixture(scope="module")
def filled(postgres_server: support_postgres.Janitor) -> Iterator[str]:
    postgres_server.empty()
    open_store(postgres_server.url).close()
    _fill(postgres_server.url)
    yield postgres_server.url
    postgres_server.empty()


def _plan(url: str, statement: str, params: Any) -> str:
    return "\n".join(row[0] for row in support_postgres.rows(url, "EXPLAIN " + statement, params))


@pytest.mark.parametrize("name", list(PLANS), ids=list(PLANS))
def test_request_path_statements_use_an_index(filled: str, name: str) -> None:
    statement, params = PLANS[name]
    plan = _plan(filled, statement, params)
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize(
    "limits",
    [
        AttemptLimits(per_pair=5, per_subject=100, per_address=100),
        AttemptLimits(per_pair=5, per_subject=100, per_address=100, trusted_since=NOW - 60),
        AttemptLimits(per_address=50),
    ],
    ids=["login", "login-trusted", "register"],
)
def test_throttle_counts_use_an_index(filled: str, limits: AttemptLimits) -> None:
    statement, values = sql.take_attempt(
        kind="login", subject="s1", address="10.0.1.1", now=NOW, since=NOW, limits=limits
    )
    plan = _plan(filled, statement, values)
    assert "Seq Scan" not in plan, plan


# -- the password of the URL never shows -------------------------------------------------------


def _url_forms(url: str, port: int) -> dict[str, str]:
    base = support_postgres.through(url, port)
    head, rest = base.split("://", 1)
    host_and_db = rest.rpartition("@")[2]
    return {
        "user-part": f"{head}://postgres:{PASSWORD}@{host_and_db}",
        "percent-encoded": f"{head}://postgres:{PASSWORD.replace('-', '%2D')}@{host_and_db}",
        "query": f"{head}://postgres@{host_and_db}?password={PASSWORD}",
        "bad-percent": f"{head}://postgres:%zz{PASSWORD}@{host_and_db}",
        "bad-option": f"{head}://postgres:{PASSWORD}@{host_and_db}?no_such_option={PASSWORD}",
    }


@pytest.mark.parametrize(
    "form", ["user-part", "percent-encoded", "query", "bad-percent", "bad-option"]
)
def test_an_unreachable_database_never_shows_the_password(
    postgres_admin: str, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = _url_forms(postgres_admin, _closed_port())[form]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreUnavailableError) as info:
        open_store(url, connect_timeout=1)
    message = str(info.value)
    assert message.startswith("the user store is unavailable: ")
    assert PASSWORD not in message
    assert "%zz" not in message
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)
    if form != "bad-option":  # there the password is in no password field: nothing to mask
        assert PASSWORD not in masked_url(url)
        assert PASSWORD not in repr(Settings(database=url, secret_key="k" * 32))


def test_a_refused_connection_says_why(postgres_admin: str) -> None:
    url = support_postgres.through(postgres_admin, _closed_port())
    with pytest.raises(StoreUnavailableError, match="refused"):
        open_store(_with_password(url), connect_timeout=1)


def test_a_server_that_never_answers_is_given_up_after_the_connect_timeout(
    postgres_admin: str,
) -> None:
    with socket.socket() as silent:  # accepts TCP (the kernel does), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = support_postgres.through(postgres_admin, silent.getsockname()[1])
        began = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            open_store(_with_password(url), connect_timeout=1)
        assert time.monotonic() - began < 4


def test_the_log_never_shows_the_password(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Through an outage the pool logs its failed reconnections: scrubbed."""
    with Proxy(postgres_url) as proxy:
        url = _with_password(support_postgres.through(postgres_url, proxy.port))
        store = open_store(url, connect_timeout=1)
        try:
            caplog.set_level(logging.DEBUG)
            proxy.stop()
            with pytest.raises(StoreUnavailableError) as info:
                store.ping()
            assert PASSWORD not in str(info.value)
        finally:
            store.close()
    assert caplog.records  # the pool did complain
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)


# -- pool and timeouts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool_size", "threads", "expected"),
    [(0, 6, 6), (0, 48, 16), (0, None, 8), (2, 6, 2), (40, 48, 40)],
    ids=["threads", "threads-capped", "default", "setting-overrides", "setting-beyond-cap"],
)
def test_the_pool_is_sized_from_the_threads_or_the_setting(
    postgres_url: str, pool_size: int, threads: int | None, expected: int
) -> None:
    settings = Settings(database=postgres_url, secret_key="k" * 32, database_pool_size=pool_size)
    store = settings.open_store(threads=threads)
    try:
        assert isinstance(store, PostgresStore)
        assert store._db._pool is not None
        assert store._db._pool.max_size == expected
    finally:
        store.close()


def test_the_pool_never_holds_more_connections_than_its_size(postgres_url: str) -> None:
    store = open_store(postgres_url, pool_size=3)
    seen: list[int] = []
    done = threading.Event()

    def hammer(_: int) -> None:
        while not done.is_set():
            store.ping()

    try:
        with ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(hammer, i) for i in range(20)]
            for _ in range(10):
                time.sleep(0.1)
                seen.append(support_postgres.sessions(postgres_url))
            done.set()
            for future in futures:
                future.result(30)
    finally:
        store.close()
    assert 1 <= max(seen) <= 3, seen


def test_a_statement_waiting_on_a_lock_ends_at_the_statement_timeout(
    store: PostgresStore, postgres_url: str
) -> None:
    import psycopg

    _add_user(store)
    timed = PostgresStore(postgres_url, pool_size=1, statement_timeout=1)
    try:
        with psycopg.connect(postgres_url) as holder:
            holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            began = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="statement timeout"):
                timed.get_user(1)
            assert 0.9 < time.monotonic() - began < 5
            holder.rollback()
        assert timed.get_user(1) is not None  # the same store, once the lock is gone
    finally:
        timed.close()


def test_waiting_for_a_pooled_connection_ends_at_the_connect_timeout(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, pool_size=1, connect_timeout=1)
    try:
        with store._db.connection():  # the only connection, held
            began = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="connection"):
                store.ping()
            assert time.monotonic() - began < 3
        store.ping()
    finally:
        store.close()


# -- recovery: the server drops us, the same store carries on ---------------------------------


def test_the_store_recovers_by_itself_when_its_backends_are_terminated(
    store: PostgresStore, postgres_admin: str, postgres_url: str
) -> None:
    """What a server restart does to the clients: every connection dies at once."""
    _add_user(store)
    with ThreadPoolExecutor(4) as pool:  # fill the pool with several connections
        list(pool.map(lambda _: store.ping(), range(16)))
    ended = support_postgres.terminate_backends(
        postgres_admin, support_postgres.database_name(postgres_url)
    )
    assert ended >= 1
    began = time.monotonic()
    assert store.get_user(1) is not None  # the pool's check found a dead one and replaced it
    assert time.monotonic() - began < 5
    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(lambda _: store.get_user(1) is not None, range(16)))


def _outcomes(store: Any, seconds: float, *, enough_ok: int = 0) -> list[tuple[str, float]]:
    """Call ``store.get_user(1)`` in a loop for ``seconds`` (or until ``enough_ok`` answers
    in a row): each result ("ok", or the error's message) and its duration."""
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if enough_ok and len(seen) >= enough_ok and {o for o, _ in seen[-enough_ok:]} == {"ok"}:
            break
        began = time.monotonic()
        try:
            store.get_user(1)
            outcome = "ok"
        except StoreUnavailableError as error:
            outcome = str(error)
        seen.append((outcome, time.monotonic() - began))
    return seen


def test_an_outage_is_unavailable_bounded_in_time_and_the_same_store_recovers(
    postgres_url: str,
) -> None:
    with Proxy(postgres_url) as proxy:
        url = _with_password(support_postgres.through(postgres_url, proxy.port))
        store = open_store(url, connect_timeout=1, statement_timeout=2)
        try:
            _add_user(store)
            assert {outcome for outcome, _ in _outcomes(store, 0.3)} == {"ok"}
            proxy.stop()  # the server is gone: connections reset, connects refused
            during = _outcomes(store, 3)
            proxy.start()
            after = _outcomes(store, 10, enough_ok=20)
        finally:
            store.close()
    assert all(outcome.startswith("the user store is unavailable") for outcome, _ in during)
    assert not any(PASSWORD in outcome for outcome, _ in during + after)
    assert max(took for _, took in during) < 3  # bounded by the timeouts, never a hang
    assert after[-1][0] == "ok"
    recovered = next(i for i, (outcome, _) in enumerate(after) if outcome == "ok")
    assert {outcome for outcome, _ in after[recovered:]} == {"ok"}


# -- writes and throttling ---------------------------------------------------------------------


def test_purging_works_in_batches(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    user = _add_user(store)
    monkeypatch.setattr(store_base, "PURGE_BATCH", 50)
    for i in range(2 * 50 + 7):
        store.add_refresh_token(RefreshRecord(f"t{i}", user, "f", 1, int(NOW) - 1, "active"))
    statements: list[str] = []
    rowcount = store._db.rowcount

    def counting(statement: str, params: Any) -> int:
        statements.append(statement)
        return rowcount(statement, params)

    monkeypatch.setattr(store._db, "rowcount", counting)
    assert store.purge_expired(tokens_before=NOW, attempts_before={}) == 107
    # 50 + 50 + 7: each batch one statement, its own transaction (then one for the sessions).
    assert statements.count(sql.PURGE_TOKENS) == 3
    assert statements == [sql.PURGE_TOKENS] * 3 + [sql.PURGE_SESSIONS]


def test_concurrent_attempts_on_crossing_buckets_never_deadlock_nor_overfill(
    store: PostgresStore, postgres_url: str
) -> None:
    """Subjects and addresses crossed, all three limits on: the bucket locks are taken in a
    fixed order (no deadlock) and no bucket ever holds more than its limit."""
    limits = AttemptLimits(per_pair=2, per_subject=4, per_address=5)
    subjects, addresses = ["s1", "s2", "s3"], ["a1", "a2", "a3"]
    rng = random.Random(7)
    work = [(rng.choice(subjects), rng.choice(addresses)) for _ in range(90)]
    wide = PostgresStore(postgres_url, pool_size=16)
    try:
        with ThreadPoolExecutor(30) as pool:
            list(
                pool.map(
                    lambda pair: wide.take_attempt(
                        kind="login",
                        subject=pair[0],
                        address=pair[1],
                        now=NOW,
                        since=0,
                        limits=limits,
                    ),
                    work,
                )
            )
    finally:
        wide.close()

    def counts(group: str) -> list[int]:
        found = support_postgres.rows(
            postgres_url,
            f"SELECT count(*) FROM attempts GROUP BY {group}",  # noqa: S608 - fixed names
        )
        return [row[0] for row in found]

    assert max(counts("subject, address")) <= 2
    assert max(counts("subject")) <= 4
    assert max(counts("address")) <= 5


def test_rotation_locks_the_session_then_spends_and_inserts_in_one_statement(
    store: PostgresStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pipelined transaction: the session row's lock first (the order every session
    change keeps, so none deadlocks with a rotation), then one statement."""
    import psycopg

    user = _add_user(store)
    store.add_refresh_token(RefreshRecord("j1", user, "f", 1, 2_000_000_000, "active"))
    statements: list[str] = []
    execute = psycopg.Connection.execute

    def counting(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(statement)
        return execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counting)
    assert store.rotate_refresh_token("j1", RefreshRecord("j2", user, "f", 1, 2, "active"))
    assert statements == [sql.LOCK_SESSION, sql.ROTATE]
    assert support_postgres.rows(
        postgres_url, "SELECT jti, state, successor FROM refresh_tokens ORDER BY jti"
    ) == [("j1", "spent", "j2"), ("j2", "active", None)]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_no_username_is_stored_in_clear(
    make_client: Callable[..., Any], db_rows: Callable[..., list[tuple[Any, ...]]]
) -> None:
    from support import register

    client = make_client()
    register(client)
    typed = "my-secret-passw0rd-in-the-username-field"
    body = {"username": typed, "password": "whatever-1"}
    assert client.post_json("/accounts/token/", body, expect_errors=True).status_int == 401
    dumped = " ".join(str(row) for row in db_rows("SELECT a::text FROM attempts AS a"))
    assert dumped
    assert typed not in dumped
    assert "alice" not in dumped


def test_without_the_driver_the_url_is_refused_with_the_extra_to_install() -> None:
    import json

    code = (
        "import sys, json\n"
        "sys.modules['psycopg'] = None\n"
        "from jwtlite.store import open_store\n"
        "from jwtlite.store.errors import StoreUnavailableError\n"
        "try:\n"
        "    open_store('postgresql://u:secret@127.0.0.1:1/db')\n"
        "except StoreUnavailableError as e:\n"
        "    print(json.dumps(str(e)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    message = json.loads(result.stdout)
    assert "pip install 'jwtlite[postgres]'" in message
    assert "secret" not in message
