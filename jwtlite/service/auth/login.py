"""Registration and login: who may have an account, and who may start a session.

Both count their attempt in the throttle *before* they queue for a password hash
(:mod:`jwtlite.service.admission`), so the limits are exact however many requests arrive at
once: of 40 concurrent wrong passwords, exactly ``LOGIN_MAX_FAILURES`` are checked and the
rest are answered 429 without a hash. A registration of a name that is taken, or that another
request is registering at that moment, is answered 400 before it queues.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jwtlite.service.auth.housekeeping import Housekeeping
from jwtlite.service.auth.parts import ServiceParts
from jwtlite.service.credentials import validators
from jwtlite.service.credentials.confusables import username_skeleton
from jwtlite.service.errors import AuthenticationError, ThrottledError, ValidationError
from jwtlite.service.fields import Fields
from jwtlite.service.throttle import address_group
from jwtlite.store import User

__all__ = ["LoginRules"]

_USERNAME_TAKEN = "A user with that username already exists."


class _NamesInFlight:
    """The username keys and skeletons this process is registering right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: set[str] = set()

    @contextlib.contextmanager
    def claim(self, *names: str) -> Iterator[bool]:
        """Hold ``names`` for the body of the ``with``; yields False when one is held."""
        with self._lock:
            free = self._names.isdisjoint(names)
            if free:
                self._names.update(names)
        try:
            yield free
        finally:
            if free:
                with self._lock:
                    self._names.difference_update(names)


