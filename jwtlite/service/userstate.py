"""Whether an access token's user and session still count, mostly without a store round trip.

An access token is refused once its user is deleted or deactivated, or once its session was
revoked ("log out everywhere", a password change, its owner ending it from the session list,
reuse detection), wherever it is checked: ``/accounts/me/``, the session endpoints and
``POST /accounts/token/verify/``. Yet verifying must stay far cheaper than a refresh: a read
per verify costs what refresh costs. So each process keeps what it last read for a session
(one indexed read by two primary keys: the user's state and the session's), for at most
``USER_STATE_CACHE_SECONDS`` (default 1) by the service's clock:

* a change made through this process (deactivation, deletion, a session ended, every session
  of a user ended) is seen at once, because the service forgets the affected entries when it
  makes the change;
* a change made by another process or instance (the CLI, a second ``serve.py`` on the same
  database) is seen within the bound, whatever the store;
* a store error is never cached: the caller fails closed.

``USER_STATE_CACHE_SECONDS=0`` reads the store on every check.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable

from jwtlite.store import Store

__all__ = ["SessionCheck", "UserStateCache"]

# Enough for every user active within a second on a busy instance; past it the oldest
# entries go first (dicts keep insertion order), so memory stays bounded.
_MAX_ENTRIES = 65536
# Sessions remembered per user; one user logging in a thousand times cannot grow the cache.
_MAX_SESSIONS_PER_USER = 64


class SessionCheck(enum.Enum):
    """What the store says of an access token's user and session."""

    LIVE = "live"  # the user is active and the session not revoked
    USER_INACTIVE = "user_inactive"  # the user is deactivated or deleted
    REVOKED = "revoked"  # the session was revoked
    UNKNOWN = "unknown"  # no such session of this user: not a token of ours


def _check(state: tuple[bool, str | None] | None) -> SessionCheck:
    if state is None or not state[0]:
        return SessionCheck.USER_INACTIVE
    if state[1] is None:
        return SessionCheck.UNKNOWN
    return SessionCheck.REVOKED if state[1] == "revoked" else SessionCheck.LIVE


class UserStateCache:
    """Per-process, short-lived knowledge of which users are active and which sessions live.

    Args:
        store: where the truth lives.
        clock: the service's clock (Unix seconds).
        ttl: how long an entry may be used, in seconds; 0 disables the cache.
    """

    def __init__(self, store: Store, clock: Callable[[], float], *, ttl: float) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        # user id -> {session id -> (check, valid until)}; entries are replaced whole, so
        # readers never see a tear, and forgetting a user drops all their sessions at once.
        self._entries: dict[int, dict[str, tuple[SessionCheck, float]]] = {}
        # Bumped by every forget: a read that began before a forget (and so may have seen
        # the state before the change) is not remembered.
        self._generation = 0

    def session(self, user_id: int, session_id: str) -> SessionCheck:
        """The state of ``user_id`` and their session ``session_id``, at most ``ttl`` seconds old.

        Raises:
            StoreUnavailableError: the store could not be read (nothing is cached).
        """
        now = self._clock()
        sessions = self._entries.get(user_id)
        entry = None if sessions is None else sessions.get(session_id)
        if entry is not None and now < entry[1]:
            return entry[0]
        generation = self._generation
        check = _check(self._store.session_state(user_id, session_id))
        if self._ttl > 0 and generation == self._generation:
            self._remember(user_id, session_id, (check, now + self._ttl))
        return check

    def forget_user(self, user_id: int) -> None:
        """Drop what is known of ``user_id`` and all their sessions.

        Call it after changing the user or ending all their sessions."""
        self._generation += 1
        self._entries.pop(user_id, None)

    def forget_session(self, user_id: int, session_id: str) -> None:
        """Drop what is known of one session (call after ending it)."""
        self._generation += 1
        sessions = self._entries.get(user_id)
        if sessions is not None:
            sessions.pop(session_id, None)

    def _remember(self, user_id: int, session_id: str, entry: tuple[SessionCheck, float]) -> None:
        sessions = self._entries.get(user_id)
        if sessions is None:
            if len(self._entries) >= _MAX_ENTRIES:
                self._evict_oldest()
            sessions = self._entries.setdefault(user_id, {})
        elif len(sessions) >= _MAX_SESSIONS_PER_USER:
            sessions.clear()
        sessions[session_id] = entry

    def _evict_oldest(self) -> None:
        # Another thread may empty it or change it under the iterator: then nothing to do.
        with contextlib.suppress(StopIteration, KeyError, RuntimeError):
            del self._entries[next(iter(self._entries))]
