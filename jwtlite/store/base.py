"""What every store offers: the :class:`Store` protocol and the records it returns.

The service is written against this protocol alone; a backend (``jwtlite.store.sqlite``,
``jwtlite.store.postgres``) implements it and is the only code that speaks SQL. Records are
frozen dataclasses, so nothing above the store can change a row by mutating what it was
handed.

Every backend raises :class:`~jwtlite.errors.StoreUnavailableError` for any driver error
that escapes a method, so the service fails closed whatever the backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = ["PURGE_BATCH", "AttemptLimits", "RefreshRecord", "Store", "User"]

#: Rows a backend deletes per statement when purging, so no purge holds a lock for long.
PURGE_BATCH = 500


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
    token can revoke the whole line.
    """

    jti: str
    user_id: int
    family: str
    issued_at: int
    expires_at: int
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


class Store(Protocol):
    """Users, refresh-token records and login-failure counters, safe to share between threads.

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
        """Insert a user; return it, or None when ``username_key`` or ``username_skeleton``
        is taken (a unique index decides, so concurrent registrations make one row)."""

    def get_user(self, user_id: int) -> User | None:
        """Return the user with this id, or None."""

    def get_user_by_key(self, username_key: str) -> User | None:
        """Return the user whose case-insensitive key is ``username_key``, or None."""

    def set_active(self, username_key: str, active: bool) -> bool:
        """Activate or deactivate a user; False when there is no such user."""

    def delete_user(self, user_id: int) -> bool:
        """Delete a user and their refresh tokens; False when there was none."""

    # -- refresh tokens ---------------------------------------------------------------------

    def add_refresh_token(self, record: RefreshRecord) -> None:
        """Record a newly issued refresh token."""

    def get_refresh_token(self, jti: str) -> RefreshRecord | None:
        """Return the record of the refresh token ``jti``, or None."""

    def get_refresh_token_and_user(self, jti: str) -> tuple[RefreshRecord, User] | None:
        """The record of refresh token ``jti`` and its user in one lookup, or None."""

    def start_session(
        self,
        user_id: int,
        *,
        subject: str,
        address: str,
        now: float,
        refresh: RefreshRecord,
        password_hash: str | None = None,
    ) -> None:
        """Record a successful login atomically: forget this subject's login attempts from
        this address, set ``last_login`` (and a rehashed password when given), store the
        first refresh token."""

    def rotate_refresh_token(self, old_jti: str, new: RefreshRecord) -> bool:
        """Spend ``old_jti`` and record ``new`` atomically; False (nothing changed) when the
        old token was not active. Of concurrent rotations of one token exactly one wins."""

    def revoke_family(self, family: str) -> int:
        """Blacklist every token of ``family``; return how many were not blacklisted yet."""

    def blacklist_refresh_token(self, jti: str) -> bool:
        """Blacklist one refresh token; False when there is no record of it."""

    def purge_expired(self, *, tokens_before: float, attempts_before: Mapping[str, float]) -> int:
        """Delete refresh tokens with ``expires_at <= tokens_before`` and attempts of each
        kind with ``at <= attempts_before[kind]``, in small batches; return the rows deleted."""

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