class LoginRules:
    """Register users and log them in, throttled and at the cost of one hash."""

    def __init__(self, parts: ServiceParts, housekeeping: Housekeeping) -> None:
        self._parts = parts
        self._housekeeping = housekeeping
        self._registering = _NamesInFlight()

    def register(self, data: Mapping[str, Any], *, address: str | None) -> dict[str, Any]:
        """Create a user from ``{"username", "password", "email"?}``.

        Returns ``{"id", "username", "email"}``. Raises :class:`ValidationError` listing
        every broken rule (duplicate or look-alike username, weak password, bad email, bad
        username), or :class:`ThrottledError` when ``address`` registered too often (checked
        before the password is hashed, so a refused registration costs no hash). ``address``
        None is a trusted local caller (the command line), never throttled.
        """
        fields = Fields(data)
        username = validators.normalize_username(fields.text("username", trim=False))
        password = fields.text("password", trim=False)
        email = validators.normalize_email(fields.text("email", required=False, allow_blank=True))
        if "username" not in fields.errors:
            fields.extend("username", validators.username_problems(username))
        if "email" not in fields.errors:
            fields.extend("email", validators.email_problems(email))
        if "password" not in fields.errors:
            # Compared only with a username and e-mail that passed their own rules: a
            # refused one is not kept, and a long one would make the comparison slow.
            fields.extend(
                "password",
                validators.password_problems(
                    password,
                    username="" if "username" in fields.errors else username,
                    email="" if "email" in fields.errors else email,
                ),
            )
        fields.check()
        key, skeleton = validators.username_key(username), username_skeleton(username)
        with contextlib.ExitStack() as counted:
            if address is not None:
                attempt = self._parts.throttle.registration_attempt(address, self._parts.clock())
                _enter_counted(counted, attempt, self._parts.events.registration_throttled)
            # Only then is a taken name told apart (the throttle bounds that oracle); a name
            # another request is registering right now is taken too, and neither waits.
            free = counted.enter_context(self._registering.claim("k" + key, "s" + skeleton))
            if not free or self._parts.store.username_taken(key, skeleton):
                raise ValidationError({"username": [_USERNAME_TAKEN]})
            with self._parts.admission(None if address is None else address_group(address)):
                password_hash = self._parts.hasher.hash(password)
            user = self._parts.store.create_user(
                username=username,
                username_key=key,
                username_skeleton=skeleton,
                email=email,
                password_hash=password_hash,
                now=self._parts.clock(),
            )
        if user is None:  # registered by another instance meanwhile
            raise ValidationError({"username": [_USERNAME_TAKEN]})
        self._parts.events.user_registered(user.id)
        return {"id": user.id, "username": user.username, "email": user.email}

    def login(
        self, data: Mapping[str, Any], *, address: str, user_agent: str | None = None
    ) -> dict[str, str]:
        """Check ``{"username", "password"}``, start a session and return ``{"refresh", "access"}``.

        Unknown user, wrong password and inactive user are one error that takes one time.
        ``address`` and ``user_agent`` describe the client in the session list.

        Raises:
            ValidationError: a field is missing or not a string.
            BusyError: no hashing slot came free in time, or this address holds its share
                (the attempt is not counted).
            ThrottledError: too many recent failures for this username or address.
            AuthenticationError: the credentials do not name an active user, or the user's
                password changed (or the user went) while they were checked.
        """
        fields = Fields(data)
        # Trimmed as DRF's CharField does, so a whitespace-only username is a blank field
        # (400), not a failed login counted against the username "".
        username = validators.normalize_username(fields.text("username"))
        password = fields.text("password", trim=False)
        fields.check()
        if len(username) > validators.USERNAME_MAX_LENGTH:
            # No account can have this name: refused at once, before the throttle's hash of
            # a name that may be 64 KB and before any password hash.
            self._parts.events.login_failed(None, "unknown_user")
            raise AuthenticationError("No active account found with the given credentials")
        key = validators.username_key(username)
        now = self._parts.clock()
        subject = self._parts.throttle.subject(key)
        with contextlib.ExitStack() as counted:
            attempt = self._parts.throttle.login_attempt(subject, address, now)
            _enter_counted(counted, attempt, self._parts.events.login_throttled)
            with self._parts.admission(address_group(address)):
                user, rehashed = self._check_credentials(key, password)
            # Read again: the wait for a hash must not eat into the new tokens' lifetimes.
            now = self._parts.clock()
            pair, session, record = self._parts.new_session_tokens(
                user, now, address=address, user_agent=user_agent
            )
            # Still inside the attempt: starting the session forgets it, and logins from
            # this address that wait for it must then find it gone.
            started = self._parts.store.start_session(
                user.id,
                verified_hash=user.password_hash,
                subject=subject,
                address=address_group(address),
                now=now,
                refresh=record,
                session=session,
                password_hash=rehashed,
            )
        if not started:
            # The password was changed (or the user deactivated or deleted) while this login
            # checked it: the old password opens nothing once the change is made.
            self._parts.events.login_failed(user.id, "stale_password")
            raise AuthenticationError("No active account found with the given credentials")
        self._parts.events.login_succeeded(user.id, session.id)
        self._housekeeping.now_and_then(now)
        return pair

    def _check_credentials(self, key: str, password: str) -> tuple[User, str | None]:
        """The active user these credentials name, and the password's new hash, if any.

        The new hash is there when the stored hash's parameters changed. Any other outcome is
        :class:`AuthenticationError`."""
        user = self._parts.store.get_user_by_key(key)
        if user is None:
            self._parts.hasher.dummy_verify(password)  # the same cost as a real verification
            valid = False
        else:
            # Verified even for an inactive user, so that refusal takes the same time.
            valid = self._parts.hasher.verify(password, user.password_hash) and user.is_active
        if user is None or not valid:
            self._parts.events.login_failed(*_failure(user))
            raise AuthenticationError("No active account found with the given credentials")
        rehashed = None
        if self._parts.hasher.needs_rehash(user.password_hash):
            rehashed = self._parts.hasher.hash(password)
        return user, rehashed


def _enter_counted(
    stack: contextlib.ExitStack,
    attempt: contextlib.AbstractContextManager[None],
    throttled: Callable[[], None],
) -> None:
    """Enter the throttle's ``attempt`` on ``stack``; report ``throttled`` when it refuses."""
    try:
        stack.enter_context(attempt)
    except ThrottledError:
        throttled()
        raise


def _failure(user: User | None) -> tuple[int | None, str]:
    """The user id (only of a user that exists) and reason code of a refused login."""
    if user is None:
        return None, "unknown_user"
    return user.id, "inactive_user" if not user.is_active else "bad_password"
