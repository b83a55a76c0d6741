"""Whether a token's user may still use it, answered mostly without a store round trip.

``POST /accounts/token/verify/`` must refuse an access token whose user was deleted or
deactivated, as ``/accounts/me/`` does, yet verifying must stay far cheaper than a refresh:
a read per verify costs what refresh costs. So each process keeps the state it last read for
a user, for at most ``USER_STATE_CACHE_SECONDS`` (default 1) by the service's clock:

* a change made through this process (deactivation, deletion) is seen at once, because the
  service forgets the user's entry when it makes the change;
* a change made by another process or instance (the CLI, a second ``serve.py`` on the same
  database) is seen within the bound, whatever the store;
* a store error is never cached: the caller fails closed.

``USER_STATE_CACHE_SECONDS=0`` reads the store on every check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from jwtlite.store import Store

__all__ = ["UserStateCache"]

# Enough for every user active within a second on a busy instance; past it the oldest
# entries go first (dicts keep insertion order), so memory stays bounded.
_MAX_ENTRIES = 65536


class UserStateCache:
    """Per-process, short-lived knowledge of which users are active.

    Args:
        store: where the truth lives.
        clock: the service's clock (Unix seconds).
        ttl: how long an entry may be used, in seconds; 0 disables the cache.
    """

    def __init__(self, store: Store, clock: Callable[[], float], *, ttl: float) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        # user id -> (is active, valid until); replaced whole, so readers never see a tear.
        self._entries: dict[int, tuple[bool, float]] = {}

    def is_active(self, user_id: int) -> bool:
        """True when the user exists and is active (as of at most ``ttl`` seconds ago).

        Raises:
            StoreUnavailableError: the store could not be read (nothing is cached).
        """
        now = self._clock()
        entry = self._entries.get(user_id)
        if entry is not None and now < entry[1]:
            return entry[0]
        user = self._store.get_user(user_id)
        active = user is not None and user.is_active
        if self._ttl > 0:
            if len(self._entries) >= _MAX_ENTRIES:
                self._evict_oldest()
            self._entries[user_id] = (active, now + self._ttl)
        return active

    def forget(self, user_id: int) -> None:
        """Drop what is known of ``user_id`` (call after changing the user)."""
        self._entries.pop(user_id, None)

    def _evict_oldest(self) -> None:
        # Another thread may empty it or change it under the iterator: then nothing to do.
        with contextlib.suppress(StopIteration, KeyError, RuntimeError):
            del self._entries[next(iter(self._entries))]
