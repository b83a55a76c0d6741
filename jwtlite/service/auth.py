"""The authentication rules: register, log in, verify, refresh, blacklist, authenticate.

Knows users, tokens and throttling; knows nothing of HTTP or SQL text. Request bodies arrive
as plain mappings and leave as plain dicts; every refusal is an exception from
:mod:`jwtlite.errors`, which ``jwtlite.web.app`` maps to responses.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from jwtlite import jwt
from jwtlite.errors import (
    AccessTokenRejectedError,
    AuthenticationError,
    ConfigurationError,
    InactiveUserError,
    InvalidKeyError,
    JWTError,
    MalformedTokenError,
    TokenRevokedError,
    ValidationError,
    WrongTokenTypeError,
)
from jwtlite.keys import Key, KeySet
from jwtlite.service import validators
from jwtlite.service.confusables import username_skeleton
from jwtlite.service.fields import Fields
from jwtlite.service.keyfile import load_or_create_key_file
from jwtlite.service.passwords import PasswordHasher
from jwtlite.service.settings import Settings
from jwtlite.service.throttle import LOGIN, REGISTER, Throttle, address_group
from jwtlite.service.userstate import UserStateCache
from jwtlite.store import RefreshRecord, Store, User

__all__ = ["AuthService", "load_signing_keys", "purge_expired"]

ACCESS = "access"
REFRESH = "refresh"
_USERNAME_TAKEN = "A user with that username already exists."
_PURGE_INTERVAL = 60.0
# Claims every token we issue carries; a token without them is not ours.
_OPTIONS = jwt.Options(require=("token_type", "exp", "iat", "jti", "user_id"))
# What we put in the claims, exactly: a user id is the canonical decimal of a positive
# 64-bit row id (no sign, no leading zero: "01" is not user 1; at most 18 digits so int()
# and the drivers never overflow), a jti is 32 lower-case hex digits. Anything else,
# even correctly signed, is not ours.
_USER_ID = re.compile(r"[1-9][0-9]{0,17}").fullmatch
_JTI = re.compile(r"[0-9a-f]{32}").fullmatch


def load_signing_keys(settings: Settings) -> Key | KeySet:
    """The signing key of ``settings``: an HMAC :class:`Key`, or a one-key :class:`KeySet`
    whose ``kid`` (the key's RFC 7638 thumbprint) the published JWKS names.

    From ``SECRET_KEY`` or ``PRIVATE_KEY_FILE``, else generated on first run and kept beside
    the database with mode 0600, so tokens survive a restart.

    Raises:
        ConfigurationError: the key file is missing, unreadable, exposed or not a key.
    """
    try:
        if settings.secret_key is not None:
            key = Key(settings.secret_key.encode(), settings.algorithm)
        else:
            key = load_or_create_key_file(
                settings.key_path,
                settings.algorithm,
                create=settings.private_key_file is None,
            )
    except InvalidKeyError as exc:
        setting = "SECRET_KEY" if settings.secret_key is not None else "PRIVATE_KEY_FILE"
        raise ConfigurationError(setting, str(exc)) from exc
    if key.is_symmetric:
        # simplejwt's header exactly: {"alg": "HS256", "typ": "JWT"}, no kid.
        return key
    if key.kid is None:
        key.kid = key.thumbprint()
    return KeySet([key])


class AuthService:
    """The service's rules over a store, a key set, a password hasher and a clock.

    Args:
        settings: lifetimes, claim checks, rotation and throttling limits.
        store: the user and token store.
        keys: a key, or a key set that signs with its current key and verifies by ``kid``.
        hasher: hashes and verifies passwords.
        clock: returns the current Unix time; injected so tests control expiry.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        keys: Key | KeySet,
        hasher: PasswordHasher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.keys = keys
        self.hasher = hasher
        self.clock = clock
        key_list = list(keys) if isinstance(keys, KeySet) else [keys]
        self._algorithms = sorted({key.algorithm for key in key_list})
        self._signing_key = keys.current if isinstance(keys, KeySet) else keys
        self._jwks = keys.jwks() if isinstance(keys, KeySet) else {"keys": []}
        self._next_purge = 0.0
        self.throttle = Throttle(settings, store, pepper=_pepper(self._signing_key))
        self.users = UserStateCache(store, clock, ttl=settings.user_state_cache_seconds)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Callable[[], float] | None = None,
    ) -> AuthService:
        """Build the service that ``settings`` describe (opening the store if not given)."""
        hasher = PasswordHasher(
            memory_kib=settings.password_hash_memory_kib,
            iterations=settings.password_hash_iterations,
            lanes=settings.password_hash_lanes,
            concurrency=settings.password_hash_concurrency,
        )
        keys = load_signing_keys(settings)
        return cls(
            settings,
            store if store is not None else settings.open_store(),
            keys,
            hasher,
            clock or time.time,
        )

    # -- users ------------------------------------------------------------------------------

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
            fields.extend(
                "password", validators.password_problems(password, username=username, email=email)
            )
        fields.check()
        if address is not None:
            self.throttle.take_registration(address, self.clock())
        password_hash = self.hasher.hash(password)
        user = self.store.create_user(
            username=username,
            username_key=validators.username_key(username),
            username_skeleton=username_skeleton(username),
            email=email,
            password_hash=password_hash,
            now=self.clock(),
        )
        if user is None:
            raise ValidationError({"username": [_USERNAME_TAKEN]})
        return {"id": user.id, "username": user.username, "email": user.email}

    def login(self, data: Mapping[str, Any], *, address: str) -> dict[str, str]:
        """Check ``{"username", "password"}`` and return ``{"refresh", "access"}``.

        Unknown user, wrong password and inactive user are one error that takes one time.

        Raises:
            ValidationError: a field is missing or not a string.
            ThrottledError: too many recent failures for this username or address.
            AuthenticationError: the credentials do not name an active user.
        """
        fields = Fields(data)
        # Trimmed as DRF's CharField does, so a whitespace-only username is a blank field
        # (400), not a failed login counted against the username "".
        username = validators.normalize_username(fields.text("username"))
        password = fields.text("password", trim=False)
        fields.check()
        key = validators.username_key(username)
        now = self.clock()
        # Counted before the password is checked (atomically with the check of the limits),
        # and forgotten on success: parallel guesses see each other at once instead of all
        # slipping through during the tens of milliseconds a hash takes.
        subject = self.throttle.subject(key)
        self.throttle.take_login(subject, address, now)
        user = self.store.get_user_by_key(key)
        if user is None:
            self.hasher.dummy_verify(password)  # the same cost as a real verification
            valid = False
        else:
            # Verified even for an inactive user, so that refusal takes the same time.
            valid = self.hasher.verify(password, user.password_hash) and user.is_active
        if user is None or not valid:
            raise AuthenticationError("No active account found with the given credentials")
        rehashed = None
        if self.hasher.needs_rehash(user.password_hash):
            rehashed = self.hasher.hash(password)
        iat = int(now)
        refresh, record = self._new_refresh(user, iat, family=None)
        self.store.start_session(
            user.id,
            subject=subject,
            address=address_group(address),
            now=now,
            refresh=record,
            password_hash=rehashed,
        )
        self._purge_now_and_then(now)
        return {
            REFRESH: refresh,
            ACCESS: self._issue(ACCESS, user, iat, self.settings.access_token_lifetime),
        }

    def authenticate(self, token: str) -> dict[str, Any]:
        """The user an access token names, as the public ``me`` document.

        Raises:
            AccessTokenRejectedError: the token is not a valid access token.
            InactiveUserError: its user was deleted or deactivated.
        """
        try:
            claims = self._decode(token, expected_type=ACCESS)
        except JWTError as exc:
            raise AccessTokenRejectedError(exc) from exc
        user = self.store.get_user(int(claims["user_id"]))
        if user is None:
            raise InactiveUserError("user_not_found")
        if not user.is_active:
            raise InactiveUserError("user_inactive")
        return {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "date_joined": _iso8601(user.date_joined),
            "last_login": _iso8601(user.last_login) if user.last_login is not None else None,
        }

    # -- tokens -----------------------------------------------------------------------------

    def verify(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``{"token"}``: what ``/accounts/me/`` or refresh would accept.

        An access token must name an active user (known to this process for at most
        ``USER_STATE_CACHE_SECONDS``, see :mod:`jwtlite.service.userstate`); a refresh
        token must be on record, neither spent nor blacklisted, and its user active.

        Raises:
            JWTError: the token is invalid, expired, revoked or not ours.
            InactiveUserError: its user was deleted or deactivated.
        """
        fields = Fields(data)
        token = fields.text("token")
        fields.check()
        claims = self._decode(token)
        if claims["token_type"] == REFRESH:
            self._live_record_and_user(claims)
        elif not self.users.is_active(int(claims["user_id"])):
            raise InactiveUserError("user_inactive")
        return {}

    def refresh(self, data: Mapping[str, Any]) -> dict[str, str]:
        """Exchange ``{"refresh"}`` for ``{"access"}`` (and a new ``"refresh"`` with rotation).

        With rotation the old token is spent atomically; presenting a spent token again
        revokes its whole family, because it means two parties hold it.

        Raises:
            JWTError: invalid, expired, wrong type, blacklisted or spent.
            InactiveUserError: the user was deleted or deactivated.
        """
        fields = Fields(data)
        token = fields.text("refresh")
        fields.check()
        claims = self._decode(token, expected_type=REFRESH)
        record, user = self._live_record_and_user(claims)
        now = self.clock()
        iat = int(now)
        result = {ACCESS: self._issue(ACCESS, user, iat, self.settings.access_token_lifetime)}
        if self.settings.rotate_refresh_tokens:
            new_refresh, new_record = self._new_refresh(user, iat, family=record.family)
            if not self.store.rotate_refresh_token(record.jti, new_record):
                # Someone spent it between our read and our write: a concurrent reuse.
                self.store.revoke_family(record.family)
                raise TokenRevokedError(record.jti)
            result[REFRESH] = new_refresh
        self._purge_now_and_then(now)
        return result

    def blacklist(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Log out: revoke ``{"refresh"}`` (its whole family when rotation is on)."""
        fields = Fields(data)
        token = fields.text("refresh")
        fields.check()
        claims = self._decode(token, expected_type=REFRESH)
        record = self._live_record(claims)
        if self.settings.rotate_refresh_tokens:
            self.store.revoke_family(record.family)
        elif not self.store.blacklist_refresh_token(record.jti):
            raise TokenRevokedError(record.jti)
        return {}

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify our tokens (none for HMAC)."""
        return self._jwks

    def health(self) -> dict[str, str]:
        """``{"status": "ok"}`` when the store answers; raises StoreUnavailableError if not."""
        self.store.ping()
        return {"status": "ok"}

    # -- internals --------------------------------------------------------------------------

    def _decode(self, token: str, *, expected_type: str | None = None) -> dict[str, Any]:
        claims = jwt.decode(
            token,
            self.keys,
            self._algorithms,
            audience=self.settings.audience,
            issuer=self.settings.issuer,
            leeway=self.settings.leeway,
            options=_OPTIONS,
            now=self.clock(),
        )
        token_type = claims["token_type"]
        user_id = claims["user_id"]
        jti = claims["jti"]
        if token_type not in (ACCESS, REFRESH) or not isinstance(jti, str) or not _JTI(jti):
            raise MalformedTokenError("Token claims are not ours")
        if not isinstance(user_id, str) or not _USER_ID(user_id):
            raise MalformedTokenError("Token user_id is not a user id")
        if expected_type is not None and token_type != expected_type:
            raise WrongTokenTypeError(expected_type)
        return claims

    def _live_record_and_user(self, claims: Mapping[str, Any]) -> tuple[RefreshRecord, User]:
        """The refresh token's record and its active user, in one lookup.

        Raises:
            InactiveUserError: the user was deleted or deactivated.
            JWTError: the token is not on record, spent (its family is revoked) or revoked.
        """
        found = self.store.get_refresh_token_and_user(claims["jti"])
        if found is None:
            # Deleting a user deletes their refresh-token records too, and the client must
            # hear "no active account" (as for an inactive one), not "invalid".
            if self.store.get_user(int(claims["user_id"])) is None:
                raise InactiveUserError("user_inactive")
            raise MalformedTokenError("Refresh token is not on record")
        record, user = found
        if not user.is_active:
            raise InactiveUserError("user_inactive")
        self._check_record(record, claims)
        return record, user

    def _live_record(self, claims: Mapping[str, Any]) -> RefreshRecord:
        """The refresh token's record, refusing unknown, revoked and spent tokens."""
        record = self.store.get_refresh_token(claims["jti"])
        if record is None:
            # Signed by our key yet unknown to the store (a restored key, a wiped database):
            # fail closed.
            raise MalformedTokenError("Refresh token is not on record")
        self._check_record(record, claims)
        return record

    def _check_record(self, record: RefreshRecord, claims: Mapping[str, Any]) -> None:
        if str(record.user_id) != claims["user_id"]:  # a record of someone else: not ours
            raise MalformedTokenError("Refresh token is not on record")
        if record.state == "spent":
            self.store.revoke_family(record.family)
            raise TokenRevokedError(record.jti)
        if record.state != "active":
            raise TokenRevokedError(record.jti)

    def _new_refresh(
        self, user: User, iat: int, *, family: str | None
    ) -> tuple[str, RefreshRecord]:
        lifetime = self.settings.refresh_token_lifetime
        jti = secrets.token_hex(16)
        token = self._issue(REFRESH, user, iat, lifetime, jti=jti)
        record = RefreshRecord(jti, user.id, family or jti, iat, iat + lifetime, "active")
        return token, record

    def _issue(
        self, token_type: str, user: User, iat: int, lifetime: int, *, jti: str | None = None
    ) -> str:
        claims: dict[str, Any] = {
            "token_type": token_type,
            "exp": iat + lifetime,
            "iat": iat,
            "jti": jti or secrets.token_hex(16),
            "user_id": str(user.id),
        }
        if self.settings.issuer is not None:
            claims["iss"] = self.settings.issuer
        if self.settings.audience is not None:
            claims["aud"] = self.settings.audience
        return jwt.encode(claims, self._signing_key)

    def _purge_now_and_then(self, now: float) -> None:
        # Expired rows go as the service runs, at most once a minute; a race between two
        # threads only means one extra, harmless DELETE.
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_INTERVAL
            purge_expired(self.store, self.settings, now)


def purge_expired(store: Store, settings: Settings, now: float) -> int:
    """Delete what no check can use any more; return the number of rows deleted.

    A refresh token stays on record until no check could accept it (its expiry plus the
    leeway): a spent token purged inside the leeway would be refused as unknown instead of
    revoking its family. Attempts go once they count toward no throttle window.
    """
    return store.purge_expired(
        tokens_before=now - settings.leeway,
        attempts_before={
            LOGIN: now - settings.login_failure_window,
            REGISTER: now - settings.registration_window,
        },
    )


def _pepper(key: Key) -> bytes:
    """Secret material every instance sharing the signing key shares, never stored with the
    data: the key of the hash that stands for usernames in the throttle's counters."""
    return key.secret() if key.is_symmetric else key.private_pem()


def _iso8601(timestamp: float) -> str:
    from datetime import UTC, datetime  # noqa: PLC0415 - only the "me" document needs it

    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
