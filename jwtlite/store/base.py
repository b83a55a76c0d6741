"""What every store offers: the :class:`Store` protocol and the records it returns.

The service is written against this protocol alone; a backend (``jwtlite.store.sqlite``,
``jwtlite.store.postgres``) implements it and is the only code that speaks SQL. Records are
frozen dataclasses, so nothing above the store can change a row by mutating what it was
handed.

Every backend raises :class:`~jwtlite.store.errors.StoreUnavailableError` for any driver error
that escapes a method, so the service fails closed whatever the backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "LOGIN_ATTEMPT",
    "LOGIN_SUCCESS",
    "PURGE_BATCH",
    "REGISTRATION",
    "SESSION_STATES",
    "AttemptLimits",
    "RefreshRecord",
    "Session",
    "Store",
    "User",
    "purge_in_batches",
]

#: Kinds of counted events. A login attempt is counted before the password is checked and
#: forgotten when it was right; a success is remembered per (subject, address) so the owner's
#: own addresses stay open when strangers exhaust the per-subject limit.
LOGIN_ATTEMPT = "login"
LOGIN_SUCCESS = "login-ok"
REGISTRATION = "register"

#: The states of a session: ``active``; ``ended`` (logged out: its refresh tokens are
#: refused, its access tokens live out their short life, as simplejwt's blacklist behaves);
#: ``revoked`` (ended by "log out everywhere", a password change, its owner, account
#: deletion or reuse detection: its access tokens are refused too).
SESSION_STATES = ("active", "ended", "revoked")

#: Rows a backend deletes per statement when purging, so no purge holds a lock for long.
PURGE_BATCH = 500


def purge_in_batches(
    steps: Iterable[tuple[str, tuple[object, ...]]],
    delete: Callable[[str, tuple[object, ...]], int],
) -> int:
    """Run each purge ``(statement, params)`` in batches; return the rows deleted in all.

    Each runs through ``delete`` (one transaction a call, returning the rows deleted) with
    :data:`PURGE_BATCH` appended to its parameters, again and again until a batch deletes
    fewer rows than that."""
    deleted = 0
    for statement, params in steps:
        while True:
            count = delete(statement, (*params, PURGE_BATCH))
            deleted += count
            if count < PURGE_BATCH:
                break
    return deleted


@dataclass(frozen=True, slots=True)
class User:
    """A user row. ``password_hash`` is an opaque string for the password hasher."""

    id: int
    username: str
    email: str
    password_hash: str
    is_active: bool
    date_joined: float
    last_login: float | None


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A refresh token's record; ``state`` is ``"active"``, ``"spent"`` or ``"blacklisted"``.

    ``family`` groups the tokens descended by rotation from one login, so reuse of a spent
    token can revoke the whole line; it is the id of their :class:`Session`. A token spent by
    rotation records when (``spent_at``, Unix seconds) and the ``jti`` of the token issued in
    its place (``successor``), both None until then: the rotation grace period needs them.
    """

    jti: str
    user_id: int
    family: str
    issued_at: int
    expires_at: int
    state: str
    spent_at: float | None = None
    successor: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A login and every refresh token descended from it (a refresh-token family).

    ``id`` is random hex chosen by the service (every token of the session carries it at the
    start of its ``jti``); times are Unix seconds (``expires_at`` whole seconds: the expiry
    of its newest refresh token); ``user_agent`` and ``address`` describe the client at login
    and at its latest refresh; ``state`` is one of :data:`SESSION_STATES`.
    """

    id: str
    user_id: int
    created_at: float
    last_used_at: float
    expires_at: int
    user_agent: str
    address: str
    state: str


@dataclass(frozen=True, slots=True)
class AttemptLimits:
    """How many attempts a throttle allows in its window, per bucket; None: no limit.

    ``per_pair`` counts one subject from one address, ``per_subject`` one subject from
    anywhere, ``per_address`` one address whatever the subject.
    """

    per_pair: int | None = None
    per_subject: int | None = None
    per_address: int | None = None
    #: When set, a (subject, address) pair with a :data:`LOGIN_SUCCESS` after this time is
    #: not held to ``per_subject``: guesses spread over other addresses cannot lock the
    #: subject's owner out of an address they have used.
    trusted_since: float | None = None


class Store(Protocol):
    """Users, sessions, refresh-token records and attempt counters, safe to share between threads.

    Methods that change state and depend on what they read are atomic in the backend (one
    conditional statement or one transaction), so they hold across threads and processes.
    """

    def close(self) -> None:
        """Release every connection; the store is unusable afterwards."""

    def ping(self) -> None:
        """Check that the database answers (for health checks)."""

    def schema_version(self) -> int:
        """The schema version recorded in the database."""

    # -- users ------------------------------------------------------------------------------

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

        A unique index on ``username_key`` or ``username_skeleton`` decides, so concurrent
        registrations make one row."""

    def get_user(self, user_id: int) -> User | None:
        """Return the user with this id, or None."""

    def get_user_by_key(self, username_key: str) -> User | None:
        """Return the user whose case-insensitive key is ``username_key``, or None."""

    def username_taken(self, username_key: str, username_skeleton: str) -> bool:
        """Tell whether a user has this key or this skeleton, in one indexed read.

        That is what :meth:`create_user` would refuse."""

    def set_active(self, username_key: str, active: bool) -> bool:
        """Activate or deactivate a user; False when there is no such user."""

    def delete_user(self, user_id: int, *, verified_hash: str | None = None) -> bool:
        """Delete a user with their sessions and refresh tokens; False when there was none.

        With ``verified_hash``, only while that is still the user's password hash (the
        caller proved the password against it): False, nothing deleted, after a change."""

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
        """Set a user's password hash and end every session of theirs, atomically.

        In one transaction: set ``password_hash`` (when ``verified_hash`` is given, only if
        that is still the user's hash: the caller proved the old password against it); move
        every ``active`` or ``ended`` session of the user to ``revoked`` and blacklist every
        refresh token of the user that is not blacklisted yet; then, when given, insert
        ``session`` and its first refresh token ``refresh`` (the caller's new session, which
        the change must not end) and delete the ``login`` attempts of ``subject`` from
        ``address`` (as a successful login does). Returns the number of sessions revoked, or
        None (nothing changed) when there is no such user or its hash is no longer
        ``verified_hash``.
        """

    # -- refresh tokens ---------------------------------------------------------------------

    def add_refresh_token(self, record: RefreshRecord) -> None:
        """Record a newly issued refresh token."""

    def get_refresh_token(self, jti: str) -> RefreshRecord | None:
        """Return the record of the refresh token ``jti``, or None."""

    def get_refresh_token_and_user(
        self, jti: str
    ) -> tuple[RefreshRecord, User, Session | None] | None:
        """The record of refresh token ``jti``, its user and its session, in one indexed lookup.

        The session is the row whose id is the record's ``family`` (None for a family without
        one). None when there is no such token (a deleted user's tokens are deleted with
        them)."""

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
        """Record a successful login atomically, if the user still admits it.

        Only while the user exists, is active and still has the password hash
        ``verified_hash`` (the one the password was checked against), decided in the same
        transaction as the writes: forget this subject's login attempts from ``address``
        (the throttle's bucket) and remember the success (:data:`LOGIN_SUCCESS`, one row per
        pair), set ``last_login`` (and a rehashed password when given), insert ``session``
        and its first refresh token ``refresh``. Returns False, having written nothing, when
        the user was deleted, deactivated or given another password meanwhile: a login
        racing a password change must not outlive it.
        """

    def rotate_refresh_token(
        self,
        old_jti: str,
        new: RefreshRecord,
        *,
        now: float | None = None,
        user_agent: str | None = None,
        address: str | None = None,
    ) -> bool:
        """Spend ``old_jti`` and record ``new`` atomically.

        False (nothing changed) when the old token was not active. Of concurrent rotations of
        one token exactly one wins.

        In the same transaction the old record gets ``spent_at = now`` (``new.issued_at``
        when None) and ``successor = new.jti``, and the session ``new.family`` gets
        ``last_used_at = now``, ``expires_at = new.expires_at`` when that is later, and the
        ``user_agent`` and ``address`` given (each left as it was when None).
        """

    def touch_session(self, session_id: str, *, now: float, user_agent: str, address: str) -> None:
        """Set an active session's ``last_used_at``, ``user_agent`` and ``address``.

        One conditional UPDATE; nothing happens to a session that is not active."""

    def list_sessions(self, user_id: int, *, now: float) -> list[Session]:
        """The user's ``active`` sessions with ``expires_at > now``, newest first.

        Newest by ``created_at``; ties are broken by id."""

    def end_session(self, user_id: int, session_id: str, state: str) -> bool:
        """End one session of ``user_id`` and blacklist its refresh tokens, atomically.

        ``state`` is ``"ended"`` (only an ``active`` session changes) or ``"revoked"`` (an
        ``active`` or ``ended`` one does). Returns False, changing nothing, when the session
        is unknown, belongs to another user or is not in a state that may change; of
        concurrent calls on one session exactly one returns True.
        """

    def end_user_sessions(self, user_id: int, state: str = "revoked") -> int:
        """End every session of ``user_id`` atomically; return how many sessions changed.

        Each ends as :meth:`end_session` ends one, and all the user's refresh tokens are
        blacklisted."""

    def session_state(self, user_id: int, session_id: str) -> tuple[bool, str | None] | None:
        """The user's and the session's state for the access-token check, in one indexed read.

        None when there is no user ``user_id``; else ``(user is active, state of session
        ``session_id`` if it exists and belongs to that user, else None)``."""

    def revoke_family(self, family: str) -> int:
        """Reuse detected: blacklist every token of ``family`` and revoke its session, atomically.

        The session is the one whose id is ``family``. Returns how many tokens were not
        blacklisted yet."""

    def blacklist_refresh_token(self, jti: str) -> bool:
        """Blacklist one refresh token; False when there is no record of it."""

    def purge_expired(
        self,
        *,
        tokens_before: float,
        attempts_before: Mapping[str, float],
        sessions_before: float | None = None,
    ) -> int:
        """Delete expired tokens, sessions and attempts in small batches; return the rows deleted.

        Refresh tokens with ``expires_at <= tokens_before``, sessions with
        ``expires_at <= sessions_before`` (``tokens_before`` when None) and attempts of each
        kind with ``at <= attempts_before[kind]``."""

    # -- throttling -------------------------------------------------------------------------

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
        """Atomically count one attempt of ``kind`` unless a bucket is at its limit.

        Returns None when the attempt was counted, else (counting nothing) the time of the
        oldest attempt after ``since`` in a full bucket.
        """

    def return_attempt(self, *, kind: str, subject: str, address: str, at: float) -> None:
        """Uncount one attempt that :meth:`take_attempt` counted at ``at``.

        The attempt is this subject's from this address, and its request was shed before it
        did anything. Nothing happens when none is left."""
