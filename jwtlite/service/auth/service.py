"""The authentication service: one facade over the rules of accounts, tokens and cookies.

Knows users, tokens and throttling; knows nothing of HTTP or SQL text. Request bodies arrive
as plain mappings and leave as plain dicts; every refusal is an exception from
:mod:`jwtlite.errors` or :mod:`jwtlite.service.errors`, which ``jwtlite.web.app`` maps to
responses. The rules themselves live beside it: registration and login in
:mod:`~jwtlite.service.auth.login`, verify, refresh and logout in
:mod:`~jwtlite.service.auth.refresh`, over the shared
:class:`~jwtlite.service.auth.parts.ServiceParts`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jwtlite.errors import JWTError
from jwtlite.keys import Key, KeySet
from jwtlite.service.audit import AuditLog
from jwtlite.service.auth.housekeeping import Housekeeping
from jwtlite.service.auth.login import LoginRules
from jwtlite.service.auth.parts import ServiceParts
from jwtlite.service.auth.refresh import RefreshRules
from jwtlite.service.context import NO_REQUEST, request_context
from jwtlite.service.credentials.passwords import PasswordHasher
from jwtlite.service.csrf import CSRF_MISSING, IssuedToken
from jwtlite.service.errors import AccessTokenRejectedError, CSRFError, InactiveUserError
from jwtlite.service.events import Events
from jwtlite.service.sessions import iso8601
from jwtlite.service.settings import Settings
from jwtlite.service.signing import load_signing_keys
from jwtlite.service.signing.keyring import KeyRing, Ring
from jwtlite.service.tokens import ACCESS, ClaimsFunction, session_of
from jwtlite.store import Store, User

__all__ = ["AuthService", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an accepted access token speaks for: an active user, in a live session."""

    user: User
    session_id: str


