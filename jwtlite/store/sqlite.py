"""The SQLite store: users, sessions, refresh-token records and attempt counters.

The embedded default backend of :class:`~jwtlite.store.base.Store`. Every statement is
parametrised. Each thread gets its own connection (SQLite connections must not be shared
across threads mid-statement); all of them are tracked so :meth:`SQLiteStore.close` closes
every one. Connections run in autocommit mode; changes that must be atomic and depend on what
is read run inside ``BEGIN IMMEDIATE``, which takes the write lock up front so concurrent
writers queue on ``busy_timeout`` instead of failing mid-transaction.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL``. WAL lets readers proceed while a
writer commits; FULL (not NORMAL) syncs the WAL on every commit, so a refresh token spent or a
user created and acknowledged to a client survives a power cut. The cost is one fsync per write
transaction, small next to an Argon2id hash.

Every :class:`sqlite3.DatabaseError` that escapes a public method becomes
:class:`~jwtlite.store.errors.StoreUnavailableError`, chained with ``from``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import astuple
from typing import Any

from jwtlite.store import _sqlite_sql as sql
from jwtlite.store._common import ENDABLE, apply_password_change, translating, user_from_row
from jwtlite.store._sqlite_file import create_private, immediate, migrate, open_connection
from jwtlite.store._sqlite_sql import SCHEMA_VERSION
from jwtlite.store.base import (
    LOGIN_ATTEMPT,
    LOGIN_SUCCESS,
    PURGE_BATCH,
    AttemptLimits,
    RefreshRecord,
    Session,
    User,
    purge_in_batches,
)
from jwtlite.store.errors import StoreUnavailableError

__all__ = ["PURGE_BATCH", "SCHEMA_VERSION", "SQLiteStore"]


_translating_errors = translating(
    sqlite3.DatabaseError, lambda _store, error: f"the user store is unavailable: {error}"
)


def _user(row: tuple[Any, ...] | None) -> User | None:
    return None if row is None else user_from_row(row)


class SQLiteStore:
    """The SQLite backend of :class:`~jwtlite.store.base.Store`, safe to share between threads.

    Each method keeps the contract the protocol documents; a docstring here says only what
    this backend adds (how it makes the change atomic).

    Args:
        path: the database file, created if absent (its directory must exist), or an
            SQLite ``file:`` URI.
        busy_timeout_ms: how long a statement waits for another writer's lock.

    Raises:
        StoreUnavailableError: the file cannot be opened, written or migrated (missing
            directory, read-only, disk full, not a database, newer schema).
    """

    @_translating_errors
    def __init__(self, path: str, *, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        create_private(path)
        try:
            migrate(self._connection())
        except BaseException:
            self.close()
            raise

    # -- connections and schema -------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        if self._closed:
            raise StoreUnavailableError("the user store is closed")
        # Opened outside the lock: setting WAL may wait on busy_timeout, and other threads
        # must not queue behind that.
        connection = open_connection(self._path, self._busy_timeout_ms)
        with self._lock:
            if self._closed:
                connection.close()
                raise StoreUnavailableError("the user store is closed")
            self._connections.append(connection)
        self._local.connection = connection
        return connection

    def close(self) -> None:
        """Close every connection opened by any thread; the store is unusable afterwards."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def _one(self, sql: str, *params: object) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._connection().execute(sql, params).fetchone()
        return row

    @_translating_errors
    def ping(self) -> None:
        self._connection().execute(sql.PING).fetchone()

    @_translating_errors
    def schema_version(self) -> int:
        """The schema version recorded in the file (``PRAGMA user_version``)."""
        return int(self._connection().execute(sql.USER_VERSION).fetchone()[0])

    # -- users ------------------------------------------------------------------------------

    @_translating_errors
    def create_user(
        self,
        *,
        username: str,
        username_key: str,
        username_skeleton: str,
        email: str,
        password_hash: str,
        now: float,
    ) -> User | None:
        """Insert a user; return it, or None when its key or skeleton is already taken.

        One INSERT against the UNIQUE constraints on ``username_key`` and
        ``username_skeleton``, so concurrent registrations of one name or of two look-alikes
        (threads or processes) produce exactly one row.
        """
        try:
            cursor = self._connection().execute(
                sql.CREATE_USER,
                (username, username_key, username_skeleton, email, password_hash, now),
            )
        except sqlite3.IntegrityError:
            return None
        user_id = cursor.lastrowid
        assert user_id is not None  # noqa: S101 - an INSERT always sets it
        return User(user_id, username, email, password_hash, True, now, None)

    @_translating_errors
    def get_user(self, user_id: int) -> User | None:
        return _user(self._one(sql.USER_BY_ID, user_id))

    @_translating_errors
    def get_user_by_key(self, username_key: str) -> User | None:
        return _user(self._one(sql.USER_BY_KEY, username_key))

    @_translating_errors
    def username_taken(self, username_key: str, username_skeleton: str) -> bool:
        return self._one(sql.USERNAME_TAKEN, username_key, username_skeleton) is not None

    @_translating_errors
    def set_active(self, username_key: str, active: bool) -> bool:
        cursor = self._connection().execute(sql.SET_ACTIVE, (int(active), username_key))
        return cursor.rowcount == 1

    @_translating_errors
    def delete_user(self, user_id: int, *, verified_hash: str | None = None) -> bool:
        if verified_hash is None:
            return self._connection().execute(sql.DELETE_USER, (user_id,)).rowcount == 1
        guarded = (user_id, verified_hash)
        return self._connection().execute(sql.DELETE_USER_IF_VERIFIED, guarded).rowcount == 1

    # -- refresh tokens ---------------------------------------------------------------------

    @_translating_errors
    def add_refresh_token(self, record: RefreshRecord) -> None:
        self._connection().execute(sql.TOKEN_INSERT, astuple(record))

    @_translating_errors
    def get_refresh_token(self, jti: str) -> RefreshRecord | None:
        row = self._one(sql.TOKEN_BY_JTI, jti)
        return None if row is None else RefreshRecord(*row)

    @_translating_errors
    def start_session(
        self,
        user_id: int,
        *,
        verified_hash: str,
        subject: str,
        address: str,
        now: float,
        refresh: RefreshRecord,
        session: Session,
        password_hash: str | None = None,
    ) -> bool:
        """One transaction (one disk sync): the user's row first, the rest only if it admits it."""
        with immediate(self._connection()) as connection:
            logged_in = connection.execute(
                sql.LOGGED_IN, (now, password_hash, user_id, verified_hash)
            )
            if logged_in.rowcount != 1:
                return False  # nothing written: the transaction commits empty
            connection.execute(
                sql.FORGET_LOGINS,
                (LOGIN_ATTEMPT, LOGIN_SUCCESS, subject, address),
            )
            connection.execute(
                sql.ADD_ATTEMPT,
                (LOGIN_SUCCESS, subject, address, now),
            )
            connection.execute(sql.SESSION_INSERT, astuple(session))
            connection.execute(sql.TOKEN_INSERT, astuple(refresh))
        return True

    @_translating_errors
    def get_refresh_token_and_user(
        self, jti: str
    ) -> tuple[RefreshRecord, User, Session | None] | None:
        """The record of refresh token ``jti``, its user and its session, in one indexed lookup.

        None when there is no such token (a deleted user's tokens are deleted with the
        user)."""
        row = self._one(sql.TOKEN_USER_SESSION_BY_JTI, jti)
        if row is None:
            return None
        session = None if row[15] is None else Session(*row[15:])
        return RefreshRecord(*row[:8]), user_from_row(row[8:15]), session

    @_translating_errors
    def rotate_refresh_token(
        self,
        old_jti: str,
        new: RefreshRecord,
        *,
        now: float | None = None,
        user_agent: str | None = None,
        address: str | None = None,
    ) -> bool:
        """Spend ``old_jti`` and record ``new``, atomically.

        The spend is noted on the old record (``spent_at``, ``successor``) and the use on the
        session ``new.family``.

        Returns:
            True when the old token was active (it is now spent and ``new`` is stored);
            False, with nothing changed, when it was missing, spent or blacklisted. Of any
            number of concurrent rotations of one token, exactly one returns True.
        """
        at = new.issued_at if now is None else now
        connection = self._connection()
        with immediate(connection):
            cursor = connection.execute(
                sql.SPEND_TOKEN,
                (at, new.jti, old_jti),
            )
            if cursor.rowcount != 1:
                return False
            connection.execute(sql.TOKEN_INSERT, astuple(new))
            connection.execute(
                sql.EXTEND_SESSION,
                (at, new.expires_at, user_agent, address, new.family),
            )
        return True

    @_translating_errors
    def revoke_family(self, family: str) -> int:
        """Reuse detected: blacklist every token of ``family`` and revoke its session.

        One transaction; returns how many tokens were not blacklisted yet."""
        with immediate(self._connection()) as connection:
            count = connection.execute(
                sql.BLACKLIST_FAMILY,
                (family,),
            ).rowcount
            connection.execute(
                sql.REVOKE_SESSION,
                (family,),
            )
        return count

    @_translating_errors
    def blacklist_refresh_token(self, jti: str) -> bool:
        cursor = self._connection().execute(sql.BLACKLIST_TOKEN, (jti,))
        return cursor.rowcount == 1

    # -- sessions ---------------------------------------------------------------------------

    @_translating_errors
    def touch_session(self, session_id: str, *, now: float, user_agent: str, address: str) -> None:
        """Set an active session's ``last_used_at``, ``user_agent`` and ``address``."""
        self._connection().execute(
            sql.TOUCH_SESSION,
            (now, user_agent, address, session_id),
        )

    @_translating_errors
    def list_sessions(self, user_id: int, *, now: float) -> list[Session]:
        """The user's active, unexpired sessions, newest first (the (user_id, state) index)."""
        rows = self._connection().execute(
            sql.LIST_SESSIONS,
            (user_id, now),
        )
        return [Session(*row) for row in rows]

    @_translating_errors
    def end_session(self, user_id: int, session_id: str, state: str) -> bool:
        """End one session of ``user_id`` and blacklist its refresh tokens, in one transaction.

        ``state`` is "ended" or "revoked". False, changing nothing, when the session is
        unknown, another user's, or already in a state the ending does not change."""
        allowed = ENDABLE[state]
        with immediate(self._connection()) as connection:
            changed = connection.execute(
                sql.END_SESSION,
                (state, session_id, user_id, allowed[0], allowed[-1]),
            ).rowcount
            if changed != 1:
                return False
            connection.execute(
                sql.BLACKLIST_FAMILY,
                (session_id,),
            )
        return True

    @_translating_errors
    def end_user_sessions(self, user_id: int, state: str = "revoked") -> int:
        """End every session of ``user_id``; return how many sessions changed.

        All their refresh tokens are blacklisted in the same transaction."""
        with immediate(self._connection()) as connection:
            return _end_user_sessions(connection, user_id, state)

    @_translating_errors
    def session_state(self, user_id: int, session_id: str) -> tuple[bool, str | None] | None:
        """``(user is active, session state or None)``, or None when there is no such user.

        One read by two primary keys."""
        row = self._one(
            sql.SESSION_STATE,
            session_id,
            user_id,
        )
        return None if row is None else (bool(row[0]), row[1])

    @_translating_errors
    def change_password(
        self,
        user_id: int,
        *,
        password_hash: str,
        session: Session | None = None,
        refresh: RefreshRecord | None = None,
        subject: str | None = None,
        address: str | None = None,
        verified_hash: str | None = None,
    ) -> int | None:
        with immediate(self._connection()) as connection:
            return apply_password_change(
                connection,
                sql,
                _end_user_sessions,
                user_id,
                password_hash=password_hash,
                session=session,
                refresh=refresh,
                subject=subject,
                address=address,
                verified_hash=verified_hash,
            )

    @_translating_errors
    def purge_expired(
        self,
        *,
        tokens_before: float,
        attempts_before: Mapping[str, float],
        sessions_before: float | None = None,
    ) -> int:
        """Delete expired tokens, sessions and attempts, in batches of :data:`PURGE_BATCH` rows.

        Refresh tokens with ``expires_at <= tokens_before``, sessions with
        ``expires_at <= sessions_before`` (``tokens_before`` when None) and attempts of each
        kind with ``at <= attempts_before[kind]``; one batch a transaction.

        The caller chooses the cut-offs: a token must outlive every check that could still
        accept it (its expiry plus the leeway), or a spent token would lose the record that
        lets its reuse revoke the family.

        Returns:
            The number of rows deleted.
        """
        connection = self._connection()
        sessions_cut = tokens_before if sessions_before is None else sessions_before
        work: list[tuple[str, tuple[object, ...]]] = [
            (sql.PURGE_TOKENS, (tokens_before,)),
            (sql.PURGE_SESSIONS, (sessions_cut,)),
        ]
        work += [(sql.PURGE_ATTEMPTS, (kind, at)) for kind, at in attempts_before.items()]

        def delete(statement: str, params: tuple[object, ...]) -> int:
            with immediate(connection):
                return connection.execute(statement, params).rowcount

        return purge_in_batches(work, delete)

    # -- throttling -------------------------------------------------------------------------

    @_translating_errors
    def take_attempt(
        self,
        *,
        kind: str,
        subject: str,
        address: str,
        now: float,
        since: float,
        limits: AttemptLimits,
    ) -> float | None:
        """Count one attempt unless a limit is already reached, atomically.

        Counts the attempts of ``kind`` made after ``since``: of this subject from this
        address, of this subject, and from this address. When none of those counts has
        reached its limit, records the attempt and returns None; otherwise records nothing
        and returns the time of the oldest attempt in a full bucket (the caller's wait
        is until it ages out). One ``BEGIN IMMEDIATE`` transaction, so of any number of
        concurrent attempts (threads or processes) exactly as many as the limit allows get
        through.
        """
        connection = self._connection()
        with immediate(connection):
            blocked = _full_bucket(
                connection,
                kind=kind,
                subject=subject,
                address=address,
                since=since,
                limits=limits,
            )
            if blocked is None:
                connection.execute(
                    sql.ADD_ATTEMPT,
                    (kind, subject, address, now),
                )
        return blocked

    @_translating_errors
    def return_attempt(self, *, kind: str, subject: str, address: str, at: float) -> None:
        with immediate(self._connection()) as connection:
            connection.execute(sql.RETURN_ATTEMPT, (kind, subject, address, at))


