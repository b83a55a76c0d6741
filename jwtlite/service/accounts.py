"""The account lifecycle: password change, log out everywhere, the session list, deletion.

Every endpoint here acts for a :class:`~jwtlite.service.auth.Principal`: the user and session
of an access token checked by :meth:`AuthService.authenticate_access
<jwtlite.service.auth.AuthService.authenticate_access>` (valid, of an active user, of a
session that was not revoked), before the request body is read, as DRF authenticates before
it parses. Ending sessions revokes them:
their refresh tokens are refused at once and their access tokens as soon as the per-process
cache allows (at once in this process, within ``USER_STATE_CACHE_SECONDS`` elsewhere).
The command line reaches the same rules by username, without a token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from jwtlite.service.auth import AuthService, Principal
from jwtlite.service.credentials import validators
from jwtlite.service.errors import (
    AccessTokenRejectedError,
    NotFoundError,
    ThrottledError,
    TokenRevokedError,
    ValidationError,
)
from jwtlite.service.fields import Fields
from jwtlite.service.sessions import session_document
from jwtlite.service.throttle import address_group
from jwtlite.service.tokens import SESSION_ID
from jwtlite.store import Session, User

__all__ = ["AccountService"]

WRONG_OLD_PASSWORD = "Your old password was entered incorrectly. Please enter it again."
WRONG_PASSWORD = "Your password was entered incorrectly. Please enter it again."
#: The ``action`` of the login events a password check outside a login reports.
PASSWORD_CHANGE = "password_change"
ACCOUNT_DELETION = "account_deletion"


class AccountService:
    """The account rules, over the pieces of an :class:`AuthService`.

    Args:
        auth: the service whose shared parts (store, hasher, throttle, tokens, caches) are used.
    """

    def __init__(self, auth: AuthService) -> None:
        self._parts = auth.parts
        self._store = auth.store

    # -- for an authenticated caller --------------------------------------------------------

    def change_password(
        self,
        principal: Principal,
        data: Mapping[str, Any],
        *,
        address: str,
        user_agent: str | None = None,
    ) -> dict[str, str]:
        """Change the password from ``{"old_password", "new_password"}``, ending every session.

        Every session of the user ends and a new one starts for the caller, whose
        ``{"refresh", "access"}`` pair is returned (so the device that changed the password
        stays in).

        The old password is checked as a login is: an attempt is counted for (user, address)
        before the hash is verified, and forgotten when it was right; a wrong one or a
        throttled one is reported as a login's (``login.failed``, ``login.throttled``, with
        ``action`` ``password_change``).

        Raises:
            ValidationError: a field is missing, the new password breaks the registration
                rules (``new_password``), or the old password is wrong (``old_password``).
            ThrottledError: too many attempts for this user from this address.
            AccessTokenRejectedError: the password changed while the old one was checked
                (another device, a reset), or the user is gone: either ended this session.
        """
        user = principal.user
        fields = Fields(data)
        old = fields.text("old_password", trim=False)
        new = fields.text("new_password", trim=False)
        if "new_password" not in fields.errors:
            fields.extend(
                "new_password",
                validators.password_problems(new, username=user.username, email=user.email),
            )
        fields.check()
        with self._password_checked(
            principal, old, address=address, field="old_password", action=PASSWORD_CHANGE
        ) as subject:
            password_hash = self._parts.hasher.hash(new)
        now = self._parts.clock()
        pair, session, record = self._parts.new_session_tokens(
            user, now, address=address, user_agent=user_agent
        )
        changed = self._store.change_password(
            user.id,
            password_hash=password_hash,
            session=session,
            refresh=record,
            subject=subject,
            address=address_group(address),
            verified_hash=user.password_hash,
        )
        self._parts.users.forget_user(user.id)
        if changed is None:
            # Deleted, or the password changed (another device, a reset) while this request
            # checked the old one; that change ended the caller's session too.
            raise AccessTokenRejectedError(TokenRevokedError(principal.session_id))
        self._parts.events.password_changed(user.id, sessions_ended=changed, session_id=session.id)
        return pair

    def logout_all(self, principal: Principal) -> dict[str, Any]:
        """End every session of the caller's user (the caller's too); answer ``{}``."""
        user = principal.user
        count = self._store.end_user_sessions(user.id, "revoked")
        self._parts.users.forget_user(user.id)
        self._parts.events.sessions_ended(
            user.id, reason="logout_all", count=count, session_id=principal.session_id
        )
        return {}

    def sessions(self, principal: Principal) -> list[dict[str, Any]]:
        """The live sessions of the caller's user, newest first.

        ``current`` marks the one the caller's access token belongs to."""
        found = self._store.list_sessions(principal.user.id, now=self._parts.clock())
        return [session_document(session, current=principal.session_id) for session in found]

    def end_session(self, principal: Principal, session_id: str) -> None:
        """End (revoke) one session of the caller's user.

        Raises:
            NotFoundError: ``session_id`` is not an id of ours, is unknown, another user's,
                or already revoked: one answer, so ids cannot be probed.
        """
        user = principal.user
        if not SESSION_ID(session_id):
            raise NotFoundError("no such session")
        if not self._store.end_session(user.id, session_id, "revoked"):
            raise NotFoundError("no such session")
        self._parts.users.forget_session(user.id, session_id)
        self._parts.events.sessions_ended(
            user.id, reason="session_deleted", count=1, session_id=session_id
        )

    def delete_account(
        self, principal: Principal, data: Mapping[str, Any], *, address: str
    ) -> None:
        """Delete the caller's user, with every session and token, given ``{"password"}``.

        The password is checked, counted and reported as a login's (``action``
        ``account_deletion``).

        Raises:
            ValidationError: the password is missing or wrong (``password``).
            ThrottledError: too many attempts for this user from this address.
            AccessTokenRejectedError: the password changed while it was checked, or the
                user is gone (the caller's session ended with either).
        """
        user = principal.user
        fields = Fields(data)
        password = fields.text("password", trim=False)
        fields.check()
        with self._password_checked(
            principal, password, address=address, field="password", action=ACCOUNT_DELETION
        ):
            pass
        sessions = len(self._store.list_sessions(user.id, now=self._parts.clock()))
        deleted = self._store.delete_user(user.id, verified_hash=user.password_hash)
        self._parts.users.forget_user(user.id)
        if not deleted:
            # The password changed while this request checked the old one (that change
            # ended the caller's session), or another request deleted the user first.
            raise AccessTokenRejectedError(TokenRevokedError(principal.session_id))
        self._parts.events.sessions_ended(user.id, reason="account_deleted", count=sessions)

    # -- by username (the command line) -----------------------------------------------------

    def close(self) -> None:
        """Close the store (the command line's service is its only user)."""
        self._store.close()

    def user_sessions(self, username: str) -> list[Session]:
        """The live sessions of ``username``, newest first.

        Raises:
            NotFoundError: no such user.
        """
        user = self._user(username)
        return self._store.list_sessions(user.id, now=self._parts.clock())

    def end_user_sessions(self, username: str) -> int:
        """Revoke every session of ``username``; return how many there were."""
        user = self._user(username)
        count = self._store.end_user_sessions(user.id, "revoked")
        self._parts.users.forget_user(user.id)
        self._parts.events.sessions_ended(user.id, reason="command_line", count=count)
        return count

    def set_password(self, username: str, password: str) -> int:
        """Set the password of ``username`` and end every session of theirs.

        The registration rules apply. Returns how many sessions ended.

        Raises:
            NotFoundError: no such user.
            ValidationError: the password breaks a rule (``password``).
        """
        user = self._user(username)
        problems = validators.password_problems(password, username=user.username, email=user.email)
        if problems:
            raise ValidationError({"password": problems})
        password_hash = self._parts.hasher.hash(password)
        changed = self._store.change_password(user.id, password_hash=password_hash)
        self._parts.users.forget_user(user.id)
        if changed is None:
            raise NotFoundError(f"no user named {username!r}")
        self._parts.events.password_changed(user.id, sessions_ended=changed)
        return changed

    # -- internals --------------------------------------------------------------------------

    def _user(self, username: str) -> User:
        key = validators.username_key(validators.normalize_username(username))
        user = self._store.get_user_by_key(key)
        if user is None:
            raise NotFoundError(f"no user named {username!r}")
        return user

    @contextlib.contextmanager
    def _password_checked(
        self, principal: Principal, password: str, *, address: str, field: str, action: str
    ) -> Iterator[str]:
        """Count an attempt at the principal's user from ``address``, then verify ``password``.

        The check runs in a hashing slot, held for the body (which may hash the new one); the
        throttle's subject is yielded. The attempt is forgotten by the caller's store change,
        and taken back when the request is shed. A refusal is reported exactly as a login's,
        naming ``action``."""
        user, events = principal.user, self._parts.events
        throttle = self._parts.throttle
        subject = throttle.subject(validators.username_key(user.username))
        with contextlib.ExitStack() as counted:
            try:
                counted.enter_context(throttle.login_attempt(subject, address, self._parts.clock()))
            except ThrottledError:
                events.login_throttled(
                    user_id=user.id, session_id=principal.session_id, action=action
                )
                raise
            counted.enter_context(self._parts.admission(address_group(address)))
            if not self._parts.hasher.verify(password, user.password_hash):
                events.login_failed(
                    user.id, "bad_password", session_id=principal.session_id, action=action
                )
                message = WRONG_OLD_PASSWORD if field == "old_password" else WRONG_PASSWORD
                raise ValidationError({field: [message]})
            yield subject