class AuthService:
    """The service's rules over a store, a key set, a password hasher and a clock.

    Args:
        settings: lifetimes, claim checks, rotation and throttling limits.
        store: the user and token store.
        keys: a key, a key set that signs with its current key and verifies by ``kid``, or
            a key ring that follows a key directory (``KEYS_DIR``).
        hasher: hashes and verifies passwords.
        clock: returns the current Unix time; injected so tests control expiry.
        claims: a function of the :class:`~jwtlite.store.User` returning extra claims for
            access tokens, called at login and at every refresh; a reserved claim (see
            :data:`~jwtlite.service.tokens.RESERVED_CLAIMS`) or a value JSON cannot carry
            raises :class:`~jwtlite.service.errors.ConfigurationError` at the first call.
        events: where the service reports logins, refreshes, revocations and the other
            events of :mod:`jwtlite.service.events`; by default to the audit log alone.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        keys: Key | KeySet | KeyRing,
        hasher: PasswordHasher,
        clock: Callable[[], float] = time.time,
        *,
        claims: ClaimsFunction | None = None,
        events: Events | None = None,
    ) -> None:
        events = events if events is not None else Events([AuditLog()])
        self.parts = ServiceParts.build(
            settings, store, keys, hasher, clock, claims=claims, events=events
        )
        # The parts the web layer reads (the settings, the CSRF key, the events feed ...).
        self.settings = settings
        self.store = store
        self.keys = keys
        self.hasher = hasher
        self.clock = clock
        self.events = events
        self.tokens = self.parts.tokens
        self.throttle = self.parts.throttle
        self.csrf = self.parts.csrf
        self.users = self.parts.users
        self.tokens.keyring.on_change = self._keys_reloaded
        housekeeping = Housekeeping(self.parts)
        self._logins = LoginRules(self.parts, housekeeping)
        self._refreshes = RefreshRules(self.parts, housekeeping)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
        claims: ClaimsFunction | None = None,
        events: Events | None = None,
    ) -> AuthService:
        """Build the service that ``settings`` describe (opening the store if not given)."""
        events = events if events is not None else Events([AuditLog()])
        hasher = PasswordHasher(
            memory_kib=settings.password_hash_memory_kib,
            iterations=settings.password_hash_iterations,
            lanes=settings.password_hash_lanes,
            concurrency=settings.password_hash_concurrency,
            in_flight=events.hashes_in_flight,
        )
        keys = load_signing_keys(settings)
        return cls(
            settings,
            store if store is not None else settings.open_store(),
            keys,
            hasher,
            clock or time.time,
            claims=claims,
            events=events,
        )

    # -- accounts and tokens ---------------------------------------------------------------

    def register(self, data: Mapping[str, Any], *, address: str | None) -> dict[str, Any]:
        """Create a user from ``{"username", "password", "email"?}``.

        The rules and refusals: :meth:`LoginRules.register
        <jwtlite.service.auth.login.LoginRules.register>`.
        """
        return self._logins.register(data, address=address)

    def login(
        self, data: Mapping[str, Any], *, address: str, user_agent: str | None = None
    ) -> dict[str, str]:
        """Check ``{"username", "password"}``, start a session and return ``{"refresh", "access"}``.

        The rules and refusals: :meth:`LoginRules.login
        <jwtlite.service.auth.login.LoginRules.login>`.
        """
        return self._logins.login(data, address=address, user_agent=user_agent)

    def verify(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``{"token"}``: what ``/accounts/me/`` or refresh would accept.

        The rules and refusals: :meth:`RefreshRules.verify
        <jwtlite.service.auth.refresh.RefreshRules.verify>`.
        """
        return self._refreshes.verify(data)

    def refresh(
        self,
        data: Mapping[str, Any],
        *,
        address: str = "",
        user_agent: str | None = None,
    ) -> dict[str, str]:
        """Exchange ``{"refresh"}`` for ``{"access"}`` (and a new ``"refresh"`` with rotation).

        The rules and refusals: :meth:`RefreshRules.refresh
        <jwtlite.service.auth.refresh.RefreshRules.refresh>`.
        """
        return self._refreshes.refresh(data, address=address, user_agent=user_agent)

    def blacklist(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Log out: refuse ``{"refresh"}`` and every token of its session from now on.

        The rules and refusals: :meth:`RefreshRules.blacklist
        <jwtlite.service.auth.refresh.RefreshRules.blacklist>`.
        """
        return self._refreshes.blacklist(data)

    def authenticate(self, token: str) -> dict[str, Any]:
        """The user an access token names, as the public ``me`` document.

        Raises:
            AccessTokenRejectedError: the token is not a valid access token, or its session
                was revoked.
            InactiveUserError: its user was deleted or deactivated.
        """
        user = self.authenticate_access(token).user
        return {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "date_joined": iso8601(user.date_joined),
            "last_login": iso8601(user.last_login) if user.last_login is not None else None,
        }

    def authenticate_access(self, token: str) -> Principal:
        """The active user of a valid access token and the id of its live session.

        The user is read from the store; the session's state comes through the per-process
        cache (see :mod:`jwtlite.service.userstate`).

        Raises:
            AccessTokenRejectedError: not a valid access token, or its session is revoked
                or unknown.
            InactiveUserError: its user was deleted (``user_not_found``) or deactivated.
        """
        try:
            claims = self.tokens.decode(token, expected_type=ACCESS)
        except JWTError as exc:
            raise AccessTokenRejectedError(exc) from exc
        user = self.store.get_user(int(claims["user_id"]))
        if user is None:
            raise InactiveUserError("user_not_found")
        if not user.is_active:
            raise InactiveUserError("user_inactive")
        session_id = session_of(claims)
        try:
            self.parts.check_session(user.id, session_id, claims["jti"])
        except JWTError as exc:
            raise AccessTokenRejectedError(exc) from exc
        return Principal(user, session_id)

    # -- cookies (see jwtlite.service.csrf) and keys ----------------------------------------

    def describe(self, token: str) -> IssuedToken:
        """Type, expiry, lifetime and CSRF value of a token this service issued, for its cookie.

        Raises:
            JWTError: the token is not valid (never for one just issued).
        """
        claims = self.tokens.decode(token)
        token_type, jti, exp = claims["token_type"], claims["jti"], int(claims["exp"])
        csrf = self.csrf.value(token_type=token_type, jti=jti)
        return IssuedToken(token, token_type, exp, exp - int(claims["iat"]), csrf)

    def check_csrf(self, token: str, presented: str | None) -> None:
        """Refuse a request authenticated by the cookie ``token`` without that token's CSRF value.

        A missing value is refused before the token is even decoded; a token that does not
        decode is refused as it would be anywhere else.

        Raises:
            CSRFError: the value is missing or is not this token's.
            JWTError: the token is invalid or expired.
        """
        if not presented:
            raise CSRFError(CSRF_MISSING)
        claims = self.tokens.decode(token)
        self.csrf.check(presented, token_type=claims["token_type"], jti=claims["jti"])
        # Refusals are reported where every CSRFError becomes a 403 (the web layer's error
        # handler), which also sees the origin checks made there.

    def bound_cookie(self, tokens: Sequence[str], presented: str | None) -> str:
        """Of the ``tokens`` of one cookie name, the one ``presented`` is the CSRF value of.

        Usually there is one. Several mean cookie tossing (a sibling host planted cookies of
        the same name, which browsers send first): each is looked at without a key operation
        to find the one the value binds, and only that one is checked in full, so a planted
        cookie neither locks the user out nor stands in for theirs. With none bound, the first
        one is checked and its refusal raised, as for a single cookie.

        Raises:
            CSRFError: the value is missing or is no token's.
            JWTError: the token checked is invalid or expired.
        """
        if not presented:
            raise CSRFError(CSRF_MISSING)
        chosen = tokens[0]
        if len(tokens) > 1:
            chosen = next((t for t in tokens if self.csrf.binds(presented, t)), chosen)
        self.check_csrf(chosen, presented)
        return chosen

    def _keys_reloaded(self, previous: Ring, ring: Ring) -> None:
        """Report a new signing key this instance picked up from its key directory.

        Outside any request's context: whichever request found the reload due (its id and
        address are the client's to choose) did not cause it.
        """
        if ring.current_kid is None or ring.current_kid == previous.current_kid:
            return
        token = request_context.set(NO_REQUEST)
        try:
            self.events.key_rotated(
                kid=ring.current_kid,
                # The key that was signing: not a staged key a rotation cancelled.
                previous_kid=previous.signing_kid_at(self.clock()),
                source="reload",
                activates=ring.activates,
            )
        finally:
            request_context.reset(token)

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify our tokens: the current and the retired ones.

        A staged current key is published from its rotation on, before it signs; HMAC keys
        publish none. Checks the key directory first (one ``stat``, never waiting on a reload in
        progress)."""
        return self.tokens.keyring.published().jwks

    def signing_algorithms(self) -> list[str]:
        """The algorithms of the keys that verify our tokens (sorted), as the JWKS lists them.

        With an HMAC key, which publishes nothing, that key's algorithm."""
        published = {key["alg"] for key in self.jwks()["keys"] if "alg" in key}
        return sorted(published) or [self.settings.algorithm]

    def health(self) -> dict[str, str]:
        """``{"status": "ok"}`` when the store answers; raises StoreUnavailableError if not."""
        self.store.ping()
        return {"status": "ok"}