def _end_user_sessions(connection: sqlite3.Connection, user_id: int, state: str) -> int:
    """Inside a transaction: move the user's sessions to ``state``, blacklist their tokens."""
    allowed = ENDABLE[state]
    count = connection.execute(
        sql.END_USER_SESSIONS,
        (state, user_id, allowed[0], allowed[-1]),
    ).rowcount
    connection.execute(
        sql.BLACKLIST_USER,
        (user_id,),
    )
    return count


def _full_bucket(
    connection: sqlite3.Connection,
    *,
    kind: str,
    subject: str,
    address: str,
    since: float,
    limits: AttemptLimits,
) -> float | None:
    """The oldest attempt time of the first bucket at its limit, or None."""
    per_subject = limits.per_subject
    if per_subject is not None and _trusted(connection, subject, address, limits):
        per_subject = None
    buckets = (
        (limits.per_pair, sql.BY_PAIR, (subject, address)),
        (per_subject, sql.BY_SUBJECT, (subject,)),
        (limits.per_address, sql.BY_ADDRESS, (address,)),
    )
    oldest: float | None = None
    for limit, condition, params in buckets:
        if limit is None:
            continue
        count, first = connection.execute(
            sql.count_attempts(condition), (kind, *params, since)
        ).fetchone()
        if count >= limit and first is not None:
            oldest = first if oldest is None else max(oldest, first)
    return oldest


def _trusted(
    connection: sqlite3.Connection, subject: str, address: str, limits: AttemptLimits
) -> bool:
    if limits.trusted_since is None:
        return False
    row = connection.execute(
        sql.PAIR_SUCCEEDED,
        (LOGIN_SUCCESS, subject, address, limits.trusted_since),
    ).fetchone()
    return row is not None
