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

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import astuple
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from jwtlite.store import _sqlite_sql as sql
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

_P = ParamSpec("_P")
_WAL_RETRY_SECONDS = 0.005
_R = TypeVar("_R")

# Which states each ending may leave: logging out ends only an active session; a
# revocation also reaches an ended one, whose access tokens were still live.
_ENDABLE = {"ended": ("active",), "revoked": ("active", "ended")}


def _translating_errors(
    method: Callable[Concatenate[SQLiteStore, _P], _R],
) -> Callable[Concatenate[SQLiteStore, _P], _R]:
    """Turn any sqlite3 database error escaping ``method`` into StoreUnavailableError."""

    @functools.wraps(method)
    def wrapper(self: SQLiteStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as error:
            raise StoreUnavailableError(f"the user store is unavailable: {error}") from error

    return wrapper


@contextmanager
def _immediate(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: BEGIN IMMEDIATE, COMMIT on success, ROLLBACK on any error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (disk full, I/O error) can leave the transaction open.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _create_private(path: str) -> None:
    """Create the database file with mode 0600 when it does not exist yet.

    It holds password hashes, and SQLite gives the ``-wal`` and ``-shm`` files it creates
    the mode of the database file (0644 under the usual umask if SQLite made it).
    """
    file = _file_path(path)
    if file is None:
        return
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        # It exists (its mode is the operator's choice), or SQLite will say why not.
        return
    os.close(fd)


def _file_path(database: str) -> str | None:
    """The file a database string names, or None for an in-memory database."""
    if not database.startswith("file:"):
        return None if database in ("", ":memory:") else database
    parts = urlsplit(database)
    if parse_qs(parts.query).get("mode") == ["memory"]:
        return None
    path = unquote(parts.path)
    return None if path in ("", ":memory:") else path


def _user(row: tuple[Any, ...] | None) -> User | None:
    return None if row is None else _user_from(row)


def _user_from(row: tuple[Any, ...]) -> User:
    id_, username, email, password_hash, is_active, date_joined, last_login = row
    return User(id_, username, email, password_hash, bool(is_active), date_joined, last_login)


class SQLiteStore:
    """The SQLite backend of :class:`~jwtlite.store.base.Store`, safe to share between threads.

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
        _create_private(path)
        try:
            self._migrate(self._connection())
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
        connection = self._open()
        with self._lock:
            if self._closed:
                connection.close()
                raise StoreUnavailableError("the user store is closed")
            self._connections.append(connection)
        self._local.connection = connection
        return connection

    def _open(self) -> sqlite3.Connection:
        # check_same_thread=False only so close() may close other threads' connections;
        # each connection is otherwise used by the thread that opened it.
        connection = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
            uri=self._path.startswith("file:"),
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA synchronous = FULL")
            mode = self._enter_wal(connection)
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL journal mode (got {mode!r})")
        except BaseException:
            connection.close()
            raise
        return connection

    def _enter_wal(self, connection: sqlite3.Connection) -> object:
        """Switch to WAL and return the journal mode now in force.

        Turning a new file to WAL needs a lock SQLite will not wait for: it answers
        SQLITE_BUSY at once, without the busy handler, when other connections are opening
        the same new file (several threads or processes starting together). So it is
        retried here, for as long as the busy timeout allows.
        """
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            try:
                return connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(_WAL_RETRY_SECONDS)

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> None:
        # Taking the write lock before reading the version makes two processes starting on
        # a fresh file apply the migrations exactly once.
        with _immediate(connection):
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreUnavailableError(
                    f"the database schema is version {version}, newer than the "
                    f"{SCHEMA_VERSION} this jwtlite supports"
                )
            for number, steps in enumerate(sql.MIGRATIONS[version:], start=version + 1):
                for statement in steps:
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {number}")
            # Rewriting the version even when nothing changed is a real write: a file
            # we can read but not write is refused now, not at the first login.
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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
        """Check that the database answers (for health checks)."""
        self._connection().execute("SELECT 1").fetchone()

    @_translating_errors
    def schema_version(self) -> int:
        """The schema version recorded in the file (``PRAGMA user_version``)."""
        return int(self._connection().execute("PRAGMA user_version").fetchone()[0])

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
        """Insert a user; return it, or None when ``username_key`` or ``username_skeleton``
        is already taken.

        One INSERT against the UNIQUE constraints, so concurrent registrations of one name
        or of two look-alikes (threads or processes) produce exactly one row.
        """
        try:
            cursor = self._connection().execute(
                "INSERT INTO users"
                " (username, username_key, username_skeleton, email, password_hash, date_joined)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (username, username_key, username_skeleton, email, password_hash, now),
            )
        except sqlite3.IntegrityError:
            return None
        user_id = cursor.lastrowid
        assert user_id is not None  # noqa: S101 - an INSERT always sets it
        return User(user_id, username, email, password_hash, True, now, None)

    @_translating_errors
    def get_user(self, user_id: int) -> User | None:
        """Return the user with this id, or None."""
        return _user(self._one(sql.USER_BY_ID, user_id))

    @_translating_errors
    def get_user_by_key(self, username_key: str) -> User | None:
        """Return the user whose case-insensitive key is ``username_key``, or None."""
        return _user(self._one(sql.USER_BY_KEY, username_key))

    @_translating_errors
    def set_active(self, username_key: str, active: bool) -> bool:
        """Activate or deactivate a user; False when there is no such user."""
        cursor = self._connection().execute(
            "UPDATE users SET is_active = ? WHERE username_key = ?", (int(active), username_key)
        )
        return cursor.rowcount == 1

    @_translating_errors
    def delete_user(self, user_id: int) -> bool:
        """Delete a user and (by cascade) their sessions and refresh tokens; False when there
        was none."""
        cursor = self._connection().execute("DELETE FROM users WHERE id = ?", (user_id,))
        return cursor.rowcount == 1

    # -- refresh tokens ---------------------------------------------------------------------

    @_translating_errors
    def add_refresh_token(self, record: RefreshRecord) -> None:
        """Record a newly issued refresh token."""
        self._connection().execute(
            sql.TOKEN_INSERT,
            astuple(record),
        )

    @_translating_errors
    def get_refresh_token(self, jti: str) -> RefreshRecord | None:
        """Return the record of the refresh token ``jti``, or None."""
        row = self._one(sql.TOKEN_BY_JTI, jti)
        return None if row is None else RefreshRecord(*row)

    @_translating_errors
    def start_session(
        self,
        user_id: int,
        *,
        subject: str,
        address: str,
        now: float,
        refresh: RefreshRecord,
        session: Session,
        password_hash: str | None = None,
    ) -> None:
        """Record a successful login in one transaction, so one disk sync.

        Forgets the login attempts of this subject from ``address`` (the throttle's bucket)
        and remembers the success (one :data:`LOGIN_SUCCESS` row per pair), sets
        ``last_login`` (and a rehashed password when given), inserts ``session`` and its
        first refresh token.
        """
        with _immediate(self._connection()) as connection:
            connection.execute(
                "DELETE FROM attempts WHERE kind IN (?, ?) AND subject = ? AND address = ?",
                (LOGIN_ATTEMPT, LOGIN_SUCCESS, subject, address),
            )
            connection.execute(
                "INSERT INTO attempts (kind, subject, address, at) VALUES (?, ?, ?, ?)",
                (LOGIN_SUCCESS, subject, address, now),
            )
            if password_hash is not None:
                connection.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
                )
            connection.execute("UPDATE users SET last_login = ? WHERE id = ?", (now, user_id))
            connection.execute(sql.SESSION_INSERT, astuple(session))
            connection.execute(sql.TOKEN_INSERT, astuple(refresh))

    @_translating_errors
    def get_refresh_token_and_user(
        self, jti: str
    ) -> tuple[RefreshRecord, User, Session | None] | None:
        """The record of refresh token ``jti``, its user and its session, in one indexed
        lookup, or None (no such token; a deleted user's tokens are deleted with the user)."""
        row = self._one(sql.TOKEN_USER_SESSION_BY_JTI, jti)
        if row is None:
            return None
        session = None if row[15] is None else Session(*row[15:])
        return RefreshRecord(*row[:8]), _user_from(row[8:15]), session

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
        """Spend ``old_jti`` and record ``new``, atomically, noting the spend on the old
        record (``spent_at``, ``successor``) and the use on the session ``new.family``.

        Returns:
            True when the old token was active (it is now spent and ``new`` is stored);
            False, with nothing changed, when it was missing, spent or blacklisted. Of any
            number of concurrent rotations of one token, exactly one returns True.
        """
        at = new.issued_at if now is None else now
        connection = self._connection()
        with _immediate(connection):
            cursor = connection.execute(
                "UPDATE refresh_tokens SET state = 'spent', spent_at = ?, successor = ?"
                " WHERE jti = ? AND state = 'active'",
                (at, new.jti, old_jti),
            )
            if cursor.rowcount != 1:
                return False
            connection.execute(sql.TOKEN_INSERT, astuple(new))
            connection.execute(
                "UPDATE sessions SET last_used_at = ?, expires_at = max(expires_at, ?),"
                " user_agent = coalesce(?, user_agent), address = coalesce(?, address)"
                " WHERE id = ?",
                (at, new.expires_at, user_agent, address, new.family),
            )
        return True

    @_translating_errors
    def revoke_family(self, family: str) -> int:
        """Reuse detected: blacklist every token of ``family`` and revoke its session, in one
        transaction; return how many tokens were not blacklisted yet."""
        with _immediate(self._connection()) as connection:
            count = connection.execute(
                "UPDATE refresh_tokens SET state = 'blacklisted'"
                " WHERE family = ? AND state != 'blacklisted'",
                (family,),
            ).rowcount
            connection.execute(
                "UPDATE sessions SET state = 'revoked' WHERE id = ? AND state != 'revoked'",
                (family,),
            )
        return count

    @_translating_errors
    def blacklist_refresh_token(self, jti: str) -> bool:
        """Blacklist one refresh token; False when there is no record of it."""
        cursor = self._connection().execute(
            "UPDATE refresh_tokens SET state = 'blacklisted' WHERE jti = ?", (jti,)
        )
        return cursor.rowcount == 1

    # -- sessions ---------------------------------------------------------------------------

    @_translating_errors
    def touch_session(self, session_id: str, *, now: float, user_agent: str, address: str) -> None:
        """Set an active session's ``last_used_at``, ``user_agent`` and ``address``."""
        self._connection().execute(
            "UPDATE sessions SET last_used_at = ?, user_agent = ?, address = ?"
            " WHERE id = ? AND state = 'active'",
            (now, user_agent, address, session_id),
        )

    @_translating_errors
    def list_sessions(self, user_id: int, *, now: float) -> list[Session]:
        """The user's active, unexpired sessions, newest first (the (user_id, state) index)."""
        rows = self._connection().execute(
            f"SELECT {sql.SESSION_COLUMNS} FROM sessions"  # noqa: S608 - fixed column list
            " WHERE user_id = ? AND state = 'active' AND expires_at > ?"
            " ORDER BY created_at DESC, id",
            (user_id, now),
        )
        return [Session(*row) for row in rows]

    @_translating_errors
    def end_session(self, user_id: int, session_id: str, state: str) -> bool:
        """End one session of ``user_id`` (``state`` "ended" or "revoked") and blacklist its
        refresh tokens in one transaction; False, changing nothing, when it is unknown,
        another user's, or already in a state the ending does not change."""
        allowed = _ENDABLE[state]
        with _immediate(self._connection()) as connection:
            changed = connection.execute(
                "UPDATE sessions SET state = ? WHERE id = ? AND user_id = ? AND state IN (?, ?)",
                (state, session_id, user_id, allowed[0], allowed[-1]),
            ).rowcount
            if changed != 1:
                return False
            connection.execute(
                "UPDATE refresh_tokens SET state = 'blacklisted'"
                " WHERE family = ? AND state != 'blacklisted'",
                (session_id,),
            )
        return True

    @_translating_errors
    def end_user_sessions(self, user_id: int, state: str = "revoked") -> int:
        """End every session of ``user_id`` and blacklist all their refresh tokens, in one
        transaction; return how many sessions changed."""
        with _immediate(self._connection()) as connection:
            return _end_user_sessions(connection, user_id, state)

    @_translating_errors
    def session_state(self, user_id: int, session_id: str) -> tuple[bool, str | None] | None:
        """``(user is active, session state or None)``, or None when there is no such user;
        one read by two primary keys."""
        row = self._one(
            "SELECT u.is_active, s.state FROM users AS u"
            " LEFT JOIN sessions AS s ON s.id = ? AND s.user_id = u.id WHERE u.id = ?",
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
    ) -> int | None:
        """Set the password hash, revoke every session of the user, then add the caller's
        new session and its first refresh token when given, in one transaction.

        Returns the number of sessions revoked, or None (nothing changed) for an unknown user.
        """
        with _immediate(self._connection()) as connection:
            updated = connection.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            ).rowcount
            if updated != 1:
                return None
            count = _end_user_sessions(connection, user_id, "revoked")
            if subject is not None and address is not None:
                connection.execute(
                    "DELETE FROM attempts WHERE kind = 'login' AND subject = ? AND address = ?",
                    (subject, address),
                )
            if session is not None:
                connection.execute(sql.SESSION_INSERT, astuple(session))
            if refresh is not None:
                connection.execute(sql.TOKEN_INSERT, astuple(refresh))
        return count

    @_translating_errors
    def purge_expired(
        self,
        *,
        tokens_before: float,
        attempts_before: Mapping[str, float],
        sessions_before: float | None = None,
    ) -> int:
        """Delete refresh tokens with ``expires_at <= tokens_before``, sessions with
        ``expires_at <= sessions_before`` (``tokens_before`` when None) and attempts of each
        kind with ``at <= attempts_before[kind]``, in batches of :data:`PURGE_BATCH` rows a
        transaction.

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
            with _immediate(connection):
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
        with _immediate(connection):
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
                    "INSERT INTO attempts (kind, subject, address, at) VALUES (?, ?, ?, ?)",
                    (kind, subject, address, now),
                )
        return blocked


def _end_user_sessions(connection: sqlite3.Connection, user_id: int, state: str) -> int:
    """Inside a transaction: move the user's sessions to ``state``, blacklist their tokens."""
    allowed = _ENDABLE[state]
    count = connection.execute(
        "UPDATE sessions SET state = ? WHERE user_id = ? AND state IN (?, ?)",
        (state, user_id, allowed[0], allowed[-1]),
    ).rowcount
    connection.execute(
        "UPDATE refresh_tokens SET state = 'blacklisted'"
        " WHERE user_id = ? AND state != 'blacklisted'",
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
        (limits.per_pair, "subject = ? AND address = ?", (subject, address)),
        (per_subject, "subject = ?", (subject,)),
        (limits.per_address, "address = ?", (address,)),
    )
    oldest: float | None = None
    for limit, condition, params in buckets:
        if limit is None:
            continue
        # The condition is one of the fixed fragments above; every value is a parameter.
        query = f"SELECT count(*), min(at) FROM attempts WHERE kind = ? AND {condition} AND at > ?"  # noqa: S608
        count, first = connection.execute(query, (kind, *params, since)).fetchone()
        if count >= limit and first is not None:
            oldest = first if oldest is None else max(oldest, first)
    return oldest


def _trusted(
    connection: sqlite3.Connection, subject: str, address: str, limits: AttemptLimits
) -> bool:
    if limits.trusted_since is None:
        return False
    row = connection.execute(
        "SELECT 1 FROM attempts WHERE kind = ? AND subject = ? AND address = ? AND at > ?",
        (LOGIN_SUCCESS, subject, address, limits.trusted_since),
    ).fetchone()
    return row is not None
