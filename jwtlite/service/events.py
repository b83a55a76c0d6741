"""The one way the service reports what happened: typed events, handed to subscribers.

:class:`AuthService <jwtlite.service.auth.AuthService>` and the account rules call one method
of :class:`Events` at the exact point where a login succeeds, fails or is throttled (so does
the password check of a password change or an account deletion), a user registers or is
throttled, a token is refreshed, a reused refresh token revokes its family, a password
changes, sessions end, a CSRF check refuses, the store fails, or a password hash starts and
finishes. They know nothing of who listens. Two subscribers exist: the audit log
(:mod:`jwtlite.service.audit`, one JSON line per security event) and the Prometheus metrics
(``jwtlite.web.metrics``, only when ``METRICS`` is on); any object with a ``notify(event)``
method can be a third.

Why one seam rather than logging and counting at each point: the service layer stays free of
logging formats and of ``prometheus_client``, both consumers see exactly the same facts, and
with no subscriber an event costs one attribute test (:attr:`Events.enabled`), so the hot
paths pay nothing when nobody listens.

An event carries no secret by construction: its fields are ids, counts and fixed reason
codes, never a username as typed (it may be a mistyped password), a password, a token, a
hash or key material.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from jwtlite.service.context import current_request

__all__ = ["AUDITED", "Event", "EventName", "Events", "Subscriber"]

log = logging.getLogger("jwtlite")

Detail = str | int | bool | None


class EventName(StrEnum):
    """The stable names of events (documented in docs/guides/observability.md, "The audit log")."""

    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    LOGIN_THROTTLED = "login.throttled"
    USER_REGISTERED = "user.registered"
    REGISTRATION_THROTTLED = "registration.throttled"
    LOGOUT = "logout"
    REFRESH = "refresh"
    REUSE_DETECTED = "refresh.reuse_detected"
    PASSWORD_CHANGED = "password.changed"
    SESSIONS_ENDED = "sessions.ended"
    KEY_ROTATED = "key.rotated"
    CSRF_REFUSED = "csrf.refused"
    STORE_ERROR = "store.error"
    HASH_STARTED = "hash.started"
    HASH_FINISHED = "hash.finished"


#: The security events the audit log writes; the others (every refresh, store errors, hashes
#: in flight) are counted by the metrics only.
AUDITED = frozenset(
    {
        EventName.LOGIN_SUCCEEDED,
        EventName.LOGIN_FAILED,
        EventName.LOGIN_THROTTLED,
        EventName.USER_REGISTERED,
        EventName.REGISTRATION_THROTTLED,
        EventName.LOGOUT,
        EventName.REUSE_DETECTED,
        EventName.PASSWORD_CHANGED,
        EventName.SESSIONS_ENDED,
        EventName.KEY_ROTATED,
        EventName.CSRF_REFUSED,
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened.

    Attributes:
        name: what happened.
        time: when, as a Unix time.
        user_id: the user it concerns, when known (never guessed from a typed username).
        session_id: the session (refresh-token family) it concerns, when there is one.
        request_id: the request it happened in (None outside a request: the command line).
        client: the client's address (None outside a request).
        details: event-specific safe fields: counts, fixed reason codes, key ids.
    """

    name: EventName
    time: float
    user_id: int | None = None
    session_id: str | None = None
    request_id: str | None = None
    client: str | None = None
    details: Mapping[str, Detail] = field(default_factory=dict)


class Subscriber(Protocol):
    """Anything that wants to hear about events."""

    def notify(self, event: Event) -> None:
        """Take note of ``event``; should not raise (a raise is logged and swallowed)."""


