"""The PostgreSQL store, which every instance of the service shares.

It holds the users, sessions, refresh-token records and attempt counters.

The backend of :class:`~jwtlite.store.base.Store` for more than one process or host:
psycopg 3 with a :class:`psycopg_pool.ConnectionPool`. Every statement is parametrised and
runs in autocommit mode, so a change that is one statement is its own transaction:

* registration is one ``INSERT ... ON CONFLICT DO NOTHING``: the unique indexes on
  ``username_key`` and ``username_skeleton`` settle races between any number of instances;
* spending a refresh token is one conditional ``UPDATE ... WHERE state = 'active'
  RETURNING`` whose row feeds the ``INSERT`` of the new token, in one statement. Of
  concurrent rotations exactly one updates the row (the others wait for it, re-check the
  condition on the committed row and find it spent), and a failed insert undoes the spend;
* a login's bookkeeping (forget the pair's attempts and remember its success, set
  ``last_login``, insert the session and its first token) is one statement of
  data-modifying CTEs;
* every change that touches a session and its tokens (rotation, ending a session, reuse
  detection, ending all of a user's sessions) locks the session rows before the token rows,
  so two of them never wait on each other crosswise;
* counting an attempt takes a transaction-level advisory lock per limited bucket, in a fixed
  order so two attempts never wait on each other crosswise, then counts and inserts in one
  statement of the same short transaction (pipelined: one round trip). The count runs after
  the locks are granted, so it sees every attempt a previous holder committed: the limits
  are exact across instances. A pair with a recent login success (``trusted_since``) is
  exempt from the per-subject bucket, decided in that same statement.

Time limits: ``connect_timeout`` bounds opening a connection and waiting for one from the
pool; ``statement_timeout`` bounds every statement on the server, lock waits included; TCP
keepalives notice a peer that vanished mid-statement. The pool checks a connection that sat
idle before lending it, replaces broken ones in the background (all idle ones at once when one
is found broken), and a read that meets a connection broken since its last use is retried
once on a fresh one; so the process recovers by itself when the database comes back.

Every :class:`psycopg.Error` (pool timeouts included) that escapes a public method becomes
:class:`~jwtlite.store.errors.StoreUnavailableError`, chained with ``from``, with a message from
which the URL's password has been removed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import astuple
from typing import Any

import psycopg

from jwtlite.store import _postgres_sql as sql
from jwtlite.store._common import ENDABLE, apply_password_change, translating, user_from_row
from jwtlite.store._postgres_pool import Connection, Connections, Cursor
from jwtlite.store._postgres_sql import SCHEMA_VERSION
from jwtlite.store.base import (
    LOGIN_ATTEMPT,
    LOGIN_SUCCESS,
    AttemptLimits,
    RefreshRecord,
    Session,
    User,
    purge_in_batches,
)

__all__ = ["SCHEMA_VERSION", "PostgresStore"]


# Which states each ending may leave: logging out ends only an active session; a
# revocation also reaches an ended one, whose access tokens were still live.
_ENDABLE = {"ended": ["active"], "revoked": ["active", "ended"]}


_translating_errors = translating(psycopg.Error, lambda store, error: store._db.describe(error))


def _user(row: tuple[Any, ...] | None) -> User | None:
    return None if row is None else user_from_row(row)


class PostgresStore:
    """The PostgreSQL backend of :class:`~jwtlite.store.base.Store`.

    It is safe to share between threads, processes and hosts.

    Each method keeps the contract the protocol documents; a docstring here says only what
    this backend adds (how it makes the change atomic).

    Args:
        url: a ``postgresql://`` (or ``postgres://``) URL, as libpq reads it.
        pool_size: the most connections this store holds (one per server thread is plenty).
        connect_timeout: seconds to open a connection, or to wait for one from the pool.
        statement_timeout: seconds any statement may run or wait for a lock on the server.

    Raises:
        StoreUnavailableError: the database cannot be reached or migrated (refused,
            unknown database, authentication failed, newer schema); the message never
            holds the password.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        connect_timeout: float = 5.0,
        statement_timeout: float = 5.0,
    ) -> None:
        self._db = Connections(
            url,
            pool_size=pool_size,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
        )

    def close(self) -> None:
        """Close the pool and every connection; the store is unusable afterwards."""
        self._db.close()

    @_translating_errors
    def ping(self) -> None:
        self._db.read(sql.PING, ())

    @_translating_errors
    def schema_version(self) -> int:
        """The schema version recorded in ``jwtlite_migrations``."""
        row = self._db.read(sql.SCHEMA_VERSION_NOW, ())
        assert row is not None  # noqa: S101 - an aggregate always answers one row
        return int(row[0])

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

        One statement against the unique indexes on ``username_key`` and
        ``username_skeleton``, so concurrent registrations of one name or of two look-alikes
        (from any number of instances) produce exactly one row.
        """
        params = {
            "username": username,
            "key": username_key,
            "skeleton": username_skeleton,
            "email": email,
            "hash": password_hash,
            "now": now,
        }
        row = self._db.one(sql.CREATE_USER, params)
        if row is None:
            return None
        return User(row[0], username, email, password_hash, True, now, None)

    @_translating_errors
    def get_user(self, user_id: int) -> User | None:
        return _user(self._db.read(sql.USER_BY_ID, (user_id,)))

    @_translating_errors
    def get_user_by_key(self, username_key: str) -> User | None:
        return _user(self._db.read(sql.USER_BY_KEY, (username_key,)))

    @_translating_errors
    def username_taken(self, username_key: str, username_skeleton: str) -> bool:
        return self._db.read(sql.USERNAME_TAKEN, (username_key, username_skeleton)) is not None

    @_translating_errors
    def set_active(self, username_key: str, active: bool) -> bool:
        return self._db.rowcount(sql.SET_ACTIVE, (active, username_key)) == 1

    @_translating_errors
    def delete_user(self, user_id: int, *, verified_hash: str | None = None) -> bool:
        if verified_hash is None:
            return self._db.rowcount(sql.DELETE_USER, (user_id,)) == 1
        return self._db.rowcount(sql.DELETE_USER_IF_VERIFIED, (user_id, verified_hash)) == 1

    # -- refresh tokens ---------------------------------------------------------------------

    @_translating_errors
    def add_refresh_token(self, record: RefreshRecord) -> None:
        self._db.rowcount(sql.TOKEN_INSERT, astuple(record))

    @_translating_errors
    def get_refresh_token(self, jti: str) -> RefreshRecord | None:
        row = self._db.read(sql.TOKEN_BY_JTI, (jti,))
        return None if row is None else RefreshRecord(*row)

    @_translating_errors
    def get_refresh_token_and_user(
        self, jti: str
    ) -> tuple[RefreshRecord, User, Session | None] | None:
        """The record of refresh token ``jti``, its user and its session, in one indexed lookup.

        None when there is no such token (a deleted user's tokens are deleted with the
        user)."""
        row = self._db.read(sql.TOKEN_USER_SESSION_BY_JTI, (jti,))
        if row is None:
            return None
        session = None if row[15] is None else Session(*row[15:])
        return RefreshRecord(*row[:8]), User(*row[8:15]), session

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
        """Record a successful login in one statement (so one transaction, one commit).

        The user's row is checked and written first (active, hash still ``verified_hash``;
        ``last_login`` and a rehashed password when given); only then are this subject's
        attempts from ``address`` forgotten, the success remembered (one
        :data:`LOGIN_SUCCESS` row per pair), ``session`` and its first refresh token
        inserted.
        """
        params = {
            "attempt": LOGIN_ATTEMPT,
            "success": LOGIN_SUCCESS,
            "subject": subject,
            "address": address,
            "now": now,
            "hash": password_hash,
            "verified": verified_hash,
            "user_id": user_id,
            **_session_params(session),
            **_token_params(refresh),
        }
        return self._db.rowcount(sql.START_SESSION, params) == 1

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

        One short transaction, pipelined (one round trip): lock the session row, then one
        statement that spends, inserts and notes the use only when the old token was active.

        When the connection breaks before the answer arrives (a lost ``COMMIT``
        acknowledgement: the rotation may have committed), a fresh connection asks whether
        it did, and True is returned if so; the client then gets the successor it would have
        got, instead of a 503 that would make its retry look like reuse. If the question
        cannot be asked either, the error stands.

        Returns:
            True when the old token was active (it is now spent and ``new`` is stored);
            False, with nothing changed, when it was missing, spent or blacklisted. Of any
            number of concurrent rotations of one token, on any number of instances,
            exactly one returns True.
        """
        params = {
            "old": old_jti,
            "at": new.issued_at if now is None else now,
            "agent": user_agent,
            "address": address,
            **_token_params(new),
        }
        used: list[psycopg.Connection[Any]] = []
        try:
            with self._db.connection() as connection:
                used.append(connection)
                with connection.pipeline(), connection.transaction():
                    connection.execute(sql.LOCK_SESSION, (new.family,))
                    rotated = connection.execute(sql.ROTATE, params)
                return rotated.fetchone() is not None
        except psycopg.OperationalError:
            if not used or not used[0].broken:
                raise  # no statement was sent, or the server answered: nothing uncertain
            # Raises (a 503, as before) when the server cannot be asked.
            if self._db.read(sql.ROTATION_LANDED, (old_jti, new.jti)) is None:
                raise
            return True

    @_translating_errors
    def revoke_family(self, family: str) -> int:
        """Reuse detected: blacklist every token of ``family`` and revoke its session.

        One short transaction (pipelined, the session row locked first); returns how many
        tokens were not blacklisted yet."""
        with self._db.connection() as connection:
            with connection.pipeline(), connection.transaction():
                connection.execute(sql.REVOKE_SESSION, (family,))
                blacklisted = connection.execute(sql.BLACKLIST_FAMILY, (family,))
            return blacklisted.rowcount

    @_translating_errors
    def blacklist_refresh_token(self, jti: str) -> bool:
        return self._db.rowcount(sql.BLACKLIST_TOKEN, (jti,)) == 1

    # -- sessions ---------------------------------------------------------------------------

    @_translating_errors
    def touch_session(self, session_id: str, *, now: float, user_agent: str, address: str) -> None:
        """Set an active session's ``last_used_at``, ``user_agent`` and ``address``."""
        self._db.rowcount(sql.TOUCH_SESSION, (now, user_agent, address, session_id))

    @_translating_errors
    def list_sessions(self, user_id: int, *, now: float) -> list[Session]:
        """The user's active, unexpired sessions, newest first (the (user_id, state) index)."""
        return [Session(*row) for row in self._db.all(sql.LIST_SESSIONS, (user_id, now))]

    @_translating_errors
    def end_session(self, user_id: int, session_id: str, state: str) -> bool:
        """End one session of ``user_id`` and blacklist its refresh tokens, in one statement.

        ``state`` is "ended" or "revoked". False, changing nothing, when the session is
        unknown, another user's, or already in a state the ending does not change. Of
        concurrent calls on one session exactly one returns True (the others wait for its row
        lock and re-check the state)."""
        params = {
            "state": state,
            "id": session_id,
            "user_id": user_id,
            "allowed": list(ENDABLE[state]),
        }
        return self._db.one(sql.END_SESSION, params) is not None

    @_translating_errors
    def end_user_sessions(self, user_id: int, state: str = "revoked") -> int:
        """End every session of ``user_id``; return how many sessions changed.

        All their refresh tokens are blacklisted in the same short transaction (pipelined)."""
        with self._db.connection() as connection:
            with connection.pipeline(), connection.transaction():
                ended = _end_user_sessions(connection, user_id, state)
            return ended.rowcount

    @_translating_errors
    def session_state(self, user_id: int, session_id: str) -> tuple[bool, str | None] | None:
        """``(user is active, session state or None)``, or None when there is no such user.

        One read by two primary keys."""
        row = self._db.read(sql.SESSION_STATE, (session_id, user_id))
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
        with self._db.transaction() as connection:
            return apply_password_change(
                connection,
                sql,
                lambda *args: _end_user_sessions(*args).rowcount,
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
        kind with ``at <= attempts_before[kind]``; one batch a statement (each its own short
        transaction, found through an index).

        Returns:
            The number of rows deleted.
        """
        sessions_cut = tokens_before if sessions_before is None else sessions_before
        # expires_at is an integer column: compared with a whole number its index is used.
        work: list[tuple[str, tuple[object, ...]]] = [
            (sql.PURGE_TOKENS, (math.floor(tokens_before),)),
            (sql.PURGE_SESSIONS, (math.floor(sessions_cut),)),
        ]
        work += [(sql.PURGE_ATTEMPTS, (kind, at)) for kind, at in attempts_before.items()]
        return purge_in_batches(work, self._db.rowcount)

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
        """Count one attempt unless a limit is already reached, atomically across instances.

        Counts the attempts of ``kind`` made after ``since``: of this subject from this
        address, of this subject, and from this address. When none of those counts has
        reached its limit, records the attempt and returns None; otherwise records nothing
        and returns the time of the oldest attempt in a full bucket.

        Every attempt that could change a limited bucket holds that bucket's advisory lock
        until it commits: the subject's lock guards the subject and the pair buckets, the
        address's lock the address bucket. So of any number of concurrent attempts, exactly
        as many as the limits allow get through.
        """
        keys = []
        if limits.per_pair is not None or limits.per_subject is not None:
            keys.append(sql.bucket_lock_key("attempts", kind, "subject", subject))
        if limits.per_address is not None:
            keys.append(sql.bucket_lock_key("attempts", kind, "address", address))
        query, params = sql.take_attempt(
            kind=kind, subject=subject, address=address, now=now, since=since, limits=limits
        )
        with self._db.connection() as connection:
            # Pipelined: BEGIN, the locks, the count-and-insert and COMMIT leave in one round
            # trip, so a bucket's lock is held for the server's work and the commit, not for
            # network round trips (every login from one address queues on its lock).
            with connection.pipeline(), connection.transaction():
                if keys:
                    connection.execute(sql.bucket_locks(len(keys)), sorted(keys))
                counted = connection.execute(query, params)
            row = counted.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    @_translating_errors
    def return_attempt(self, *, kind: str, subject: str, address: str, at: float) -> None:
        self._db.rowcount(sql.RETURN_ATTEMPT, (kind, subject, address, at))


def _token_params(record: RefreshRecord) -> dict[str, object]:
    return {
        "jti": record.jti,
        "token_user": record.user_id,
        "family": record.family,
        "issued_at": record.issued_at,
        "expires_at": record.expires_at,
        "state": record.state,
        "spent_at": record.spent_at,
        "successor": record.successor,
    }


def _session_params(session: Session) -> dict[str, object]:
    return {
        "s_id": session.id,
        "s_user": session.user_id,
        "s_created": session.created_at,
        "s_used": session.last_used_at,
        "s_expires": session.expires_at,
        "s_agent": session.user_agent,
        "s_address": session.address,
        "s_state": session.state,
    }


def _end_user_sessions(connection: Connection, user_id: int, state: str) -> Cursor:
    """Inside a transaction: move the user's sessions to ``state``, then blacklist their tokens.

    The session rows are locked first. Returns the cursor of the sessions' UPDATE."""
    ended = connection.execute(sql.END_USER_SESSIONS, (state, user_id, list(ENDABLE[state])))
    connection.execute(sql.BLACKLIST_USER, (user_id,))
    return ended
