"""Housekeeping: expired rows leave the store as the service runs."""

from __future__ import annotations

import logging

from jwtlite.service.auth.parts import ServiceParts
from jwtlite.service.settings import Settings
from jwtlite.service.throttle import LOGIN, REGISTER, TRUSTED, TRUSTED_ADDRESS_SECONDS
from jwtlite.store import Store
from jwtlite.store.errors import StoreUnavailableError

__all__ = ["Housekeeping", "purge_expired"]

log = logging.getLogger("jwtlite")

_PURGE_INTERVAL = 60.0


class Housekeeping:
    """Runs :func:`purge_expired` after a login or refresh, at most once a minute."""

    def __init__(self, parts: ServiceParts) -> None:
        self._parts = parts
        self._next = 0.0

    def now_and_then(self, now: float) -> None:
        """Purge expired rows if the last purge is a minute old (never failing the caller)."""
        # Expired rows go as the service runs, at most once a minute; a race between two
        # threads only means one extra, harmless DELETE. It runs after the request's own
        # work has committed, so its failure must not fail the request: a refresh whose
        # rotation committed but answered 503 would leave the client holding only a spent
        # token, and its retry would revoke the whole family.
        if now >= self._next:
            self._next = now + _PURGE_INTERVAL
            try:
                purge_expired(self._parts.store, self._parts.settings, now)
            except StoreUnavailableError as exc:
                self._parts.events.store_error()
                log.warning("purge of expired rows failed, will retry: %s", exc)


def purge_expired(store: Store, settings: Settings, now: float) -> int:
    """Delete what no check can use any more; return the number of rows deleted.

    A refresh token stays on record until no check could accept it (its expiry plus the
    leeway): a spent token purged inside the leeway would be refused as unknown instead of
    revoking its family. A session stays as long as an access token of it may (its expiry
    plus the leeway plus the access-token lifetime). Attempts go once they count toward no
    throttle window.
    """
    return store.purge_expired(
        tokens_before=now - settings.leeway,
        # An access token issued at the last refresh outlives its session's expiry by up to
        # its own lifetime, and must find its session until then.
        sessions_before=now - settings.leeway - settings.access_token_lifetime,
        attempts_before={
            LOGIN: now - settings.login_failure_window,
            REGISTER: now - settings.registration_window,
            TRUSTED: now - TRUSTED_ADDRESS_SECONDS,
        },
    )