class Events:
    """The service's event outlet: build an :class:`Event`, hand it to every subscriber.

    Args:
        subscribers: who hears the events, in order.
        clock: the events' time (Unix seconds); wall time, not the service's injectable clock,
            so audit lines show when things really happened.
    """

    def __init__(
        self, subscribers: Iterable[Subscriber] = (), *, clock: Callable[[], float] = time.time
    ) -> None:
        self._subscribers: tuple[Subscriber, ...] = tuple(subscribers)
        self._clock = clock
        #: False when no one listens: callers may skip work that only feeds events.
        self.enabled = bool(self._subscribers)

    def subscribe(self, subscriber: Subscriber) -> None:
        """Add a subscriber (at set-up time, before requests are served)."""
        self._subscribers = (*self._subscribers, subscriber)
        self.enabled = True

    def emit(
        self,
        name: EventName,
        *,
        user_id: int | None = None,
        session_id: str | None = None,
        **details: Detail,
    ) -> None:
        """Report ``name`` to every subscriber, with the current request's id and client.

        A subscriber that raises is logged and skipped: an observer must never turn a login
        that succeeded into a 500 (a refresh that rotated and then failed would leave its
        client holding a spent token).
        """
        if not self.enabled:
            return
        request = current_request()
        event = Event(
            name,
            self._clock(),
            user_id,
            session_id,
            request.request_id,
            request.client,
            details,
        )
        for subscriber in self._subscribers:
            try:
                subscriber.notify(event)
            except Exception:  # see the docstring: an observer never fails a request
                log.exception("event subscriber %r failed on %s", subscriber, name)

    # -- the typed points the service reports (one method a fact) ---------------------------

    def login_succeeded(self, user_id: int, session_id: str) -> None:
        """A login started ``session_id`` for ``user_id``."""
        self.emit(EventName.LOGIN_SUCCEEDED, user_id=user_id, session_id=session_id)

    def login_failed(
        self,
        user_id: int | None,
        reason: str,
        *,
        session_id: str | None = None,
        action: str | None = None,
    ) -> None:
        """A password check was refused.

        ``reason`` is ``unknown_user``, ``bad_password``, ``inactive_user`` or
        ``stale_password`` (right, but for a hash the user changed while it was checked);
        ``user_id`` only when the user exists.

        A login names no ``action``; the same check inside another request does
        (``password_change``, ``account_deletion``), with the caller's ``session_id``.
        """
        self.emit(
            EventName.LOGIN_FAILED,
            user_id=user_id,
            session_id=session_id,
            reason=reason,
            **_action(action),
        )

    def login_throttled(
        self,
        *,
        user_id: int | None = None,
        session_id: str | None = None,
        action: str | None = None,
    ) -> None:
        """A password check was refused by the throttle before the password was checked.

        A login (no ``user_id``: the typed username is not trusted), or ``action`` of the
        authenticated ``user_id`` and ``session_id``."""
        self.emit(
            EventName.LOGIN_THROTTLED, user_id=user_id, session_id=session_id, **_action(action)
        )

    def user_registered(self, user_id: int) -> None:
        """A user was created."""
        self.emit(EventName.USER_REGISTERED, user_id=user_id)

    def registration_throttled(self) -> None:
        """A registration was refused by its address's throttle (before any hash)."""
        self.emit(EventName.REGISTRATION_THROTTLED)

    def logout(self, user_id: int, session_id: str) -> None:
        """A session was ended by its refresh token (the blacklist endpoint)."""
        self.emit(EventName.LOGOUT, user_id=user_id, session_id=session_id)

    def refreshed(self, outcome: str) -> None:
        """A refresh ended: ``ok``, ``grace`` or ``refused``.

        ``grace`` is a second tab inside the grace period."""
        self.emit(EventName.REFRESH, outcome=outcome)

    def reuse_detected(self, user_id: int, session_id: str) -> None:
        """A spent refresh token came back: its whole family (session) was revoked."""
        self.emit(
            EventName.REUSE_DETECTED, user_id=user_id, session_id=session_id, family_revoked=True
        )

    def password_changed(
        self, user_id: int, *, sessions_ended: int, session_id: str | None = None
    ) -> None:
        """A password changed, ending ``sessions_ended`` sessions.

        ``session_id`` is the new session of the caller (None when set from the command
        line)."""
        self.emit(
            EventName.PASSWORD_CHANGED,
            user_id=user_id,
            session_id=session_id,
            sessions_ended=sessions_ended,
        )

    def sessions_ended(
        self, user_id: int, *, reason: str, count: int, session_id: str | None = None
    ) -> None:
        """Sessions were revoked by their owner or an operator.

        ``reason`` is ``logout_all``, ``session_deleted``, ``account_deleted`` or
        ``command_line``."""
        self.emit(
            EventName.SESSIONS_ENDED,
            user_id=user_id,
            session_id=session_id,
            reason=reason,
            sessions_ended=count,
        )

    def key_rotated(
        self,
        *,
        kid: str,
        previous_kid: str | None = None,
        source: str = "rotate-key",
        activates: int | None = None,
    ) -> None:
        """A new signing key took over (``kid``; ``previous_kid`` keeps verifying).

        ``source`` is ``rotate-key`` where the operator rotated, ``reload`` where an instance
        picked the new key up from its key directory; ``activates`` is when it starts signing
        (Unix seconds; a staged rotation's is in the future)."""
        self.emit(
            EventName.KEY_ROTATED,
            kid=kid,
            previous_kid=previous_kid,
            source=source,
            activates=activates,
        )

    def csrf_refused(self, reason: str) -> None:
        """A CSRF check refused a request.

        ``reason`` is ``missing``, ``incorrect`` or ``origin``."""
        self.emit(EventName.CSRF_REFUSED, reason=reason)

    def store_error(self) -> None:
        """The store failed (the request answered 503, or a background purge failed)."""
        self.emit(EventName.STORE_ERROR)

    def hashes_in_flight(self, delta: int) -> None:
        """A password hash entered (``delta`` 1) or left (-1) the hashing pool."""
        self.emit(EventName.HASH_STARTED if delta > 0 else EventName.HASH_FINISHED)


def _action(action: str | None) -> dict[str, Detail]:
    """The ``action`` detail when there is one (a login's events keep their fields)."""
    return {} if action is None else {"action": action}
