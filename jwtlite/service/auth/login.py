"""Registration and login: who may have an account, and who may start a session."""

from __future__ import annotations

from collections.abc import Mapping
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


class LoginRules:
    """Register users and log them in, throttled and at the cost of one hash."""

    def __init__(self, parts: ServiceParts, housekeeping: Housekeeping) -> None:
        self._parts = parts
        self._housekeeping = housekeeping

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
        with self._parts.hasher.admission(None if address is None else address_group(address)):
            if address is not None:
                self._take_registration(address)
            password_hash = self._parts.hasher.hash(password)
        user = self._parts.store.create_user(
            username=username,
            username_key=validators.username_key(username),
            username_skeleton=username_skeleton(username),
            email=email,
            password_hash=password_hash,
            now=self._parts.clock(),
        )
        if user is None:
            raise ValidationError({"username": [_USERNAME_TAKEN]})
        self._parts.events.user_registered(user.id)
        return {"id": user.id, "username": user.username, "email": user.email}

    def _take_registration(self, address: str) -> None:
        try:
            self._parts.throttle.take_registration(address, self._parts.clock())
        except ThrottledError:
            self._parts.events.registration_throttled()
            raise

    def login(
        self, data: Mapping[str, Any], *, address: str, user_agent: str | None = None
    ) -> dict[str, str]:
        """Check ``{"username", "password"}``, start a session and return
        ``{"refresh", "access"}``.

        Unknown user, wrong password and inactive user are one error that takes one time.
        ``address`` and ``user_agent`` describe the client in the session list.

        Raises:
            ValidationError: a field is missing or not a string.
            BusyError: too many password hashes are in flight (nothing was counted).
            ThrottledError: too many recent failures for this username or address.
            AuthenticationError: the credentials do not name an active user.
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
        with self._parts.hasher.admission(address_group(address)):
            user, rehashed = self._check_credentials(key, password, subject, address, now)
        pair, session, record = self._parts.new_session_tokens(
            user, now, address=address, user_agent=user_agent
        )
        self._parts.store.start_session(
            user.id,
            subject=subject,
            address=address_group(address),
            now=now,
            refresh=record,
            session=session,
            password_hash=rehashed,
        )
        self._parts.events.login_succeeded(user.id, session.id)
        self._housekeeping.now_and_then(now)
        return pair

    def _check_credentials(
        self, key: str, password: str, subject: str, address: str, now: float
    ) -> tuple[User, str | None]:
        """The active user these credentials name, and the password's new hash when its
        parameters changed; :class:`AuthenticationError` for any other outcome."""
        # Counted before the password is checked (atomically with the check of the limits),
        # and forgotten on success: parallel guesses see each other at once instead of all
        # slipping through during the tens of milliseconds a hash takes.
        try:
            self._parts.throttle.take_login(subject, address, now)
        except ThrottledError:
            self._parts.events.login_throttled()
            raise
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


def _failure(user: User | None) -> tuple[int | None, str]:
    """The user id (only of a user that exists) and reason code of a refused login."""
    if user is None:
        return None, "unknown_user"
    return user.id, "inactive_user" if not user.is_active else "bad_password"
